"""Fault tests run the real system (`deskclone dev` on a PostgreSQL database of their own) and
check the one promise that matters: every email has exactly one outcome, no ticket twice."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bench.mail import backlog
from tests.conftest import PG_ADMIN_URL
from tests.devstack import dev_env, running_dev


@dataclass
class System:
    facts: dict[str, Any]
    database_url: str
    api: httpx.Client
    emulator: httpx.Client

    def worker_pid(self) -> int:
        import json

        facts = json.loads(
            (Path(self.facts["worker_env"]["DESKCLONE_DATA_DIR"]) / "dev.json").read_text()
        )
        pid: int = facts["pids"]["worker"]
        return pid

    def new_address(self) -> str:
        return f"support-{uuid.uuid4().hex[:8]}@acme.example"

    def deliver(self, address: str, mails: list[bytes], provider: str = "gmail") -> None:
        self.emulator.post("/_emulator/mailboxes", json={"provider": provider, "address": address})
        for raw in mails:
            sent = self.emulator.post(
                f"/_emulator/mailboxes/{address}/messages",
                content=raw,
                headers={"Content-Type": "message/rfc822"},
            )
            assert sent.status_code == 201, sent.text

    def consent(self, authorization_url: str) -> None:
        approved = self.emulator.get(authorization_url)
        assert approved.status_code == 302, approved.text
        assert self.api.get(approved.headers["location"]).status_code == 303

    def connect(self, address: str, provider: str = "gmail") -> str:
        started = self.api.post(
            "/api/v1/mailboxes", json={"provider": provider, "login_hint": address}
        )
        self.consent(started.json()["authorization_url"])
        items = self.api.get("/api/v1/mailboxes").json()["items"]
        mailbox_id: str = next(m["id"] for m in items if m["address"] == address)
        return mailbox_id

    def mailbox(self, mailbox_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/api/v1/mailboxes/{mailbox_id}").json()
        return found

    def processed(self, mailbox_id: str) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM inbound_messages"
                " WHERE mailbox_id = %s AND outcome <> 'pending'",
                (mailbox_id,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def check_exactly_once(self, mailbox_id: str, expected: int) -> dict[str, int]:
        """Every delivered email has one final outcome; none became two tickets or messages."""
        with psycopg.connect(self.database_url) as conn:
            outcomes: dict[str, int] = dict(
                conn.execute(
                    "SELECT outcome, count(*) FROM inbound_messages"
                    " WHERE mailbox_id = %s GROUP BY outcome",
                    (mailbox_id,),
                ).fetchall()
            )
            refs = f"{mailbox_id}:%"
            doubled_messages = conn.execute(
                "SELECT source_ref FROM ticket_messages WHERE source_ref LIKE %s "
                "GROUP BY source_ref HAVING count(*) > 1",
                (refs,),
            ).fetchall()
            tickets = conn.execute(
                "SELECT count(*), count(DISTINCT source_ref) FROM tickets WHERE source_ref LIKE %s",
                (refs,),
            ).fetchone()
            messages = conn.execute(
                "SELECT count(*) FROM ticket_messages WHERE source_ref LIKE %s", (refs,)
            ).fetchone()
        assert tickets is not None and messages is not None
        assert sum(outcomes.values()) == expected, outcomes
        assert set(outcomes) <= {"ticket_created", "appended", "skipped"}, outcomes
        assert doubled_messages == []
        assert tickets[0] == tickets[1] == outcomes.get("ticket_created", 0)
        assert messages[0] == outcomes.get("ticket_created", 0) + outcomes.get("appended", 0)
        return outcomes


def eventually(check: Callable[[], Any], what: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def running_system(database_url: str, data_dir: Path, **settings: str) -> Iterator[System]:
    """`deskclone dev` on `database_url`, with clients for its API and emulator; `settings`
    are more DESKCLONE_ variables."""
    # Short provider timeouts, so "slower than the client waits" faults cost seconds.
    env = dev_env(DESKCLONE_PROVIDER_TIMEOUT_SECONDS="3", **settings)
    with running_dev(data_dir, "--database-url", database_url, env=env) as facts:
        verify = ssl.create_default_context(cafile=facts["emulator_ca"])
        auth = {"Authorization": f"Bearer {facts['admin_token']}"}
        with (
            httpx.Client(base_url=facts["api_url"], headers=auth, timeout=30) as api,
            httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=30) as emulator,
        ):
            yield System(facts, database_url.replace("+psycopg", ""), api, emulator)


@contextmanager
def own_database() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped afterwards: the session's is shared with
    faster tests."""
    name = f"deskclone_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with system_of_its_own(tmp_path_factory.mktemp("faults-dev")) as running:
        yield running


@contextmanager
def system_of_its_own(data_dir: Path, **settings: str) -> Iterator[System]:
    """`deskclone dev` with `settings` on a database of its own."""
    with (
        own_database() as database_url,
        running_system(database_url, data_dir, **settings) as running,
    ):
        yield running


def mails(count: int, seed: int) -> list[bytes]:
    return backlog(count, seed=seed)
