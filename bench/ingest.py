"""A connected mailbox's backlog becoming tickets, end to end through `deskclone dev`, against
a plain loop doing the same work without Temporal, in the same process run.

    .venv/bin/python -m bench.ingest [--provider gmail|outlook] [--messages 2000]
                                     [--db postgres|sqlite] [--idle-polls 3] [--timeline]

Pipeline: the emulator holds N realistic messages; the mailbox is connected through the real
OAuth flow (the API's authorization URL, the emulator's consent redirect, the API callback) and
the clock runs from the callback until every message has an outcome in the ledger. Then the
poll interval is set to 10 s and idle polls are measured: provider requests (from the
emulator's counts) and Temporal history events (from the workflow's history) per poll.
`worker_cpu_s` is the worker process's CPU time over the drain; `--timeline` prints each
activity of the drain (scheduled, started, completed, seconds from the first event) to stderr,
which shows whether a page's fetch and the page before's tickets overlap.

Baseline (`bench.ingest_baseline`): a second emulator mailbox with a backlog of the same size
and shape (new Message-IDs), connected by the same OAuth code exchange from this process, and
read by a plain loop: the same provider client, the same parsing, loop guards, sender filter,
thread decision and the same database writes as the three mailbox activities, no Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import ExitStack
from typing import Any

import httpx
from temporalio.client import Client

from bench.clients import api_client, authorize, deliver, emulator_client, finish_connect
from bench.harness import cpu_seconds, postgres_database, running_dev
from bench.ingest_baseline import run_baseline
from bench.mail import backlog
from workflows.mailbox import MailboxWorkflow, mailbox_workflow_id

ADDRESS = "support@acme.example"
BASELINE_ADDRESS = "support-baseline@acme.example"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", choices=["gmail", "outlook"], default="gmail")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--idle-polls", type=int, default=3)
    parser.add_argument("--timeline", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        facts = stack.enter_context(running_dev(url))
        result = run(facts, args.provider, args.messages, args.idle_polls, args.timeline)
    result = {"provider": args.provider, "db": args.db, **result}
    sys.stdout.write(json.dumps(result) + "\n")


def load_backlog(emulator: httpx.Client, provider: str, address: str, count: int) -> None:
    emulator.post(
        "/_emulator/mailboxes", json={"provider": provider, "address": address}
    ).raise_for_status()
    for raw in backlog(count):
        deliver(emulator, address, raw)


def provider_requests(emulator: httpx.Client) -> int:
    counts: dict[str, int] = emulator.get("/_emulator/requests").json()["counts"]
    return sum(counts.values())


def run(
    facts: dict[str, Any], provider: str, count: int, idle_polls: int, timeline: bool = False
) -> dict[str, Any]:
    worker = facts["pids"]["worker"]
    with api_client(facts) as api, emulator_client(facts) as emulator:
        load_backlog(emulator, provider, ADDRESS, count)
        load_backlog(emulator, provider, BASELINE_ADDRESS, count)
        location = authorize(api, emulator, provider, ADDRESS)
        emulator.post("/_emulator/requests/reset")
        clock, cpu = time.perf_counter(), cpu_seconds(worker)
        finish_connect(api, location)  # the callback: connects, starts the workflow
        [mailbox] = api.get("/api/v1/mailboxes").json()["items"]
        mailbox_url = f"/api/v1/mailboxes/{mailbox['id']}"
        while True:
            counts = api.get(mailbox_url).json()["counts"]
            if sum(counts.values()) >= count:
                break
            time.sleep(0.25)
        elapsed, cpu = time.perf_counter() - clock, cpu_seconds(worker) - cpu
        if timeline:
            asyncio.run(print_timeline(facts, mailbox["id"]))
        pipeline_requests = provider_requests(emulator)
        idle = asyncio.run(
            measure_idle(facts, api, emulator, mailbox_url, mailbox["id"], idle_polls)
        )
        emulator.post("/_emulator/requests/reset")
        base = run_baseline(facts, emulator, provider, BASELINE_ADDRESS, mailbox["id"], count)
        baseline_requests = provider_requests(emulator)
    return {
        "messages": count,
        "pipeline_s": round(elapsed, 2),
        "baseline_s": round(base.seconds, 2),
        "ratio": round(elapsed / base.seconds, 2),
        "msgs_per_s": round(count / elapsed, 1),
        "baseline_msgs_per_s": round(count / base.seconds, 1),
        "worker_cpu_s": round(cpu, 2),
        "counts": counts,
        "baseline_counts": base.counts,
        "pipeline_provider_requests": pipeline_requests,
        "baseline_provider_requests": baseline_requests,
        **idle,
    }


async def print_timeline(facts: dict[str, Any], mailbox_id: str) -> None:
    client = await Client.connect(facts["temporal_address"])
    history = await client.get_workflow_handle(mailbox_workflow_id(mailbox_id)).fetch_history()
    first = history.events[0].event_time.ToDatetime()
    names: dict[int, str] = {}
    for event in history.events:
        at = (event.event_time.ToDatetime() - first).total_seconds()
        kind = event.WhichOneof("attributes") or ""
        attributes = getattr(event, kind)
        if kind == "activity_task_scheduled_event_attributes":
            names[event.event_id] = attributes.activity_type.name
            line = f"scheduled {names[event.event_id]} #{event.event_id}"
        elif kind in STEPS:
            scheduled = attributes.scheduled_event_id
            line = f"{STEPS[kind]} {names.get(scheduled, '?')} #{scheduled}"
        elif kind == "marker_recorded_event_attributes":
            line = f"marker {attributes.marker_name}"  # a local activity's result, or a patch
        else:
            continue
        sys.stderr.write(f"{at:8.3f} {line}\n")


STEPS = {
    "activity_task_started_event_attributes": "started",
    "activity_task_completed_event_attributes": "completed",
}


async def measure_idle(
    facts: dict[str, Any],
    api: httpx.Client,
    emulator: httpx.Client,
    mailbox_url: str,
    mailbox_id: str,
    polls: int,
) -> dict[str, Any]:
    client = await Client.connect(facts["temporal_address"])
    handle = client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(mailbox_id))
    api.patch(mailbox_url, json={"poll_interval_seconds": 10}).raise_for_status()

    async def polls_done() -> int:
        return (await handle.query(MailboxWorkflow.state)).polls

    # Let the interval change settle into a timer-driven rhythm first.
    start = await polls_done()
    while await polls_done() < start + 1:
        await asyncio.sleep(0.2)
    emulator.post("/_emulator/requests/reset")
    events_before = len((await handle.fetch_history()).events)
    first = await polls_done()
    while await polls_done() < first + polls:
        await asyncio.sleep(0.2)
    events_after = len((await handle.fetch_history()).events)
    requests = provider_requests(emulator)
    return {
        "idle_polls": polls,
        "requests_per_idle_poll": round(requests / polls, 2),
        "events_per_idle_poll": round((events_after - events_before) / polls, 2),
    }


if __name__ == "__main__":
    main()
