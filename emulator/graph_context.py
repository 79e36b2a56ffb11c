"""What a Graph handler gets and gives: the request context, errors and answers."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import Response

from emulator.api import ApiCall
from emulator.faults import Fault
from emulator.graph_render import CANONICAL, stored_id
from emulator.microsoft_accounts import PROVIDER
from emulator.state import EmulatorState, Mailbox, StoredMessage
from emulator.tokens import AccessToken

GRAPH_PREFIX = "/v1.0"
JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
MIME_CONTENT_TYPE = "text/plain"
#: Scopes that let a token read mail; `/me` also accepts User.Read.
MAIL_SCOPES = frozenset({"mail.read", "mail.readwrite"})
USER_SCOPES = frozenset({"user.read", "user.readwrite", "user.readbasic.all"})

# status -> (code, message), as Graph reports them; for injected faults and generic failures.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is not valid."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The send or update operation could not be performed."),
    410: ("SyncStateNotFound", "The sync state is not found; synchronize again."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("InternalServerError", "An internal server error occurred. Please retry later."),
    502: ("BadGateway", "The service is temporarily unavailable."),
    503: ("ServiceUnavailable", "Service Unavailable"),
    504: ("GatewayTimeout", "The operation timed out."),
}


class GraphError(Exception):
    """Raised by handlers; answered with Graph's error body."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_message = _DEFAULTS.get(
            status, ("UnknownError", HTTPStatus(status).phrase)
        )
        super().__init__(message or default_message)
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.headers = headers or {}


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


@dataclass
class GraphResponse:
    """A Graph answer: a JSON object, or raw bytes (`$value`)."""

    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return MIME_CONTENT_TYPE if isinstance(self.body, bytes) else JSON_CONTENT_TYPE

    def content(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")

    def to_starlette(self) -> Response:
        return Response(
            self.content(),
            status_code=self.status,
            headers=self.headers,
            media_type=self.content_type,
        )


def error_response(call: ApiCall, error: GraphError, now: float) -> GraphResponse:
    request_id = str(uuid.uuid4())
    inner = {
        "date": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": call.headers.get("client-request-id", request_id),
    }
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    headers = {"request-id": request_id, **error.headers}
    if error.status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
        )
    return GraphResponse(error.status, body, headers)


def fault_error(fault: Fault) -> GraphError:
    assert fault.status is not None
    return GraphError(fault.status, fault.reason, None, fault.retry_after_header())


# -- request context -------------------------------------------------------------


def preferences(headers: Mapping[str, str]) -> dict[str, str]:
    """`Prefer: odata.maxpagesize=20, IdType="ImmutableId"` as {lower-cased name: value}."""
    found: dict[str, str] = {}
    for item in headers.get("prefer", "").split(","):
        name, _, value = item.strip().partition("=")
        if name:
            found[name.strip().lower()] = value.strip().strip('"')
    return found


@dataclass(frozen=True)
class GraphContext:
    state: EmulatorState
    mailbox: Mailbox
    token: AccessToken
    params: dict[str, str]
    query: QueryParams
    headers: Mapping[str, str]
    #: `https://host:port`, for the absolute links Graph hands out.
    base_url: str

    @property
    def prefer(self) -> dict[str, str]:
        return preferences(self.headers)

    def message(self, graph_id: str) -> StoredMessage:
        found_id = stored_id(graph_id)
        if found_id is None:
            raise bad_request("Id is malformed.", "ErrorInvalidIdMalformed")
        found = self.mailbox.messages.get(found_id)
        if found is None:
            raise GraphError(404)
        return found

    def select(self) -> list[str] | None:
        """The canonical `$select` names, or None without `$select`."""
        raw = self.query.get("$select")
        if raw is None:
            return None
        names = []
        for name in (n.strip() for n in raw.split(",")):
            canonical = CANONICAL.get(name.lower())
            if canonical is None:
                raise bad_request(
                    f"Could not find a property named '{name}' on type 'microsoft.graph.message'.",
                    "RequestBroker--ParseUri",
                )
            names.append(canonical)
        return names

    def refuse_options(self, *allowed: str) -> None:
        """A loud 400 for OData options the route does not implement."""
        for name in self.query:
            if name.startswith("$") and name.lower() not in allowed:
                raise bad_request(f"The query parameter '{name}' is not supported here.")


def _authenticate(state: EmulatorState, call: ApiCall) -> AccessToken | GraphError:
    header = call.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header or not value.strip():
        return GraphError(401, message="Access token is empty.")
    token = state.tokens.valid_access(value.strip()) if scheme.lower() == "bearer" else None
    if token is None or token.provider != PROVIDER:
        return GraphError(401)
    return token


def authenticated_mailbox(
    state: EmulatorState, call: ApiCall
) -> tuple[AccessToken, Mailbox] | GraphError:
    token = _authenticate(state, call)
    if isinstance(token, GraphError):
        return token
    mailbox = state.mailbox(token.address)
    if mailbox is None:
        return GraphError(401)
    return token, mailbox
