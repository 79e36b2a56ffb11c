"""The provider misbehaves on about a fifth of calls: throttling with Retry-After, 500 and 503,
answers slower than the client waits. Everything still arrives exactly once, without a retry
storm (requests are counted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.conftest import System, eventually, mails

BACKLOG = 120


@pytest.fixture
def faults(system: System) -> Iterator[Callable[[dict[str, Any]], None]]:
    def add(body: dict[str, Any]) -> None:
        system.emulator.post("/_emulator/faults", json=body).raise_for_status()

    yield add
    system.emulator.delete("/_emulator/faults")


def test_throttling_errors_and_timeouts_are_survived(
    system: System, faults: Callable[[dict[str, Any]], None]
) -> None:
    address = system.new_address()
    system.deliver(address, mails(BACKLOG, seed=2))
    system.emulator.post("/_emulator/requests/reset")
    faults({"provider": "gmail", "status": 429, "rate": 0.08, "retry_after": 1})
    faults({"provider": "gmail", "status": 503, "rate": 0.05})
    faults({"provider": "gmail", "status": 500, "rate": 0.05})
    faults({"provider": "gmail", "delay": 4, "rate": 0.02})  # past the 3 s client timeout
    mailbox_id = system.connect(address)
    eventually(lambda: system.processed(mailbox_id) >= BACKLOG, "the whole backlog", 240)
    system.check_exactly_once(mailbox_id, BACKLOG)
    counts = system.emulator.get("/_emulator/requests").json()["counts"]
    message_gets = counts.get("GET /gmail/v1/users/{user}/messages/{id}", 0)
    other_calls = sum(n for route, n in counts.items() if "/gmail/" in route or "batch" in route)
    # Fault-free, each message is fetched once and a page costs a handful of calls. Retries of
    # failed calls and re-fetches of timed-out batches add some; a storm would add multiples.
    assert message_gets < 4 * BACKLOG, counts
    assert other_calls - message_gets < 150, counts
