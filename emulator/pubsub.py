"""A Cloud Pub/Sub stand-in: the REST subset Gmail push needs, under `/v1/projects/...`.

Served (REST v1 shapes, no auth: anyone may call them, unlike the real service):

- `PUT /v1/projects/{project}/topics/{topic}` `{"labels"?}` -> 200 topic; 409 if it exists
- `GET` / `DELETE /v1/projects/{project}/topics/{topic}` -> 200 topic / 200 `{}`
- `POST /v1/projects/{project}/topics/{topic}:publish` `{"messages": [{"data", "attributes"?}]}`
  -> 200 `{"messageIds"}`: pushed to every push subscription of the topic, as Gmail's are
- `GET /v1/projects/{project}/topics/{topic}/subscriptions` -> `{"subscriptions": [names]}`
- `PUT /v1/projects/{project}/subscriptions/{subscription}` `{"topic", "pushConfig":
  {"pushEndpoint", "oidcToken": {"serviceAccountEmail", "audience"?}, "attributes"?},
  "ackDeadlineSeconds"?}` -> 200 subscription; 404 if the topic does not exist, 409 if the
  subscription does
- `GET` / `DELETE /v1/projects/{project}/subscriptions/{subscription}` -> 200 subscription / `{}`

Errors are Google's `{"error": {"code", "message", "status"}}` (`NOT_FOUND` "Resource not
found (resource=t).", `ALREADY_EXISTS` "Resource already exists in the project
(resource=t).", `INVALID_ARGUMENT`). A subscription without a `pushEndpoint` (a pull
subscription) is kept but never delivered: the emulator serves no pull. Publish rights
(IAM) are not modelled: Gmail may publish to any topic that exists.

Each push POSTs `{"message": {"attributes", "data", "messageId", "message_id",
"publishTime", "publish_time"}, "subscription"}` (Pub/Sub sends both spellings) with, when
the subscription has an `oidcToken`, `Authorization: Bearer <ID token>` signed by the
emulator's key (`emulator.push_signing`), `aud` = the audience or else the endpoint URL.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.state import EmulatorState

PREFIX = "/v1/projects/{project}"
#: Pub/Sub's resource-id rule: a letter, then 2 to 254 of these.
_RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
#: Looser than Google's project ids (6 to 30 of a-z, 0-9, -): any short id will do here.
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.:]{0,99}$")
TOPIC_NAME = re.compile(r"^projects/(?P<project>[^/]+)/topics/(?P<topic>[^/]+)$")
DEFAULT_ACK_DEADLINE = 10
#: Pub/Sub's own defaults, echoed on the resources it answers.
RETENTION = "604800s"
EXPIRATION_TTL = "2678400s"


class PubSubError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        google_status = {
            400: "INVALID_ARGUMENT",
            404: "NOT_FOUND",
            409: "ALREADY_EXISTS",
        }.get(self.status, HTTPStatus(self.status).name)
        body = {"error": {"code": self.status, "message": self.message, "status": google_status}}
        return JSONResponse(body, status_code=self.status)


def not_found(resource: str) -> PubSubError:
    return PubSubError(404, f"Resource not found (resource={resource}).")


@dataclass(frozen=True)
class PushTarget:
    endpoint: str
    #: (service account email, audience) when pushes carry an OIDC token.
    oidc: tuple[str, str] | None
    #: Endpoint settings such as `x-goog-version`, echoed back; not message attributes.
    attributes: dict[str, str]


@dataclass
class Subscription:
    name: str
    topic: str
    push: PushTarget | None
    ack_deadline: int
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        push_config: dict[str, Any] = {}
        if self.push is not None:
            push_config["pushEndpoint"] = self.push.endpoint
            if self.push.attributes:
                push_config["attributes"] = self.push.attributes
            if self.push.oidc is not None:
                email, audience = self.push.oidc
                push_config["oidcToken"] = {"serviceAccountEmail": email, "audience": audience}
        body: dict[str, Any] = {
            "name": self.name,
            "topic": self.topic,
            "pushConfig": push_config,
            "ackDeadlineSeconds": self.ack_deadline,
            "messageRetentionDuration": RETENTION,
            "expirationPolicy": {"ttl": EXPIRATION_TTL},
            "state": "ACTIVE",
        }
        if self.labels:
            body["labels"] = self.labels
        return body


@dataclass(frozen=True)
class Published:
    """One message published to a topic, as each push subscription will receive it."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: str

    def envelope(self, subscription: str) -> dict[str, Any]:
        data = base64.b64encode(self.data).decode("ascii")
        message = {
            "attributes": self.attributes,
            "data": data,
            "messageId": self.message_id,
            "message_id": self.message_id,
            "publishTime": self.publish_time,
            "publish_time": self.publish_time,
        }
        return {"message": message, "subscription": subscription}


