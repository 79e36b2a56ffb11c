"""The Temporal dev server's own account of how it handed out workflow tasks, read from its
Prometheus endpoint (`temporal server start-dev` prints the address in its log).

A workflow task goes straight to a worker poll that is waiting for it (sync match, source
"History") or, when none is waiting, into the server's database, to be dispatched from there
later (source "DbBacklog"). `bench.fanout` reads the counts before and after each window: the
share dispatched from the backlog, and how long those waited, say how much of a poll's
lateness the server's matching added, for the mailboxes and for the baseline alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx

LOG_LINE = re.compile(r"Temporal Metrics:\s+(\S+)")
SERIES = re.compile(r"^task_dispatch_latency_(count|sum)\{([^}]*)\}\s+(\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')

# (task queue as the metrics spell it, source) -> [tasks, seconds waited]
Totals = dict[tuple[str, str], list[float]]


def metrics_url(data_dir: str | Path) -> str | None:
    """The dev server's metrics address, from the log `deskclone dev` keeps of it."""
    log = Path(data_dir) / "temporal.log"
    if not log.exists():
        return None
    found = LOG_LINE.search(log.read_text(errors="replace"))
    return found.group(1) if found else None


def metric_queue_name(task_queue: str) -> str:
    """Task queue names appear in the server's metrics with anything but [A-Za-z0-9_] as `_`."""
    return re.sub(r"[^A-Za-z0-9_]", "_", task_queue)


def parse_dispatch_totals(text: str) -> Totals:
    """Workflow tasks dispatched, and seconds they waited, per task queue and source. Only the
    partition that dispatched counts (`forwarded="false"`), so nothing is counted twice."""
    totals: Totals = {}
    for line in text.splitlines():
        series = SERIES.match(line)
        if series is None:
            continue
        kind, labels_text, value = series.groups()
        labels = dict(LABEL.findall(labels_text))
        if labels.get("task_type") != "Workflow" or labels.get("forwarded") != "false":
            continue
        entry = totals.setdefault((labels.get("taskqueue", ""), labels.get("source", "")), [0, 0])
        entry[0 if kind == "count" else 1] += float(value)
    return totals


def dispatch_totals(url: str | None) -> Totals | None:
    if url is None:
        return None
    try:
        answer = httpx.get(url, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_dispatch_totals(answer.text)


@dataclass
class Dispatch:
    workflow_tasks: int
    from_backlog_pct: float
    backlog_wait_mean_ms: float | None


def dispatch_between(before: Totals, after: Totals, task_queue: str) -> Dispatch:
    """How the workflow tasks of `task_queue` (its sticky queues included) were dispatched
    between two readings."""
    name = metric_queue_name(task_queue)
    tasks = backlog = waited = 0.0
    for (queue, source), (count, seconds) in after.items():
        if queue != name:
            continue
        earlier = before.get((queue, source), [0, 0])
        tasks += count - earlier[0]
        if source == "DbBacklog":
            backlog += count - earlier[0]
            waited += seconds - earlier[1]
    return Dispatch(
        workflow_tasks=int(tasks),
        from_backlog_pct=round(100 * backlog / tasks, 2) if tasks else 0.0,
        backlog_wait_mean_ms=round(1000 * waited / backlog, 1) if backlog else None,
    )
