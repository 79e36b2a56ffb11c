"""Graph change notifications: subscriptions with the validation handshake, notifications,
renewal, lifecycle events and silent expiry, with MSAL tokens and httpx as the client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.microsoft_accounts import account_ids
from emulator.server import RunningEmulator
from tests.emulator.push_support import (
    Receiver,
    assert_nothing_sent,
    push_counts,
    push_log,
    running_receiver,
    wait_until_idle,
)
from tests.emulator.support import deliver, make_message
from tests.emulator.test_microsoft_identity import OLIVE, MsGrant, connect_outlook

SUBSCRIPTIONS = "/v1.0/subscriptions"
INBOX = "me/mailFolders('inbox')/messages"
CLIENT_STATE = "s3cret-client-state"


def in_minutes(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat()


class Graph:
    """httpx on the emulator with Olive's bearer token."""

    def __init__(self, client: httpx.Client, grant: MsGrant) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {grant.access_token}"}

    def request(self, method: str, url: str, body: Any = None) -> httpx.Response:
        return self.client.request(method, url, json=body, headers=self.headers)

    def subscribe(self, receiver: Receiver, **overrides: Any) -> httpx.Response:
        body = {
            "changeType": "created",
            "notificationUrl": receiver.url("/push/outlook"),
            "lifecycleNotificationUrl": receiver.url("/push/outlook/lifecycle"),
            "resource": INBOX,
            "expirationDateTime": in_minutes(60),
            "clientState": CLIENT_STATE,
            **overrides,
        }
        return self.request("POST", SUBSCRIPTIONS, {k: v for k, v in body.items() if v})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def graph(emulator: RunningEmulator, control: httpx.Client) -> Graph:
    return Graph(control, connect_outlook(emulator, control))


@pytest.fixture
def subscription(graph: Graph, receiver: Receiver) -> dict[str, Any]:
    created = graph.subscribe(receiver)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_creating_validates_both_urls_then_answers_the_subscription(
    graph: Graph, receiver: Receiver, control: httpx.Client
) -> None:
    expires = in_minutes(120)
    created = graph.subscribe(receiver, expirationDateTime=expires)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resource"] == INBOX and body["changeType"] == "created"
    assert body["clientState"] == CLIENT_STATE
    assert body["notificationUrl"] == receiver.url("/push/outlook")
    assert body["lifecycleNotificationUrl"] == receiver.url("/push/outlook/lifecycle")
    assert dt.datetime.fromisoformat(body["expirationDateTime"]) == pytest.approx(
        dt.datetime.fromisoformat(expires), abs=dt.timedelta(milliseconds=1)
    )
    handshakes = [r for r in receiver.received if "validationToken" in r.query]
    assert [r.path for r in handshakes] == ["/push/outlook", "/push/outlook/lifecycle"]
    assert all(r.headers["content-type"].startswith("text/plain") for r in handshakes)
    # Graph's tokens have spaces and colons: only a URL-decoding endpoint echoes them right.
    assert handshakes[0].query["validationToken"].startswith("Validation: ")
    held = control.get(f"/_emulator/mailboxes/{OLIVE}/push").json()
    assert held == {
        "kind": "subscription",
        "id": body["id"],
        "expires_at": held["expires_at"],
        "notification_url": receiver.url("/push/outlook"),
    }
    assert graph.request("GET", f"{SUBSCRIPTIONS}/{body['id']}").json()["id"] == body["id"]
    assert [s["id"] for s in graph.request("GET", SUBSCRIPTIONS).json()["value"]] == [body["id"]]


@pytest.mark.parametrize(("validation", "message"), [
    ("wrong", "Response must exactly match validationToken"),
    (403, "HTTP status code is 'Forbidden'"),
])  # fmt: skip
def test_a_failed_handshake_refuses_the_subscription(
    graph: Graph, receiver: Receiver, control: httpx.Client, validation: str | int, message: str
) -> None:
    receiver.validation = validation

    refused = graph.subscribe(receiver)

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "ValidationError" and message in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert control.get(f"/_emulator/mailboxes/{OLIVE}/push").json()["kind"] is None
    assert push_counts(control) == {"outlook validation failed": 1}


