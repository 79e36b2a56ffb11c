"""The processes `deskclone dev` runs: started in their own sessions (so a terminal's Ctrl-C
reaches only the supervisor, which stops them in order) and with a parent-death signal (so even
a SIGKILLed supervisor leaves no orphans); restarted when they die, where that is safe."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("deskclone.dev")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path | None = None
    restart: bool = False
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        out: Any = None
        if self.log_file is not None:
            if self._log is not None:
                self._log.close()  # from the run before a restart
            self._log = self.log_file.open("ab")
            out = self._log
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.info("started %s (pid %d)", self.name, self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs; killing it", self.name, grace)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._log is not None:
            self._log.close()


def wait_for_http(
    url: str, deadline: float, children: list[Child], ca_file: Path | None = None
) -> None:
    while True:
        for child in children:
            if child.exited() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.exited()} while starting")
        try:
            context = None
            if ca_file is not None:
                if not ca_file.exists():
                    raise FileNotFoundError(ca_file)
                context = ssl.create_default_context(cafile=str(ca_file))
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within the start-up deadline")
        time.sleep(0.2)


def supervise(children: list[Child], dev_json: Path) -> None:
    """Restart any child that dies (the system must survive a killed worker or server)."""
    while True:
        time.sleep(0.5)
        for child in children:
            code = child.exited()
            if code is None:
                continue
            if not child.restart:
                raise RuntimeError(f"{child.name} exited with code {code}")
            log.warning("%s exited with code %s; restarting it", child.name, code)
            time.sleep(1)
            child.start()
            facts = json.loads(dev_json.read_text())
            facts["pids"][child.name] = child.pid
            write_private_json(dev_json, facts)


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write a file only its owner may read, atomically: a reader (the fault tests poll dev.json
    for the restarted worker's pid) sees the old facts or the new, never an empty file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2))
    os.replace(partial, path)
