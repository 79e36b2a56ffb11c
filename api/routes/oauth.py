"""`GET /oauth/{provider}/callback`: where the provider's consent screen sends the browser back.

The `state` is the only credential here: single-use, expiring, bound to the agent (and, for a
Reconnect, to the mailbox). A replayed, forged or expired state, or a Reconnect that signs in
as a different account, changes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api import mailbox_service
from api.deps import db
from api.mailbox_service import WrongAccount
from api.templating import render
from core.crypto import SecretsUnavailable
from providers.oauth_common import Grant, OAuthError
from providers.registry import PROVIDERS
from store import mailboxes


def _problem(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "oauth_problem.html", status_code=status, title=title, detail=detail)


async def callback(request: Request) -> Response:
    provider = request.path_params["provider"]
    if provider not in PROVIDERS or PROVIDERS[provider].sign_in != "oauth":
        return _problem(request, 404, "Unknown provider", f"There is no {provider} sign-in here.")
    name = PROVIDERS[provider].company
    params = request.query_params
    state_value, code = params.get("state", ""), params.get("code", "")
    if not state_value:
        return _problem(request, 400, "Sign-in incomplete", "The link is missing its state.")
    state = await db(request, lambda s: mailboxes.take_oauth_state(s, state_value, provider))
    if state is None:
        return _problem(
            request,
            400,
            "This sign-in link has expired",
            "It was already used or is too old. Start again from Sources.",
        )
    if params.get("error"):
        return _problem(
            request,
            400,
            f"{name} did not connect the mailbox",
            f"{name} answered: {params['error']}. Nothing was changed.",
        )
    if not code:
        return _problem(request, 400, "Sign-in incomplete", "The link is missing its code.")
    try:
        grant: Grant = await mailbox_service.exchange_code(request, state, code)
    except (OAuthError, SecretsUnavailable) as error:
        return _problem(request, 400, f"{name} sign-in failed", str(error))
    try:
        mailbox = await mailbox_service.complete_consent(request, state, grant)
    except WrongAccount as wrong:
        return _problem(
            request,
            409,
            "A different account signed in",
            f"You signed in as {wrong.signed_in_as}, but this card is {wrong.mailbox_address}. "
            f"Reconnect as {wrong.mailbox_address}, or use Connect to add "
            f"{wrong.signed_in_as} as a new mailbox. Nothing was changed.",
        )
    if mailbox is None:
        return _problem(request, 404, "Mailbox not found", "It was disconnected in the meantime.")
    return RedirectResponse("/sources", status_code=303)


routes = [Route("/oauth/{provider}/callback", callback, methods=["GET"])]
