"""Webhook endpoint operations for both callers: the JSON routes (`api/routes/webhooks.py`)
and the Webhooks tab (`api/pages/webhooks_tab.py`). Each caller checks and words its input;
what happens next is written once, here: the database first, then the dispatcher is woken
(if that fails, the worker's outbox waker or the dispatcher's idle check gets to it later).
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from temporalio.service import RPCError

from api.deps import db, resources
from api.errors import ApiError
from api.mailbox_service import cipher
from api.webhook_control import wake, wake_if_running
from domain import webhooks as rules
from domain.events import EVENT_TYPES, iso
from store import webhooks
from store.models import Agent, WebhookDelivery, WebhookEndpoint, utcnow

log = logging.getLogger("deskclone.api.webhooks")

WARNINGS = {
    rules.DisabledReason.GONE: (
        "The receiver answered 410 Gone, so deliveries stopped. Switch the endpoint back on "
        "once it accepts events again; what happened meanwhile is delivered then."
    ),
    rules.DisabledReason.FAILING: (
        "No delivery succeeded for a day, so deliveries stopped. Fix the receiver, switch "
        "the endpoint back on, and retry the failed deliveries."
    ),
}


def new_secret() -> str:
    """`whsec_` and 24 random bytes in base64: the Standard Webhooks form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_url(request: Request, url: str) -> str:
    allow = resources(request).settings.webhook_allow_private
    verdict = rules.url_verdict(url, allow_private=allow)
    if not verdict.allowed:
        message = f"url: {verdict.reason}"
        raise ApiError(
            422,
            "invalid_url",
            message,
            details={"fields": [{"field": "url", "message": verdict.reason}]},
        )
    return url


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    reason = endpoint.disabled_reason
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.event_types or EVENT_TYPES),
        "all_events": not endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": reason,
        "disabled_at": iso(endpoint.disabled_at) if endpoint.disabled_at else None,
        "warning": WARNINGS.get(reason) if reason is not None else None,
        "failing_since": iso(endpoint.failing_since) if endpoint.failing_since else None,
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.next_attempt_at else None,
        "last_attempt_at": iso(delivery.last_attempt_at) if delivery.last_attempt_at else None,
        "created_at": iso(delivery.created_at),
    }


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str


async def create(
    request: Request, agent: Agent, url: str, event_types: list[str], description: str | None
) -> Created:
    secret = new_secret()
    encrypted = cipher(request).encrypt(secret.encode())
    endpoint = await db(
        request,
        lambda s: webhooks.create(
            s,
            agent_id=agent.id,
            url=check_url(request, url),
            event_types=event_types,
            description=description or None,
            secret_encrypted=encrypted,
        ),
    )
    await _wake(request, endpoint.id)
    return Created(endpoint, secret)


async def owned(request: Request, agent: Agent, endpoint_id: str) -> WebhookEndpoint:
    found = await db(request, lambda s: webhooks.get(s, agent.id, endpoint_id))
    if found is None:
        raise ApiError(404, "not_found", "No webhook endpoint has that id.")
    return found


async def change(
    request: Request, agent: Agent, endpoint_id: str, **fields: Any
) -> WebhookEndpoint:
    if fields.get("url") is not None:
        check_url(request, fields["url"])

    def update(session: Session) -> WebhookEndpoint:
        endpoint = webhooks.get(session, agent.id, endpoint_id)
        if endpoint is None:
            raise ApiError(404, "not_found", "No webhook endpoint has that id.")
        return webhooks.update(session, endpoint, **fields)

    endpoint = await db(request, update)
    await _wake(request, endpoint.id)  # back on: its dispatcher starts again
    return endpoint


async def delete(request: Request, agent: Agent, endpoint_id: str) -> None:
    def remove(session: Session) -> bool:
        endpoint = webhooks.get(session, agent.id, endpoint_id)
        if endpoint is None:
            return False
        webhooks.delete(session, endpoint)
        return True

    if not await db(request, remove):
        raise ApiError(404, "not_found", "No webhook endpoint has that id.")
    try:
        await wake_if_running(resources(request).temporal, endpoint_id)
    except RPCError as error:  # it ends at its next round anyway
        log.warning("webhook dispatcher %s not told of the deletion: %s", endpoint_id, error)


async def rotate_secret(request: Request, agent: Agent, endpoint_id: str) -> str:
    secret = new_secret()
    encrypted = cipher(request).encrypt(secret.encode())

    def rotate(session: Session) -> None:
        endpoint = webhooks.get(session, agent.id, endpoint_id)
        if endpoint is None:
            raise ApiError(404, "not_found", "No webhook endpoint has that id.")
        webhooks.rotate_secret(session, endpoint, encrypted, utcnow())

    await db(request, rotate)
    return secret


async def retry(
    request: Request, agent: Agent, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    def again(session: Session) -> WebhookDelivery:
        endpoint = webhooks.get(session, agent.id, endpoint_id)
        found = webhooks.delivery(session, agent.id, endpoint_id, delivery_id)
        if endpoint is None or found is None:
            raise ApiError(404, "not_found", "No delivery of this endpoint has that id.")
        if not endpoint.enabled:
            raise ApiError(
                409,
                "endpoint_disabled",
                "This endpoint is switched off; switch it back on before retrying.",
            )
        return webhooks.retry(session, found, utcnow())

    delivery = await db(request, again)
    await _wake(request, endpoint_id)
    return delivery


async def _wake(request: Request, endpoint_id: str) -> None:
    res = resources(request)
    try:
        await wake(res.temporal, res.settings, endpoint_id)
    except RPCError as error:
        # Saved already: the outbox waker or the dispatcher's idle check gets to it.
        log.warning("webhook dispatcher %s not woken: %s", endpoint_id, error)
