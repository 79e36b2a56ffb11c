"""Graph's subscription API under `/v1.0/subscriptions`, with the validation handshake.

- `POST /v1.0/subscriptions` `{"changeType": "created", "notificationUrl",
  "lifecycleNotificationUrl"?, "resource": "me/mailFolders('inbox')/messages",
  "expirationDateTime", "clientState"?}` -> 201 subscription. First Graph validates each
  URL: `POST <url>?validationToken=<token>` (`Content-Type: text/plain`, empty body); the
  endpoint must answer 200, `text/plain`, exactly the URL-decoded token, within 10 s, else
  400 `ValidationError` "Subscription validation request failed. ..." (or `InvalidRequest`
  "Subscription validation request timed out."). The token reads like Graph's own
  ("Validation: Testing client application reachability for subscription Request-Id: <uuid>"),
  spaces and colons included, so an endpoint that forgets to URL-decode fails here too.
  Lifetime at most 10,080 minutes (else 400 `ExtensionError` "Subscription expiration can
  only be 10080 minutes in the future."); `clientState` at most 128 characters.
- `GET /v1.0/subscriptions` -> `{"value": [...]}`, this app's live subscriptions for the user
- `GET /v1.0/subscriptions/{id}` -> 200; `PATCH` `{"expirationDateTime"?, "notificationUrl"?}`
  -> 200 (a new URL is validated first); `DELETE` -> 204;
  `POST /v1.0/subscriptions/{id}/reauthorize` -> 204. Unknown, expired or someone else's:
  404 `ResourceNotFound` "The object was not found."

Delegated Bearer token (the token's mailbox owns the subscription), `Mail.Read` needed;
counted, faulted and answered in Graph's error shape like every Graph call. Graph insists
on https URLs; the emulator also takes http, for the product's local API in dev. Not
served through `$batch`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.api import ApiCall, roll_fault
from emulator.graph_context import (
    GRAPH_PREFIX,
    MAIL_SCOPES,
    GraphError,
    GraphResponse,
    authenticated_mailbox,
    error_response,
    fault_error,
)
from emulator.graph_subscriptions import (
    MAX_LIFETIME_MINUTES,
    RESOURCES,
    GraphSubscription,
    live_subscriptions,
    new_subscription_id,
    normalize_resource,
)
from emulator.microsoft_accounts import PROVIDER, account_ids, base_url, resource_scopes
from emulator.state import EmulatorState, Mailbox
from emulator.tokens import AccessToken

SUBSCRIPTIONS = GRAPH_PREFIX + "/subscriptions"
ONE = SUBSCRIPTIONS + "/{id}"
REAUTHORIZE = ONE + "/reauthorize"
VALIDATION_TIMEOUT_SECONDS = 10.0
MAX_CLIENT_STATE = 128
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)


@dataclass(frozen=True)
class SubscriptionCall:
    state: EmulatorState
    token: AccessToken
    mailbox: Mailbox
    request: Request

    @property
    def base_url(self) -> str:
        return base_url(self.request)

    async def body(self) -> dict[str, Any]:
        try:
            body = json.loads(await self.request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set "
                "and payload is of valid JSON format.",
            ) from error
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        return body

    def own(self, sub_id: str) -> GraphSubscription:
        """The caller's live subscription `sub_id`, or 404."""
        for subscription in live_subscriptions(self.state.push, self.mailbox.address):
            if subscription.id == sub_id and subscription.application_id == self.token.client_id:
                return subscription
        raise GraphError(404, "ResourceNotFound", "The object was not found.")


Handler = Callable[[SubscriptionCall], Awaitable[GraphResponse]]


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise GraphError(
            400, "InvalidRequest", f"{name} is a required property for subscription creation."
        )
    return value.strip()


def _url(value: object, name: str) -> str:
    target = urlsplit(str(value))
    if target.scheme not in ("http", "https") or not target.netloc:
        raise GraphError(400, "InvalidRequest", f"Invalid {name}: '{value}'.")
    return str(value)


def _expiry(value: object, now: float) -> float:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError as error:
        raise GraphError(
            400,
            "BadRequest",
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.",
        ) from error
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    expires = when.timestamp()
    if expires <= now:
        raise GraphError(400, "ExtensionError", "Subscription expiration must be in the future.")
    if expires > now + MAX_LIFETIME_MINUTES * 60:
        raise GraphError(
            400,
            "ExtensionError",
            f"Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future.",
        )
    return expires


