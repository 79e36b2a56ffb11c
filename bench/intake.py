"""Concurrent form submissions and widget escalations through `deskclone dev`'s API, against
no-op one-activity workflows on the same Temporal server at the same concurrency.

    .venv/bin/python -m bench.intake [--concurrency 16] [--duration 60] [--db postgres|sqlite]

`concurrency` clients each send requests back to back for `duration` seconds, alternating form
submissions and widget escalations, every one a new submission (unique content) or a new
conversation. A request succeeds when it answers 2xx with a ticket number (the API answers only
once the IntakeWorkflow's activity has committed the ticket). Afterwards the tickets table is
counted: `tickets_created` must equal the successful requests.

Baseline, same server, same run, same concurrency and duration: this process's own worker
(activity slots = the product worker's default, 32) running `bench.baseline.NoopWorkflow`,
each client starting one and awaiting its result back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline import NoopWorkflow, noop
from bench.harness import percentile, postgres_database, running_dev
from bench.ingest_baseline import worker_settings
from store.db import make_engine, transaction
from store.models import Ticket


def _request(i: int, tag: str, forms_only: bool = False) -> tuple[str, dict[str, Any]]:
    if forms_only or i % 2 == 0:
        body = {
            "email": f"user{i}@example.com",
            "subject": f"Bench {tag} {i}",
            "description": "The export to CSV fails with an error since this morning.",
        }
        return "form", body
    conversation = {
        "conversation_id": f"bench-{tag}-{i}",
        "visitor": {"name": "Visitor", "email": f"visitor{i}@example.com"},
        "messages": [
            {"role": "visitor", "content": "Where is my order?", "at": "2026-11-25T10:00:00Z"},
            {"role": "assistant", "content": "I could not find it.", "at": "2026-11-25T10:00:02Z"},
        ],
        "reason": "no answer",
    }
    return "escalations", conversation


async def drive_api(
    base: str, concurrency: int, duration: float, *, forms_only: bool = False
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(10**9))
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                route, body = _request(next(counter), tag, forms_only)
                started = time.perf_counter()
                try:
                    response = await client.post(f"{base}/{route}", json=body)
                except httpx.HTTPError as error:
                    key = type(error).__name__
                    errors[key] = errors.get(key, 0) + 1
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code in (200, 201) and response.json().get("ticket_number"):
                    latencies.append(elapsed)
                else:
                    key = f"http_{response.status_code}"
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall": wall}


async def drive_noop(address: str, concurrency: int, duration: float) -> dict[str, Any]:
    client = await Client.connect(address)
    task_queue = f"bench-intake-baseline-{uuid.uuid4()}"
    latencies: list[float] = []
    with ThreadPoolExecutor(32) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[NoopWorkflow],
            activities=[noop],
            activity_executor=pool,
            max_concurrent_activities=32,
        ):
            deadline = time.perf_counter() + duration

            async def one_client() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    handle = await client.start_workflow(
                        NoopWorkflow.run,
                        "x",
                        id=f"bench-noop-{uuid.uuid4()}",
                        task_queue=task_queue,
                    )
                    await handle.result()
                    latencies.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
            wall = time.perf_counter() - started
    return {"latencies": latencies, "wall": wall}


def count_tickets(facts: dict[str, Any]) -> int:
    engine = make_engine(worker_settings(facts).effective_database_url)
    try:
        with transaction(engine) as session:
            total = session.exec(
                select(func.count())
                .select_from(Ticket)
                .where(col(Ticket.source).in_(["form", "widget"]))
            ).one()
            return int(total)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        # One client sends every request: lift the per-IP and per-key limits of the public routes.
        unlimited = str(10**7)
        env = {
            "DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE": unlimited,
            "DESKCLONE_ESCALATION_RATE_LIMIT_PER_MINUTE": unlimited,
            "DESKCLONE_PUBLIC_KEY_RATE_LIMIT_PER_MINUTE": unlimited,
        }
        facts = stack.enter_context(running_dev(url, env))
        base = f"{facts['api_url']}/api/v1/public/{facts['agent_public_key']}"
        api = asyncio.run(drive_api(base, args.concurrency, args.duration))
        tickets = count_tickets(facts)
        noop_run = asyncio.run(
            drive_noop(facts["temporal_address"], args.concurrency, args.duration)
        )
    latencies: list[float] = api["latencies"]
    errors = sum(api["errors"].values())
    requests = len(latencies) + errors
    rps = len(latencies) / api["wall"]
    baseline_rps = len(noop_run["latencies"]) / noop_run["wall"]
    result = {
        "db": args.db,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "requests": requests,
        "rps": round(rps, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "errors": errors,
        "error_kinds": api["errors"],
        "tickets_created": tickets,
        "baseline_requests": len(noop_run["latencies"]),
        "baseline_rps": round(baseline_rps, 1),
        "baseline_p50_ms": round(statistics.median(noop_run["latencies"]), 1),
        "baseline_p99_ms": round(percentile(noop_run["latencies"], 0.99), 1),
        "ratio": round(rps / baseline_rps, 2),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
