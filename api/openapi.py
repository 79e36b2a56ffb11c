"""The OpenAPI 3.1 description of the HTTP API of CONTRACT.md §2, served at `/api/v1/openapi.json`.

Request bodies come from the pydantic models the routes validate with, so the description
cannot drift from what is accepted; response shapes are written out here after the contract.
Response objects allow extra properties: the API may add fields, never remove them.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel

from api.routes.mailboxes import (
    ConnectRequest,
    MailboxPatch,
    PasswordConnectRequest,
    PasswordReconnectRequest,
)
from api.schemas import (
    BehaviourUpdate,
    Escalation,
    FormSubmission,
    TicketPatch,
    WebhookCreate,
    WebhookPatch,
)
from domain import poll_interval
from domain.events import EVENT_TYPES
from domain.outcomes import (
    MailboxStatus,
    Outcome,
    PushState,
    SkipReason,
    TicketSource,
    TicketStatus,
)
from domain.webhooks import DeliveryStatus, DisabledReason
from providers.registry import PROVIDERS

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
DATETIME: Schema = {"type": "string", "format": "date-time"}

ERROR_CODE_PATTERN = "^[a-z][a-z0-9_]*$"

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string", "pattern": ERROR_CODE_PATTERN},
                    "message": {"type": "string", "minLength": 1},
                    "fields": {
                        "type": "array",
                        "items": _object({"field": STRING, "message": STRING}),
                    },
                },
                required=["code", "message"],
            )
        }
    ),
    "Person": _object(
        {"email": _nullable(STRING), "name": _nullable(STRING)}, required=["email", "name"]
    ),
    "Ticket": _object(
        {
            "id": STRING,
            "number": INT,
            "title": STRING,
            "description": STRING,
            "source": {"enum": ["email", "form", "widget"]},
            "status": {"enum": ["open", "pending", "solved"]},
            "requester": _ref("Person"),
            "mailbox_id": _nullable(STRING),
            "created_at": DATETIME,
            "updated_at": DATETIME,
            "message_count": INT,
        }
    ),
    "TicketMessage": _object(
        {
            "id": STRING,
            "author": _ref("Person"),
            "body_text": STRING,
            "sent_at": DATETIME,
            "attachments": {
                "type": "array",
                "items": _object(
                    {
                        "filename": _nullable(STRING),
                        "content_type": _nullable(STRING),
                        "size": _nullable(INT),
                    }
                ),
            },
        }
    ),
    "TicketWithMessages": {
        "allOf": [
            _ref("Ticket"),
            _object(
                {"messages": {"type": "array", "items": _ref("TicketMessage")}},
            ),
        ]
    },
    "TicketPage": _object(
        {"items": {"type": "array", "items": _ref("Ticket")}, "next_cursor": _nullable(STRING)}
    ),
    "ImapServer": _object(
        {
            "host": STRING,
            "port": INT,
            "security": {"enum": ["tls", "starttls", "none"]},
            "username": STRING,
            "folder": STRING,
        }
    ),
    "Mailbox": _object(
        {
            "imap": _ref("ImapServer"),
            "id": STRING,
            "provider": {"enum": list(PROVIDERS)},
            "address": STRING,
            "status": {"enum": list(MailboxStatus)},
            "allowed_senders": {"type": "array", "items": STRING},
            "poll_interval_seconds": {"type": "integer", "minimum": poll_interval.MIN_SECONDS},
            "last_polled_at": _nullable(DATETIME),
            "last_error": _nullable(STRING),
            "counts": _object(
                {"tickets_created": INT, "appended": INT, "skipped": INT, "failed": INT}
            ),
            "push": _object(
                {
                    "state": {"enum": list(PushState)},
                    "expires_at": _nullable(DATETIME),
                    "last_notification_at": _nullable(DATETIME),
                }
            ),
        },
        # "imap": only an IMAP mailbox has it (CONTRACT.md §7).
        required=[
            "id",
            "provider",
            "address",
            "status",
            "allowed_senders",
            "poll_interval_seconds",
            "last_polled_at",
            "last_error",
            "counts",
            "push",
        ],
    ),
    "MailboxList": _object({"items": {"type": "array", "items": _ref("Mailbox")}}),
    "LedgerEntry": _object(
        {
            "id": STRING,
            "provider_message_id": STRING,
            "from": _nullable(STRING),
            "subject": _nullable(STRING),
            "received_at": _nullable(DATETIME),
            "outcome": {"enum": list(Outcome)},
            "reason": _nullable(STRING),
            "skip_reason": _nullable({"enum": list(SkipReason)}),
            "ticket_id": _nullable(STRING),
        }
    ),
    "LedgerPage": _object(
        {
            "items": {"type": "array", "items": _ref("LedgerEntry")},
            "next_cursor": _nullable(STRING),
        },
        required=["items"],
    ),
    "AuthorizationUrl": _object({"authorization_url": {"type": "string", "format": "uri"}}),
    "EscalationSetting": _object(
        {
            "mode": {"enum": ["ticket", "email", "phone", "live_chat"]},
            "email": STRING,
            "phone": STRING,
            "live_chat_url": STRING,
        },
        required=["mode"],
    ),
    "Agent": _object(
        {
            "id": STRING,
            "name": STRING,
            "public_key": STRING,
            "escalation": _ref("EscalationSetting"),
        },
        required=["escalation"],
    ),
    "Embed": _object({"snippet": STRING, "iframe": STRING}),
    "FormCreated": _object({"ticket_number": INT}),
    "FormPending": _object({"reference": STRING}),
    "FormStatusPending": _object(
        {"reference": STRING, "status": {"const": "pending"}},
    ),
    "EscalationAction": {
        "oneOf": [
            _object({"action": {"const": "ticket"}, "ticket_number": INT}),
            _object({"action": {"const": "email"}, "email": STRING}),
            _object({"action": {"const": "phone"}, "phone": STRING}),
            _object({"action": {"const": "live_chat"}, "url": STRING}),
        ]
    },
    "EscalationPending": _object(
        {"action": {"const": "ticket"}, "ticket_number": {"type": "null"}, "reference": STRING}
    ),
    "Health": _object(
        {
            "status": {"enum": ["ok", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": STRING},
        },
        required=["status"],
    ),
    # CONTRACT.md §6; docs/events.md has each type's `data`.
    "Event": _object(
        {
            "id": {"type": "string", "pattern": "^evt_"},
            "type": {"enum": list(EVENT_TYPES)},
            "created_at": DATETIME,
            "data": {"type": "object"},
        }
    ),
    "EventPage": _object(
        {"items": {"type": "array", "items": _ref("Event")}, "next_cursor": STRING}
    ),
    "WebhookEndpoint": _object(
        {
            "id": STRING,
            "url": STRING,
            "description": _nullable(STRING),
            "events": {"type": "array", "items": {"enum": list(EVENT_TYPES)}},
            "all_events": {"type": "boolean"},
            "enabled": {"type": "boolean"},
            "disabled_reason": _nullable({"enum": list(DisabledReason)}),
            "disabled_at": _nullable(DATETIME),
            "warning": _nullable(STRING),
            "failing_since": _nullable(DATETIME),
            "created_at": DATETIME,
            "updated_at": DATETIME,
        }
    ),
    "WebhookEndpointCreated": {
        "allOf": [_ref("WebhookEndpoint"), _object({"secret": STRING})],
    },
    "WebhookEndpointList": _object({"items": {"type": "array", "items": _ref("WebhookEndpoint")}}),
    "WebhookSecret": _object({"secret": {"type": "string", "pattern": "^whsec_"}}),
    "WebhookDelivery": _object(
        {
            "id": STRING,
            "event_id": STRING,
            "type": {"enum": list(EVENT_TYPES)},
            "status": {"enum": list(DeliveryStatus)},
            "attempts": INT,
            "last_status_code": _nullable(INT),
            "last_error": _nullable(STRING),
            "next_attempt_at": _nullable(DATETIME),
            "last_attempt_at": _nullable(DATETIME),
            "created_at": DATETIME,
        }
    ),
    "WebhookDeliveryList": _object({"items": {"type": "array", "items": _ref("WebhookDelivery")}}),
}

REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "FormSubmission": FormSubmission,
    "Escalation": Escalation,
    "BehaviourUpdate": BehaviourUpdate,
    "TicketPatch": TicketPatch,
    "ConnectRequest": ConnectRequest,
    "PasswordConnectRequest": PasswordConnectRequest,
    "PasswordReconnectRequest": PasswordReconnectRequest,
    "MailboxPatch": MailboxPatch,
    "WebhookCreate": WebhookCreate,
    "WebhookPatch": WebhookPatch,
}

ERROR_TEXT = {
    400: "Bad request: the body is not JSON, the cursor is not one this API gave out, ...",
    401: "Missing or wrong admin token.",
    404: "No such resource (or not this workspace's).",
    405: "The path exists but not with this method.",
    409: "The resource's state does not allow it.",
    413: "The request body is too large.",
    422: "The input does not validate; `fields` names each bad field when there are several.",
    429: "Rate limited; see `Retry-After`.",
    503: "A backing service is not reachable or not configured; see `Retry-After`.",
}


def _request_schemas() -> dict[str, Schema]:
    """The pydantic models' JSON schemas, with their nested models hoisted into components."""
    out: dict[str, Schema] = {}
    for name, model in REQUEST_MODELS.items():
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="validation"
        )
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    # Request and response components share one namespace.
    assert not set(out) & set(RESPONSE_SCHEMAS), set(out) & set(RESPONSE_SCHEMAS)
    return out


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    responses: dict[int, Schema],
    errors: tuple[int, ...],
    *,
    public: bool = False,
    body: str | None = None,
    parameters: list[Schema] | None = None,
    tags: tuple[str, ...] = (),
) -> Schema:
    codes = set(errors) | ({401} if not public else set())
    if body is not None:
        codes |= {400, 413, 422}
    operation: Schema = {
        "summary": summary,
        "operationId": "",
        "tags": list(tags),
        "responses": {
            **{str(status): answer for status, answer in responses.items()},
            **{
                str(status): {"$ref": f"#/components/responses/Error{status}"}
                for status in sorted(codes)
            },
        },
    }
    if public:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _either_body(operation: Schema, names: list[str], *, required: bool) -> Schema:
    """A body that is one of several request models (OAuth or password providers)."""
    schema = _ref(names[0]) if len(names) == 1 else {"oneOf": [_ref(n) for n in names]}
    operation["requestBody"] = {"required": required, "content": {JSON: {"schema": schema}}}
    return operation


