"""A connected mailbox's backlog becoming tickets, end to end through `deskclone dev`.

    .venv/bin/python -m bench.ingest [--provider gmail] [--messages 2000] [--db postgres|sqlite]

The emulator holds N realistic messages; the mailbox is connected through the real OAuth flow
and the clock runs from the callback until every message has an outcome in the ledger. Then
the poll interval is set to 10 s and idle polls are measured: provider requests (from the
emulator's counts) and Temporal history events (from the workflow's history) per poll.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from contextlib import ExitStack
from typing import Any

import httpx
from temporalio.client import Client

from bench.harness import postgres_database, running_dev
from bench.mail import backlog
from workflows.mailbox import MailboxWorkflow, mailbox_workflow_id

ADDRESS = "support@acme.example"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", choices=["gmail"], default="gmail")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--idle-polls", type=int, default=3)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        facts = stack.enter_context(running_dev(url))
        result = run(facts, args.messages, args.idle_polls)
    result |= {"provider": args.provider, "db": args.db}
    sys.stdout.write(json.dumps(result) + "\n")


def run(facts: dict[str, Any], count: int, idle_polls: int) -> dict[str, Any]:
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    api = httpx.Client(
        base_url=facts["api_url"],
        headers={"Authorization": f"Bearer {facts['admin_token']}"},
        timeout=60,
    )
    emulator = httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=60)
    with api, emulator:
        emulator.post("/_emulator/mailboxes", json={"provider": "gmail", "address": ADDRESS})
        for raw in backlog(count):
            answer = emulator.post(
                f"/_emulator/mailboxes/{ADDRESS}/messages",
                content=raw,
                headers={"Content-Type": "message/rfc822"},
            )
            answer.raise_for_status()
        started = api.post("/api/v1/mailboxes", json={"provider": "gmail", "login_hint": ADDRESS})
        location = emulator.get(started.json()["authorization_url"]).headers["location"]
        clock = time.perf_counter()
        api.get(location)  # the callback: connects the mailbox and starts its workflow
        [mailbox] = api.get("/api/v1/mailboxes").json()["items"]
        mailbox_url = f"/api/v1/mailboxes/{mailbox['id']}"
        while True:
            counts = api.get(mailbox_url).json()["counts"]
            done = sum(counts.values())
            if done >= count:
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - clock
        idle = asyncio.run(
            measure_idle(facts, api, emulator, mailbox_url, mailbox["id"], idle_polls)
        )
    return {
        "messages": count,
        "pipeline_s": round(elapsed, 2),
        "msgs_per_s": round(count / elapsed, 1),
        "counts": counts,
        **idle,
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
    requests = sum(emulator.get("/_emulator/requests").json()["counts"].values())
    return {
        "idle_polls": polls,
        "requests_per_idle_poll": round(requests / polls, 2),
        "events_per_idle_poll": round((events_after - events_before) / polls, 2),
    }


if __name__ == "__main__":
    main()
