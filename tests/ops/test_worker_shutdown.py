"""The worker finishes in-flight activities when it is told to stop (SIGTERM in production),
and `deskclone worker` serves its Prometheus endpoint and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

import worker
from core.settings import Settings
from store.db import make_engine
from tests.conftest import unique_task_queue

started = threading.Event()
finished = threading.Event()


@activity.defn(name="slow_step")
def slow_step() -> str:
    started.set()
    time.sleep(1.5)  # still running when the worker is told to stop
    finished.set()
    return "done"


@workflow.defn(name="SlowWorkflow", sandboxed=False)
class SlowWorkflow:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_activity(
            slow_step, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


async def test_shutdown_lets_the_running_activity_finish(
    dev_server_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(worker, "build_activities", lambda *args: [slow_step])
    monkeypatch.setattr(worker, "WORKFLOWS", [SlowWorkflow])
    settings = Settings(task_queue=unique_task_queue(), worker_max_concurrent_activities=2)
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    started.clear()
    finished.clear()
    client = dev_server_env.client
    with ThreadPoolExecutor(2) as pool:
        running = worker.build_worker(client, settings, engine, pool)
        task = asyncio.create_task(running.run())
        handle = await client.start_workflow(
            SlowWorkflow.run, id=f"slow-{settings.task_queue}", task_queue=settings.task_queue
        )
        assert await asyncio.to_thread(started.wait, 20)
        await running.shutdown()  # what leaving `async with worker` does on SIGTERM
        await task
    engine.dispose()
    assert finished.is_set()
    events = [e.event_type async for e in handle.fetch_history_events()]
    # Its result reached Temporal: nothing is retried after a timeout, nothing is lost.
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT not in events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def test_the_worker_command_serves_metrics_and_stops_on_sigterm(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    env.update(
        DESKCLONE_DATA_DIR=str(tmp_path),
        DESKCLONE_TEMPORAL_ADDRESS=dev_server_env.client.service_client.config.target_host,
        DESKCLONE_TASK_QUEUE=unique_task_queue(),
        DESKCLONE_METRICS_PORT=str(port),
        DESKCLONE_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "deskclone", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = await asyncio.to_thread(
            scrape, f"http://127.0.0.1:{port}/metrics", time.monotonic() + 30
        )
        assert "temporal_" in text
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "worker stopping; finishing in-flight activities" in err
    assert "Traceback" not in err
