"""Many idle connected mailboxes polling on their interval, against bare timer loops.

    .venv/bin/python -m bench.fanout [--mailboxes 1000] [--interval 60] [--duration 300]
                                     [--db postgres|sqlite] [--provider gmail|outlook]
                                     [--polls-csv FILE]

Setup (not measured): M empty emulator mailboxes; each gets credentials from the product's own
OAuth code exchange (`bench.ingest_baseline.connect_mailboxes`), a mailbox row written with
`store.mailboxes.connect` (encrypted as the API does) and the interval set, and its workflow
started the way the OAuth callback starts it (`api.mailbox_control.signal(..., "reconnect")`).
Starts are spread evenly over one interval with random jitter, so polls do not align.

Measured, over `duration` seconds once every mailbox has made its first (connecting) poll:
- per poll lateness = the fetch activity's start (for the local fetch activity, the start of
  the workflow task that runs it) minus the timer's due time (TimerStarted time + its timeout),
  from each workflow's history, and where the latest 1 % of polls spent it
  (`tail_stages_ms`): the server firing the timer, the workflow task waiting for a worker, the
  worker running it, the activity waiting for a worker; and, from the Temporal server's own
  metrics (`bench.server_metrics`), the share of workflow tasks it dispatched from its
  database backlog because no worker poll was waiting, and how long those waited;
- provider requests per idle poll (the emulator's request counts), history events per idle
  poll (events written in the window), database writes per idle poll (pg_stat_database
  tup_inserted + tup_updated + tup_deleted and xact_commit deltas of the bench database);
- the worker process's RSS (peak of samples, and before the first mailbox) and CPU (utime +
  stime over the window), from /proc.

Baseline, same server, same run, after the mailbox workflows are terminated: M bare
timer-loop workflows (one no-op activity, then sleep the interval) on a worker in this
process, started with the same spread, measured over the same duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import ssl
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psycopg
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from api.mailbox_control import signal
from bench.harness import cpu_seconds, percentile, postgres_database, rss_mb, running_dev
from bench.ingest_baseline import connect_mailboxes, worker_settings
from bench.server_metrics import Dispatch, dispatch_between, dispatch_totals, metrics_url
from bench.timer_loop import TimerLoopWorkflow, tick
from store.db import make_engine, transaction
from store.models import Mailbox
from workflows.mailbox import mailbox_workflow_id

# Seconds let pass before and after the window so PostgreSQL's statistics reach pg_stat_*
# (`--settle`; smoke runs on SQLite, which has none to wait for, set 0).
DEFAULT_SETTLE_S = 12.0
# Where a poll's lateness is spent (`PollTrace.stages_ms`).
STAGES = ("timer", "task_queue", "task_run", "activity_queue")


@dataclass
class Started:
    """A poll of the window whose fetch started: when it was due (Unix seconds), how late it
    started, and where that lateness was spent (`PollTrace.stages_ms`)."""

    due: float
    late_ms: float
    stages_ms: dict[str, float] | None


@dataclass
class Window:
    start: datetime
    end: datetime
    polls: int = 0
    events: int = 0
    started: list[Started] = field(default_factory=list)
    # Polls whose fetch needed a retry (a retry waits at least 1 s).
    retried: int = 0

    @property
    def lateness_ms(self) -> list[float]:
        return [poll.late_ms for poll in self.started]

    def late_at_s(self, over_ms: float = 1000) -> list[float]:
        """When (seconds into the window) polls started over `over_ms` late: spread out or
        bunched together."""
        start = self.start.timestamp()
        return sorted(poll.due - start for poll in self.started if poll.late_ms > over_ms)

    def tail_stages_ms(self, fraction: float = 0.01) -> dict[str, float]:
        """Where the latest `fraction` of polls spent their lateness, mean ms per stage."""
        count = max(1, round(len(self.started) * fraction))
        latest = sorted(self.started, key=lambda poll: poll.late_ms)[-count:]
        tail = [poll.stages_ms for poll in latest if poll.stages_ms is not None]
        return {
            stage: round(statistics.fmean(s[stage] for s in tail), 1) if tail else 0.0
            for stage in STAGES
        }


# --- process and database counters ------------------------------------------------------


def pg_counters(database_url: str | None) -> dict[str, int] | None:
    """Commits of the bench database and rows written per application table (catalog
    writes such as autovacuum's ANALYZE are left out)."""
    if database_url is None:
        return None
    with psycopg.connect(database_url, autocommit=True) as conn:
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        tables = conn.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    assert commits is not None
    return {"xact_commit": int(commits[0])} | {f"table:{n}": int(w) for n, w in tables}


# --- history analysis -------------------------------------------------------------------


@dataclass
class PollTrace:
    """The events between a poll's due time and its fetch starting, as Unix seconds."""

    due: float
    fired: float | None = None
    task_scheduled: float | None = None
    task_started: float | None = None
    task_completed: float | None = None
    activity_scheduled: float | None = None

    def stages_ms(self, activity_started: float) -> dict[str, float] | None:
        """Lateness split where it was spent: the server firing the timer, the workflow task
        waiting for a worker, the worker running it, the activity waiting for a worker."""
        fired, scheduled, started = self.fired, self.task_scheduled, self.task_started
        completed, activity = self.task_completed, self.activity_scheduled
        if fired is None or scheduled is None or started is None:
            return None
        if completed is None or activity is None:
            return None
        return {
            "timer": (fired - self.due) * 1000,
            "task_queue": (started - scheduled) * 1000,
            "task_run": (completed - started) * 1000,
            "activity_queue": (activity_started - activity) * 1000,
        }

    def local_stages_ms(self) -> dict[str, float] | None:
        """The same split for a local activity, which starts when its workflow task does."""
        fired, scheduled, started = self.fired, self.task_scheduled, self.task_started
        if fired is None or scheduled is None or started is None:
            return None
        return {
            "timer": (fired - self.due) * 1000,
            "task_queue": (started - scheduled) * 1000,
            "task_run": 0.0,
            "activity_queue": 0.0,
        }


def local_activity_name(event: HistoryEvent) -> str | None:
    """The activity type a local activity's marker records, or None for other markers."""
    details = event.marker_recorded_event_attributes.details
    if "data" not in details or not details["data"].payloads:
        return None
    data = json.loads(details["data"].payloads[0].data)
    name = data.get("activity_type") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


async def analyse(
    handles: list[WorkflowHandle[Any, Any]], window: Window, activity_name: str
) -> None:
    """Polls started inside the window, their lateness (and its stages), and the events
    written in it."""
    gate = asyncio.Semaphore(16)
    start, end = window.start.timestamp(), window.end.timestamp()

    async def one(handle: WorkflowHandle[Any, Any]) -> None:
        async with gate:
            history = await handle.fetch_history()
        trace: PollTrace | None = None  # since the last timer started
        polling: PollTrace | None = None  # a poll in the window whose fetch is scheduled
        for event in history.events:
            at = event.event_time.ToNanoseconds() / 1e9
            if start <= at < end:
                window.events += 1
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_TIMER_STARTED:
                timeout = event.timer_started_event_attributes.start_to_fire_timeout
                trace = PollTrace(due=at + timeout.ToTimedelta().total_seconds())
            elif trace is None:
                pass
            elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
                trace.fired = at
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                trace.task_scheduled = at
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                trace.task_started = at
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                trace.task_completed = at
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                # A local activity (the mailbox fetch, patch "local-fetch") runs in the worker
                # as soon as the workflow task that scheduled it starts: its lateness ends there.
                name = local_activity_name(event)
                started = trace.task_started
                if name == activity_name and started is not None and start <= trace.due < end:
                    window.polls += 1
                    late_ms = (started - trace.due) * 1000
                    window.started.append(Started(trace.due, late_ms, trace.local_stages_ms()))
                trace = None
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                if name == activity_name and start <= trace.due < end:
                    trace.activity_scheduled = at
                    window.polls += 1
                    polling = trace
                trace = None
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and polling is not None:
                late_ms = (at - polling.due) * 1000
                window.started.append(Started(polling.due, late_ms, polling.stages_ms(at)))
                window.retried += event.activity_task_started_event_attributes.attempt > 1
                polling = None

    await asyncio.gather(*(one(h) for h in handles))


# --- the two phases ---------------------------------------------------------------------


async def spread(count: int, interval: float, start_one: Any) -> None:
    """Start `count` things evenly over `interval` seconds, each with random jitter."""
    rng = random.Random(11)
    began = time.perf_counter()
    offsets = sorted(
        min(interval, max(0.0, (i + rng.uniform(0, 1)) * interval / count)) for i in range(count)
    )
    gate = asyncio.Semaphore(32)

    async def at(i: int, offset: float) -> None:
        await asyncio.sleep(max(0.0, began + offset - time.perf_counter()))
        async with gate:
            await start_one(i)

    await asyncio.gather(*(at(i, o) for i, o in enumerate(offsets)))


async def measure(
    emulator: httpx.Client | None,
    database_url: str | None,
    pid: int,
    duration: float,
    settle: float,
    server_metrics: str | None,
    task_queue: str,
) -> dict[str, Any]:
    if emulator is not None:
        emulator.post("/_emulator/requests/reset").raise_for_status()
    before = pg_counters(database_url)
    dispatch_before = dispatch_totals(server_metrics)
    cpu_before = cpu_seconds(pid)
    started_wall = time.perf_counter()
    window_start = datetime.now().astimezone()
    peak = rss_mb(pid)
    while time.perf_counter() - started_wall < duration:
        await asyncio.sleep(min(5.0, duration - (time.perf_counter() - started_wall)))
        peak = max(peak, rss_mb(pid))
    window_end = datetime.now().astimezone()
    wall = time.perf_counter() - started_wall
    cpu = cpu_seconds(pid) - cpu_before
    dispatch_after = dispatch_totals(server_metrics)
    requests = None
    if emulator is not None:
        counts = emulator.get("/_emulator/requests").json()["counts"]
        requests = sum(counts.values())
    # A backend's statistics reach pg_stat_* when it commits, or within 10 s when idle
    # (PostgreSQL 15); the same lag applies to the first reading.
    await asyncio.sleep(max(0.0, settle - 1))
    after = pg_counters(database_url)
    return {
        "window": Window(window_start, window_end),
        "requests": requests,
        "db": (
            {k: after.get(k, 0) - before.get(k, 0) for k in after}
            if before is not None and after is not None
            else None
        ),
        "rss_mb": peak,
        "cpu_pct": 100 * cpu / wall,
        "dispatch": (
            dispatch_between(dispatch_before, dispatch_after, task_queue)
            if dispatch_before is not None and dispatch_after is not None
            else None
        ),
    }


async def run_mailboxes(
    facts: dict[str, Any],
    database_url: str | None,
    provider: str,
    count: int,
    interval: int,
    duration: float,
    settle: float,
) -> dict[str, Any]:
    settings = worker_settings(facts)
    engine = make_engine(settings.effective_database_url)
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    emulator = httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=60)
    client = await Client.connect(facts["temporal_address"])
    worker_pid = int(facts["pids"]["worker"])
    # The worker before any mailbox: what the mailboxes add is the peak minus this.
    idle_rss_mb = rss_mb(worker_pid)
    setup_started = time.perf_counter()
    addresses = [f"fanout{i}@acme.example" for i in range(count)]
    rows = await connect_mailboxes(facts, emulator, provider, addresses, interval=interval)
    credentials_s = time.perf_counter() - setup_started

    async def start_one(i: int) -> None:
        await signal(client, settings, rows[i], "reconnect")

    await spread(count, interval, start_one)
    handles: list[WorkflowHandle[Any, Any]] = [
        client.get_workflow_handle(mailbox_workflow_id(m.id)) for m in rows
    ]
    # Every first (connecting) poll done: each mailbox row has a last poll time.
    while True:
        with transaction(engine) as session:
            polled = sum(
                1
                for m in session.exec(select(Mailbox)).all()
                if m.last_polled_at is not None and m.address.startswith("fanout")
            )
        if polled >= count:
            break
        await asyncio.sleep(1)
    settle_s = time.perf_counter() - setup_started
    # Let the connecting polls' statistics reach pg_stat_* (idle backends flush within 10 s).
    await asyncio.sleep(settle)
    server = metrics_url(facts["worker_env"]["DESKCLONE_DATA_DIR"])
    measured = await measure(
        emulator, database_url, worker_pid, duration, settle, server, settings.task_queue
    )
    window: Window = measured["window"]
    await analyse(handles, window, "fetch_new_mail")
    # Stop them before the baseline runs on the same server.
    gate = asyncio.Semaphore(32)

    async def terminate(handle: WorkflowHandle[Any, Any]) -> None:
        async with gate:
            await handle.terminate(reason="bench.fanout: mailbox phase over")

    await asyncio.gather(*(terminate(h) for h in handles))
    emulator.close()
    engine.dispose()
    return {
        "setup_credentials_s": round(credentials_s, 1),
        "setup_until_first_polls_s": round(settle_s, 1),
        "idle_rss_mb": idle_rss_mb,
        "window": window,
        **{k: v for k, v in measured.items() if k != "window"},
    }


