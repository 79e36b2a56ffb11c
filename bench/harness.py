"""Start `deskclone dev` on free ports for a benchmark, and stop it cleanly afterwards."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

PG_ADMIN_URL = os.environ.get("DESKCLONE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"deskclone_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_dev(
    database_url: str | None, extra_env: dict[str, str] | None = None, *, push: bool = False
) -> Iterator[dict[str, Any]]:
    """Yields dev.json plus `ready_seconds` (process start to dev.json written). Push is off
    unless asked for: the polling benchmarks measure polling."""
    with tempfile.TemporaryDirectory(prefix="deskclone-bench-") as data_dir:
        command = [
            sys.executable,
            "-m",
            "deskclone",
            "dev",
            "--data-dir",
            data_dir,
            "--api-port",
            str(free_port()),
            "--temporal-port",
            str(free_port()),
            "--ui-port",
            str(free_port()),
            "--emulator-port",
            str(free_port()),
        ]
        if database_url:
            command += ["--database-url", database_url]
        if not push:
            command.append("--no-push")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
        env["DESKCLONE_LOG_LEVEL"] = "WARNING"
        env.update(extra_env or {})
        started = time.monotonic()
        log = Path(data_dir) / "dev.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(command, env=env, stderr=stderr)
        # A benchmark stopped with SIGTERM unwinds like Ctrl-C, so the stack below goes too
        # instead of polling on as orphans.
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            dev_json = Path(data_dir) / "dev.json"
            while not dev_json.exists():
                if process.poll() is not None:
                    said = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"deskclone dev exited while starting:\n{said}")
                if time.monotonic() - started > 120:
                    raise TimeoutError("deskclone dev did not start within 120 s")
                time.sleep(0.05)
            facts: dict[str, Any] = json.loads(dev_json.read_text())
            facts["ready_seconds"] = time.monotonic() - started
            yield facts
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after "(comm)" and state.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
