"""Mailbox operations, one module for both callers: the JSON routes (`api/routes/mailboxes.py`,
`api/routes/oauth.py`) and the Sources page buttons (`api/pages/sources.py`). Each caller
checks and words its own input; what happens next is written once, here.

Every change goes to the database first and then to the mailbox's workflow: a workflow that
outlives a failed signal finds the database's word, and the next signal-with-start brings
one back from it (`api.mailbox_control`).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api import mailbox_control
from api.deps import db, resources
from api.errors import ApiError
from core.crypto import Cipher, SecretsUnavailable
from domain.credentials import Credentials
from domain.outcomes import MailboxStatus, PushState
from providers.base import LoginRefused
from providers.oauth_common import Grant, OAuthError
from providers.registry import provider_info
from store import mailboxes
from store.models import Agent, Mailbox, OAuthState, utcnow
from workflows.mailbox_state import PollRequest, PushEvent, SettingsChanged


def redirect_uri(public_url: str, provider: str) -> str:
    return f"{public_url.rstrip('/')}/oauth/{provider}/callback"


def cipher(request: Request) -> Cipher:
    try:
        return Cipher.from_settings(resources(request).settings)
    except SecretsUnavailable as error:
        raise ApiError(503, "not_configured", str(error)) from error


async def owned(request: Request, agent: Agent, mailbox_id: str) -> Mailbox | None:
    """The agent's mailbox with that id, unless it is disconnected."""
    mailbox = await db(request, lambda s: mailboxes.get(s, agent.id, mailbox_id))
    if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
        return None
    return mailbox


async def start_connect(
    request: Request, agent: Agent, provider: str, login_hint: str | None
) -> str:
    """The provider's consent URL for a new mailbox."""
    return await _consent_url(request, agent, provider, login_hint, None)


async def start_reconnect(request: Request, agent: Agent, mailbox: Mailbox) -> str:
    """The consent URL for this mailbox's own account; completing it keeps every setting."""
    return await _consent_url(request, agent, mailbox.provider, mailbox.address, mailbox.id)


async def _consent_url(
    request: Request, agent: Agent, provider: str, login_hint: str | None, mailbox_id: str | None
) -> str:
    settings = resources(request).settings
    info = provider_info(provider)
    if info.sign_in != "oauth":
        raise ApiError(
            422,
            "password_required",
            f"{info.label} mailboxes sign in with a password: send it to connect or reconnect.",
        )
    oauth = info.oauth()
    verifier, challenge = oauth.new_pkce_pair()
    state = secrets.token_urlsafe(32)
    row = OAuthState(
        state=state,
        agent_id=agent.id,
        provider=provider,
        verifier_encrypted=cipher(request).encrypt(verifier.encode()),
        mailbox_id=mailbox_id,
        login_hint=login_hint,
        expires_at=utcnow() + timedelta(seconds=settings.oauth_state_ttl_seconds),
    )
    await db(request, lambda s: mailboxes.save_oauth_state(s, row))
    url: str = oauth.authorization_url(
        settings,
        state=state,
        code_challenge=challenge,
        redirect_uri=redirect_uri(settings.public_url, provider),
        login_hint=login_hint,
    )
    return url


async def exchange_code(request: Request, state: OAuthState, code: str) -> Grant:
    """The consent's code for credentials and the account's own address; `OAuthError` or
    `SecretsUnavailable` when that fails."""
    settings = resources(request).settings
    verifier = Cipher.from_settings(settings).decrypt(state.verifier_encrypted).decode()
    grant: Grant = await run_in_threadpool(
        provider_info(state.provider).oauth().exchange_code,
        settings,
        code=code,
        code_verifier=verifier,
        redirect_uri=redirect_uri(settings.public_url, state.provider),
    )
    return grant


class WrongAccount(Exception):
    """A Reconnect signed in as another account than the card's."""

    def __init__(self, signed_in_as: str, mailbox_address: str) -> None:
        super().__init__(f"signed in as {signed_in_as}, not {mailbox_address}")
        self.signed_in_as = signed_in_as
        self.mailbox_address = mailbox_address


async def complete_consent(request: Request, state: OAuthState, grant: Grant) -> Mailbox | None:
    """Connect the mailbox the consent was for, or reconnect the card it came from: new
    credentials, every setting and the cursor kept. None when a reconnected mailbox was
    disconnected meanwhile; `WrongAccount` when another account signed in."""
    encrypted = cipher(request).encrypt_credentials(grant.credentials)
    mailbox_id = state.mailbox_id
    if mailbox_id is None:
        mailbox, _fresh = await db(
            request,
            lambda s: mailboxes.connect(
                s,
                agent_id=state.agent_id,
                provider=state.provider,
                address=grant.email,
                credentials_encrypted=encrypted,
            ),
        )
    else:

        def save(session: Session) -> Mailbox | None:
            row = mailboxes.get(session, state.agent_id, mailbox_id)
            if row is None or row.status == MailboxStatus.DISCONNECTED:
                return None
            if grant.email.lower() != row.address:
                raise WrongAccount(grant.email, row.address)
            return mailboxes.reconnect(session, row, encrypted)

        found = await db(request, save)
        if found is None:
            return None
        mailbox = found
    # Connecting an account that is already connected refreshes its credentials: the same as
    # a Reconnect, and harmless if the workflow is healthy.
    await _signal(request, mailbox, "reconnect")
    return mailbox


