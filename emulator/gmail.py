"""The Gmail API subset the project reads, under `/gmail/v1/users/{me|address}/...`.

Served: `profile`, `history`, `messages` (list), `messages/{id}`,
`messages/{message_id}/attachments/{id}` and `threads/{id}`, all GET, and the push
calls `watch` and `stop`, POST (`emulator.gmail_watch`). Every
call needs a Bearer access token issued for the mailbox by the emulator's
Google OAuth; failures use Google's error body. The same `handle_gmail_call`
serves direct requests and batch parts (see `emulator.batch`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.api import ApiCall, ApiResponse, roll_fault
from emulator.errors import google_error_body, unauthenticated_body
from emulator.faults import Fault
from emulator.gmail_context import HEX_ID, READ_SCOPES, GmailContext, GmailError, invalid_argument
from emulator.gmail_lists import list_history, list_messages
from emulator.gmail_watch import start_watch, stop_watch
from emulator.mime import (
    b64url,
    find_part,
    leaf_bytes,
    metadata_payload,
    parse_attachment_id,
    payload_tree,
    snippet,
)
from emulator.state import EmulatorState, StoredMessage
from emulator.tokens import AccessToken

PROVIDER = "gmail"
GMAIL_PREFIX = "/gmail/v1/"
MESSAGE_FORMATS = ("minimal", "metadata", "full", "raw")
THREAD_FORMATS = ("minimal", "metadata", "full")


#: A handler answers a JSON object (200), or None for an empty 204.
Handler = Callable[[GmailContext], dict[str, Any] | None]


@dataclass(frozen=True)
class GmailRoute:
    method: str
    #: The request-count key's path, e.g. `/gmail/v1/users/{user}/history`.
    pattern: str
    handler: Handler

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$")


def gmail_error(status: int, message: str | None = None, reason: str | None = None) -> ApiResponse:
    headers: dict[str, str] = {}
    if status == 401:
        # Google names the realm and error, so clients know to refresh.
        headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
    return ApiResponse(status, google_error_body(status, message, reason), headers)


def fault_response(fault: Fault) -> ApiResponse:
    assert fault.status is not None
    response = gmail_error(fault.status, None, fault.reason)
    response.headers.update(fault.retry_after_header())
    return response


# -- rendering -----------------------------------------------------------------


def render_message(
    message: StoredMessage, fmt: str, metadata_headers: list[str] | None = None
) -> dict[str, Any]:
    """A `Message` resource in Gmail's key order for `fmt`."""
    parsed = message.parsed()
    body: dict[str, Any] = {
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": list(message.label_ids),
        "snippet": snippet(parsed),
    }
    if fmt == "full":
        body["payload"] = payload_tree(message.id, parsed)
    elif fmt == "metadata":
        body["payload"] = metadata_payload(parsed, metadata_headers or [])
    body["sizeEstimate"] = len(message.raw)
    if fmt == "raw":
        body["raw"] = b64url(message.raw)
    body["historyId"] = str(message.history_id)
    body["internalDate"] = str(message.internal_date_ms)
    return body


def _format(ctx: GmailContext, allowed: tuple[str, ...]) -> str:
    fmt = ctx.query.get("format", "full").lower()
    if fmt not in allowed:
        raise invalid_argument(f"Invalid value at 'format' ({fmt})")
    if ctx.metadata_only and fmt in ("full", "raw"):
        raise GmailError(403, f"Metadata scope doesn't allow format {fmt.upper()}", "forbidden")
    return fmt


# -- handlers ------------------------------------------------------------------


def get_profile(ctx: GmailContext) -> dict[str, Any]:
    return {
        "emailAddress": ctx.mailbox.address,
        "messagesTotal": len(ctx.mailbox.messages),
        "threadsTotal": ctx.mailbox.thread_count(),
        "historyId": str(ctx.mailbox.history_id),
    }


def get_message(ctx: GmailContext) -> dict[str, Any]:
    fmt = _format(ctx, MESSAGE_FORMATS)
    return render_message(ctx.message(ctx.params["id"]), fmt, ctx.query.getlist("metadataHeaders"))


