"""Running a benchmark module as `python -m bench.NAME ...` and reading its JSON line.

A benchmark starts its own `deskclone dev`; on a timeout, or when the test session ends
before it does, it is stopped the way a person stops it (Ctrl-C to its whole process group:
the benchmark unwinds and stops dev, dev stops its children), and only if that does not work
within a minute, killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def bench_env() -> dict[str, str]:
    """This environment without the developer's DESKCLONE_ settings (the benchmark's dev must
    not pick them up), but with the PostgreSQL server the tests use."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    if "DESKCLONE_TEST_PG" in os.environ:
        env["DESKCLONE_TEST_PG"] = os.environ["DESKCLONE_TEST_PG"]
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the benchmark's process group, then SIGKILL if it does not end in 60 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        process.wait(timeout=10)


class BenchRunner:
    """Runs benchmarks (from any thread) and can stop every one still running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def run(self, module: str, *args: str, timeout: float = 180) -> dict[str, Any]:
        """`python -m bench.<module> <args>`; asserts it succeeds and returns its last stdout
        line, parsed as one JSON object."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the test session is over")
            process = subprocess.Popen(
                [sys.executable, "-m", f"bench.{module}", *args],
                cwd=ROOT,
                env=bench_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, for `stop`
            )
            self._running.add(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            out, err = process.communicate()
            raise AssertionError(
                f"bench.{module} did not finish within {timeout} s:\n{err.decode()[-3000:]}"
            ) from None
        finally:
            stop(process)
            with self._lock:
                self._running.discard(process)
        assert process.returncode == 0, f"bench.{module} failed:\n{err.decode()[-3000:]}"
        lines = out.decode().strip().splitlines()
        assert lines, f"bench.{module} printed nothing"
        result = json.loads(lines[-1])
        assert isinstance(result, dict), lines[-1]
        return result

    def close(self) -> None:
        """Start nothing more; stop what still runs."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            stop(process)
