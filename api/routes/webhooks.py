"""Webhook endpoints and their deliveries (CONTRACT.md §6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import webhook_service as service
from api.deps import db, json_body, require_agent
from api.errors import ApiError
from api.schemas import WebhookCreate, WebhookPatch, parse
from domain.webhooks import DeliveryStatus
from store import webhooks

DELIVERIES_LIMIT = 50
MAX_DELIVERIES_LIMIT = 200
STATUSES = tuple(DeliveryStatus)


async def create_endpoint(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    body = parse(WebhookCreate, await json_body(request))
    created = await service.create(
        request, agent, body.url, [str(t) for t in body.events or []], body.description
    )
    answer = service.endpoint_json(created.endpoint)
    answer["secret"] = created.secret  # shown this once
    return JSONResponse(answer, status_code=201)


async def list_endpoints(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    found = await db(request, lambda s: webhooks.list_for_agent(s, agent.id))
    return JSONResponse({"items": [service.endpoint_json(e) for e in found]})


async def get_endpoint(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    endpoint = await service.owned(request, agent, request.path_params["endpoint_id"])
    return JSONResponse(service.endpoint_json(endpoint))


async def patch_endpoint(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    patch = parse(WebhookPatch, await json_body(request))
    endpoint = await service.change(
        request,
        agent,
        request.path_params["endpoint_id"],
        url=patch.url,
        event_types=None if patch.events is None else [str(t) for t in patch.events],
        description=patch.description,
        enabled=patch.enabled,
    )
    return JSONResponse(service.endpoint_json(endpoint))


async def delete_endpoint(request: Request) -> Response:
    agent = await require_agent(request)
    await service.delete(request, agent, request.path_params["endpoint_id"])
    return Response(status_code=204)


async def rotate_secret(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    secret = await service.rotate_secret(request, agent, request.path_params["endpoint_id"])
    return JSONResponse({"secret": secret})


def _status(request: Request) -> DeliveryStatus | None:
    value = request.query_params.get("status")
    if value in (None, ""):
        return None
    if value not in STATUSES:
        raise ApiError(422, "validation_error", f"status: must be one of {', '.join(STATUSES)}")
    return DeliveryStatus(value)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DELIVERIES_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DELIVERIES_LIMIT:
        raise ApiError(
            422,
            "validation_error",
            f"limit: must be a whole number from 1 to {MAX_DELIVERIES_LIMIT}",
        )
    return int(raw)


async def list_deliveries(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    status, limit = _status(request), _limit(request)
    endpoint = await service.owned(request, agent, request.path_params["endpoint_id"])
    found = await db(
        request,
        lambda s: webhooks.deliveries(s, agent.id, endpoint.id, status=status, limit=limit),
    )
    return JSONResponse({"items": [service.delivery_json(d) for d in found]})


async def retry_delivery(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    delivery = await service.retry(
        request, agent, request.path_params["endpoint_id"], request.path_params["delivery_id"]
    )
    return JSONResponse(service.delivery_json(delivery), status_code=202)


routes = [
    Route("/webhooks", create_endpoint, methods=["POST"]),
    Route("/webhooks", list_endpoints, methods=["GET"]),
    Route("/webhooks/{endpoint_id}", get_endpoint, methods=["GET"]),
    Route("/webhooks/{endpoint_id}", patch_endpoint, methods=["PATCH"]),
    Route("/webhooks/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
    Route("/webhooks/{endpoint_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/webhooks/{endpoint_id}/deliveries", list_deliveries, methods=["GET"]),
    Route(
        "/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
        retry_delivery,
        methods=["POST"],
    ),
]
