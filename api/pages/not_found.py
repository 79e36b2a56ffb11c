"""Unknown addresses and methods outside the JSON API answer a page, not JSON.

A person who mistypes `/tikets` or whose browser repeats a request with the wrong method sees
the app's layout with a link home. Machine clients keep the contract's JSON error shape:
everything under `/api/`, and the health and metrics endpoints that probes read.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.errors import http_exception_response
from api.pages.session import pages_state
from api.pages.web import problem, signed_in_agent

#: Paths whose clients are programs: they get `{"error": {"code", "message"}}`.
MACHINE_PREFIXES = ("/api/", "/healthz", "/metrics")


def wants_json(path: str) -> bool:
    return path == "/api" or path.startswith(MACHINE_PREFIXES)


async def page_or_json_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status not in (404, 405) or wants_json(request.url.path):
        return await http_exception_response(request, exc)
    state = pages_state(request)
    session = state.load(request)
    # The signed-in layout (navigation, sign-out) when there is a session; a stranger's
    # request costs no database read.
    agent = await signed_in_agent(request, state, session)
    path = request.url.path
    if status == 404:
        response = problem(
            request,
            session,
            agent,
            404,
            "Page not found",
            f"There is no page at {path}. The link may be mistyped or out of date.",
        )
    else:
        response = problem(
            request,
            session,
            agent,
            405,
            "That did not work",
            f"The page at {path} cannot take a {request.method} request. "
            "Go back and use the page's own buttons and links.",
        )
    response.headers.update(exc.headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response
