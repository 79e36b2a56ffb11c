"""`GET /oauth/{provider}/callback`: where the provider's consent screen sends the browser back.

The `state` is the only credential here: single-use, expiring, bound to the agent (and, for a
Reconnect, to the mailbox). A replayed, forged or expired state, or a Reconnect that signs in
as a different account, changes nothing.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api import mailbox_control
from api.deps import db, resources
from api.routes.mailboxes import oauth_module, redirect_uri
from api.templating import render
from core.crypto import Cipher, SecretsUnavailable
from providers.google_oauth import GoogleGrant, OAuthError
from providers.microsoft_oauth import MicrosoftGrant
from store import mailboxes
from store.models import Mailbox, OAuthState

# What both consent flows hand back: the credentials and the mailbox's own address.
Grant = GoogleGrant | MicrosoftGrant

PROVIDERS = {"gmail": "Google", "outlook": "Microsoft"}


def _problem(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "oauth_problem.html", status_code=status, title=title, detail=detail)


async def callback(request: Request) -> Response:
    provider = request.path_params["provider"]
    if provider not in PROVIDERS:
        return _problem(request, 404, "Unknown provider", f"There is no {provider} sign-in here.")
    name = PROVIDERS[provider]
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
    settings = resources(request).settings
    try:
        cipher = Cipher.from_settings(settings)
        verifier = cipher.decrypt(state.verifier_encrypted).decode()
        grant: Grant = await run_in_threadpool(
            oauth_module(provider).exchange_code,
            settings,
            code=code,
            code_verifier=verifier,
            redirect_uri=redirect_uri(settings.public_url, provider),
        )
    except (OAuthError, SecretsUnavailable) as error:
        return _problem(request, 400, f"{name} sign-in failed", str(error))
    encrypted = cipher.encrypt_credentials(grant.credentials)
    if state.mailbox_id is not None:
        return await _reconnect(request, state, grant, encrypted)
    return await _connect(request, state, grant, encrypted, provider)


async def _reconnect(request: Request, state: OAuthState, grant: Grant, encrypted: str) -> Response:
    mailbox_id = state.mailbox_id
    assert mailbox_id is not None
    mailbox = await db(request, lambda s: mailboxes.get(s, state.agent_id, mailbox_id))
    if mailbox is None or mailbox.status == "disconnected":
        return _problem(request, 404, "Mailbox not found", "It was disconnected in the meantime.")
    if grant.email.lower() != mailbox.address:
        return _problem(
            request,
            409,
            "A different account signed in",
            f"You signed in as {grant.email}, but this card is {mailbox.address}. Reconnect as "
            f"{mailbox.address}, or use Connect to add {grant.email} as a new mailbox. "
            "Nothing was changed.",
        )

    def save(session: Session) -> Mailbox:
        row = mailboxes.get(session, state.agent_id, mailbox_id)
        assert row is not None
        return mailboxes.reconnect(session, row, encrypted)

    updated = await db(request, save)
    res = resources(request)
    await mailbox_control.signal(res.temporal, res.settings, updated, "reconnect")
    return RedirectResponse("/sources", status_code=303)


async def _connect(
    request: Request, state: OAuthState, grant: Grant, encrypted: str, provider: str
) -> Response:
    mailbox, _fresh = await db(
        request,
        lambda s: mailboxes.connect(
            s,
            agent_id=state.agent_id,
            provider=provider,
            address=grant.email,
            credentials_encrypted=encrypted,
        ),
    )
    res = resources(request)
    # Connecting an account that is already connected refreshes its credentials: the same as
    # a Reconnect, and harmless if the workflow is healthy.
    await mailbox_control.signal(res.temporal, res.settings, mailbox, "reconnect")
    return RedirectResponse("/sources", status_code=303)


routes = [Route("/oauth/{provider}/callback", callback, methods=["GET"])]
