"""Push receivers (CONTRACT.md §5): where Google Pub/Sub and Microsoft Graph tell us a mailbox
changed. No admin token: each authenticates its sender (Google's signed OIDC token; the
per-mailbox secret Graph echoes as `clientState`) before anything else is read or done.

A notification is a hint, never data: a verified one signals the mailbox's workflow to poll
now and is acknowledged at once; the poll reads through the durable cursor, so a lost, late,
doubled or forged notification can neither lose nor double a ticket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api import mailbox_service
from api.deps import db, json_body, resources
from api.errors import ApiError
from api.push_auth import GooglePushVerifier, PushRefused
from core import metrics
from core.crypto import Cipher, SecretsUnavailable
from domain.outcomes import MailboxStatus
from store import mailboxes
from store.models import Mailbox, utcnow
from workflows.mailbox_state import PollRequest, PushEvent

log = logging.getLogger("deskclone.api.push")

# Graph wants an answer within about 3 s; a Temporal that is slow to take a signal must not
# make the provider think we are down (the safety-net poll covers a signal lost so).
SIGNAL_TIMEOUT = 2.0
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


def verifier(request: Request) -> GooglePushVerifier | None:
    found: GooglePushVerifier | None = getattr(request.app.state, "gmail_push_verifier", None)
    return found


async def gmail(request: Request) -> Response:
    check = verifier(request)
    if check is None:
        raise ApiError(404, "push_not_configured", "Gmail push is not configured here.")
    try:
        # The token first: nothing of an unverified request is read or acted on.
        await run_in_threadpool(check.verify, request.headers.get("authorization", ""))
    except PushRefused as refused:
        metrics.push_notification("gmail", "refused")
        code = "unauthorized" if refused.status == 401 else "forbidden"
        return JSONResponse(
            {"error": {"code": code, "message": f"Push refused: {refused}."}},
            status_code=refused.status,
        )
    try:
        body = await json_body(request)
    except ApiError:
        body = None  # not JSON at all: as unreadable as any other body below
    address = _gmail_address(body)
    if address is None:
        # Acknowledged: Pub/Sub would retry a body we can never read for a week.
        metrics.push_notification("gmail", "ignored")
        return Response(status_code=204)

    def lookup(session: Session) -> tuple[int, list[Mailbox]]:
        known = mailboxes.for_gmail_push(session, address)
        return len(known), _notified(session, known)

    known, found = await db(request, lookup)
    if not known:
        metrics.push_notification("gmail", "unknown_mailbox")
        return Response(status_code=204)
    if not found:  # every one of them waits for Reconnect: nothing to wake
        metrics.push_notification("gmail", "ignored")
        return Response(status_code=204)
    metrics.push_notification("gmail", "verified")
    await _poll_each(request, found)
    return Response(status_code=204)


async def outlook(request: Request) -> Response:
    handshake = _graph_handshake(request)
    if handshake is not None:
        return handshake
    found = await _verified_outlook(request)
    if found:
        await _poll_each(request, [mailbox for mailbox, _ in found])
    return Response(status_code=202)


async def outlook_lifecycle(request: Request) -> Response:
    handshake = _graph_handshake(request)
    if handshake is not None:
        return handshake
    found = await _verified_outlook(request)
    calls = [
        mailbox_service.push_event(request, mailbox, PushEvent(event))
        for mailbox, event in found
        if event in LIFECYCLE_EVENTS
    ]
    await _within_timeout(calls)
    return Response(status_code=202)


def _graph_handshake(request: Request) -> Response | None:
    """Graph's validation of a URL it is to call: the token alone, URL-decoded, as text."""
    token = request.query_params.get("validationToken")
    if token is None:
        return None
    metrics.push_notification("outlook", "validation")
    return PlainTextResponse(token)


