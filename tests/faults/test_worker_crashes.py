"""Workers SIGKILLed at random moments while a backlog is being ingested."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

from tests.faults.conftest import System, eventually, mails

BACKLOG = 300
KILLS = 4


def restarted_after(system: System, killed: int) -> Callable[[], bool]:
    return lambda: system.worker_pid() != killed


def test_killed_workers_lose_nothing_and_double_nothing(system: System) -> None:
    address = system.new_address()
    system.deliver(address, mails(BACKLOG, seed=1))
    mailbox_id = system.connect(address)
    rng = random.Random(1)
    kills = 0
    while kills < KILLS:
        time.sleep(rng.uniform(0.3, 1.5))
        if system.processed(mailbox_id) >= BACKLOG:
            break
        pid = system.worker_pid()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # between a kill and its restart
        kills += 1
        # Wait for the supervisor to bring a new worker up before the next kill.
        eventually(restarted_after(system, pid), "a restarted worker", 20)
    assert kills == KILLS, f"the backlog finished after only {kills} kills"
    eventually(lambda: system.processed(mailbox_id) >= BACKLOG, "the whole backlog", 240)
    outcomes = system.check_exactly_once(mailbox_id, BACKLOG)
    assert outcomes["ticket_created"] > 0
    assert system.mailbox(mailbox_id)["status"] == "active"
