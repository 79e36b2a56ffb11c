"""Gmail push: users.watch/stop through the real client, Pub/Sub pushes signed like Google's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from emulator.server import RunningEmulator
from tests.emulator.push_support import (
    Receiver,
    assert_nothing_sent,
    push_counts,
    push_log,
    running_receiver,
    verify_google_token,
    wait_until_idle,
)
from tests.emulator.support import ANN, Grant, deliver, make_message

TOPIC = "projects/deskclone-dev/topics/gmail-push"
SUBSCRIPTION = "projects/deskclone-dev/subscriptions/deskclone-api"
AUDIENCE = "https://deskclone.example/push/gmail"
PUSHER = "gmail-push@deskclone-dev.iam.gserviceaccount.com"
WEEK_MS = 7 * 24 * 3600 * 1000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def make_topic(
    control: httpx.Client, receiver: Receiver, topic: str = TOPIC, name: str = SUBSCRIPTION
) -> None:
    """A topic and an authenticated push subscription to `receiver`'s /push/gmail."""
    assert control.put(f"/v1/{topic}").status_code == 200
    body = {
        "topic": topic,
        "pushConfig": {
            "pushEndpoint": receiver.url("/push/gmail"),
            "oidcToken": {"serviceAccountEmail": PUSHER, "audience": AUDIENCE},
        },
    }
    assert control.put(f"/v1/{name}", json=body).status_code == 200


def watch(gmail: Any, topic: str = TOPIC, **extra: Any) -> dict[str, Any]:
    body = {"topicName": topic, "labelIds": ["INBOX"], "labelFilterBehavior": "INCLUDE", **extra}
    answer: dict[str, Any] = gmail.users().watch(userId="me", body=body).execute()
    return answer