async def _verified_outlook(request: Request) -> list[tuple[Mailbox, str]]:
    """The notifications whose subscription is ours and whose clientState is that
    subscription's secret, as (mailbox, lifecycle event or "" for a change); the rest are
    counted and dropped."""
    body = await json_body(request)
    items = body.get("value") if isinstance(body, dict) else None
    if not isinstance(items, list):
        metrics.push_notification("outlook", "ignored")
        return []
    cipher = _cipher(request)
    wanted = [item for item in items if isinstance(item, dict)][:100]

    def match(session: Session) -> tuple[list[tuple[Mailbox, str]], int]:
        kept: dict[str, tuple[Mailbox, str]] = {}
        matched = 0
        for item in wanted:
            mailbox = _outlook_mailbox(session, cipher, item)
            if mailbox is None:
                continue
            matched += 1
            event = str(item.get("lifecycleEvent") or "")
            kept.setdefault(f"{mailbox.id}:{event}", (mailbox, event))
        # Only an active mailbox is woken; an expired one waits for Reconnect.
        active = {m.id for m in _notified(session, [mailbox for mailbox, _ in kept.values()])}
        return [(m, event) for m, event in kept.values() if m.id in active], matched

    found, matched = await db(request, match)
    # Counted per notification: a batch of several for one mailbox is several verified.
    for _ in range(matched):
        metrics.push_notification("outlook", "verified")
    for _ in range(len(wanted) - matched):
        metrics.push_notification("outlook", "refused")
    return found


def _outlook_mailbox(
    session: Session, cipher: Cipher | None, item: dict[str, Any]
) -> Mailbox | None:
    subscription, state = item.get("subscriptionId"), item.get("clientState")
    if not isinstance(subscription, str) or not isinstance(state, str) or cipher is None:
        return None
    mailbox = mailboxes.for_push_id(session, subscription)
    if mailbox is None or mailbox.push_secret_encrypted is None:
        return None
    try:
        secret = cipher.decrypt(mailbox.push_secret_encrypted).decode()
    except SecretsUnavailable:
        return None
    if not hmac.compare_digest(secret.encode(), state.encode()):
        return None
    return mailbox


def _notified(session: Session, found: Sequence[Mailbox]) -> list[Mailbox]:
    """The mailboxes a notification may wake (an expired one waits for Reconnect), stamped."""
    active = [m for m in found if m.status == MailboxStatus.ACTIVE]
    mailboxes.note_notifications(session, [m.id for m in active], utcnow())
    return active


async def _poll_each(request: Request, found: list[Mailbox]) -> None:
    poll = PollRequest(reason="push", notified_at=utcnow().isoformat())
    await _within_timeout([mailbox_service.notified(request, m, poll) for m in found])


async def _within_timeout(calls: Sequence[Awaitable[None]]) -> None:
    if not calls:
        return
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*calls, return_exceptions=True), SIGNAL_TIMEOUT
        )
    except TimeoutError:
        log.warning(
            "push: signalling %d mailbox workflows took over %ss", len(calls), SIGNAL_TIMEOUT
        )
        return
    for result in results:
        if isinstance(result, BaseException):
            log.warning("push: a mailbox workflow was not signalled: %s", result)


def _gmail_address(body: Any) -> str | None:
    """`emailAddress` from a Pub/Sub envelope's base64 JSON data ({emailAddress, historyId},
    historyId a number or a string), or None when the body is not one."""
    message = body.get("message") if isinstance(body, dict) else None
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, str):
        return None
    try:
        decoded = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
    address = decoded.get("emailAddress") if isinstance(decoded, dict) else None
    return address.strip().lower() if isinstance(address, str) and "@" in address else None


def _cipher(request: Request) -> Cipher | None:
    try:
        return Cipher.from_settings(resources(request).settings)
    except SecretsUnavailable:
        return None


routes = [
    Route("/push/gmail", gmail, methods=["POST"]),
    Route("/push/outlook", outlook, methods=["POST"]),
    Route("/push/outlook/lifecycle", outlook_lifecycle, methods=["POST"]),
]

__all__ = ["routes"]