class PubSub:
    """Topics and subscriptions; `publish` returns who should get what."""

    def __init__(self) -> None:
        self.topics: dict[str, dict[str, str]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._last_message_id = 0

    def reset(self) -> None:
        self.topics.clear()
        self.subscriptions.clear()

    def push_subscriptions(self, topic: str) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.topic == topic and s.push]

    def publish(
        self, topic: str, data: bytes, attributes: dict[str, str], now: float
    ) -> tuple[Published, list[Subscription]]:
        # Pub/Sub message ids are decimal and grow; 16 digits like the real ones.
        self._last_message_id = max(self._last_message_id + 1, int(now * 1_000_000))
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        published = Published(
            message_id=str(self._last_message_id),
            data=data,
            attributes=dict(attributes),
            publish_time=when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        )
        return published, self.push_subscriptions(topic)


# -- request parsing ---------------------------------------------------------------------


def _name(request: Request, kind: str) -> str:
    project = request.path_params["project"]
    resource = request.path_params[kind]
    if not _PROJECT_ID.match(project) or not _RESOURCE_ID.match(resource):
        raise PubSubError(
            400, f"Invalid [{kind}s] name: (name=projects/{project}/{kind}s/{resource})"
        )
    return f"projects/{project}/{kind}s/{resource}"


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PubSubError(400, f"Invalid JSON payload received. {error}") from error
    if not isinstance(body, dict):
        raise PubSubError(400, "Invalid JSON payload received. Expected an object.")
    return body


