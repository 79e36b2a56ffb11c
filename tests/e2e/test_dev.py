"""`deskclone dev` as a person runs it: a subprocess on free ports, a form post, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.devstack import alive, dev_command, dev_env, free_port, wait_for

DEV_START_SECONDS = 60


def test_dev_serves_the_form_and_stops_without_orphans(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("api", "temporal", "ui", "emulator")}
    env = dev_env(DESKCLONE_ADMIN_TOKEN="e2e-admin-token")
    command = dev_command(tmp_path, ports=ports)
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        facts = wait_for(tmp_path / "dev.json", process, DEV_START_SECONDS)
        pids = facts["pids"]
        assert isinstance(pids, dict)
        assert facts["admin_token"] == "e2e-admin-token"
        assert facts["api_url"] == f"http://127.0.0.1:{ports['api']}"
        worker_env = facts["worker_env"]
        assert isinstance(worker_env, dict)
        assert worker_env["DESKCLONE_TEMPORAL_ADDRESS"] == f"127.0.0.1:{ports['temporal']}"
        # Webhooks may go to a receiver on this machine (docs/events.md).
        assert worker_env["DESKCLONE_WEBHOOK_ALLOW_PRIVATE"] == "1"
        assert all(alive(pid) for name, pid in pids.items() if name != "emulator")

        api = str(facts["api_url"])
        with httpx.Client(base_url=api, timeout=10) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            started = time.monotonic()
            made = client.post(
                f"/api/v1/public/{facts['agent_public_key']}/form",
                json={
                    "name": "Eve",
                    "email": "eve@example.com",
                    "subject": "E2E",
                    "description": "hi",
                },
            )
            elapsed = time.monotonic() - started
            assert made.status_code == 201, made.text
            assert elapsed < 1.0, f"form to ticket took {elapsed:.2f}s"
            listed = client.get(
                "/api/v1/tickets", headers={"Authorization": "Bearer e2e-admin-token"}
            )
            assert [t["title"] for t in listed.json()["items"]] == ["E2E"]
        ui = httpx.get(str(facts["temporal_ui_url"]), timeout=10)
        assert ui.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text()[-3000:]
    assert not (tmp_path / "dev.json").exists()
    assert [pid for pid in pids.values() if pid and alive(pid)] == []


def test_dev_restarts_a_killed_worker_and_a_killed_dev_leaves_no_children(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("api", "temporal", "ui", "emulator")}
    env = dev_env()
    command = dev_command(tmp_path, ports=ports)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        facts = wait_for(tmp_path / "dev.json", process, DEV_START_SECONDS)
        pids = facts["pids"]
        assert isinstance(pids, dict)
        first_worker = pids["worker"]
        os.kill(first_worker, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = json.loads((tmp_path / "dev.json").read_text())["pids"]
            if pids["worker"] != first_worker and alive(pids["worker"]):
                break
            time.sleep(0.2)
        assert pids["worker"] != first_worker, "the killed worker was not restarted"
        with httpx.Client(base_url=str(facts["api_url"]), timeout=15) as client:
            made = client.post(
                f"/api/v1/public/{facts['agent_public_key']}/form",
                json={"email": "kay@example.com", "subject": "After a crash", "description": "hi"},
            )
        assert made.status_code == 201, made.text
    finally:
        process.kill()  # SIGKILL: no chance to clean up; the children must go by themselves
        process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in pids.values() if p):
        time.sleep(0.2)
    assert [pid for pid in pids.values() if pid and alive(pid)] == []
