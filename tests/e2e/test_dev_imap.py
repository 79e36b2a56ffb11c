"""`deskclone dev`'s sandbox IMAP account, as the README shows it: connect it, mail it with
`curl` (IMAP APPEND), see the ticket; the sandbox Dovecot stops with dev."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devstack import alive, dev_command, dev_env, wait_for
from tests.fakes import make_email


@pytest.fixture
def open_data_dir() -> Iterator[Path]:
    # Dovecot's unprivileged processes must reach it (pytest's own temp dirs are closed).
    path = Path(tempfile.mkdtemp(prefix="deskclone-dev-imap-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_sandbox_account_connects_and_a_curl_append_becomes_a_ticket(
    open_data_dir: Path,
) -> None:
    log = (open_data_dir / "dev.log").open("wb")
    env = dev_env(DESKCLONE_ADMIN_TOKEN="imap-dev-token")
    process = subprocess.Popen(
        dev_command(open_data_dir), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        facts = wait_for(open_data_dir / "dev.json", process, 60)
        imap = facts["imap"]
        assert imap is not None, facts.get("imap_note")
        assert facts["worker_env"]["DESKCLONE_IMAP_ALLOW_PLAINTEXT"] == "1"
        auth = {"Authorization": "Bearer imap-dev-token"}
        with httpx.Client(base_url=facts["api_url"], headers=auth, timeout=30) as api:
            connected = api.post(
                "/api/v1/mailboxes",
                json={
                    "provider": "imap",
                    "address": imap["address"],
                    "host": imap["host"],
                    "port": imap["port"],
                    "security": imap["security"],
                    "username": imap["username"],
                    "password": imap["password"],
                },
            )
            assert connected.status_code == 201, connected.text
            # Over TLS too, trusting the sandbox's certificate as dev's workers do.
            tls = api.post(
                "/api/v1/mailboxes",
                json={
                    "provider": "imap",
                    "address": "tls-" + imap["address"],
                    "host": imap["tls_host"],
                    "port": imap["tls_port"],
                    "security": "tls",
                    "username": imap["username"],
                    "password": imap["password"],
                },
            )
            assert tls.status_code == 201, tls.text
            mail = open_data_dir / "mail.eml"
            mail.write_bytes(make_email(subject="Sent with curl"))
            sent = subprocess.run(
                [
                    "curl",
                    "--silent",
                    "--show-error",
                    "--url",
                    f"imap://{imap['host']}:{imap['port']}/INBOX",
                    "--user",
                    f"{imap['username']}:{imap['password']}",
                    "-T",
                    str(mail),
                ],
                capture_output=True,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr
            # Both mailboxes read the one account: whichever polls first makes the ticket, the
            # other finds its copy a duplicate (IDLE wakes both at once).
            both = {connected.json()["id"], tls.json()["id"]}
            deadline = time.monotonic() + 30
            titles: list[str] = []
            while time.monotonic() < deadline and "Sent with curl" not in titles:
                for mailbox_id in both:
                    api.post(f"/api/v1/mailboxes/{mailbox_id}/poll")
                time.sleep(0.5)
                listed = api.get("/api/v1/tickets", params={"source": "email"}).json()["items"]
                titles = [t["title"] for t in listed if t["mailbox_id"] in both]
            assert titles == ["Sent with curl"]
        dovecot_pid = facts["pids"]["imap"]
        assert alive(dovecot_pid)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
    output = (open_data_dir / "dev.log").read_text()
    assert code == 0, output[-3000:]
    assert f"IMAP sandbox    {imap['host']}:{imap['port']} user {imap['username']}" in output
    assert not alive(dovecot_pid)


def test_a_sandbox_that_cannot_start_leaves_the_rest_running(open_data_dir: Path) -> None:
    """Its remembered port taken by another program: dev says why and starts without it."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        sandbox = open_data_dir / "dovecot"
        sandbox.mkdir()
        (sandbox / "sandbox.json").write_text(json.dumps({"port": taken, "tls_port": taken}))
        with (open_data_dir / "dev.log").open("wb") as log:
            process = subprocess.Popen(
                dev_command(open_data_dir), env=dev_env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            facts = wait_for(open_data_dir / "dev.json", process, 60)
            assert facts["imap"] is None
            assert facts["imap_note"].startswith("not started: dovecot exited at start")
            assert httpx.get(f"{facts['api_url']}/healthz", timeout=10).status_code == 200
            assert process.poll() is None
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
