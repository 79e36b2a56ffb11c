"""The sync cursor expiring mid-stream, and the credentials being revoked mid-backlog."""

from __future__ import annotations

import time

from tests.faults.conftest import System, eventually, mails


def test_history_expiry_mid_stream_catches_up_without_loss(system: System) -> None:
    address = system.new_address()
    system.deliver(address, mails(100, seed=3))
    mailbox_id = system.connect(address)
    eventually(lambda: system.processed(mailbox_id) >= 100, "the first 100", 120)
    system.deliver(address, mails(50, seed=4))
    assert system.emulator.post(f"/_emulator/mailboxes/{address}/expire-history").status_code < 300
    system.deliver(address, mails(50, seed=5))
    system.api.post(f"/api/v1/mailboxes/{mailbox_id}/poll")
    eventually(lambda: system.processed(mailbox_id) >= 200, "all 200 after the catch-up", 120)
    time.sleep(1)  # a catch-up overlapping what was stored must not add anything late
    system.check_exactly_once(mailbox_id, 200)


def test_graph_delta_expiry_mid_stream_resyncs_without_loss(system: System) -> None:
    address = system.new_address().replace("acme", "contoso")
    system.deliver(address, mails(80, seed=10), provider="outlook")
    mailbox_id = system.connect(address, provider="outlook")
    eventually(lambda: system.processed(mailbox_id) >= 80, "the first 80", 120)
    system.deliver(address, mails(40, seed=11), provider="outlook")
    expired = system.emulator.post(
        f"/_emulator/mailboxes/{address}/expire-delta-tokens", json={"status": 410}
    )
    assert expired.status_code < 300, expired.text
    system.deliver(address, mails(40, seed=12), provider="outlook")
    system.api.post(f"/api/v1/mailboxes/{mailbox_id}/poll")
    eventually(lambda: system.processed(mailbox_id) >= 160, "all 160 after the resync", 120)
    time.sleep(1)
    system.check_exactly_once(mailbox_id, 160)


def test_revoked_mid_backlog_then_reconnected_loses_nothing(system: System) -> None:
    address = system.new_address()
    system.deliver(address, mails(300, seed=6))
    mailbox_id = system.connect(address)
    eventually(lambda: system.processed(mailbox_id) >= 50, "some progress", 120)
    system.emulator.post(f"/_emulator/mailboxes/{address}/revoke")
    system.emulator.post(f"/_emulator/mailboxes/{address}/expire-access-tokens")
    eventually(lambda: system.mailbox(mailbox_id)["status"] == "auth_expired", "auth_expired", 120)
    done_when_expired = system.processed(mailbox_id)
    system.emulator.post("/_emulator/requests/reset")
    system.deliver(address, mails(20, seed=7))
    time.sleep(2)
    counts = system.emulator.get("/_emulator/requests").json()["counts"]
    assert not any(
        "/gmail/" in route or "batch" in route or "token" in route for route in counts
    ), counts
    assert done_when_expired < 320
    reconnect = system.api.post(f"/api/v1/mailboxes/{mailbox_id}/reconnect")
    system.consent(reconnect.json()["authorization_url"])
    eventually(lambda: system.processed(mailbox_id) >= 320, "everything after reconnect", 180)
    system.check_exactly_once(mailbox_id, 320)
    assert system.mailbox(mailbox_id)["status"] == "active"
