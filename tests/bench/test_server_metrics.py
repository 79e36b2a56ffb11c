"""Reading the Temporal server's workflow-task dispatch counters (bench.server_metrics)."""

from __future__ import annotations

from pathlib import Path

from bench.server_metrics import dispatch_between, metrics_url, parse_dispatch_totals

LABELS = (
    'forwarded="{forwarded}",namespace="default",operation="MatchingEngine",'
    'partition="{partition}",service_name="matching",source="{source}",task_priority="",'
    'task_type="{task_type}",taskqueue="{queue}",worker_version="__unversioned__"'
)


def series(count: float, seconds: float, **labels: str) -> str:
    fields = {"forwarded": "false", "partition": "__sticky__", "task_type": "Workflow"} | labels
    text = LABELS.format(**fields)
    return (
        f"task_dispatch_latency_count{{{text}}} {count}\n"
        f"task_dispatch_latency_sum{{{text}}} {seconds}\n"
    )


def reading(history: float, backlog: float, backlog_s: float) -> str:
    return (
        "# TYPE task_dispatch_latency histogram\n"
        + series(history, history * 0.001, source="History", queue="deskclone")
        + series(backlog, backlog_s, source="DbBacklog", queue="deskclone")
        # Counted again where it was forwarded from, and other queues and task types: ignored.
        + series(backlog, backlog_s, source="DbBacklog", queue="deskclone", forwarded="true")
        + series(50, 9.0, source="DbBacklog", queue="deskclone", task_type="Activity")
        + series(70, 7.0, source="DbBacklog", queue="bench_fanout_baseline_1a2b")
    )


def test_share_and_wait_of_backlog_dispatch_between_two_readings() -> None:
    before = parse_dispatch_totals(reading(history=1000, backlog=10, backlog_s=2.0))
    after = parse_dispatch_totals(reading(history=1900, backlog=110, backlog_s=52.0))
    dispatch = dispatch_between(before, after, "deskclone")
    assert dispatch.workflow_tasks == 1000
    assert dispatch.from_backlog_pct == 10.0
    assert dispatch.backlog_wait_mean_ms == 500.0


def test_queue_names_are_matched_as_the_metrics_spell_them() -> None:
    after = parse_dispatch_totals(reading(history=0, backlog=0, backlog_s=0))
    dispatch = dispatch_between({}, after, "bench-fanout-baseline-1a2b")
    assert (dispatch.workflow_tasks, dispatch.from_backlog_pct) == (70, 100.0)
    assert dispatch.backlog_wait_mean_ms == 100.0


def test_no_backlog_means_no_wait_figure() -> None:
    after = parse_dispatch_totals(reading(history=5, backlog=0, backlog_s=0))
    dispatch = dispatch_between({}, after, "deskclone")
    assert (dispatch.from_backlog_pct, dispatch.backlog_wait_mean_ms) == (0.0, None)


def test_metrics_address_comes_from_the_dev_server_log(tmp_path: Path) -> None:
    assert metrics_url(tmp_path) is None
    (tmp_path / "temporal.log").write_text(
        "Temporal Server:      localhost:7233\n"
        "Temporal Metrics:     http://localhost:39801/metrics\n"
    )
    assert metrics_url(tmp_path) == "http://localhost:39801/metrics"