async def run_baseline(
    facts: dict[str, Any], count: int, interval: int, duration: float, settle: float
) -> dict[str, Any]:
    client = await Client.connect(facts["temporal_address"])
    task_queue = f"bench-fanout-baseline-{uuid.uuid4()}"
    handles: list[WorkflowHandle[Any, Any]] = []
    with ThreadPoolExecutor(32) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[TimerLoopWorkflow],
            activities=[tick],
            activity_executor=pool,
            max_concurrent_activities=32,
        ):

            async def start_one(i: int) -> None:
                handle = await client.start_workflow(
                    TimerLoopWorkflow.run,
                    interval,
                    id=f"bench-timer-loop-{i}-{uuid.uuid4().hex[:8]}",
                    task_queue=task_queue,
                )
                handles.append(handle)

            await spread(count, interval, start_one)
            await asyncio.sleep(5)  # the last started ones make their first tick
            server = metrics_url(facts["worker_env"]["DESKCLONE_DATA_DIR"])
            measured = await measure(None, None, os.getpid(), duration, settle, server, task_queue)
            window: Window = measured["window"]
            await analyse(handles, window, "bench_tick")
            for handle in handles:
                await handle.terminate(reason="bench.fanout: baseline over")
    return {"window": window, "cpu_pct": measured["cpu_pct"], "dispatch": measured["dispatch"]}


