"""Sources: connect, list, configure, poll, reconnect and disconnect mailboxes; the ledger."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from datetime import datetime, timedelta
from types import ModuleType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictInt
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import mailbox_control
from api.deps import db, json_body, require_agent, resources
from api.errors import ApiError
from api.schemas import iso, parse
from core.crypto import Cipher, SecretsUnavailable
from domain.senders import parse_allowed_senders
from providers import google_oauth, microsoft_oauth
from store import ledger, mailboxes
from store.models import Agent, Mailbox, OAuthState, utcnow
from workflows.mailbox_state import SettingsChanged

MIN_INTERVAL, MAX_INTERVAL = 10, 24 * 3600


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["gmail", "outlook"]
    login_hint: EmailStr | None = None


class MailboxPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_senders: (
        Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=1000)] | None
    ) = None
    poll_interval_seconds: Annotated[StrictInt, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL)] | None = (
        None
    )


def mailbox_json(mailbox: Mailbox, counts: dict[str, int], live: Any = None) -> dict[str, Any]:
    last_polled = iso(mailbox.last_polled_at) if mailbox.last_polled_at else None
    if live is not None and live.last_poll_at:
        last_polled = iso(datetime.fromisoformat(live.last_poll_at))
    return {
        "id": mailbox.id,
        "provider": mailbox.provider,
        "address": mailbox.address,
        "status": mailbox.status,
        "allowed_senders": mailbox.allowed_senders,
        "poll_interval_seconds": mailbox.poll_interval_seconds,
        "last_polled_at": last_polled,
        "last_error": mailbox.last_error,
        # Ledger outcomes are per email; the contract counts tickets.
        "counts": {
            "tickets_created": counts.get("ticket_created", 0),
            "appended": counts.get("appended", 0),
            "skipped": counts.get("skipped", 0),
            "failed": counts.get("failed", 0),
        },
    }


def _cipher(request: Request) -> Cipher:
    try:
        return Cipher.from_settings(resources(request).settings)
    except SecretsUnavailable as error:
        raise ApiError(503, "not_configured", str(error)) from error


async def _authorization_url(
    request: Request, agent: Agent, provider: str, login_hint: str | None, mailbox_id: str | None
) -> str:
    settings = resources(request).settings
    oauth = oauth_module(provider)
    verifier, challenge = oauth.new_pkce_pair()
    state = secrets.token_urlsafe(32)
    row = OAuthState(
        state=state,
        agent_id=agent.id,
        provider=provider,
        verifier_encrypted=_cipher(request).encrypt(verifier.encode()),
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


def oauth_module(provider: str) -> ModuleType:
    """Google's and Microsoft's consent flows have the same shape; pick by provider."""
    return {"gmail": google_oauth, "outlook": microsoft_oauth}[provider]


def redirect_uri(public_url: str, provider: str) -> str:
    return f"{public_url.rstrip('/')}/oauth/{provider}/callback"


async def connect_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    body = parse(ConnectRequest, await json_body(request))
    url = await _authorization_url(request, agent, body.provider, body.login_hint, None)
    return JSONResponse({"authorization_url": url}, status_code=201)


async def _owned(request: Request, agent: Agent) -> Mailbox:
    mailbox_id = request.path_params["mailbox_id"]
    mailbox = await db(request, lambda s: mailboxes.get(s, agent.id, mailbox_id))
    if mailbox is None or mailbox.status == "disconnected":
        raise ApiError(404, "not_found", "No mailbox has that id.")
    return mailbox


async def _counts(request: Request, ids: list[str]) -> dict[str, dict[str, int]]:
    return await db(request, lambda s: mailboxes.counts(s, ids))


async def list_mailboxes(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    rows = await db(request, lambda s: list(mailboxes.list_for_agent(s, agent.id)))
    counts = await _counts(request, [m.id for m in rows])
    client = resources(request).temporal
    live = await asyncio.gather(
        *(asyncio.wait_for(mailbox_control.live_state(client, m.id), 2) for m in rows),
        return_exceptions=True,
    )
    items = [
        mailbox_json(m, counts[m.id], None if isinstance(s, BaseException) else s)
        for m, s in zip(rows, live, strict=True)
    ]
    return JSONResponse({"items": items})


async def get_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)
    counts = await _counts(request, [mailbox.id])
    try:
        live = await asyncio.wait_for(
            mailbox_control.live_state(resources(request).temporal, mailbox.id), 2
        )
    except TimeoutError:
        live = None
    return JSONResponse(mailbox_json(mailbox, counts[mailbox.id], live))


async def patch_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    patch = parse(MailboxPatch, await json_body(request))
    mailbox = await _owned(request, agent)
    allowed = None
    if patch.allowed_senders is not None:
        try:
            allowed = parse_allowed_senders(patch.allowed_senders)
        except ValueError as error:
            raise ApiError(
                422,
                "validation_error",
                f"allowed_senders: {error}",
                details={"fields": [{"field": "allowed_senders", "message": str(error)}]},
            ) from error

    def update(session: Session) -> Mailbox:
        row = mailboxes.get(session, agent.id, mailbox.id)
        assert row is not None
        return mailboxes.update_settings(
            session, row, allowed_senders=allowed, poll_interval_seconds=patch.poll_interval_seconds
        )

    updated = await db(request, update)
    res = resources(request)
    # Senders are read from the database at each filtering; the interval lives in the workflow.
    await mailbox_control.signal(
        res.temporal,
        res.settings,
        updated,
        "settings_changed",
        SettingsChanged(poll_interval_seconds=patch.poll_interval_seconds),
    )
    counts = await _counts(request, [updated.id])
    return JSONResponse(mailbox_json(updated, counts[updated.id]))


async def reconnect_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)
    url = await _authorization_url(request, agent, mailbox.provider, mailbox.address, mailbox.id)
    return JSONResponse({"authorization_url": url})


async def poll_mailbox(request: Request) -> Response:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)
    if mailbox.status == "auth_expired":
        raise ApiError(409, "auth_expired", "This mailbox must be reconnected before it can poll.")
    res = resources(request)
    await mailbox_control.signal(res.temporal, res.settings, mailbox, "poll_now")
    return JSONResponse({"status": "polling"}, status_code=202)


async def delete_mailbox(request: Request) -> Response:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)

    def mark(session: Session) -> None:
        row = mailboxes.get(session, agent.id, mailbox.id)
        assert row is not None
        mailboxes.set_status(session, row, "disconnected")

    # The database first: a workflow that outlives a failed signal finds nothing to read.
    await db(request, mark)
    await mailbox_control.disconnect(resources(request).temporal, mailbox)
    return Response(status_code=204)


def _encode_cursor(row: Any) -> str:
    text = f"{iso(row.created_at)}|{row.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = text.partition("|")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.") from error


async def mailbox_messages(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)
    raw_limit = request.query_params.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 200:
        raise ApiError(422, "validation_error", "limit: must be a whole number from 1 to 200")
    limit = int(raw_limit)
    cursor = request.query_params.get("cursor")
    after = _decode_cursor(cursor) if cursor else None
    rows = await db(
        request, lambda s: list(ledger.page(s, agent.id, mailbox.id, limit=limit + 1, after=after))
    )
    page = rows[:limit]
    items = [
        {
            "id": r.id,
            "provider_message_id": r.provider_message_id,
            "from": r.from_address,
            "from_name": r.from_name,
            "subject": r.subject,
            "received_at": iso(r.received_at) if r.received_at else None,
            "outcome": r.outcome,
            "reason": r.reason,
            "ticket_id": r.ticket_id,
        }
        for r in page
    ]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


routes = [
    Route("/mailboxes", connect_mailbox, methods=["POST"]),
    Route("/mailboxes", list_mailboxes, methods=["GET"]),
    Route("/mailboxes/{mailbox_id}", get_mailbox, methods=["GET"]),
    Route("/mailboxes/{mailbox_id}", patch_mailbox, methods=["PATCH"]),
    Route("/mailboxes/{mailbox_id}", delete_mailbox, methods=["DELETE"]),
    Route("/mailboxes/{mailbox_id}/reconnect", reconnect_mailbox, methods=["POST"]),
    Route("/mailboxes/{mailbox_id}/poll", poll_mailbox, methods=["POST"]),
    Route("/mailboxes/{mailbox_id}/messages", mailbox_messages, methods=["GET"]),
]