async def test_login(request: Request, provider: str, credentials: Credentials) -> None:
    """A password provider's connect test (log in, open the folder read-only), on a thread:
    it blocks on the network. Refused: 422 with the code naming what failed, and the field."""
    settings = resources(request).settings
    try:
        await run_in_threadpool(provider_info(provider).login().check, settings, credentials)
    except LoginRefused as refused:
        fields = [{"field": refused.field, "message": refused.words}] if refused.field else []
        raise ApiError(422, refused.code, refused.words, details={"fields": fields}) from None


async def connect_with_password(
    request: Request,
    agent: Agent,
    provider: str,
    address: str,
    server: dict[str, str | int],
    password: str,
) -> Mailbox:
    """Test the login, then store the mailbox (password encrypted, server in the clear) and
    start its workflow. Nothing is stored for a refused login."""
    credentials = Credentials(refresh_token="", password=password, server=server)
    await test_login(request, provider, credentials)
    encrypted = cipher(request).encrypt_credentials(credentials)
    mailbox, _fresh = await db(
        request,
        lambda s: mailboxes.connect(
            s,
            agent_id=agent.id,
            provider=provider,
            address=address,
            credentials_encrypted=encrypted,
            server=server,
        ),
    )
    await _signal(request, mailbox, "reconnect")
    return mailbox


async def reconnect_with_password(
    request: Request, agent: Agent, mailbox: Mailbox, password: str
) -> Mailbox:
    """The same test with a new password; every setting and the cursor kept, so mail that
    arrived meanwhile is read from where the mailbox stopped."""
    if mailbox.server is None:
        raise ApiError(409, "not_reconnectable", "This mailbox has no server settings stored.")
    credentials = Credentials(refresh_token="", password=password, server=mailbox.server)
    await test_login(request, mailbox.provider, credentials)
    encrypted = cipher(request).encrypt_credentials(credentials)

    def save(session: Session) -> Mailbox:
        row = mailboxes.get(session, agent.id, mailbox.id)
        if row is None or row.status == MailboxStatus.DISCONNECTED:
            raise ApiError(404, "not_found", "This mailbox was disconnected in the meantime.")
        return mailboxes.reconnect(session, row, encrypted)

    updated = await db(request, save)
    await _signal(request, updated, "reconnect")
    return updated


async def change_settings(
    request: Request,
    agent: Agent,
    mailbox: Mailbox,
    *,
    allowed_senders: list[str] | None,
    poll_interval_seconds: int | None,
) -> Mailbox:
    """Senders and interval, already checked by the caller; they apply from the next poll."""

    def update(session: Session) -> Mailbox:
        row = mailboxes.get(session, agent.id, mailbox.id)
        if row is None or row.status == MailboxStatus.DISCONNECTED:
            raise ApiError(404, "not_found", "This mailbox was disconnected in the meantime.")
        return mailboxes.update_settings(
            session,
            row,
            allowed_senders=allowed_senders,
            poll_interval_seconds=poll_interval_seconds,
        )

    updated = await db(request, update)
    # Senders are read from the database at each poll; the interval lives in the workflow.
    changed = SettingsChanged(poll_interval_seconds=poll_interval_seconds)
    await _signal(request, updated, "settings_changed", changed)
    return updated


async def poll_now(request: Request, mailbox: Mailbox) -> None:
    if mailbox.status == MailboxStatus.AUTH_EXPIRED:
        raise ApiError(409, "auth_expired", "This mailbox must be reconnected before it can poll.")
    await _signal(request, mailbox, "poll_now")


async def notified(request: Request, mailbox: Mailbox, poll: PollRequest) -> None:
    """A verified push notification: poll now (coalesced in the workflow)."""
    await _signal(request, mailbox, "poll_now", poll)


async def push_event(request: Request, mailbox: Mailbox, event: PushEvent) -> None:
    """A verified Graph lifecycle notification."""
    await _signal(request, mailbox, "push_event", event)


async def disconnect(request: Request, agent: Agent, mailbox: Mailbox) -> None:
    """Its workflow ends; its tickets and its ledger stay. A mailbox with push keeps its
    credentials until its workflow has used them to stop the push (`release_mailbox`)."""

    def mark(session: Session, *, release: bool) -> None:
        row = mailboxes.get(session, agent.id, mailbox.id)
        if row is None:
            return
        if release or row.push_state == PushState.OFF:
            mailboxes.set_status(session, row, MailboxStatus.DISCONNECTED)
        elif row.status != MailboxStatus.DISCONNECTED:
            mailboxes.disconnect(session, row)

    await db(request, lambda s: mark(s, release=False))
    if not await mailbox_control.disconnect(resources(request).temporal, mailbox):
        # No workflow to stop the push: it lapses within days; the credentials go now.
        await db(request, lambda s: mark(s, release=True))


async def _signal(request: Request, mailbox: Mailbox, name: str, *args: object) -> None:
    res = resources(request)
    await mailbox_control.signal(res.temporal, res.settings, mailbox, name, *args)


__all__ = [
    "OAuthError",
    "WrongAccount",
    "change_settings",
    "complete_consent",
    "connect_with_password",
    "disconnect",
    "exchange_code",
    "owned",
    "poll_now",
    "reconnect_with_password",
    "redirect_uri",
    "start_connect",
    "start_reconnect",
    "test_login",
]