def get_thread(ctx: GmailContext) -> dict[str, Any]:
    fmt = _format(ctx, THREAD_FORMATS)
    thread_id = ctx.params["id"]
    if not HEX_ID.match(thread_id):
        raise invalid_argument("Invalid id value")
    messages = ctx.mailbox.thread(thread_id)
    if not messages:
        raise GmailError(404)
    wanted = ctx.query.getlist("metadataHeaders")
    return {
        "id": thread_id,
        "historyId": str(max(m.history_id for m in messages)),
        "messages": [render_message(m, fmt, wanted) for m in messages],
    }


def get_attachment(ctx: GmailContext) -> dict[str, Any]:
    if ctx.metadata_only:
        raise GmailError(403, "Metadata scope doesn't allow attachments", "forbidden")
    message = ctx.message(ctx.params["message_id"])
    attachment_id = ctx.params["id"]
    located = parse_attachment_id(attachment_id)
    if located is None or located[0] != message.id:
        raise invalid_argument("Invalid attachment token")
    part = find_part(message.parsed(), located[1])
    if part is None:
        raise GmailError(404)
    data = leaf_bytes(part)
    return {"attachmentId": attachment_id, "size": len(data), "data": b64url(data)}


# -- dispatch ------------------------------------------------------------------


_USERS = GMAIL_PREFIX + "users/{user}"
ROUTES: tuple[GmailRoute, ...] = (
    GmailRoute("GET", _USERS + "/profile", get_profile),
    GmailRoute("GET", _USERS + "/history", list_history),
    GmailRoute("GET", _USERS + "/messages", list_messages),
    GmailRoute("GET", _USERS + "/messages/{id}", get_message),
    GmailRoute("GET", _USERS + "/messages/{message_id}/attachments/{id}", get_attachment),
    GmailRoute("GET", _USERS + "/threads/{id}", get_thread),
    GmailRoute("POST", _USERS + "/watch", start_watch),
    GmailRoute("POST", _USERS + "/stop", stop_watch),
)
_COMPILED = [(route, route.regex) for route in ROUTES]


def match_route(method: str, path: str) -> tuple[GmailRoute, dict[str, str]] | None:
    for route, regex in _COMPILED:
        found = regex.match(path)
        if found and route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def _authenticate(state: EmulatorState, call: ApiCall) -> AccessToken | ApiResponse:
    header = call.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        missing = gmail_error(401)
        missing.body = unauthenticated_body(missing=True)
        return missing
    token = state.tokens.valid_access(value.strip()) if scheme.lower() == "bearer" else None
    if token is None or token.provider != PROVIDER:
        return gmail_error(401)
    return token


async def handle_gmail_call(state: EmulatorState, call: ApiCall) -> ApiResponse:
    """Count, maybe fault, authenticate, then answer one Gmail API call."""
    matched = match_route(call.method, call.path)
    key = f"{call.method} {matched[0].pattern if matched else call.path}"
    state.requests.record(key)
    fault = await roll_fault(state, PROVIDER, key)
    if fault is not None:
        return fault_response(fault)
    if matched is None:
        return gmail_error(404, f"The emulator does not serve {call.method} {call.path}")
    route, params = matched
    token = _authenticate(state, call)
    if isinstance(token, ApiResponse):
        return token
    mailbox = state.mailbox(token.address)
    if mailbox is None:
        return gmail_error(401)
    state.requests.log(key, account=mailbox.address, peer=call.peer)
    user = params["user"]
    if user != "me" and user.lower() != mailbox.address:
        return gmail_error(403, f"Delegation denied for {mailbox.address}", "forbidden")
    if not set(token.scope.split()) & READ_SCOPES:
        return gmail_error(
            403, "Request had insufficient authentication scopes.", "insufficientPermissions"
        )
    ctx = GmailContext(state, mailbox, token, params, call.query, call.body)
    try:
        answer = route.handler(ctx)
    except GmailError as error:
        return gmail_error(error.status, error.message, error.reason)
    return ApiResponse(204, {}) if answer is None else ApiResponse(200, answer)


def gmail_routes(state: EmulatorState) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        call = replace(ApiCall.from_request(request), body=await request.body())
        response = await handle_gmail_call(state, call)
        return response.to_starlette()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route(GMAIL_PREFIX + "{rest:path}", endpoint, methods=methods)]