def backlog_fields(prefix: str, dispatch: Dispatch | None) -> dict[str, Any]:
    """The server's share of workflow tasks dispatched from its database backlog (no worker
    poll was waiting for them), and their mean wait there; null without the server's metrics."""
    return {
        f"{prefix}workflow_tasks_from_server_backlog_pct": dispatch and dispatch.from_backlog_pct,
        f"{prefix}server_backlog_wait_mean_ms": dispatch and dispatch.backlog_wait_mean_ms,
    }


def write_polls_csv(path: str, windows: dict[str, Window]) -> None:
    with open(path, "w") as out:
        out.write(",".join(["phase", "due_unix_s", "lateness_ms", *STAGES]) + "\n")
        for phase, window in windows.items():
            for poll in sorted(window.started, key=lambda poll: poll.due):
                stages = poll.stages_ms
                parts = [f"{stages[s]:.1f}" if stages else "" for s in STAGES]
                out.write(",".join([phase, f"{poll.due:.3f}", f"{poll.late_ms:.1f}", *parts]))
                out.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--provider", choices=["gmail", "outlook"], default="gmail")
    parser.add_argument(
        "--settle", type=float, default=DEFAULT_SETTLE_S, help="statistics settle, s"
    )
    parser.add_argument(
        "--polls-csv",
        help="also write every poll (phase, due time as Unix seconds, lateness and its "
        "stages in ms) here, to line the tail up with the worker's and server's logs",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        facts = stack.enter_context(running_dev(url))
        mail = asyncio.run(
            run_mailboxes(
                facts,
                url,
                args.provider,
                args.mailboxes,
                args.interval,
                args.duration,
                args.settle,
            )
        )
        base = asyncio.run(
            run_baseline(facts, args.mailboxes, args.interval, args.duration, args.settle)
        )
    window: Window = mail["window"]
    baseline: Window = base["window"]
    if args.polls_csv:
        write_polls_csv(args.polls_csv, {"mailbox": window, "baseline": baseline})
    polls = max(window.polls, 1)
    db = mail["db"]
    result = {
        "db": args.db,
        "provider": args.provider,
        "mailboxes": args.mailboxes,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "polls": window.polls,
        "lateness_p50_ms": round(statistics.median(window.lateness_ms), 1),
        "lateness_p99_ms": round(percentile(window.lateness_ms, 0.99), 1),
        "lateness_max_ms": round(max(window.lateness_ms), 1),
        "polls_retried": window.retried,
        "polls_over_1s_late_at_s": [round(t) for t in window.late_at_s()[:60]],
        "requests_per_idle_poll": round(mail["requests"] / polls, 2),
        "events_per_idle_poll": round(window.events / polls, 2),
        "db_writes_per_idle_poll": (
            round(sum(v for k, v in db.items() if k.startswith("table:")) / polls, 3)
            if db
            else None
        ),
        "db_writes_by_table": (
            {k[6:]: v for k, v in db.items() if k.startswith("table:") and v} if db else None
        ),
        "db_commits_per_idle_poll": round(db["xact_commit"] / polls, 2) if db else None,
        "worker_rss_mb": round(mail["rss_mb"], 1),
        "worker_rss_before_mailboxes_mb": round(mail["idle_rss_mb"], 1),
        "worker_cpu_pct": round(mail["cpu_pct"], 1),
        "baseline_polls": baseline.polls,
        "baseline_lateness_p50_ms": round(statistics.median(baseline.lateness_ms), 1),
        "baseline_lateness_p99_ms": round(percentile(baseline.lateness_ms, 0.99), 1),
        "tail_stages_ms": window.tail_stages_ms(),
        "baseline_tail_stages_ms": baseline.tail_stages_ms(),
        **backlog_fields("", mail["dispatch"]),
        **backlog_fields("baseline_", base["dispatch"]),
        "baseline_events_per_poll": round(baseline.events / max(baseline.polls, 1), 2),
        "lateness_p99_ratio": round(
            percentile(window.lateness_ms, 0.99) / max(percentile(baseline.lateness_ms, 0.99), 1.0),
            2,
        ),
        "setup_credentials_s": mail["setup_credentials_s"],
        "setup_until_first_polls_s": mail["setup_until_first_polls_s"],
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
