"""Push faults (`/_emulator/push/faults`): notifications lost, doubled or late, on request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.server import RunningEmulator
from tests.emulator.push_support import (
    Receiver,
    assert_nothing_sent,
    push_counts,
    running_receiver,
    wait_until_idle,
)
from tests.emulator.support import ANN, connect, deliver, make_message
from tests.emulator.test_microsoft_identity import OLIVE, connect_outlook

FAULTS = "/_emulator/push/faults"
TOPIC = "projects/deskclone-dev/topics/gmail-push"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def outlook(emulator: RunningEmulator, control: httpx.Client, receiver: Receiver) -> None:
    """Olive's inbox, subscribed to `receiver`'s /push/outlook."""
    grant = connect_outlook(emulator, control)
    in_an_hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = {
        "changeType": "created",
        "notificationUrl": receiver.url("/push/outlook"),
        "lifecycleNotificationUrl": receiver.url("/push/outlook/lifecycle"),
        "resource": "me/mailFolders('inbox')/messages",
        "expirationDateTime": in_an_hour,
    }
    created = control.post(
        "/v1.0/subscriptions",
        json=body,
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert created.status_code == 201, created.text


@pytest.fixture
def gmail_watch(control: httpx.Client, receiver: Receiver) -> None:
    """Ann's inbox, watched, its topic pushing to `receiver`'s /push/gmail."""
    grant = connect(control)
    control.put(f"/v1/{TOPIC}")
    push = {"pushEndpoint": receiver.url("/push/gmail")}
    control.put(
        "/v1/projects/deskclone-dev/subscriptions/api", json={"topic": TOPIC, "pushConfig": push}
    )
    watched = control.post(
        "/gmail/v1/users/me/watch",
        json={"topicName": TOPIC, "labelIds": ["INBOX"]},
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert watched.status_code == 200, watched.text


def add_fault(control: httpx.Client, **fault: Any) -> dict[str, Any]:
    answer = control.post(FAULTS, json=fault)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def to_olive(control: httpx.Client, subject: str) -> str:
    delivered: str = deliver(control, make_message(subject=subject, to=OLIVE), OLIVE)["id"]
    return delivered


def notified_ids(receiver: Receiver) -> list[str]:
    return [p.json()["value"][0]["resourceData"]["id"] for p in receiver.on("/push/outlook")]


def test_drop_loses_the_next_notifications(
    emulator: RunningEmulator, control: httpx.Client, receiver: Receiver, outlook: None
) -> None:
    fault = add_fault(control, provider="outlook", mode="drop", count=1)
    assert fault == {"id": fault["id"], "provider": "outlook", "mode": "drop",
                     "remaining": 1, "delay": 0.0}  # fmt: skip

    to_olive(control, "Lost")
    assert_nothing_sent(emulator, control)
    kept = to_olive(control, "Kept")

    receiver.wait_for("/push/outlook", 1)
    wait_until_idle(emulator)
    assert notified_ids(receiver) == [kept]
    assert push_counts(control)["outlook notification dropped"] == 1
    assert control.get(FAULTS).json() == {"items": []}  # used up


def test_duplicate_sends_the_same_notification_twice(
    emulator: RunningEmulator, control: httpx.Client, receiver: Receiver, outlook: None
) -> None:
    add_fault(control, provider="any", mode="duplicate", count=1)

    to_olive(control, "Twice")

    first, second = receiver.wait_for("/push/outlook", 2)
    assert first.body == second.body
    to_olive(control, "Once")
    receiver.wait_for("/push/outlook", 3)
    wait_until_idle(emulator)
    assert len(receiver.on("/push/outlook")) == 3


def test_delay_sends_late_and_lets_later_ones_overtake(
    emulator: RunningEmulator, control: httpx.Client, receiver: Receiver, outlook: None
) -> None:
    add_fault(control, provider="outlook", mode="delay", delay=0.5, count=1)
    started = time.monotonic()
    late = to_olive(control, "Late")
    on_time = to_olive(control, "On time")

    receiver.wait_for("/push/outlook", 2)

    assert notified_ids(receiver) == [on_time, late]
    assert receiver.on("/push/outlook")[1].at - started >= 0.5


def test_a_fault_without_count_holds_until_cleared_and_spares_the_other_provider(
    emulator: RunningEmulator,
    control: httpx.Client,
    receiver: Receiver,
    outlook: None,
    gmail_watch: None,
) -> None:
    add_fault(control, provider="outlook", mode="drop")
    to_olive(control, "Dropped")
    to_olive(control, "Dropped too")
    deliver(control, make_message(subject="Gmail is spared"), ANN)
    assert len(receiver.wait_for("/push/gmail", 1)) == 1
    assert push_counts(control)["outlook notification dropped"] == 2
    assert control.get(FAULTS).json()["items"][0]["remaining"] is None

    assert control.delete(FAULTS).status_code == 204
    kept = to_olive(control, "Delivered")
    receiver.wait_for("/push/outlook", 1)
    wait_until_idle(emulator)
    assert notified_ids(receiver) == [kept]


def test_lifecycle_notifications_are_never_faulted(
    control: httpx.Client, receiver: Receiver, outlook: None
) -> None:
    add_fault(control, provider="any", mode="drop")
    control.post(f"/_emulator/mailboxes/{OLIVE}/lifecycle", json={"event": "missed"})
    assert len(receiver.wait_for("/push/outlook/lifecycle", 1)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "yahoo", "mode": "drop"},
        {"provider": "gmail", "mode": "shuffle"},
        {"provider": "gmail", "mode": "drop", "count": 0},
        {"provider": "gmail", "mode": "delay"},
        {"provider": "gmail", "mode": "delay", "delay": 500},
        {"provider": "gmail", "mode": "drop", "status": 500},
    ],
)
def test_bad_push_faults_are_refused(control: httpx.Client, body: dict[str, Any]) -> None:
    answer = control.post(FAULTS, json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_push_fault"