def test_new_inbox_mail_pushes_a_notification_google_auth_verifies(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watched = watch(gmail)
    assert int(watched["expiration"]) == pytest.approx(time.time() * 1000 + WEEK_MS, abs=5000)
    assert watched["historyId"] == gmail.users().getProfile(userId="me").execute()["historyId"]

    deliver(control, make_message())

    [push] = receiver.wait_for("/push/gmail", 1)
    history_id = gmail.users().getProfile(userId="me").execute()["historyId"]
    assert push.pubsub_data() == {"emailAddress": ANN, "historyId": int(history_id)}
    envelope = push.json()
    assert envelope["subscription"] == SUBSCRIPTION
    message = envelope["message"]
    assert message["attributes"] == {}
    assert message["messageId"].isdigit() and message["publishTime"].endswith("Z")
    assert push.headers["content-type"] == "application/json"
    claims = verify_google_token(emulator, push.bearer, AUDIENCE)
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == AUDIENCE
    assert claims["email"] == PUSHER and claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600 and claims["sub"]


def test_a_push_for_another_audience_fails_verification(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    deliver(control, make_message())
    [push] = receiver.wait_for("/push/gmail", 1)

    with pytest.raises(ValueError, match="audience"):
        verify_google_token(emulator, push.bearer, "https://someone-else.example/push")
    forged = push.bearer[:-8] + ("A" * 8 if not push.bearer.endswith("A" * 8) else "B" * 8)
    with pytest.raises(ValueError):
        verify_google_token(emulator, forged, AUDIENCE)


def test_at_most_one_notification_per_second_per_mailbox(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    started = time.monotonic()
    for subject in ("One", "Two", "Three"):
        deliver(control, make_message(subject=subject))
    assert time.monotonic() - started < 1.0  # all three inside Gmail's one second
    [first] = receiver.wait_for("/push/gmail", 1)
    first_history = first.pubsub_data()["historyId"]
    assert push_counts(control)["gmail notification rate_limited"] == 2

    time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))  # Gmail's second, for real
    deliver(control, make_message(subject="Four"))

    second = receiver.wait_for("/push/gmail", 2)[1]
    # Dropped, not delayed: the next notification carries the history id of its own change.
    assert second.pubsub_data()["historyId"] == first_history + 3
    wait_until_idle(emulator)
    assert len(receiver.on("/push/gmail")) == 2


def test_only_mail_the_label_filter_lets_through_is_notified(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    deliver(control, make_message(subject="Sent by us"), folder="sent")
    assert_nothing_sent(emulator, control)

    watch(gmail, labelIds=["INBOX"], labelFilterBehavior="EXCLUDE")
    deliver(control, make_message(subject="Inbox"))
    assert_nothing_sent(emulator, control)
    deliver(control, make_message(subject="Sent again"), folder="sent")
    assert len(receiver.wait_for("/push/gmail", 1)) == 1


def test_watching_again_renews_and_replaces_the_topic(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    other = "projects/deskclone-dev/topics/other"
    make_topic(control, receiver)
    assert control.put(f"/v1/{other}").status_code == 200
    body = {"topic": other, "pushConfig": {"pushEndpoint": receiver.url("/push/other")}}
    assert control.put("/v1/projects/deskclone-dev/subscriptions/other", json=body).is_success
    first = watch(gmail)
    second = watch(gmail, topic=other)
    assert int(second["expiration"]) >= int(first["expiration"])

    deliver(control, make_message())

    [push] = receiver.wait_for("/push/other", 1)
    assert "authorization" not in push.headers  # that subscription has no oidcToken
    wait_until_idle(emulator)
    assert receiver.on("/push/gmail") == []


def test_stop_ends_the_watch(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    assert gmail.users().stop(userId="me").execute() in ("", None, {})
    assert control.get(f"/_emulator/mailboxes/{ANN}/push").json()["kind"] is None

    deliver(control, make_message())

    assert_nothing_sent(emulator, control)


def test_an_expired_watch_sends_nothing_until_renewed(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    held = control.get(f"/_emulator/mailboxes/{ANN}/push").json()
    assert held["kind"] == "watch" and held["id"] is None
    assert held["notification_url"] == receiver.url("/push/gmail")
    assert held["expires_at"].endswith("Z")

    assert control.post(f"/_emulator/mailboxes/{ANN}/push/expire").status_code == 202
    deliver(control, make_message())

    assert_nothing_sent(emulator, control)
    assert control.get(f"/_emulator/mailboxes/{ANN}/push").json() == {
        "kind": None, "id": None, "expires_at": None, "notification_url": None,
    }  # fmt: skip
    watch(gmail)
    deliver(control, make_message())
    assert len(receiver.wait_for("/push/gmail", 1)) == 1


def test_a_refused_push_is_retried_with_backoff(
    emulator: RunningEmulator, control: httpx.Client, gmail: Any, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    watch(gmail)
    receiver.answer("/push/gmail", 500, 503)
    deliver(control, make_message())

    pushes = receiver.wait_for("/push/gmail", 3)
    assert len({p.json()["message"]["messageId"] for p in pushes}) == 1  # one message, resent
    # Backing off: waits of 0.2 s, then 0.4 s (a loaded machine only makes them longer).
    assert pushes[1].at - pushes[0].at >= 0.19 and pushes[2].at - pushes[1].at >= 0.39
    wait_until_idle(emulator)
    assert [e["status"] for e in push_log(control)] == [500, 503, 202]
    assert push_counts(control) == {
        "gmail notification delivered": 1,
        "gmail notification retried": 2,
    }


def test_a_push_never_acknowledged_is_given_up_after_four_attempts(
    emulator: RunningEmulator, control: httpx.Client, receiver: Receiver
) -> None:
    make_topic(control, receiver)
    receiver.answer("/push/gmail", 500, 500, 500, 500)
    published = control.post(
        f"/v1/{TOPIC}:publish", json={"messages": [{"data": "aGk=", "attributes": {"k": "v"}}]}
    )
    assert published.status_code == 200 and len(published.json()["messageIds"]) == 1

    pushes = receiver.wait_for("/push/gmail", 4)
    assert {p.json()["message"]["attributes"]["k"] for p in pushes} == {"v"}
    wait_until_idle(emulator)
    assert len(receiver.on("/push/gmail")) == 4
    assert push_counts(control) == {
        "pubsub notification failed": 1,
        "pubsub notification retried": 3,
    }


def test_watch_needs_the_mailbox_token(control: httpx.Client, grant: Grant) -> None:
    assert control.put(f"/v1/{TOPIC}").status_code == 200
    auth = {"Authorization": f"Bearer {grant.access_token}"}
    url = "/gmail/v1/users/me/watch"
    assert control.post(url, json={"topicName": TOPIC}, headers=auth).status_code == 200
    assert control.post("/gmail/v1/users/me/stop", headers=auth).status_code == 204

    control.post(f"/_emulator/mailboxes/{ANN}/revoke")

    refused = control.post(url, json={"topicName": TOPIC}, headers=auth)
    assert refused.status_code == 401
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"
    assert control.post("/gmail/v1/users/me/stop", headers=auth).status_code == 401


@pytest.mark.parametrize(
    ("topic", "status", "reason", "message"),
    [
        (None, 400, "invalidArgument", "topicName required"),
        ("gmail-push", 400, "invalidArgument", "Invalid topicName does not match"),
        ("projects/p/topics/nope", 404, "notFound", "Resource not found (resource=nope)"),
    ],
)
def test_watch_refuses_a_topic_that_is_malformed_or_missing(
    gmail: Any, topic: str | None, status: int, reason: str, message: str
) -> None:
    body = {"topicName": topic} if topic else {}
    with pytest.raises(HttpError) as raised:
        gmail.users().watch(userId="me", body=body).execute()
    assert raised.value.resp.status == status
    assert raised.value.error_details[0]["reason"] == reason
    assert message in raised.value.reason