def _labels(body: dict[str, Any]) -> dict[str, str]:
    labels = body.get("labels", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise PubSubError(400, "Invalid value at 'labels': expected a map of strings.")
    return dict(labels)


def _push_target(body: dict[str, Any]) -> PushTarget | None:
    config = body.get("pushConfig") or {}
    if not isinstance(config, dict):
        raise PubSubError(400, "Invalid value at 'push_config'.")
    endpoint = config.get("pushEndpoint")
    if not endpoint:
        return None
    target = urlsplit(str(endpoint))
    if target.scheme not in ("http", "https") or not target.netloc:
        # Pub/Sub wants https; the emulator also takes http, for a local API in dev.
        raise PubSubError(400, f"Invalid push endpoint given (endpoint={endpoint}).")
    oidc = config.get("oidcToken")
    token: tuple[str, str] | None = None
    if oidc is not None:
        email = oidc.get("serviceAccountEmail") if isinstance(oidc, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise PubSubError(
                400, "Invalid value at 'push_config.oidc_token.service_account_email'."
            )
        # Without an audience, Pub/Sub uses the endpoint URL as the token's audience.
        token = (email, str(oidc.get("audience") or endpoint))
    attributes = config.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise PubSubError(400, "Invalid value at 'push_config.attributes'.")
    return PushTarget(str(endpoint), token, {str(k): str(v) for k, v in attributes.items()})


def _messages(body: dict[str, Any]) -> list[tuple[bytes, dict[str, str]]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PubSubError(400, "The request contains no messages.")
    found = []
    for message in messages:
        if not isinstance(message, dict):
            raise PubSubError(400, "Invalid value at 'messages'.")
        try:
            data = base64.b64decode(str(message.get("data", "")), validate=True)
        except binascii.Error as error:
            raise PubSubError(400, "Invalid value at 'messages[0].data' (TYPE_BYTES).") from error
        attributes = message.get("attributes") or {}
        if not data and not attributes:
            raise PubSubError(400, "A message must have data or attributes.")
        found.append((data, {str(k): str(v) for k, v in dict(attributes).items()}))
    return found


# -- routes ------------------------------------------------------------------------------


def pubsub_routes(state: EmulatorState) -> list[Route]:
    hub = state.push
    pubsub = hub.pubsub

    def counted(
        method: str, path: str, handler: Callable[[Request], Awaitable[dict[str, Any]]]
    ) -> Route:
        key = f"{method} {path}"

        async def endpoint(request: Request) -> Response:
            # Counted like every provider call, but never faulted: Pub/Sub is set-up, not mail.
            state.requests.record(key)
            try:
                return JSONResponse(await handler(request))
            except PubSubError as error:
                return error.response()

        return Route(path, endpoint, methods=[method])

    async def create_topic(request: Request) -> dict[str, Any]:
        name = _name(request, "topic")
        labels = _labels(await _body(request))
        if name in pubsub.topics:
            raise PubSubError(
                409, f"Resource already exists in the project (resource={name.rsplit('/')[-1]})."
            )
        pubsub.topics[name] = labels
        return {"name": name, **({"labels": labels} if labels else {})}

    async def get_topic(request: Request) -> dict[str, Any]:
        name = _name(request, "topic")
        if name not in pubsub.topics:
            raise not_found(name.rsplit("/")[-1])
        labels = pubsub.topics[name]
        return {"name": name, **({"labels": labels} if labels else {})}

    async def delete_topic(request: Request) -> dict[str, Any]:
        name = _name(request, "topic")
        if pubsub.topics.pop(name, None) is None:
            raise not_found(name.rsplit("/")[-1])
        # As in Pub/Sub, the topic's subscriptions stay, detached: their topic reads
        # `_deleted-topic_` and nothing reaches them any more.
        for subscription in pubsub.subscriptions.values():
            if subscription.topic == name:
                subscription.topic = "_deleted-topic_"
        return {}

    async def topic_subscriptions(request: Request) -> dict[str, Any]:
        name = _name(request, "topic")
        if name not in pubsub.topics:
            raise not_found(name.rsplit("/")[-1])
        return {"subscriptions": [s.name for s in pubsub.subscriptions.values() if s.topic == name]}

    async def publish(request: Request) -> dict[str, Any]:
        name = _name(request, "topic")
        if name not in pubsub.topics:
            raise not_found(name.rsplit("/")[-1])
        ids = [
            hub.publish(name, data, attributes, provider=None, mailbox=None)
            for data, attributes in _messages(await _body(request))
        ]
        return {"messageIds": ids}

    async def create_subscription(request: Request) -> dict[str, Any]:
        name = _name(request, "subscription")
        body = await _body(request)
        topic = str(body.get("topic", ""))
        if not TOPIC_NAME.match(topic):
            raise PubSubError(400, f"Invalid [topics] name: (name={topic})")
        if topic not in pubsub.topics:
            raise not_found(topic.rsplit("/")[-1])
        if name in pubsub.subscriptions:
            raise PubSubError(
                409, f"Resource already exists in the project (resource={name.rsplit('/')[-1]})."
            )
        deadline = body.get("ackDeadlineSeconds", DEFAULT_ACK_DEADLINE)
        if isinstance(deadline, bool) or not isinstance(deadline, int) or not 10 <= deadline <= 600:
            raise PubSubError(400, "Invalid ack deadline given: it must be 10 to 600 seconds.")
        subscription = Subscription(name, topic, _push_target(body), deadline, _labels(body))
        pubsub.subscriptions[name] = subscription
        return subscription.to_json()

    async def get_subscription(request: Request) -> dict[str, Any]:
        name = _name(request, "subscription")
        found = pubsub.subscriptions.get(name)
        if found is None:
            raise not_found(name.rsplit("/")[-1])
        return found.to_json()

    async def delete_subscription(request: Request) -> dict[str, Any]:
        name = _name(request, "subscription")
        if pubsub.subscriptions.pop(name, None) is None:
            raise not_found(name.rsplit("/")[-1])
        return {}

    topic = PREFIX + "/topics/{topic}"
    subscription = PREFIX + "/subscriptions/{subscription}"
    return [
        counted("POST", topic + ":publish", publish),
        counted("GET", topic + "/subscriptions", topic_subscriptions),
        counted("PUT", topic, create_topic),
        counted("GET", topic, get_topic),
        counted("DELETE", topic, delete_topic),
        counted("PUT", subscription, create_subscription),
        counted("GET", subscription, get_subscription),
        counted("DELETE", subscription, delete_subscription),
    ]
