"""Graph JSON batching: `POST /v1.0/$batch` with up to 20 requests.

Each request (`{"id", "method", "url", "headers"?}` with `url` relative to the
version, e.g. `/me/messages/{id}/$value`) runs through the very same path as a
direct call (`handle_graph_call`): it is counted under its own route, can be
faulted (a 429 part carries `Retry-After` in its `headers`), and is authorized
with the batch's own token, which Graph checks first (a bad one fails the whole
batch with 401). Answers come in request order as `{"id", "status", "headers",
"body"}`; a body that is not JSON (the MIME of `$value`) is base64 text, as
Graph sends it. `dependsOn` is accepted; requests run in order anyway.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.api import ApiCall, roll_fault
from emulator.graph import base_url, handle_graph_call
from emulator.graph_context import (
    GRAPH_PREFIX,
    GraphError,
    GraphResponse,
    authenticated_mailbox,
    error_response,
    fault_error,
)
from emulator.microsoft_accounts import PROVIDER
from emulator.state import EmulatorState

BATCH_PATH = GRAPH_PREFIX + "/$batch"
#: Graph's documented limit on requests per batch.
MAX_BATCH_REQUESTS = 20
MAX_BATCH_BYTES = 4 * 1024 * 1024


def _inner_call(entry: dict[str, Any], outer: ApiCall) -> ApiCall:
    url = entry.get("url")
    method = entry.get("method")
    if not isinstance(url, str) or not isinstance(method, str) or not url:
        raise GraphError(400, "BadRequest", "Each request needs a method and a url.")
    target = urlsplit(url)
    if target.scheme or target.netloc or url.lower().lstrip("/").startswith("v1.0/"):
        raise GraphError(
            400,
            "BadRequest",
            "A batch request's url is relative to the version, like /me/messages.",
        )
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise GraphError(400, "BadRequest", "A request's headers must be an object.")
    merged = {str(k).lower(): str(v) for k, v in headers.items()}
    # Parts act with the batch's token, whatever they say.
    merged["authorization"] = outer.headers.get("authorization", "")
    path = GRAPH_PREFIX + "/" + target.path.lstrip("/")
    return ApiCall(method.upper(), path, QueryParams(target.query), merged)


def _entry(request_id: str, response: GraphResponse) -> dict[str, Any]:
    headers = {"Content-Type": response.content_type, **response.headers}
    body: Any = response.body
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode("ascii")
    return {"id": request_id, "status": response.status, "headers": headers, "body": body}


def _parse(raw: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.") from error
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise GraphError(
            400,
            "BadRequest",
            f"Limit of {MAX_BATCH_REQUESTS} requests per batch exceeded ({len(requests)}).",
        )
    ids = [entry.get("id") if isinstance(entry, dict) else None for entry in requests]
    if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
        raise GraphError(400, "BadRequest", "Every request needs a unique string id.")
    return requests


async def handle_batch(
    state: EmulatorState, outer: ApiCall, raw: bytes, base: str
) -> GraphResponse:
    key = f"POST {BATCH_PATH}"
    state.requests.record(key)
    # Only a fault naming this route hits the batch itself; plain provider faults hit
    # its parts, as Graph throttles individual requests inside a batch.
    fault = await roll_fault(state, PROVIDER, key, api=False)
    try:
        if fault is not None:
            raise fault_error(fault)
        found = authenticated_mailbox(state, outer)
        if isinstance(found, GraphError):
            raise found
        state.requests.log(key, account=found[1].address, peer=outer.peer)
        content_type = outer.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise GraphError(400, "BadRequest", "A batch is sent as application/json.")
        if len(raw) > MAX_BATCH_BYTES:
            raise GraphError(413, "RequestEntityTooLarge", "The batch request is too large.")
        requests = _parse(raw)
    except GraphError as error:
        return error_response(outer, error, state.clock())
    responses = []
    for entry in requests:
        try:
            inner = _inner_call(entry, outer)
        except GraphError as error:
            responses.append(_entry(entry["id"], error_response(outer, error, state.clock())))
            continue
        responses.append(_entry(entry["id"], await handle_graph_call(state, inner, base)))
    return GraphResponse(200, {"responses": responses})


def graph_batch_routes(state: EmulatorState) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        answer = await handle_batch(state, ApiCall.from_request(request), raw, base_url(request))
        return answer.to_starlette()

    return [Route(BATCH_PATH, endpoint, methods=["POST"])]
