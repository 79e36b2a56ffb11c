"""Push end to end against the emulator: a notification makes the ticket within seconds while
the mailbox polls only hourly; faults in notifications lose and double nothing; lifecycle,
disconnect and an expired mailbox behave."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import System
from tests.push.conftest import connected, eventually, mail, wait_live

PROVIDERS = ["gmail", "outlook"]


def tickets_titled(system: System, subject: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = system.api.get(
        "/api/v1/tickets", params={"q": subject}
    ).json()["items"]
    return items


def provider_push(system: System, address: str) -> dict[str, object]:
    held: dict[str, object] = system.emulator.get(f"/_emulator/mailboxes/{address}/push").json()
    return held


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_notification_makes_the_ticket_in_seconds_while_polling_is_hourly(
    system: System, provider: str
) -> None:
    address, mailbox_id = connected(system, provider)
    subject = f"Pushed {provider} {time.monotonic()}"
    started = time.monotonic()
    system.deliver(address, [mail(subject)], provider)
    eventually(lambda: tickets_titled(system, subject), "the pushed ticket", 10)
    took = time.monotonic() - started
    assert took < 5, f"{took:.2f}s"
    mailbox = system.mailbox(mailbox_id)
    assert mailbox["push"]["last_notification_at"] is not None
    assert mailbox["poll_interval_seconds"] == 3600


@pytest.mark.parametrize("provider", PROVIDERS)
def test_doubled_late_and_lost_notifications_lose_and_double_nothing(
    system: System, provider: str
) -> None:
    address, mailbox_id = connected(system, provider)
    faults = "/_emulator/push/faults"
    sent: list[str] = []

    def send(count: int, label: str) -> None:
        for i in range(count):
            subject = f"{label} {i} {time.monotonic()}"
            sent.append(subject)
            system.deliver(address, [mail(subject, f"c{len(sent)}@customer.example")], provider)

    system.emulator.post(faults, json={"provider": provider, "mode": "duplicate", "count": 3})
    send(3, "Doubled")
    system.emulator.post(
        faults, json={"provider": provider, "mode": "delay", "count": 2, "delay": 2}
    )
    send(2, "Late")
    system.emulator.post(faults, json={"provider": provider, "mode": "drop", "count": 1})
    send(1, "Lost")  # its notification never comes...
    system.emulator.delete(faults)
    send(1, "Next")  # ...but the next one's poll reads through the cursor
    eventually(lambda: system.processed(mailbox_id) >= len(sent), "every email processed", 20)
    time.sleep(3)  # the late and doubled notifications have all arrived by now
    outcomes = system.check_exactly_once(mailbox_id, len(sent))
    assert outcomes == {"ticket_created": len(sent)}


def test_graph_lifecycle_notifications(system: System) -> None:
    address, mailbox_id = connected(system, "outlook")
    first = provider_push(system, address)["id"]
    lifecycle = f"/_emulator/mailboxes/{address}/lifecycle"

    subject = f"Missed {time.monotonic()}"
    system.emulator.post("/_emulator/push/faults", json={"provider": "outlook", "mode": "drop"})
    system.deliver(address, [mail(subject)], "outlook")
    system.emulator.delete("/_emulator/push/faults")
    assert system.emulator.post(lifecycle, json={"event": "missed"}).status_code == 202
    eventually(lambda: tickets_titled(system, subject), "a poll after 'missed'", 10)

    assert system.emulator.post(lifecycle, json={"event": "subscriptionRemoved"}).status_code == 202
    renewed = eventually(
        lambda: (held := provider_push(system, address))["id"] not in (None, first) and held,
        "a new subscription",
        10,
    )
    assert renewed["kind"] == "subscription"
    subject = f"After removal {time.monotonic()}"
    system.deliver(address, [mail(subject)], "outlook")
    eventually(lambda: tickets_titled(system, subject), "a ticket through the new one", 10)
    assert wait_live(system, mailbox_id)["push"]["state"] == "live"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_disconnect_stops_the_watch_or_deletes_the_subscription(
    system: System, provider: str
) -> None:
    address, mailbox_id = connected(system, provider)
    assert provider_push(system, address)["kind"] is not None
    assert system.api.delete(f"/api/v1/mailboxes/{mailbox_id}").status_code == 204
    eventually(lambda: provider_push(system, address)["kind"] is None, "push stopped", 15)


def test_a_push_for_an_expired_mailbox_changes_nothing_until_reconnect(system: System) -> None:
    address, mailbox_id = connected(system, "gmail")
    system.emulator.post(f"/_emulator/mailboxes/{address}/revoke")
    assert system.api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202
    eventually(lambda: system.mailbox(mailbox_id)["status"] == "auth_expired", "auth expired", 15)
    polled = system.mailbox(mailbox_id)["last_polled_at"]
    subject = f"While expired {time.monotonic()}"
    system.deliver(address, [mail(subject)])  # Gmail still notifies; the API ignores it
    time.sleep(2)
    mailbox = system.mailbox(mailbox_id)
    assert mailbox["push"]["state"] == "off"
    assert mailbox["last_polled_at"] == polled
    assert tickets_titled(system, subject) == []
    started = system.api.post(f"/api/v1/mailboxes/{mailbox_id}/reconnect")
    system.consent(started.json()["authorization_url"])
    eventually(lambda: tickets_titled(system, subject), "the mail after Reconnect", 15)
    assert wait_live(system, mailbox_id)["status"] == "active"
