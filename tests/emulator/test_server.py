"""Serving: the CA file, plain-HTTP mode, `python -m emulator` with a clean SIGTERM stop,
and pushes that end with the emulator."""

from __future__ import annotations

import os
import re
import select
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulator.server import CA_FILENAME, RunningEmulator, running_emulator
from emulator.state import EmulatorState
from tests.emulator.push_support import running_receiver

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_https_needs_the_emulators_ca(emulator: RunningEmulator) -> None:
    assert emulator.url.startswith("https://127.0.0.1:")
    assert emulator.ca_path is not None
    assert emulator.ca_path.name == CA_FILENAME
    assert emulator.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    with (
        httpx.Client(verify=ssl.create_default_context()) as system_trust,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        system_trust.get(emulator.url + "/_emulator/health")
    with httpx.Client(verify=emulator.ssl_context()) as pinned:
        assert pinned.get(emulator.url + "/_emulator/health").status_code == 200


def test_localhost_name_is_in_the_certificate(emulator: RunningEmulator) -> None:
    url = emulator.url.replace("127.0.0.1", "localhost")
    with httpx.Client(verify=emulator.ssl_context()) as client:
        assert client.get(url + "/_emulator/health").json() == {"status": "ok"}


def test_plain_http_mode_shares_the_given_state(tmp_path: Path) -> None:
    state = EmulatorState()
    with running_emulator(tmp_path, tls=False, state=state) as plain, httpx.Client() as client:
        assert plain.url.startswith("http://127.0.0.1:")
        assert plain.ca_path is None
        created = client.post(
            plain.url + "/_emulator/mailboxes", json={"provider": "gmail", "address": "p@x.io"}
        )
        assert created.status_code == 201
        assert state.mailbox("p@x.io") is not None
    assert not (tmp_path / CA_FILENAME).exists()


def _read_until(stream: int, pattern: str, timeout: float) -> tuple[re.Match[str], str]:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            chunk = os.read(stream, 4096).decode()
            if not chunk:
                break
            seen += chunk
            found = re.search(pattern, seen)
            if found:
                return found, seen
    raise AssertionError(f"no {pattern!r} in output: {seen!r}")


def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "emulator", "--port", "0", "--data-dir", str(tmp_path)]
    with subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE) as process:
        assert process.stderr is not None
        try:
            found, _ = _read_until(process.stderr.fileno(), r"serving at (https://\S+)", 15)
            context = ssl.create_default_context(cafile=str(tmp_path / CA_FILENAME))
            with httpx.Client(verify=context) as client:
                assert client.get(found.group(1) + "/_emulator/health").status_code == 200
            process.send_signal(signal.SIGTERM)
            _read_until(process.stderr.fileno(), r"provider emulator stopped", 15)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_stopping_cancels_pushes_still_being_retried(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        with running_emulator(tmp_path, tls=False) as own, httpx.Client(base_url=own.url) as client:
            topic = "/v1/projects/deskclone-dev/topics/t-stop"
            client.put(topic)
            push = {"pushEndpoint": receiver.url("/push")}
            body = {"topic": topic.removeprefix("/v1/"), "pushConfig": push}
            client.put("/v1/projects/deskclone-dev/subscriptions/s-stop", json=body)
            receiver.answer("/push", 500, 500, 500, 500)
            client.post(topic + ":publish", json={"messages": [{"data": "aGk="}]})
            receiver.wait_for("/push", 1)
            assert own.state.push.pusher.pending() == 1  # waiting to retry
        assert not own.alive()
        assert own.state.push.pusher.pending() == 0
        assert len(receiver.on("/push")) < 4  # the retries died with the emulator