def _path_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


PUBLIC_KEY = _path_param("public_key", "The agent's public key (from `GET /api/v1/agent`).")
TICKET_ID = _path_param("ticket_id", "A ticket's id.")
MAILBOX_ID = _path_param("mailbox_id", "A mailbox's id.")
ENDPOINT_ID = _path_param("endpoint_id", "A webhook endpoint's id.")
DELIVERY_ID = _path_param("delivery_id", "A delivery's id.")


def _event_paths() -> dict[str, Schema]:
    endpoint = _json(_ref("WebhookEndpoint"), "The endpoint.")
    return {
        "/api/v1/events": {
            "get": _op(
                "The workspace's events, oldest first, from a cursor",
                {200: _json(_ref("EventPage"), "Keep `next_cursor` and ask again later.")},
                (400, 422),
                parameters=[
                    _query("after", STRING, "`next_cursor` of the previous page, or an event id."),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size."
                    ),
                ],
                tags=("events",),
            )
        },
        "/api/v1/events/stream": {
            "get": _op(
                "The same events as Server-Sent Events, live; resumable with Last-Event-ID",
                {200: {"description": "`text/event-stream`: one event:/id:/data: per Event."}},
                (400,),
                parameters=[_query("after", STRING, "Start after this cursor or event id.")],
                tags=("events",),
            )
        },
        "/api/v1/webhooks": {
            "get": _op(
                "Every webhook endpoint",
                {200: _json(_ref("WebhookEndpointList"), "The endpoints.")},
                (),
                tags=("webhooks",),
            ),
            "post": _op(
                "Add a webhook endpoint; its signing secret is answered this once",
                {201: _json(_ref("WebhookEndpointCreated"), "The endpoint and its secret.")},
                (503,),
                body="WebhookCreate",
                tags=("webhooks",),
            ),
        },
        "/api/v1/webhooks/{endpoint_id}": {
            "parameters": [ENDPOINT_ID],
            "get": _op("A webhook endpoint", {200: endpoint}, (404,), tags=("webhooks",)),
            "patch": _op(
                "Change the URL or the event types, or switch it off or on",
                {200: endpoint},
                (404,),
                body="WebhookPatch",
                tags=("webhooks",),
            ),
            "delete": _op(
                "Delete the endpoint and its deliveries",
                {204: {"description": "Deleted."}},
                (404,),
                tags=("webhooks",),
            ),
        },
        "/api/v1/webhooks/{endpoint_id}/rotate-secret": {
            "parameters": [ENDPOINT_ID],
            "post": _op(
                "A new signing secret; the old one signs beside it for 24 h",
                {200: _json(_ref("WebhookSecret"), "The new secret, shown this once.")},
                (404, 503),
                tags=("webhooks",),
            ),
        },
        "/api/v1/webhooks/{endpoint_id}/deliveries": {
            "parameters": [ENDPOINT_ID],
            "get": _op(
                "The endpoint's deliveries, newest first",
                {200: _json(_ref("WebhookDeliveryList"), "The deliveries.")},
                (404, 422),
                parameters=[
                    _query("status", {"enum": list(DeliveryStatus)}, "Only this status."),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "How many."),
                ],
                tags=("webhooks",),
            ),
        },
        "/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry": {
            "parameters": [ENDPOINT_ID, DELIVERY_ID],
            "post": _op(
                "Deliver again now",
                {202: _json(_ref("WebhookDelivery"), "Due now.")},
                (404, 409),
                tags=("webhooks",),
            ),
        },
    }


