"""Webhook delivery while form intake runs flat out, through `deskclone dev` (its worker runs the
dispatchers, its waker, its delivery worker), to real HTTP receivers on this machine.

    .venv/bin/python -m bench.events [--concurrency 16] [--duration 30] [--db postgres|sqlite]
                                     [--slow-endpoint] [--drain 60]

`concurrency` clients submit the support form back to back for `duration` seconds (every
submission a new ticket, so a `ticket.created` event each). A healthy endpoint receives them;
with `--slow-endpoint` a second endpoint beside it answers each delivery after 10 s. Then the
run waits up to `drain` seconds for the healthy receiver to have every event.

Baseline, same stack, same run, first (after `warmup` seconds of unmeasured intake, so neither
phase meets a cold server): the same intake for the same time with no endpoint
(`baseline_intake_rps`; `intake_ratio` = intake_rps / baseline_intake_rps shows what delivery
costs ticket intake).

Keys of the JSON last line:
- `events`: `ticket.created` events written; `lost`: those the healthy receiver never got.
- `delivery_p50_ms`, `delivery_p99_ms`: event written (in the ticket's transaction, a few ms
  before it commits) → the healthy receiver has the request, by the same clock.
- `events_per_s` (delivered over first to last arrival) and `creation_per_s` (written over
  first to last write); `ratio` = events_per_s / creation_per_s: ≥ 1 when delivery keeps up.
- `backlog_at_end`: events written but not yet received when intake stopped; `drain_ms`: the
  last write → the last arrival.
- with `--slow-endpoint`: `slow_delivered`, `slow_p50_ms` (the slow endpoint's own figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import httpx
from sqlmodel import col, select

from bench.harness import percentile, postgres_database, running_dev
from bench.ingest_baseline import worker_settings
from bench.intake import drive_api
from bench.receiver import Receiver, running_receiver
from store.db import make_engine, transaction
from store.models import Event

SLOW_SECONDS = 10.0
UNLIMITED = str(10**7)


def written_events(facts: dict[str, Any]) -> dict[str, datetime]:
    """Every `ticket.created` event: id → when it was written."""
    engine = make_engine(worker_settings(facts).effective_database_url)
    try:
        with transaction(engine) as session:
            rows = session.exec(
                select(Event.id, Event.created_at).where(col(Event.type) == "ticket.created")
            ).all()
            return dict(rows)
    finally:
        engine.dispose()


def first_arrivals(receiver: Receiver) -> dict[str, float]:
    found: dict[str, float] = {}
    with receiver.lock:
        for request in receiver.received:
            found.setdefault(request.headers["webhook-id"], request.at)
    return found


def add_endpoint(api: httpx.Client, url: str) -> None:
    made = api.post("/api/v1/webhooks", json={"url": url, "events": ["ticket.created"]})
    made.raise_for_status()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        env = {
            "DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE": UNLIMITED,
            "DESKCLONE_PUBLIC_KEY_RATE_LIMIT_PER_MINUTE": UNLIMITED,
        }
        facts = stack.enter_context(running_dev(url, env))
        healthy = stack.enter_context(running_receiver())
        slow = stack.enter_context(running_receiver(delay_seconds=SLOW_SECONDS))
        auth = {"Authorization": f"Bearer {facts['admin_token']}"}
        api = stack.enter_context(httpx.Client(base_url=facts["api_url"], headers=auth))
        base = f"{facts['api_url']}/api/v1/public/{facts['agent_public_key']}"
        if args.warmup:
            asyncio.run(drive_api(base, args.concurrency, args.warmup, forms_only=True))
        baseline = asyncio.run(drive_api(base, args.concurrency, args.duration, forms_only=True))
        before = set(written_events(facts))
        add_endpoint(api, healthy.url)
        if args.slow_endpoint:
            add_endpoint(api, slow.url)
        driven = asyncio.run(drive_api(base, args.concurrency, args.duration, forms_only=True))
        written = {k: v for k, v in written_events(facts).items() if k not in before}
        backlog = len(set(written) - set(first_arrivals(healthy)))
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and not set(written) <= set(first_arrivals(healthy)):
            time.sleep(0.2)
        result = summarise(args, driven, written, healthy, slow, backlog)
    baseline_rps = len(baseline["latencies"]) / baseline["wall"]
    result["baseline_intake_rps"] = round(baseline_rps, 1)
    result["baseline_errors"] = sum(baseline["errors"].values())
    result["intake_ratio"] = round(result["intake_rps"] / baseline_rps, 2) if baseline_rps else None
    return result


def summarise(
    args: argparse.Namespace,
    driven: dict[str, Any],
    written: dict[str, datetime],
    healthy: Receiver,
    slow: Receiver,
    backlog: int,
) -> dict[str, Any]:
    arrivals = first_arrivals(healthy)
    made = {event_id: at.timestamp() for event_id, at in written.items()}
    latencies = [(arrivals[e] - made[e]) * 1000 for e in made if e in arrivals]
    creation_span = max(made.values()) - min(made.values()) if made else 0.0
    got = [arrivals[e] for e in made if e in arrivals]
    delivery_span = max(got) - min(got) if got else 0.0
    creation_rate = len(made) / creation_span if creation_span else 0.0
    delivery_rate = len(got) / delivery_span if delivery_span else 0.0
    slow_arrivals = first_arrivals(slow)
    slow_latencies = [(slow_arrivals[e] - made[e]) * 1000 for e in made if e in slow_arrivals]
    result: dict[str, Any] = {
        "db": args.db,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "slow_endpoint": args.slow_endpoint,
        "requests": len(driven["latencies"]) + sum(driven["errors"].values()),
        "errors": sum(driven["errors"].values()),
        "events": len(made),
        "creation_per_s": round(creation_rate, 1),
        "events_per_s": round(delivery_rate, 1),
        "ratio": round(delivery_rate / creation_rate, 3) if creation_rate else None,
        "delivery_p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "delivery_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "delivery_max_ms": round(max(latencies), 1) if latencies else None,
        "lost": len(made) - len(got),
        "duplicates": len(healthy.received) - len(arrivals),
        "backlog_at_end": backlog,
        "drain_ms": round((max(got) - max(made.values())) * 1000, 1) if got else None,
        "intake_rps": round(len(driven["latencies"]) / driven["wall"], 1),
    }
    if args.slow_endpoint:
        result["slow_delivered"] = len(slow_latencies)
        result["slow_p50_ms"] = (
            round(percentile(slow_latencies, 0.5), 1) if slow_latencies else None
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--slow-endpoint", action="store_true")
    parser.add_argument("--drain", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    args = parser.parse_args()
    sys.stdout.write(json.dumps(measure(args)) + "\n")


if __name__ == "__main__":
    main()
