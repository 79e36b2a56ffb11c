"""Sources: connect, list, configure, poll, reconnect and disconnect mailboxes; the ledger."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, JsonValue, StrictInt, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import cursors, mailbox_control, mailbox_service
from api.deps import db, json_body, require_agent, resources
from api.errors import ApiError
from api.schemas import iso, parse
from domain import poll_interval
from domain.outcomes import MailboxStatus, Outcome, PushState
from domain.senders import parse_allowed_senders
from providers.imap.server import ImapServer, Security
from providers.registry import PROVIDERS, provider_info
from store import ledger, mailboxes
from store.models import Agent, InboundMessage, Mailbox
from workflows.mailbox_state import MailboxState

OAUTH_PROVIDERS: list[JsonValue] = [n for n, info in PROVIDERS.items() if info.sign_in == "oauth"]


class ConnectRequest(BaseModel):
    """A mailbox connected through its provider's OAuth consent."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(json_schema_extra={"enum": OAUTH_PROVIDERS})
    login_hint: EmailStr | None = None

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OAUTH_PROVIDERS:
            raise ValueError(f"must be one of: {', '.join(PROVIDERS)}")
        return value


class PasswordConnectRequest(BaseModel):
    """CONTRACT.md §7: a mailbox on any mail server, reached with a password."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    address: EmailStr
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\s/:@]+$")]
    port: Annotated[StrictInt, Field(ge=1, le=65535)]
    security: Security
    username: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    folder: Annotated[str, Field(min_length=1, max_length=255)] = "INBOX"

    def server(self) -> dict[str, str | int]:
        host = self.host.strip().lower()
        return ImapServer(host, self.port, self.security, self.username, self.folder).as_dict()


class PasswordReconnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(min_length=1, max_length=1024)]


class MailboxPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_senders: (
        Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=1000)] | None
    ) = None
    poll_interval_seconds: (
        Annotated[StrictInt, Field(ge=poll_interval.MIN_SECONDS, le=poll_interval.MAX_SECONDS)]
        | None
    ) = None


def mailbox_json(
    mailbox: Mailbox, counts: dict[Outcome, int], live: MailboxState | None = None
) -> dict[str, Any]:
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
        "push": push_json(mailbox),
        # A password provider's server settings (CONTRACT.md §7: "imap"); never the password.
        **({mailbox.provider: mailbox.server} if mailbox.server is not None else {}),
        # Ledger outcomes are per email; the contract counts tickets.
        "counts": {
            "tickets_created": counts.get(Outcome.TICKET_CREATED, 0),
            "appended": counts.get(Outcome.APPENDED, 0),
            "skipped": counts.get(Outcome.SKIPPED, 0),
            "failed": counts.get(Outcome.FAILED, 0),
        },
    }


def push_json(mailbox: Mailbox) -> dict[str, Any]:
    """CONTRACT.md §5: whether the provider tells us of new mail; `off` while the mailbox
    cannot be read (push pauses with it)."""
    live = mailbox.status == MailboxStatus.ACTIVE
    return {
        "state": mailbox.push_state if live else PushState.OFF,
        "expires_at": iso(mailbox.push_expires_at) if live and mailbox.push_expires_at else None,
        "last_notification_at": (
            iso(mailbox.last_notification_at) if mailbox.last_notification_at else None
        ),
    }


def _signs_in_with_password(provider: object) -> bool:
    return (
        isinstance(provider, str)
        and provider in PROVIDERS
        and (provider_info(provider).sign_in == "password")
    )


async def connect_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    raw = await json_body(request)
    if isinstance(raw, dict) and _signs_in_with_password(raw.get("provider")):
        form = parse(PasswordConnectRequest, raw)
        mailbox = await mailbox_service.connect_with_password(
            request, agent, form.provider, str(form.address), form.server(), form.password
        )
        counts = await _counts(request, [mailbox.id])
        return JSONResponse(mailbox_json(mailbox, counts[mailbox.id]), status_code=201)
    body = parse(ConnectRequest, raw)
    url = await mailbox_service.start_connect(request, agent, body.provider, body.login_hint)
    return JSONResponse({"authorization_url": url}, status_code=201)


async def _owned(request: Request, agent: Agent) -> Mailbox:
    mailbox = await mailbox_service.owned(request, agent, request.path_params["mailbox_id"])
    if mailbox is None:
        raise ApiError(404, "not_found", "No mailbox has that id.")
    return mailbox


async def _counts(request: Request, ids: list[str]) -> dict[str, dict[Outcome, int]]:
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

    updated = await mailbox_service.change_settings(
        request,
        agent,
        mailbox,
        allowed_senders=allowed,
        poll_interval_seconds=patch.poll_interval_seconds,
    )
    counts = await _counts(request, [updated.id])
    return JSONResponse(mailbox_json(updated, counts[updated.id]))


async def reconnect_mailbox(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    mailbox = await _owned(request, agent)
    if _signs_in_with_password(mailbox.provider):
        form = parse(PasswordReconnectRequest, await json_body(request))
        updated = await mailbox_service.reconnect_with_password(
            request, agent, mailbox, form.password
        )
        counts = await _counts(request, [updated.id])
        return JSONResponse(mailbox_json(updated, counts[updated.id]))
    url = await mailbox_service.start_reconnect(request, agent, mailbox)
    return JSONResponse({"authorization_url": url})


async def poll_mailbox(request: Request) -> Response:
    agent = await require_agent(request)
    await mailbox_service.poll_now(request, await _owned(request, agent))
    return JSONResponse({"status": "polling"}, status_code=202)


async def delete_mailbox(request: Request) -> Response:
    agent = await require_agent(request)
    await mailbox_service.disconnect(request, agent, await _owned(request, agent))
    return Response(status_code=204)


def _encode_cursor(row: InboundMessage) -> str:
    return cursors.encode(iso(row.created_at), row.id)


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, row_id = cursors.decode(cursor, 2)
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")), row_id
    except ValueError as error:
        raise cursors.invalid() from error


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
            "skip_reason": r.skip_reason,
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
