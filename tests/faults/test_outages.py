"""The database and the Temporal server go away during ingestion and come back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.devstack import free_port
from tests.faults.conftest import System, eventually, mails, running_system

PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"))


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of this test's own (initdb + pg_ctl in a temporary directory)."""

    data: Path
    port: int

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._pg_ctl("-w", "-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    # Not under pytest's tmp_path: that is private to root, and PostgreSQL refuses to run as root.
    home = Path(tempfile.mkdtemp(prefix="deskclone-pg-"))
    data = home / "data"
    data.mkdir()
    shutil.chown(home, "postgres", "postgres")
    shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    running = PrivateCluster(data, free_port())
    running.start()
    try:
        yield running
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )


def test_database_outage_during_ingestion(cluster: PrivateCluster, tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    with running_system(cluster.url, tmp_path / "dev") as system:
        address = system.new_address()
        system.deliver(address, mails(200, seed=8))
        mailbox_id = system.connect(address)
        eventually(lambda: system.processed(mailbox_id) >= 20, "ingestion under way", 60)
        worker = system.worker_pid()
        cluster.stop()
        time.sleep(5)  # a real outage: the workers keep failing against a stopped server
        assert system.api.get("/healthz").status_code == 503
        cluster.start()
        eventually(lambda: system.processed(mailbox_id) >= 200, "the whole backlog", 180)
        system.check_exactly_once(mailbox_id, 200)
        assert system.worker_pid() == worker, "the worker crashed instead of retrying"
        assert system.api.get("/healthz").status_code == 200


def test_temporal_server_restart_during_ingestion(system: System) -> None:
    address = system.new_address()
    system.deliver(address, mails(200, seed=9))
    mailbox_id = system.connect(address)
    eventually(lambda: system.processed(mailbox_id) >= 20, "ingestion under way", 60)
    temporal = int(system.facts["pids"]["temporal"])
    os.kill(temporal, signal.SIGTERM)
    eventually(lambda: not _alive(temporal), "the Temporal server to stop", 30)
    eventually(lambda: system.processed(mailbox_id) >= 200, "the whole backlog", 180)
    system.check_exactly_once(mailbox_id, 200)
    # The workflow came back from the file-backed store and still answers signals.
    assert system.api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
