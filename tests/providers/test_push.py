"""Push set-up through the real client libraries against the emulator: Gmail `users.watch` and
`users.stop` (google-api-python-client), Graph subscriptions (httpx with MSAL tokens), and a
local HTTP receiver standing in for our API (it answers Graph's validation handshake).

What the provider holds is read back through the emulator's control API
(`GET /_emulator/mailboxes/{address}/push`), never from the provider under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.settings import Settings
from emulator.server import RunningEmulator
from providers.base import AuthExpired, MailboxProvider, PushRefused, PushTarget
from providers.gmail.client import GmailProvider
from providers.oauth_common import Grant
from providers.outlook.client import OutlookProvider
from tests.emulator.push_support import (
    Receiver,
    assert_nothing_sent,
    push_log,
    running_receiver,
    wait_until_idle,
)
from tests.providers.conftest import OLIVE
from tests.providers.support import ANN, deliver, make_message, request_counts

TOPIC = "projects/deskclone-dev/topics/gmail-push"
PUSH_SUBSCRIPTION = "projects/deskclone-dev/subscriptions/deskclone-api"
PUSHER = "push@deskclone-dev.iam.gserviceaccount.com"
CLIENT_STATE = "per-mailbox-secret-7Qx"
GMAIL_LIFETIME = timedelta(days=7)
# What providers/outlook/push.py asks for: Graph's 10,080-minute limit less an hour.
GRAPH_LIFETIME = timedelta(minutes=10_080 - 60)
WATCH = "POST /gmail/v1/users/{user}/watch"
STOP = "POST /gmail/v1/users/{user}/stop"
SUBSCRIBE = "POST /v1.0/subscriptions"
RENEW = "PATCH /v1.0/subscriptions/{id}"
UNSUBSCRIBE = "DELETE /v1.0/subscriptions/{id}"
PROVIDERS = ["gmail", "outlook"]


@dataclass
class Push:
    """One provider's push world: its connected provider, where it should push, and the
    receiver playing our API."""

    name: str
    address: str
    kind: str  # what the emulator calls the push it holds
    lifetime: timedelta  # how long a new or renewed one lasts
    path: str  # where change notifications land on the receiver
    target: PushTarget
    receiver: Receiver
    control: httpx.Client
    build: Callable[..., MailboxProvider]  # (clock=...) -> a provider with the same grant

    def held(self) -> dict[str, Any]:
        held: dict[str, Any] = self.control.get(f"/_emulator/mailboxes/{self.address}/push").json()
        return held

    def deliver(self, subject: str = "Printer on fire") -> dict[str, Any]:
        return deliver(self.control, make_message(subject=subject, to=self.address), self.address)

    def revoke(self) -> None:
        answer = self.control.post(f"/_emulator/mailboxes/{self.address}/revoke")
        assert answer.is_success, answer.text

    def expire(self) -> None:
        answer = self.control.post(f"/_emulator/mailboxes/{self.address}/push/expire")
        assert answer.status_code == 202 and answer.json() == {"expired": 1}, answer.text


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def make_topic(control: httpx.Client, receiver: Receiver) -> None:
    """The Pub/Sub topic Gmail publishes to, pushing to the receiver with an OIDC token."""
    assert control.put(f"/v1/{TOPIC}").status_code == 200
    body = {
        "topic": TOPIC,
        "pushConfig": {
            "pushEndpoint": receiver.url("/push/gmail"),
            "oidcToken": {"serviceAccountEmail": PUSHER, "audience": receiver.url("/push/gmail")},
        },
    }
    assert control.put(f"/v1/{PUSH_SUBSCRIPTION}", json=body).status_code == 200


def outlook_target(receiver: Receiver) -> PushTarget:
    return PushTarget(
        notification_url=receiver.url("/push/outlook"),
        lifecycle_url=receiver.url("/push/outlook/lifecycle"),
        client_state=CLIENT_STATE,
    )


@pytest.fixture
def gmail_push(
    control: httpx.Client, receiver: Receiver, grant: Grant, settings: Settings
) -> Iterator[Push]:
    make_topic(control, receiver)
    made: list[GmailProvider] = []

    def build(clock: Callable[[], float] = time.time) -> MailboxProvider:
        provider = GmailProvider(settings, grant.credentials, clock=clock)
        made.append(provider)
        return provider

    yield Push(
        name="gmail",
        address=ANN,
        kind="watch",
        lifetime=GMAIL_LIFETIME,
        path="/push/gmail",
        target=PushTarget(gmail_topic=TOPIC),
        receiver=receiver,
        control=control,
        build=build,
    )
    for provider in made:
        provider.close()


@pytest.fixture
def outlook_push(
    control: httpx.Client,
    receiver: Receiver,
    outlook_grant: Grant,
    ms_settings: Settings,
) -> Iterator[Push]:
    made: list[OutlookProvider] = []

    def build(clock: Callable[[], float] = time.time) -> MailboxProvider:
        provider = OutlookProvider(ms_settings, outlook_grant.credentials, clock=clock)
        made.append(provider)
        return provider

    yield Push(
        name="outlook",
        address=OLIVE,
        kind="subscription",
        lifetime=GRAPH_LIFETIME,
        path="/push/outlook",
        target=outlook_target(receiver),
        receiver=receiver,
        control=control,
        build=build,
    )
    for provider in made:
        provider.close()


@pytest.fixture(params=PROVIDERS)
def push(request: pytest.FixtureRequest) -> Push:
    found: Push = request.getfixturevalue(f"{request.param}_push")
    return found


def held_expiry(held: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(held["expires_at"]).replace("Z", "+00:00"))


def assert_about(when: datetime, expected: datetime, slack: timedelta) -> None:
    assert expected - slack <= when <= expected + slack, (when, expected)


# -- both providers -----------------------------------------------------------------------


def test_watch_sets_up_what_the_provider_then_holds(push: Push) -> None:
    before = datetime.now(UTC)

    lease = push.build().watch(push.target, None)

    held = push.held()
    assert held["kind"] == push.kind
    assert held["notification_url"] == push.receiver.url(push.path)
    # The lease says what the provider says: same id, same expiry.
    assert lease.id == held["id"]
    assert (lease.id is None) == (push.name == "gmail")  # a Gmail watch has no id
    assert abs(held_expiry(held) - lease.expires_at) <= timedelta(milliseconds=1)
    assert lease.expires_at.tzinfo is not None
    assert_about(lease.expires_at, before + push.lifetime, timedelta(seconds=30))


def test_new_mail_then_reaches_the_receiver(push: Push) -> None:
    lease = push.build().watch(push.target, None)

    push.deliver()

    [received] = push.receiver.wait_for(push.path, 1)
    if push.name == "gmail":
        assert received.pubsub_data()["emailAddress"] == ANN
        assert received.bearer  # signed by "Google", for our API to verify
    else:
        [item] = received.json()["value"]
        assert item["subscriptionId"] == lease.id
        assert item["clientState"] == CLIENT_STATE  # what we sent, to tell forgeries apart


def test_watching_again_renews_the_same_push(emulator: RunningEmulator, push: Push) -> None:
    # Set up "an hour ago" where the client picks the expiry (Graph, to the second); Gmail
    # picks its own, in milliseconds: let one pass.
    first = push.build(clock=lambda: time.time() - 3600).watch(push.target, None)
    time.sleep(0.01)

    renewed = push.build().watch(push.target, first)

    assert renewed.id == first.id
    assert renewed.expires_at > first.expires_at
    held = push.held()
    assert held["kind"] == push.kind and held["id"] == first.id
    assert abs(held_expiry(held) - renewed.expires_at) <= timedelta(milliseconds=1)
    if push.name == "outlook":
        assert graph_subscriptions(push) == [first.id]
    push.deliver()
    push.receiver.wait_for(push.path, 1)
    wait_until_idle(emulator)
    assert len(push.receiver.on(push.path)) == 1  # one push held, so delivered once


def test_a_push_that_lapsed_is_set_up_again(push: Push) -> None:
    first = push.build().watch(push.target, None)
    push.expire()
    assert push.held()["kind"] is None

    again = push.build().watch(push.target, first)

    held = push.held()
    assert held["kind"] == push.kind and held["id"] == again.id
    if push.name == "outlook":
        assert again.id != first.id  # Graph had forgotten it: a new subscription
    push.deliver()
    assert len(push.receiver.wait_for(push.path, 1)) == 1


def test_unwatch_stops_it(emulator: RunningEmulator, push: Push) -> None:
    provider = push.build()
    lease = provider.watch(push.target, None)

    provider.unwatch(lease)

    assert push.held() == {"kind": None, "id": None, "expires_at": None, "notification_url": None}
    push.deliver()
    assert_nothing_sent(emulator, push.control)


def test_unwatch_of_a_push_already_gone_is_fine(push: Push) -> None:
    provider = push.build()
    lease = provider.watch(push.target, None)
    push.expire()

    provider.unwatch(lease)
    provider.unwatch(lease)  # and again: stopping is idempotent

    assert push.held()["kind"] is None


def test_revoked_access_raises_auth_expired(push: Push) -> None:
    provider = push.build()
    lease = provider.watch(push.target, None)
    push.revoke()

    with pytest.raises(AuthExpired):
        push.build().watch(push.target, lease)
    with pytest.raises(AuthExpired):
        push.build().unwatch(lease)

    assert push.held()["kind"] == push.kind  # nothing changed at the provider


def test_no_target_configured_is_refused_without_asking_the_provider(
    push: Push, control: httpx.Client
) -> None:
    provider = push.build()
    before = request_counts(control)

    with pytest.raises(PushRefused):
        provider.watch(PushTarget(), None)

    after = request_counts(control)
    for route in (WATCH, SUBSCRIBE):
        assert after.get(route, 0) == before.get(route, 0)
    assert push.held()["kind"] is None


# -- Gmail ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "projects/deskclone-dev/topics/nobody-made-this",  # 404: no such topic
        "deskclone-dev/gmail-push",  # 400: not projects/*/topics/*
    ],
)
def test_gmail_refuses_a_topic_it_cannot_publish_to(gmail_push: Push, topic: str) -> None:
    with pytest.raises(PushRefused) as refused:
        gmail_push.build().watch(PushTarget(gmail_topic=topic), None)

    assert "Pub/Sub topic" in str(refused.value)
    assert gmail_push.held()["kind"] is None


def test_gmail_watch_and_stop_are_one_request_each(gmail_push: Push, control: httpx.Client) -> None:
    provider = gmail_push.build()
    lease = provider.watch(gmail_push.target, None)
    provider.watch(gmail_push.target, lease)
    provider.unwatch(lease)

    counts = request_counts(control)
    assert (counts.get(WATCH), counts.get(STOP)) == (2, 1)


def test_a_gmail_watch_is_on_the_inbox_only(
    emulator: RunningEmulator, gmail_push: Push, control: httpx.Client
) -> None:
    gmail_push.build().watch(gmail_push.target, None)

    deliver(control, make_message(subject="Our own reply"), ANN, folder="sent")

    assert_nothing_sent(emulator, control)


# -- Graph ----------------------------------------------------------------------------------


def graph_subscriptions(push: Push) -> list[str]:
    """The subscription ids Graph lists for the mailbox, read with its own token."""
    return [s["id"] for s in graph_get(push, "/v1.0/subscriptions")["value"]]


def graph_get(push: Push, path: str) -> dict[str, Any]:
    token = push.build().credentials().access_token
    answer = push.control.get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_graph_subscription_is_what_we_asked_for(outlook_push: Push) -> None:
    lease = outlook_push.build().watch(outlook_push.target, None)

    assert lease.id
    subscription = graph_get(outlook_push, f"/v1.0/subscriptions/{lease.id}")
    assert subscription["clientState"] == CLIENT_STATE
    assert subscription["changeType"] == "created"
    assert subscription["resource"] == "me/mailFolders('inbox')/messages"
    assert subscription["notificationUrl"] == outlook_push.receiver.url("/push/outlook")
    assert subscription["lifecycleNotificationUrl"] == outlook_push.receiver.url(
        "/push/outlook/lifecycle"
    )
    # Graph validated both URLs with the handshake before answering.
    handshakes = [r for r in outlook_push.receiver.received if "validationToken" in r.query]
    assert [r.path for r in handshakes] == ["/push/outlook", "/push/outlook/lifecycle"]


def test_graph_renewal_patches_and_extends_by_the_time_passed(
    outlook_push: Push, control: httpx.Client
) -> None:
    # Made "an hour ago" (the provider's clock says so): renewing now moves it an hour on.
    first = outlook_push.build(clock=lambda: time.time() - 3600).watch(outlook_push.target, None)

    renewed = outlook_push.build().watch(outlook_push.target, first)

    assert renewed.id == first.id
    moved = renewed.expires_at - first.expires_at
    assert timedelta(minutes=59) <= moved <= timedelta(minutes=61), moved
    counts = request_counts(control)
    assert (counts.get(SUBSCRIBE), counts.get(RENEW)) == (1, 1)
    # A renewal validates nothing again: only the first set-up's two handshakes.
    assert [e["kind"] for e in push_log(control)] == ["validation", "validation"]


@pytest.mark.parametrize("gone", ["expired", "subscriptionRemoved"])
def test_graph_renewal_of_a_subscription_graph_dropped_makes_a_new_one(
    outlook_push: Push, control: httpx.Client, gone: str
) -> None:
    first = outlook_push.build().watch(outlook_push.target, None)
    if gone == "expired":
        outlook_push.expire()
    else:
        removed = control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": gone})
        assert removed.status_code == 202, removed.text
        outlook_push.receiver.wait_for("/push/outlook/lifecycle", 1)

    again = outlook_push.build().watch(outlook_push.target, first)

    assert again.id and again.id != first.id
    assert graph_subscriptions(outlook_push) == [again.id]
    counts = request_counts(control)
    assert (counts.get(SUBSCRIBE), counts.get(RENEW)) == (2, 1)  # PATCH 404, then POST
    outlook_push.deliver()
    [received] = outlook_push.receiver.wait_for("/push/outlook", 1)
    assert received.json()["value"][0]["subscriptionId"] == again.id


@pytest.mark.parametrize("validation", ["wrong", 403])
def test_graph_refuses_when_our_url_fails_the_handshake(
    outlook_push: Push, validation: str | int
) -> None:
    outlook_push.receiver.validation = validation

    with pytest.raises(PushRefused) as refused:
        outlook_push.build().watch(outlook_push.target, None)

    assert "validation" in str(refused.value).lower()
    assert outlook_push.held()["kind"] is None


def test_graph_unwatch_deletes_and_a_second_delete_is_fine(
    outlook_push: Push, control: httpx.Client
) -> None:
    provider = outlook_push.build()
    lease = provider.watch(outlook_push.target, None)

    provider.unwatch(lease)
    provider.unwatch(lease)

    assert request_counts(control).get(UNSUBSCRIBE) == 2  # the second answered 404
    assert graph_subscriptions(outlook_push) == []


def test_graph_lifecycle_notifications_carry_the_client_state(
    outlook_push: Push, control: httpx.Client
) -> None:
    lease = outlook_push.build().watch(outlook_push.target, None)

    sent = control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": "missed"})

    assert sent.status_code == 202
    [received] = outlook_push.receiver.wait_for("/push/outlook/lifecycle", 1)
    [item] = received.json()["value"]
    assert (item["subscriptionId"], item["clientState"], item["lifecycleEvent"]) == (
        lease.id,
        CLIENT_STATE,
        "missed",
    )


def test_graph_without_a_lifecycle_url_uses_the_notification_url(outlook_push: Push) -> None:
    target = PushTarget(
        notification_url=outlook_push.receiver.url("/push/outlook"), client_state=CLIENT_STATE
    )

    lease = outlook_push.build().watch(target, None)

    subscription = graph_get(outlook_push, f"/v1.0/subscriptions/{lease.id}")
    assert subscription["lifecycleNotificationUrl"] == outlook_push.receiver.url("/push/outlook")
