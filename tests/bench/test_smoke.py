"""Each benchmark once at a tiny size: it runs to the end, its last line is one JSON object with
the documented keys, and its counts add up. Speed is not judged here; the real runs are in
docs/benchmarks.md. The runs start together, a few at a time (tests/bench/conftest.py)."""

from __future__ import annotations

from typing import Any

# test_<name> checks the run <name>: "module args...". Slowest first: they start in this order.
BENCH_RUNS: dict[str, str] = {
    # Interval 2 s is below the API's minimum, but this benchmark writes its mailbox rows
    # directly; SQLite has no statistics to let settle.
    "fanout": "fanout --mailboxes 3 --interval 2 --duration 4 --db sqlite --settle 0",
    "latency": "latency --messages 3 --interval-messages 1 --db sqlite",
    "ingest_gmail_postgres": "ingest --messages 10 --idle-polls 1 --timeline",  # default database
    "ingest_outlook_sqlite": "ingest --provider outlook --messages 10 --idle-polls 1 --db sqlite",
    "intake": "intake --concurrency 2 --duration 1 --db sqlite",
    "push": "push --mailboxes 3 --mails 6 --rate 3 --idle-duration 2 --db sqlite",
    # Its own Dovecot (emulator/dovecot.py), IDLE held by the worker's supervisor.
    "push_imap": "push --provider imap --mailboxes 3 --mails 6 --rate 3 --idle-duration 2",
    "events": "events --concurrency 2 --duration 2 --warmup 0 --db sqlite --slow-endpoint",
    "intake_latency": "intake_latency --source widget --requests 3 --db sqlite",
    "parse": "parse --messages 20",
    "workflow_memory": "workflow_memory --instances 20",
}
OUTCOMES = ("tickets_created", "appended", "skipped", "failed")


def has_keys(result: dict[str, Any], *keys: str) -> None:
    missing = [key for key in keys if key not in result]
    assert not missing, f"missing {missing} in {result}"


def assert_ingest(result: dict[str, Any], provider: str, db: str, messages: int) -> None:
    has_keys(
        result,
        "pipeline_s",
        "baseline_s",
        "ratio",
        "msgs_per_s",
        "baseline_msgs_per_s",
        "counts",
        "baseline_counts",
        "pipeline_provider_requests",
        "baseline_provider_requests",
        "idle_polls",
        "requests_per_idle_poll",
        "events_per_idle_poll",
        "worker_cpu_s",
    )
    assert result["worker_cpu_s"] > 0
    assert (result["provider"], result["db"], result["messages"]) == (provider, db, messages)
    for counts in (result["counts"], result["baseline_counts"]):
        assert set(counts) == set(OUTCOMES)
        assert sum(counts.values()) == messages
        assert counts["failed"] == 0
    assert result["pipeline_provider_requests"] > 0 and result["baseline_provider_requests"] > 0
    assert result["idle_polls"] == 1
    assert result["requests_per_idle_poll"] > 0 and result["events_per_idle_poll"] > 0


def test_ingest_gmail_postgres(bench_result: dict[str, Any]) -> None:
    assert_ingest(bench_result, "gmail", "postgres", 10)


def test_ingest_outlook_sqlite(bench_result: dict[str, Any]) -> None:
    assert_ingest(bench_result, "outlook", "sqlite", 10)


