"""Running `deskclone dev` as a subprocess for tests: free ports, readiness, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; only its parent can reap it.
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # it was reaped since the kill(0)
        return False


def wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"deskclone dev exited early with {process.returncode}")
        if path.exists():
            facts: dict[str, Any] = json.loads(path.read_text())
            return facts
        time.sleep(0.1)
    raise AssertionError("deskclone dev did not become ready")


def dev_env(**overrides: str) -> dict[str, str]:
    """This environment without any DESKCLONE_ setting of the developer's, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    env.update(overrides)
    return env


def dev_command(data_dir: Path, *extra: str, ports: dict[str, int] | None = None) -> list[str]:
    """`deskclone dev` on free ports (or on `ports`), state in `data_dir`."""
    chosen = ports or {}
    flags: list[str] = []
    for name in ("api", "temporal", "ui", "emulator"):
        flags += [f"--{name}-port", str(chosen.get(name) or free_port())]
    return [sys.executable, "-m", "deskclone", "dev", "--data-dir", str(data_dir), *flags, *extra]


@contextmanager
def running_dev(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """A started `deskclone dev` (its log in `data_dir/dev.log`); yields dev.json, stops it."""
    log = (data_dir / "dev.log").open("wb")
    process = subprocess.Popen(
        dev_command(data_dir, *extra), env=env or dev_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield wait_for(data_dir / "dev.json", process, 60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
