"""Prometheus metrics: the API's /metrics after a ticket is made, the worker's endpoint served
by the Temporal SDK runtime, and the documented names matching the code."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core import metrics
from core.settings import Settings
from ingest.tickets import make_tickets
from tests.api.conftest import Api, make_api_settings
from tests.conftest import make_agent, unique_task_queue
from tests.fakes import make_email
from tests.ingest.test_batches import Delivered, deliver
from tests.ops.conftest import REPO
from worker import build_worker, make_runtime

FORM = {
    "name": "Ann Lee",
    "email": "ann@example.com",
    "subject": "Metrics please",
    "description": "Count me.",
}


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "service_name"))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


async def test_api_metrics_after_a_form_ticket(api: Api) -> None:
    before = samples((await api.client.get("/metrics")).text)
    made = await api.client.post(api.form_url(), json=FORM)
    assert made.status_code == 201, made.text
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def value(
        found: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str
    ) -> float:
        return found.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    # The worker runs in this process, so its event counter is here too.
    created = value(after, "deskclone_tickets_created_total", source="form")
    assert created == value(before, "deskclone_tickets_created_total", source="form") + 1
    # State from the database, whichever process changed it.
    open_forms = value(after, "deskclone_tickets", source="form", status="open")
    assert open_forms >= value(before, "deskclone_tickets", source="form", status="open") + 1
    assert "process_resident_memory_bytes" in after
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert set(metrics.COUNTERS) <= names
    assert set(metrics.GAUGES) <= names


async def test_metrics_token(
    api_worker: Settings, dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> None:
    settings = make_api_settings(api_worker, metrics_token=SecretStr("scrape-me-please"))
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
        assert good.status_code == 200 and "deskclone_mailboxes" in good.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


async def test_worker_metrics_through_the_sdk_runtime(
    api_worker: Settings, dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> None:
    port = free_port()
    settings = make_api_settings(
        api_worker, task_queue=unique_task_queue(), metrics_port=port, metrics_host="127.0.0.1"
    )
    runtime = make_runtime(settings)
    assert runtime is not None
    try:
        client = await Client.connect(
            dev_server_env.client.service_client.config.target_host,
            namespace=dev_server_env.client.namespace,
            runtime=runtime,
        )
        agent, _token = make_agent(postgres_engine)
        app = create_app(settings, client, engine=postgres_engine)
        transport = httpx.ASGITransport(app=app)
        with ThreadPoolExecutor(8) as pool:
            async with (
                build_worker(client, settings, postgres_engine, pool),
                httpx.AsyncClient(transport=transport, base_url="http://t") as http,
            ):
                made = await http.post(f"/api/v1/public/{agent.public_key}/form", json=FORM)
                assert made.status_code == 201, made.text
        text = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
    finally:
        metrics.bind_temporal_meter(None)
    found = samples(text)
    assert found["deskclone_tickets_created_total"][(("source", "form"),)] >= 1
    assert any(name.startswith("temporal_") for name in found)
    assert "temporal_activity_execution_latency_bucket" in found or any(
        name.startswith("temporal_workflow_task") for name in found
    )


def documented_names() -> set[str]:
    text = (REPO / "docs" / "operations.md").read_text()
    return set(re.findall(r"`(deskclone_[a-z_]+)`", text))


def test_docs_list_every_metric_and_only_real_ones() -> None:
    in_code = {f"{name}_total" for name in metrics.COUNTERS} | set(metrics.GAUGES)
    in_code |= set(metrics.HISTOGRAMS)
    assert documented_names() == in_code


async def test_skips_are_counted_by_their_own_reason(api: Api) -> None:
    """A flood-limited email is counted as `flood`, a re-delivered copy as `duplicate`: the
    two once shared the `duplicate` label."""
    flood = [
        Delivered(make_email(subject=f"Again {i}", sender="flood@bot.example"), f"F{i}")
        for i in range(3)
    ]
    mailbox_id, ids = deliver(api.engine, [*flood, Delivered(flood[0].raw, "elsewhere")])
    before = samples((await api.client.get("/metrics")).text)
    make_tickets(api.engine, mailbox_id, ids, flood_limit=2, heartbeat=lambda: None)
    after = samples((await api.client.get("/metrics")).text)

    def skipped(found: dict[str, dict[tuple[tuple[str, str], ...], float]], reason: str) -> float:
        return found.get("deskclone_messages_skipped_total", {}).get((("reason", reason),), 0.0)

    assert skipped(after, "flood") - skipped(before, "flood") == 1
    assert skipped(after, "duplicate") - skipped(before, "duplicate") == 1