def _paths() -> dict[str, Schema]:
    mailbox = _json(_ref("Mailbox"), "The mailbox.")
    return {
        "/healthz": {
            "get": _op(
                "Liveness: 200 once the database and Temporal answer",
                {
                    200: _json(_ref("Health"), "Healthy."),
                    503: _json(_ref("Health"), "The database or Temporal does not answer."),
                },
                (),
                public=True,
                tags=("health",),
            )
        },
        "/api/v1/openapi.json": {
            "get": _op(
                "This description",
                {200: _json({"type": "object"}, "The OpenAPI 3.1 document.")},
                (),
                public=True,
                tags=("meta",),
            )
        },
        "/api/v1/tickets": {
            "get": _op(
                "One page of tickets, newest first",
                {200: _json(_ref("TicketPage"), "A page; follow `next_cursor` for the next.")},
                (400, 422),
                parameters=[
                    _query("source", {"enum": list(TicketSource)}, "Only this source."),
                    _query("status", {"enum": list(TicketStatus)}, "Only this status."),
                    _query("q", STRING, "Searches title, description and message text."),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size."
                    ),
                    _query("cursor", STRING, "`next_cursor` of the previous page."),
                ],
                tags=("tickets",),
            )
        },
        "/api/v1/tickets/{ticket_id}": {
            "parameters": [TICKET_ID],
            "get": _op(
                "A ticket with its messages, oldest first",
                {200: _json(_ref("TicketWithMessages"), "The ticket.")},
                (404,),
                tags=("tickets",),
            ),
            "patch": _op(
                "Change a ticket's status",
                {200: _json(_ref("Ticket"), "The updated ticket.")},
                (404,),
                body="TicketPatch",
                tags=("tickets",),
            ),
        },
        "/api/v1/public/{public_key}/form": {
            "parameters": [PUBLIC_KEY],
            "post": _op(
                "Submit the support form (public; CORS)",
                {
                    201: _json(_ref("FormCreated"), "The ticket was made."),
                    202: _json(_ref("FormPending"), "Not made within 5 s; poll the reference."),
                },
                (404, 429),
                public=True,
                body="FormSubmission",
                tags=("public",),
            ),
        },
        "/api/v1/public/{public_key}/form/{reference}": {
            "parameters": [
                PUBLIC_KEY,
                _path_param("reference", "The `reference` of a 202 form answer."),
            ],
            "get": _op(
                "What became of a form submission answered with 202 (public)",
                {
                    200: _json(_ref("FormCreated"), "The ticket was made."),
                    202: _json(_ref("FormStatusPending"), "Still pending."),
                },
                (404, 503),
                public=True,
                tags=("public",),
            ),
        },
        "/api/v1/public/{public_key}/escalations": {
            "parameters": [PUBLIC_KEY],
            "post": _op(
                "The widget escalates a conversation (public; CORS)",
                {
                    200: _json(_ref("EscalationAction"), "What the widget must do."),
                    202: _json(_ref("EscalationPending"), "The ticket is not made yet."),
                },
                (404, 429),
                public=True,
                body="Escalation",
                tags=("public",),
            ),
        },
        "/api/v1/forms/embed": {
            "get": _op(
                "The embed code of the admin's form",
                {200: _json(_ref("Embed"), "Snippet and iframe.")},
                (),
                tags=("agent",),
            )
        },
        "/api/v1/agent": {
            "get": _op(
                "The admin's agent and its escalation behaviour",
                {200: _json(_ref("Agent"), "The agent.")},
                (),
                tags=("agent",),
            )
        },
        "/api/v1/agent/behavior": {
            "put": _op(
                "Set what an escalation does",
                {200: _json(_ref("Agent"), "The agent.")},
                (),
                body="BehaviourUpdate",
                tags=("agent",),
            )
        },
        "/api/v1/mailboxes": {
            "get": _op(
                "Every connected mailbox",
                {200: _json(_ref("MailboxList"), "The mailboxes.")},
                (),
                tags=("mailboxes",),
            ),
            "post": _either_body(
                _op(
                    "Connect a mailbox: Gmail or Outlook answer their consent URL; IMAP tests "
                    "the login and folder first and answers the Mailbox (or 422 with the code "
                    "of what failed: imap_auth_failed, imap_unreachable, imap_tls_failed, "
                    "imap_folder_missing, imap_plaintext_refused)",
                    {
                        201: _json(
                            {"oneOf": [_ref("AuthorizationUrl"), _ref("Mailbox")]},
                            "OAuth: send the browser there. IMAP: the connected mailbox.",
                        )
                    },
                    (503,),
                    body="ConnectRequest",
                    tags=("mailboxes",),
                ),
                ["ConnectRequest", "PasswordConnectRequest"],
                required=True,
            ),
        },
        "/api/v1/mailboxes/{mailbox_id}": {
            "parameters": [MAILBOX_ID],
            "get": _op("A mailbox", {200: mailbox}, (404,), tags=("mailboxes",)),
            "patch": _op(
                "Change allowed senders or the poll interval (no restart needed)",
                {200: mailbox},
                (404, 503),
                body="MailboxPatch",
                tags=("mailboxes",),
            ),
            "delete": _op(
                "Disconnect: the workflow ends, the tickets stay",
                {204: {"description": "Disconnected."}},
                (404, 503),
                tags=("mailboxes",),
            ),
        },
        "/api/v1/mailboxes/{mailbox_id}/reconnect": {
            "parameters": [MAILBOX_ID],
            "post": _either_body(
                _op(
                    "Reconnect, keeping every setting: OAuth answers a consent URL; IMAP takes "
                    "the new password, tests it as a connect does and answers the Mailbox",
                    {
                        200: _json(
                            {"oneOf": [_ref("AuthorizationUrl"), _ref("Mailbox")]},
                            "OAuth: send the browser there. IMAP: the reconnected mailbox.",
                        )
                    },
                    (404, 409, 503),
                    body="PasswordReconnectRequest",
                    tags=("mailboxes",),
                ),
                ["PasswordReconnectRequest"],
                required=False,
            ),
        },
        "/api/v1/mailboxes/{mailbox_id}/poll": {
            "parameters": [MAILBOX_ID],
            "post": _op(
                "Poll now instead of at the end of the interval",
                {202: _json(_object({"status": STRING}, required=[]), "Polling.")},
                (404, 409, 503),
                tags=("mailboxes",),
            ),
        },
        "/api/v1/mailboxes/{mailbox_id}/messages": {
            "parameters": [MAILBOX_ID],
            "get": _op(
                "The mailbox's inbound ledger, newest first",
                {200: _json(_ref("LedgerPage"), "A page of the ledger.")},
                (400, 404, 422),
                parameters=[
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size."
                    ),
                    _query("cursor", STRING, "`next_cursor` of the previous page."),
                ],
                tags=("mailboxes",),
            ),
        },
        **_event_paths(),
    }


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}").replace(".", "_") for w in path.split("/") if w and w != "api"]
    words = [w for w in words if w != "v1"]
    return "_".join([method, *words])


@cache
def _document() -> Schema:
    paths = _paths()
    for path, item in paths.items():
        for method, operation in item.items():
            if method != "parameters":
                operation["operationId"] = _operation_id(method, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DeskClone Sources",
            "version": "1",
            "description": (
                "Email, the support form and widget escalations become tickets. Every error is "
                '`{"error": {"code": "snake_case", "message": "..."}}` with the right status.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The workspace's admin token.",
                }
            },
            "schemas": {**_request_schemas(), **RESPONSE_SCHEMAS},
            "responses": {
                f"Error{status}": _json(_ref("Error"), text) for status, text in ERROR_TEXT.items()
            },
        },
    }


def openapi_document() -> Schema:
    """A fresh copy of the document (built once): callers may change it freely."""
    return copy.deepcopy(_document())
