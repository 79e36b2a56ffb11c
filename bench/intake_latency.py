"""Form submission or widget escalation to ticket number, end to end through `deskclone dev`.

    .venv/bin/python -m bench.intake_latency [--source form|widget] [--db postgres|sqlite]
                                             [--requests 100]

Each request is timed from the HTTP POST to the answer carrying the ticket number (the API
answers only once the IntakeWorkflow's activity has committed the ticket). Requests are
sequential, each a new submission or conversation. Baseline, same server, same run: a no-op
one-activity workflow started and awaited from this process (`bench.baseline`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Any

import httpx

from bench.baseline import noop_workflow_latencies
from bench.harness import percentile, postgres_database, running_dev


def _request(source: str, i: int) -> tuple[str, dict[str, Any]]:
    if source == "form":
        body = {"email": f"user{i}@example.com", "subject": f"Bench {i}", "description": "x"}
        return "form", body
    conversation = {
        "conversation_id": f"bench-{i}-{time.time_ns()}",
        "visitor": {"name": "Visitor", "email": f"visitor{i}@example.com"},
        "messages": [
            {"role": "visitor", "content": "Where is my order?", "at": "2026-11-25T10:00:00Z"},
            {"role": "assistant", "content": "I could not find it.", "at": "2026-11-25T10:00:02Z"},
        ],
        "reason": "no answer",
    }
    return "escalations", conversation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=["form", "widget"], default="form")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        # One client sends every request: lift the per-IP limits that protect the public routes.
        unlimited = str(args.requests * 10)
        env = {
            "DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE": unlimited,
            "DESKCLONE_ESCALATION_RATE_LIMIT_PER_MINUTE": unlimited,
        }
        facts = stack.enter_context(running_dev(url, env))
        base = f"{facts['api_url']}/api/v1/public/{facts['agent_public_key']}"
        latencies: list[float] = []
        errors = 0
        with httpx.Client(timeout=30) as client:
            for i in range(args.requests):
                route, body = _request(args.source, i)
                started = time.perf_counter()
                response = client.post(f"{base}/{route}", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                ok = response.status_code in (200, 201) and response.json().get("ticket_number")
                errors += not ok
        baseline = asyncio.run(noop_workflow_latencies(facts["temporal_address"], args.requests))
    result = {
        "source": args.source,
        "db": args.db,
        "requests": args.requests,
        "errors": errors,
        "ready_s": round(facts["ready_seconds"], 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "baseline_p50_ms": round(statistics.median(baseline), 1),
        "baseline_p99_ms": round(percentile(baseline, 0.99), 1),
        "ratio_p50": round(statistics.median(latencies) / statistics.median(baseline), 2),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