def _status_name(status: int) -> str:
    """.NET's name for a status, as Graph's messages print it ('Forbidden', 'NotFound')."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return str(status)


async def validate_endpoint(state: EmulatorState, mailbox: Mailbox, url: str) -> None:
    """Graph's handshake: POST `url?validationToken=...`; raise the 400 Graph answers."""
    token = (
        "Validation: Testing client application reachability for subscription Request-Id: "
        + str(uuid.uuid4())
    )
    target = str(httpx.URL(url).copy_add_param("validationToken", token))
    status: int | None = None
    problem: GraphError | None = None
    try:
        answer = await state.push.pusher.client.post(
            target,
            content=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=VALIDATION_TIMEOUT_SECONDS,
        )
        status = answer.status_code
    except httpx.TimeoutException:
        problem = GraphError(400, "InvalidRequest", "Subscription validation request timed out.")
    except (httpx.HTTPError, httpx.InvalidURL):
        problem = GraphError(400, "ValidationError", VALIDATION_FAILED)
    else:
        media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if status != 200:
            problem = GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. HTTP status code is "
                f"'{_status_name(status)}'. "
                "Notification endpoint must respond with 200 OK to validation request.",
            )
        elif media != "text/plain" or answer.text != token:
            problem = GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Response must exactly match "
                "validationToken query parameter.",
            )
    outcome = "failed" if problem is not None else "delivered"
    state.requests.count_push(PROVIDER, "validation", outcome)
    state.requests.log_push(
        {
            "provider": PROVIDER,
            "kind": "validation",
            "mailbox": mailbox.address,
            "url": url,
            "attempt": 1,
            "status": status,
            "error": problem.message if problem is not None else None,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
    )
    if problem is not None:
        raise problem


# -- handlers --------------------------------------------------------------------------


async def create(call: SubscriptionCall) -> GraphResponse:
    body = await call.body()
    change_type = _required(body, "changeType")
    if not set(change_type.split(",")) <= CHANGE_TYPES:
        raise GraphError(400, "InvalidRequest", f"Invalid changeType '{change_type}'.")
    notification_url = _url(_required(body, "notificationUrl"), "notificationUrl")
    resource = _required(body, "resource")
    if normalize_resource(resource) not in RESOURCES:
        raise GraphError(
            400,
            "InvalidRequest",
            f"Resource '{resource}' is not supported: the emulator serves subscriptions on "
            "me/mailFolders('inbox')/messages and me/messages.",
        )
    expires = _expiry(_required(body, "expirationDateTime"), call.state.clock())
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE
    ):
        raise GraphError(400, "InvalidRequest", "clientState must be at most 128 characters.")
    lifecycle = body.get("lifecycleNotificationUrl")
    lifecycle_url = _url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
    await validate_endpoint(call.state, call.mailbox, notification_url)
    if lifecycle_url is not None:
        await validate_endpoint(call.state, call.mailbox, lifecycle_url)
    oid, _ = account_ids(call.mailbox)
    subscription = GraphSubscription(
        id=new_subscription_id(),
        address=call.mailbox.address,
        application_id=call.token.client_id,
        resource=resource,
        change_type=change_type,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        client_state=client_state,
        expires_at=expires,
        creator_id=oid,
        created_at=call.state.clock(),
    )
    call.state.push.subscriptions[subscription.id] = subscription
    return GraphResponse(201, subscription.to_json(call.base_url))


async def list_all(call: SubscriptionCall) -> GraphResponse:
    mine = [
        s.to_json(call.base_url)
        for s in live_subscriptions(call.state.push, call.mailbox.address)
        if s.application_id == call.token.client_id
    ]
    for item in mine:
        item.pop("@odata.context")
    context = f"{call.base_url}{GRAPH_PREFIX}/$metadata#subscriptions"
    return GraphResponse(200, {"@odata.context": context, "value": mine})


async def get_one(call: SubscriptionCall) -> GraphResponse:
    subscription = call.own(call.request.path_params["id"])
    return GraphResponse(200, subscription.to_json(call.base_url))


async def update(call: SubscriptionCall) -> GraphResponse:
    subscription = call.own(call.request.path_params["id"])
    body = await call.body()
    if "expirationDateTime" not in body and "notificationUrl" not in body:
        raise GraphError(
            400,
            "InvalidRequest",
            "Subscription must contain either the 'expirationDateTime' or 'notificationUrl' "
            "property and its value.",
        )
    expires = subscription.expires_at
    if "expirationDateTime" in body:
        expires = _expiry(body["expirationDateTime"], call.state.clock())
    if "notificationUrl" in body:
        url = _url(body["notificationUrl"], "notificationUrl")
        await validate_endpoint(call.state, call.mailbox, url)
        subscription.notification_url = url
    subscription.expires_at = expires
    return GraphResponse(200, subscription.to_json(call.base_url))


async def delete(call: SubscriptionCall) -> GraphResponse:
    subscription = call.own(call.request.path_params["id"])
    del call.state.push.subscriptions[subscription.id]
    return GraphResponse(204, b"")


async def reauthorize(call: SubscriptionCall) -> GraphResponse:
    call.own(call.request.path_params["id"]).needs_reauthorization = False
    return GraphResponse(204, b"")


# -- routes ----------------------------------------------------------------------------


def graph_subscription_routes(state: EmulatorState) -> list[Route]:
    def counted(method: str, pattern: str, handler: Handler) -> Route:
        key = f"{method} {pattern}"

        async def endpoint(request: Request) -> Response:
            call = ApiCall.from_request(request)
            state.requests.record(key)
            fault = await roll_fault(state, PROVIDER, key)
            try:
                if fault is not None:
                    raise fault_error(fault)
                found = authenticated_mailbox(state, call)
                if isinstance(found, GraphError):
                    raise found
                token, mailbox = found
                state.requests.log(key, account=mailbox.address, peer=call.peer)
                if not resource_scopes(token.scope.split()) & MAIL_SCOPES:
                    raise GraphError(403)
                response = await handler(SubscriptionCall(state, token, mailbox, request))
            except GraphError as error:
                response = error_response(call, error, state.clock())
            response.headers.setdefault("request-id", str(uuid.uuid4()))
            if "client-request-id" in call.headers:
                response.headers["client-request-id"] = call.headers["client-request-id"]
            if response.status == 204:
                return Response(status_code=204, headers=response.headers)
            return response.to_starlette()

        return Route(pattern, endpoint, methods=[method])

    return [
        counted("POST", SUBSCRIPTIONS, create),
        counted("GET", SUBSCRIPTIONS, list_all),
        counted("GET", ONE, get_one),
        counted("PATCH", ONE, update),
        counted("DELETE", ONE, delete),
        counted("POST", REAUTHORIZE, reauthorize),
    ]