def test_an_unreachable_endpoint_refuses_the_subscription(graph: Graph) -> None:
    with running_receiver() as gone:
        url = gone.url("/push/outlook")
    refused = graph.request(
        "POST",
        SUBSCRIPTIONS,
        {
            "changeType": "created",
            "notificationUrl": url,
            "resource": INBOX,
            "expirationDateTime": in_minutes(30),
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ValidationError"


def test_a_lifetime_over_10080_minutes_is_refused(graph: Graph, receiver: Receiver) -> None:
    refused = graph.subscribe(receiver, expirationDateTime=in_minutes(10081))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ExtensionError"
    assert refused.json()["error"]["message"] == (
        "Subscription expiration can only be 10080 minutes in the future."
    )
    assert receiver.received == []  # refused before any handshake
    assert graph.subscribe(receiver, expirationDateTime=in_minutes(10079)).status_code == 201


def test_new_inbox_mail_is_notified_with_the_client_state(
    emulator: RunningEmulator,
    graph: Graph,
    receiver: Receiver,
    control: httpx.Client,
    subscription: dict[str, Any],
) -> None:
    delivered = deliver(control, make_message(to=OLIVE), OLIVE)

    [push] = receiver.wait_for("/push/outlook", 1)
    [item] = push.json()["value"]
    oid, tid = account_ids(emulator.state.mailboxes[OLIVE])
    resource = f"Users/{oid}/Messages/{delivered['id']}"
    assert item == {
        "subscriptionId": subscription["id"],
        "subscriptionExpirationDateTime": item["subscriptionExpirationDateTime"],
        "changeType": "created",
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": resource,
            "@odata.etag": item["resourceData"]["@odata.etag"],
            "id": delivered["id"],
        },
        "clientState": CLIENT_STATE,
        "tenantId": tid,
    }
    assert push.headers["content-type"].startswith("application/json")
    # The id in the notification is the one Graph serves the message under.
    fetched = graph.request("GET", f"/v1.0/me/messages/{delivered['id']}")
    assert item["resourceData"]["@odata.etag"] == fetched.json()["@odata.etag"]

    deliver(control, make_message(subject="Sent", to=OLIVE), OLIVE, folder="sent")
    wait_until_idle(emulator)
    assert len(receiver.on("/push/outlook")) == 1  # sent mail is not in the inbox


def test_a_refused_notification_is_retried(
    emulator: RunningEmulator, receiver: Receiver, control: httpx.Client, subscription: Any
) -> None:
    receiver.answer("/push/outlook", 500, 429)
    deliver(control, make_message(to=OLIVE), OLIVE)

    pushes = receiver.wait_for("/push/outlook", 3)
    assert len({p.body for p in pushes}) == 1
    wait_until_idle(emulator)
    assert push_counts(control) == {
        "outlook notification delivered": 1,
        "outlook notification retried": 2,
        "outlook validation delivered": 2,
    }


def test_renew_reauthorize_and_delete(
    emulator: RunningEmulator,
    graph: Graph,
    receiver: Receiver,
    control: httpx.Client,
    subscription: dict[str, Any],
) -> None:
    one = f"{SUBSCRIPTIONS}/{subscription['id']}"
    later = in_minutes(3000)
    renewed = graph.request("PATCH", one, {"expirationDateTime": later})
    assert renewed.status_code == 200
    assert dt.datetime.fromisoformat(renewed.json()["expirationDateTime"]) == pytest.approx(
        dt.datetime.fromisoformat(later), abs=dt.timedelta(milliseconds=1)
    )
    held = control.get(f"/_emulator/mailboxes/{OLIVE}/push").json()
    assert dt.datetime.fromisoformat(held["expires_at"]) == pytest.approx(
        dt.datetime.fromisoformat(later), abs=dt.timedelta(milliseconds=1)
    )
    too_long = graph.request("PATCH", one, {"expirationDateTime": in_minutes(20000)})
    assert too_long.status_code == 400
    assert graph.request("PATCH", one, {}).status_code == 400

    assert graph.request("POST", f"{one}/reauthorize").status_code == 204

    deleted = graph.request("DELETE", one)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = graph.request("GET", one)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ResourceNotFound"
    assert graph.request("PATCH", one, {"expirationDateTime": later}).status_code == 404
    deliver(control, make_message(to=OLIVE), OLIVE)
    assert_nothing_sent(emulator, control)


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved", "missed"])
def test_lifecycle_events_reach_the_lifecycle_url(
    graph: Graph,
    receiver: Receiver,
    control: httpx.Client,
    subscription: dict[str, Any],
    event: str,
) -> None:
    sent = control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": event})

    assert sent.status_code == 202
    assert sent.json() == {"event": event, "subscriptions": [subscription["id"]]}
    [push] = receiver.wait_for("/push/outlook/lifecycle", 1)
    [item] = push.json()["value"]
    assert item["lifecycleEvent"] == event
    assert item["subscriptionId"] == subscription["id"]
    assert item["clientState"] == CLIENT_STATE
    assert {"subscriptionExpirationDateTime", "tenantId"} <= set(item)
    still_there = graph.request("GET", f"{SUBSCRIPTIONS}/{subscription['id']}").status_code
    assert still_there == (404 if event == "subscriptionRemoved" else 200)


def test_lifecycle_needs_a_subscription(control: httpx.Client, graph: Graph) -> None:
    refused = control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": "missed"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_subscription"
    bad = control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": "gone"})
    assert bad.status_code == 422


def test_an_expired_subscription_is_deleted_silently(
    emulator: RunningEmulator,
    graph: Graph,
    control: httpx.Client,
    subscription: dict[str, Any],
) -> None:
    assert control.post(f"/_emulator/mailboxes/{OLIVE}/push/expire").json() == {"expired": 1}

    deliver(control, make_message(to=OLIVE), OLIVE)

    assert_nothing_sent(emulator, control)
    assert [e["kind"] for e in push_log(control)] == ["validation", "validation"]
    assert graph.request("GET", f"{SUBSCRIPTIONS}/{subscription['id']}").status_code == 404
    assert control.get(f"/_emulator/mailboxes/{OLIVE}/push").json()["kind"] is None


def test_subscriptions_need_a_mail_token(
    control: httpx.Client, receiver: Receiver, graph: Graph
) -> None:
    anonymous = control.post(SUBSCRIPTIONS, json={})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    control.post(f"/_emulator/mailboxes/{OLIVE}/revoke")
    assert graph.subscribe(receiver).status_code == 401
    assert receiver.received == []