def test_intake(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(result, "rps", "p50_ms", "p99_ms", "error_kinds", "baseline_rps", "ratio")
    assert result["requests"] > 0 and result["baseline_requests"] > 0
    assert result["errors"] == sum(result["error_kinds"].values()) == 0
    # Every successful request made exactly one ticket.
    assert result["tickets_created"] == result["requests"] - result["errors"]


def test_intake_latency(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(result, "p50_ms", "p99_ms", "max_ms", "baseline_p50_ms", "baseline_p99_ms")
    assert (result["source"], result["requests"], result["errors"]) == ("widget", 3, 0)
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_fanout(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(
        result,
        "lateness_p50_ms",
        "lateness_p99_ms",
        "events_per_idle_poll",
        "worker_rss_mb",
        "worker_cpu_pct",
        "baseline_lateness_p99_ms",
        "lateness_p99_ratio",
    )
    assert (result["mailboxes"], result["interval_s"]) == (3, 2)
    assert result["polls"] > 0 and result["baseline_polls"] > 0
    assert result["requests_per_idle_poll"] > 0
    # PostgreSQL's write counters only; SQLite has none.
    assert result["db_writes_per_idle_poll"] is None
    # The stages of the latest polls' lateness are parts of it: they add up to no more.
    stages = result["tail_stages_ms"]
    assert set(stages) == set(result["baseline_tail_stages_ms"])
    assert set(stages) == {"timer", "task_queue", "task_run", "activity_queue"}
    assert 0 < sum(stages.values()) <= result["lateness_max_ms"] + 1, result
    # The dev server's metrics were read for both phases.
    for prefix in ("", "baseline_"):
        assert 0 <= result[f"{prefix}workflow_tasks_from_server_backlog_pct"] <= 100, result


def test_latency(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(
        result,
        "poll_now_p50_ms",
        "poll_now_p99_ms",
        "interval_p50_ms",
        "interval_p99_ms",
        "baseline_p50_ms",
        "baseline_p99_ms",
        "read_p50_ms",
        "ratio_p50",
        "poll_now_goal_met",
        "interval_goal_met",
    )
    assert (result["messages"], result["interval_messages"], result["interval_s"]) == (3, 1, 10)
    assert result["delivered"] == 4 == result["tickets_created"]
    assert sum(result["counts"].values()) == result["delivered"]
    assert result["baseline_delivered"] == 3 == result["baseline_tickets_created"]
    assert sum(result["baseline_counts"].values()) == 3
    assert 0 < result["poll_now_p50_ms"] <= result["poll_now_p99_ms"]
    assert 0 < result["interval_p50_ms"] <= result["interval_p99_ms"]


def test_parse(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(result, "msgs_per_s", "baseline_msgs_per_s", "ratio", "fixture_msgs_per_s")
    assert result["messages"] == 20 and result["fixture_messages"] > 0
    assert result["msgs_per_s"] > 0 and result["baseline_msgs_per_s"] > 0


def test_workflow_memory(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(result, "shared_rss_kib_per_instance", "plain_rss_kib_per_instance")
    assert result["instances"] == 20
    # Compiled once, a sandbox keeps no code of its own: its Python heap is the smaller.
    assert 0 < result["shared_heap_kib_per_instance"] < result["plain_heap_kib_per_instance"]


def test_push(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(
        result,
        "mailboxes",
        "mails",
        "push_p50_ms",
        "push_p99_ms",
        "idle_requests_per_mailbox_hour",
        "worker_rss_mb",
        "lost",
        "duplicated",
    )
    assert (result["mailboxes"], result["mails"]) == (3, 6)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert 0 < result["push_p50_ms"] <= result["push_p99_ms"]
    assert result["worker_rss_mb"] > 0
    # Delivered by push: every email was announced or caught by the follow-up poll.
    assert sum(n for k, n in result["pushes"].items() if k.endswith("delivered")) > 0


def test_events(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(
        result,
        "events",
        "events_per_s",
        "delivery_p50_ms",
        "delivery_p99_ms",
        "lost",
        "ratio",
        "creation_per_s",
        "backlog_at_end",
        "slow_delivered",
    )
    assert result["events"] > 0 and result["errors"] == 0
    assert result["lost"] == 0  # the healthy receiver got every event
    assert 0 < result["delivery_p50_ms"] <= result["delivery_p99_ms"]
    assert result["events_per_s"] > 0 and result["ratio"] > 0


def test_push_imap(bench_result: dict[str, Any]) -> None:
    result = bench_result
    has_keys(result, "push_p50_ms", "push_p99_ms", "imap_connections", "imap_idle_live")
    assert (result["provider"], result["mailboxes"], result["mails"]) == ("imap", 3, 6)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["imap_idle_live"] == 3
    # Each watch logged in, and the bench for each APPEND: the count the idle figure uses.
    assert result["imap_logins"] >= 3 + 6
    assert 0 < result["push_p50_ms"] <= result["push_p99_ms"]
