"""`create_emulator_app`: the provider emulator as one Starlette app.

Routes: Google OAuth (`emulator.google_oauth`), the Gmail API
(`emulator.gmail`, with watch/stop in `emulator.gmail_watch`), Google batch
(`emulator.batch`), Cloud Pub/Sub (`emulator.pubsub`) and Google's signing certs
(`emulator.push_signing`), the Microsoft identity platform
(`emulator.microsoft_identity`), Graph mail (`emulator.graph`), its JSON batching
(`emulator.graph_batch`) and subscriptions (`emulator.graph_subscription_routes`), and
the control API (`emulator.control`, `emulator.graph_control`, `emulator.push_control`),
all over the same `EmulatorState`. docs/emulator-push.md lists the push routes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from emulator.batch import batch_routes
from emulator.control import control_routes
from emulator.errors import ControlError, control_error_response
from emulator.gmail import gmail_routes
from emulator.google_oauth import google_oauth_routes
from emulator.graph import graph_routes
from emulator.graph_batch import graph_batch_routes
from emulator.graph_control import graph_control_routes
from emulator.graph_subscription_routes import graph_subscription_routes
from emulator.microsoft_identity import microsoft_identity_routes
from emulator.pubsub import pubsub_routes
from emulator.push_control import push_control_routes
from emulator.push_signing import certs_route
from emulator.state import EmulatorState


async def _control_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlError)
    return control_error_response(exc.status, exc.code, exc.message)


async def _http_error(_request: Request, exc: Exception) -> Response:
    # Unknown paths and methods answer in the project's error shape, not plain text.
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return control_error_response(exc.status_code, code, str(exc.detail))


def create_emulator_app(state: EmulatorState | None = None) -> Starlette:
    """The emulator app over `state` (a fresh one when omitted), at `app.state.emulator`."""
    world = state if state is not None else EmulatorState()
    app = Starlette(
        routes=[
            *google_oauth_routes(world),
            *gmail_routes(world),
            *batch_routes(world),
            *pubsub_routes(world),
            certs_route(world),
            *control_routes(world),
            *graph_control_routes(world),
            *push_control_routes(world),
            *microsoft_identity_routes(world),
            # Batch and subscriptions before the catch-all `/v1.0/{rest:path}`.
            *graph_batch_routes(world),
            *graph_subscription_routes(world),
            *graph_routes(world),
        ],
        exception_handlers={ControlError: _control_error, HTTPException: _http_error},
    )
    app.state.emulator = world
    return app
