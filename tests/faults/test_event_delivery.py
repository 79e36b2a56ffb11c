"""Webhook delivery survives its worker being SIGKILLed during a burst of tickets: every
event reaches the receiver at least once (a round cut short sends again under the same
`webhook-id`), none is lost, and every delivery ends succeeded."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from bench.receiver import running_receiver
from tests.faults.conftest import System, eventually, own_database, running_system
from tests.faults.test_worker_crashes import restarted_after

BURST = 200
KILLS = 3
UNLIMITED = str(10**7)


@pytest.fixture(scope="module")
def events_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    limits = {
        "DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE": UNLIMITED,
        "DESKCLONE_PUBLIC_KEY_RATE_LIMIT_PER_MINUTE": UNLIMITED,
    }
    with own_database() as database_url:
        data_dir = tmp_path_factory.mktemp("events-dev")
        with running_system(database_url, data_dir, **limits) as running:
            yield running


def created_event_ids(system: System) -> set[str]:
    with psycopg.connect(system.database_url) as conn:
        rows = conn.execute("SELECT id FROM events WHERE type = 'ticket.created'").fetchall()
    return {row[0] for row in rows}


def delivery_statuses(system: System) -> dict[str, int]:
    with psycopg.connect(system.database_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"
        ).fetchall()
    return dict(rows)


def test_a_killed_worker_loses_no_event(events_system: System) -> None:
    system = events_system
    with running_receiver() as receiver:
        made = system.api.post("/api/v1/webhooks", json={"url": receiver.url})
        assert made.status_code == 201, made.text
        form = f"{system.facts['api_url']}/api/v1/public/{system.facts['agent_public_key']}/form"
        answered: list[int] = []
        stop_killing = threading.Event()

        def submit(i: int) -> None:
            body = {"email": f"u{i}@customer.example", "subject": f"Burst {i}", "description": "x"}
            response = httpx.post(form, json=body, timeout=60)
            answered.append(response.status_code)

        def kill_workers() -> int:
            rng = random.Random(7)
            kills = 0
            while kills < KILLS and not stop_killing.is_set():
                time.sleep(rng.uniform(0.5, 1.5))
                pid = system.worker_pid()
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                kills += 1
                eventually(restarted_after(system, pid), "a restarted worker", 30)
            return kills

        with ThreadPoolExecutor(9) as pool:
            killer = pool.submit(kill_workers)
            list(pool.map(submit, range(BURST)))
            stop_killing.set()
            kills = killer.result()
        assert kills >= 1, "the burst ended before any worker was killed"
        assert all(code in (201, 202) for code in answered), answered
        # Every ticket is made (a 202 one when the worker is back), with its event.
        eventually(lambda: len(created_event_ids(system)) >= BURST, "every ticket", 180)
        expected = created_event_ids(system)
        assert len(expected) == BURST

        def all_received() -> bool:
            return expected <= set(receiver.event_ids())

        eventually(all_received, "every event at the receiver", 180)
        got = receiver.event_ids()
        assert set(got) == expected  # nothing lost, nothing that is not an event
        eventually(
            lambda: delivery_statuses(system) == {"succeeded": BURST},
            "every delivery recorded as succeeded",
            60,
        )
        system.api.delete(f"/api/v1/webhooks/{made.json()['id']}")
