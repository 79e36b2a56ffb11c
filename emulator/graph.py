"""Microsoft Graph v1.0 mail, under `/v1.0`: the calls the Outlook provider makes.

Served (all GET, counted under the pattern in brackets):

- `/v1.0/me` (`GET /v1.0/me`): the signed-in user.
- `/v1.0/me/mailFolders('inbox')/messages/delta` and `/v1.0/me/mailFolders/inbox/messages/delta`
  (`GET /v1.0/me/mailFolders/{folder}/messages/delta`): see `emulator.graph_delta`.
- `/v1.0/me/messages/{id}` (`$select`), `/v1.0/me/messages/{id}/$value` (raw MIME) and
  `/v1.0/me/messages/{id}/attachments`.

Every call needs a Bearer access token from the emulator's Microsoft identity
platform (`emulator.microsoft_identity`); failures use Graph's error body
`{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`
(401 `InvalidAuthenticationToken`, 403 `ErrorAccessDenied`, 404 `ErrorItemNotFound`, ...).
The same `handle_graph_call` serves direct requests and `$batch` parts
(`emulator.graph_batch`), so counting, faults and auth cannot drift apart. Paths
match case-insensitively, as Graph's do (its own links say `mailfolders`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.api import ApiCall, roll_fault
from emulator.graph_context import (
    GRAPH_PREFIX,
    MAIL_SCOPES,
    USER_SCOPES,
    GraphContext,
    GraphError,
    GraphResponse,
    authenticated_mailbox,
    error_response,
    fault_error,
)
from emulator.graph_delta import messages_delta
from emulator.graph_render import render_attachments, render_message
from emulator.microsoft_accounts import PROVIDER, account_ids, display_name, resource_scopes
from emulator.state import EmulatorState

# -- handlers ----------------------------------------------------------------------


def get_me(ctx: GraphContext) -> GraphResponse:
    oid, _ = account_ids(ctx.mailbox)
    name = display_name(ctx.mailbox)
    given, _, surname = name.partition(" ")
    body: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}{GRAPH_PREFIX}/$metadata#users/$entity",
        "businessPhones": [],
        "displayName": name,
        "givenName": given,
        "jobTitle": None,
        "mail": ctx.mailbox.address,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": ctx.mailbox.address,
        "id": oid,
    }
    wanted = ctx.query.get("$select")
    if wanted is not None:
        keep = {name.strip().lower() for name in wanted.split(",")} | {"@odata.context", "id"}
        body = {k: v for k, v in body.items() if k.lower() in keep}
    return GraphResponse(200, body)


def get_message(ctx: GraphContext) -> GraphResponse:
    ctx.refuse_options("$select")
    message = ctx.message(ctx.params["id"])
    prefer_text = ctx.prefer.get("outlook.body-content-type", "").lower() == "text"
    body = {
        "@odata.context": f"{ctx.base_url}{GRAPH_PREFIX}/$metadata#users('{ctx.mailbox.address}')"
        "/messages/$entity",
        **render_message(ctx.mailbox, message, ctx.select(), prefer_text=prefer_text),
    }
    return GraphResponse(200, body)


def get_mime(ctx: GraphContext) -> GraphResponse:
    ctx.refuse_options()
    return GraphResponse(200, ctx.message(ctx.params["id"]).raw)


def list_attachments(ctx: GraphContext) -> GraphResponse:
    ctx.refuse_options()
    message = ctx.message(ctx.params["id"])
    context = (
        f"{ctx.base_url}{GRAPH_PREFIX}/$metadata#users('{ctx.mailbox.address}')/messages"
        f"('{ctx.params['id']}')/attachments"
    )
    return GraphResponse(200, {"@odata.context": context, "value": render_attachments(message)})


# -- dispatch ------------------------------------------------------------------------

Handler = Callable[[GraphContext], GraphResponse]


@dataclass(frozen=True)
class GraphRoute:
    method: str
    #: The request-count key's path, e.g. `/v1.0/me/messages/{id}/$value`.
    pattern: str
    handler: Handler
    scopes: frozenset[str]
    #: Regular expressions for the path (several when Graph accepts several spellings).
    regexes: tuple[re.Pattern[str], ...]


def _regex(template: str) -> re.Pattern[str]:
    escaped = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/()']+)", escaped) + "$", re.IGNORECASE)


def _route(pattern: str, handler: Handler, scopes: frozenset[str], *spellings: str) -> GraphRoute:
    return GraphRoute(
        "GET", pattern, handler, scopes, tuple(_regex(s) for s in (pattern, *spellings))
    )


_MESSAGES = GRAPH_PREFIX + "/me/messages/{id}"
DELTA_PATTERN = GRAPH_PREFIX + "/me/mailFolders/{folder}/messages/delta"
ROUTES: tuple[GraphRoute, ...] = (
    _route(GRAPH_PREFIX + "/me", get_me, USER_SCOPES | MAIL_SCOPES),
    _route(
        DELTA_PATTERN,
        messages_delta,
        MAIL_SCOPES,
        GRAPH_PREFIX + "/me/mailFolders('{folder}')/messages/delta",
    ),
    _route(_MESSAGES, get_message, MAIL_SCOPES),
    _route(_MESSAGES + "/$value", get_mime, MAIL_SCOPES),
    _route(_MESSAGES + "/attachments", list_attachments, MAIL_SCOPES),
)


def match_route(method: str, path: str) -> tuple[GraphRoute, dict[str, str]] | None:
    for route in ROUTES:
        for regex in route.regexes:
            found = regex.match(path)
            if found and route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


async def handle_graph_call(state: EmulatorState, call: ApiCall, base_url: str) -> GraphResponse:
    """Count, maybe fault, authenticate, then answer one Graph call."""
    matched = match_route(call.method, call.path)
    key = f"{call.method} {matched[0].pattern if matched else call.path}"
    state.requests.record(key)
    fault = await roll_fault(state, PROVIDER, key)
    try:
        if fault is not None:
            raise fault_error(fault)
        if matched is None:
            raise GraphError(
                400,
                "BadRequest",
                f"Resource not found for the segment in {call.method} {call.path} "
                "(the emulator serves only the project's calls).",
            )
        route, params = matched
        found = authenticated_mailbox(state, call)
        if isinstance(found, GraphError):
            raise found
        token, mailbox = found
        state.requests.log(key, account=mailbox.address, peer=call.peer)
        if not resource_scopes(token.scope.split()) & route.scopes:
            raise GraphError(403)
        ctx = GraphContext(state, mailbox, token, params, call.query, call.headers, base_url)
        response = route.handler(ctx)
    except GraphError as error:
        return error_response(call, error, state.clock())
    response.headers.setdefault("request-id", str(uuid.uuid4()))
    if "client-request-id" in call.headers:
        response.headers["client-request-id"] = call.headers["client-request-id"]
    return response


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def graph_routes(state: EmulatorState) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        response = await handle_graph_call(state, ApiCall.from_request(request), base_url(request))
        return response.to_starlette()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route(GRAPH_PREFIX + "/{rest:path}", endpoint, methods=methods)]
