"""Form submission to ticket number, end to end through `deskclone dev`.

    .venv/bin/python -m bench.form_latency [--db postgres|sqlite] [--submissions 100]

Each submission is timed from the HTTP POST to the 201 carrying the ticket number (the API
answers only once the IntakeWorkflow's activity has committed the ticket).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack

import httpx

from bench.harness import percentile, postgres_database, running_dev


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--submissions", type=int, default=100)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        # One client posts every submission: lift the per-IP limit that protects the form.
        unlimited = {"DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE": str(args.submissions * 10)}
        facts = stack.enter_context(running_dev(url, unlimited))
        form = f"{facts['api_url']}/api/v1/public/{facts['agent_public_key']}/form"
        latencies: list[float] = []
        errors = 0
        with httpx.Client(timeout=30) as client:
            for i in range(args.submissions):
                body = {
                    "email": f"user{i}@example.com",
                    "subject": f"Bench {i}",
                    "description": "x",
                }
                started = time.perf_counter()
                response = client.post(form, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 201
    result = {
        "db": args.db,
        "submissions": args.submissions,
        "errors": errors,
        "ready_s": round(facts["ready_seconds"], 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
