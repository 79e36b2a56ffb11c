"""Workers SIGKILLed at random moments while an IMAP backlog is being ingested from a real
Dovecot: every message has exactly one outcome, none became two tickets."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator

import pytest

from emulator.dovecot import Dovecot
from tests.faults.conftest import System, eventually, mails, system_of_its_own
from tests.faults.test_worker_crashes import BACKLOG, KILLS, restarted_after


@pytest.fixture(scope="module")
def imap_system(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("faults-imap-dev")
    with system_of_its_own(data_dir, DESKCLONE_IMAP_CA_FILE=str(dovecot.ca_file)) as running:
        yield running


def test_killed_workers_lose_nothing_and_double_nothing_on_imap(
    imap_system: System, dovecot: Dovecot, dovecot_user: tuple[str, str]
) -> None:
    user, password = dovecot_user
    dovecot.append_many(user, mails(BACKLOG, seed=2))
    connected = imap_system.api.post(
        "/api/v1/mailboxes",
        json={
            "provider": "imap",
            "address": f"{user}@imap.example",
            "host": "localhost",
            "port": dovecot.tls_port,
            "security": "tls",
            "username": user,
            "password": password,
        },
    )
    assert connected.status_code == 201, connected.text
    mailbox_id = connected.json()["id"]
    rng = random.Random(2)
    kills = 0
    while kills < KILLS:
        # Sooner than the Gmail test's kills: Dovecot hands a 300-message backlog over in
        # about a second, and each kill must land while some of it is still unprocessed.
        time.sleep(rng.uniform(0.05, 0.5))
        if imap_system.processed(mailbox_id) >= BACKLOG:
            break
        pid = imap_system.worker_pid()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # between a kill and its restart
        kills += 1
        eventually(restarted_after(imap_system, pid), "a restarted worker", 20)
    assert kills == KILLS, f"the backlog finished after only {kills} kills"
    eventually(lambda: imap_system.processed(mailbox_id) >= BACKLOG, "the whole backlog", 240)
    outcomes = imap_system.check_exactly_once(mailbox_id, BACKLOG)
    assert outcomes["ticket_created"] > 0
    assert imap_system.mailbox(mailbox_id)["status"] == "active"
    # And still read-only: nothing the workers did marked a message seen.
    assert not any("\\Seen" in flags for flags in dovecot.flags(user).values())
