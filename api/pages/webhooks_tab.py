"""Tickets > Sources > Webhooks: endpoints, their recent deliveries, Retry, the secret once.

Every change goes through `api.webhook_service`, as the JSON routes do. A new or rotated
secret is shown on the page that answers the POST (never in a URL, never again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api import webhook_service as service
from api.deps import db
from api.errors import ApiError
from api.pages.web import Page, page
from domain.events import EVENT_TYPES
from domain.webhooks import DeliveryStatus
from store import webhooks
from store.models import WebhookDelivery, WebhookEndpoint

RECENT_DELIVERIES = 10
NOTICES = {
    "retrying": "Delivering it again now.",
    "enabled": "Switched on. What happened while it was off is delivered now.",
    "disabled": "Switched off. Nothing is sent to it until it is switched on again.",
    "deleted": "Endpoint deleted.",
}
EVENT_LABELS = {
    "ticket.created": "A ticket is created",
    "ticket.message_added": "A message is added to a ticket",
    "ticket.status_changed": "A ticket's status changes",
    "mailbox.auth_expired": "A mailbox's sign-in expires",
    "mailbox.reconnected": "An expired mailbox is reconnected",
}
DELIVERY_LABELS = {
    DeliveryStatus.PENDING: "Pending",
    DeliveryStatus.SUCCEEDED: "Succeeded",
    DeliveryStatus.FAILED: "Failed",
}


@dataclass(frozen=True)
class EndpointView:
    endpoint: WebhookEndpoint
    json: dict[str, Any]
    deliveries: list[WebhookDelivery]


async def _views(p: Page) -> list[EndpointView]:
    def load(session: Session) -> list[EndpointView]:
        found = []
        for endpoint in webhooks.list_for_agent(session, p.agent.id):
            recent = webhooks.deliveries(
                session, p.agent.id, endpoint.id, status=None, limit=RECENT_DELIVERIES
            )
            found.append(EndpointView(endpoint, service.endpoint_json(endpoint), list(recent)))
        return found

    return await db(p.request, load)


async def _page(
    p: Page,
    *,
    status_code: int = 200,
    secret: tuple[str, str] | None = None,
    form_error: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    """`secret`: (endpoint id, secret) to show once."""
    return p.render(
        "pages/webhooks.html",
        status_code=status_code,
        section="sources",
        tab="webhooks",
        views=await _views(p),
        event_types=EVENT_TYPES,
        event_labels=EVENT_LABELS,
        delivery_labels=DELIVERY_LABELS,
        secret=secret,
        form_error=form_error,
        typed=typed or {"url": "", "description": "", "events": list(EVENT_TYPES)},
        notice=NOTICES.get(p.request.query_params.get("done", "")),
    )


@page
async def webhooks_tab(p: Page) -> Response:
    return await _page(p)


@page
async def create(p: Page) -> Response:
    assert p.form is not None
    url, description = p.field("url").strip(), p.field("description").strip()
    chosen = [t for t in p.form.getlist("events") if isinstance(t, str)]
    typed = {"url": url, "description": description, "events": chosen}
    if not url:
        return await _page(p, status_code=422, form_error="Enter the URL.", typed=typed)
    if not chosen or any(t not in EVENT_TYPES for t in chosen):
        error = "Choose at least one kind of event."
        return await _page(p, status_code=422, form_error=error, typed=typed)
    if len(description) > 500:
        error = "Keep the description to 500 characters."
        return await _page(p, status_code=422, form_error=error, typed=typed)
    wanted = [] if set(chosen) == set(EVENT_TYPES) else chosen
    try:
        made = await service.create(p.request, p.agent, url, wanted, description)
    except ApiError as error:
        if error.status != 422:
            raise
        words = "The URL " + error.message.removeprefix("url: ") + "."
        return await _page(p, status_code=422, form_error=words, typed=typed)
    return await _page(p, status_code=201, secret=(made.endpoint.id, made.secret))


@page
async def rotate(p: Page) -> Response:
    endpoint_id = p.request.path_params["endpoint_id"]
    secret = await service.rotate_secret(p.request, p.agent, endpoint_id)
    return await _page(p, secret=(endpoint_id, secret))


@page
async def enable(p: Page) -> Response:
    await service.change(p.request, p.agent, p.request.path_params["endpoint_id"], enabled=True)
    return _back("enabled", p.request.path_params["endpoint_id"])


@page
async def disable(p: Page) -> Response:
    await service.change(p.request, p.agent, p.request.path_params["endpoint_id"], enabled=False)
    return _back("disabled", p.request.path_params["endpoint_id"])


@page
async def delete(p: Page) -> Response:
    await service.delete(p.request, p.agent, p.request.path_params["endpoint_id"])
    return RedirectResponse("/sources/webhooks?done=deleted", status_code=303)


@page
async def retry(p: Page) -> Response:
    params = p.request.path_params
    await service.retry(p.request, p.agent, params["endpoint_id"], params["delivery_id"])
    return _back("retrying", params["endpoint_id"])


def _back(done: str, endpoint_id: str) -> Response:
    return RedirectResponse(
        f"/sources/webhooks?done={done}#endpoint-{endpoint_id}", status_code=303
    )


BASE = "/sources/webhooks"
routes = [
    Route(BASE, webhooks_tab, methods=["GET"]),
    Route(BASE, create, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/rotate", rotate, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/enable", enable, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/disable", disable, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/delete", delete, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/deliveries/{delivery_id}/retry", retry, methods=["POST"]),
]
