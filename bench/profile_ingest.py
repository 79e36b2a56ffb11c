"""Where the ingest work goes: `bench.ingest_baseline`'s loop (the same provider calls,
parsing and database writes as the mailbox activities) under cProfile.

    .venv/bin/python -m bench.profile_ingest [--provider gmail] [--messages 1000] [--top 25]
        [--sort cumulative|tottime]

Prints the top functions by cumulative time, then one JSON object with the share of the wall
time spent in the named hot spots.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.harness import postgres_database, running_dev
from bench.ingest import load_backlog
from bench.ingest_baseline import run_baseline

ADDRESS = "support@acme.example"
PROFILED = "support-profiled@acme.example"
HOT_SPOTS = {
    "normalise_email": ("domain/mime.py", "normalise_email"),
    "read_headers": ("domain/mime.py", "read_headers"),
    "process_batch": ("ingest/batch.py", "process_batch"),
    "fetch_into_ledger": ("ingest/fetch.py", "fetch_into_ledger"),
    "insert_new": ("store/ledger.py", "insert_new"),
    "fetch_page": (None, "fetch_page"),
    "commit": ("sqlalchemy/orm/session.py", "commit"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", choices=["gmail", "outlook"], default="gmail")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=["cumulative", "tottime"], default="cumulative")
    parser.add_argument("--save", help="also write the raw profile here (for pstats or snakeviz)")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        facts = stack.enter_context(running_dev(url))
        result = profile(facts, args.provider, args.messages, args.top, args.sort, args.save)
    sys.stdout.write(json.dumps({"provider": args.provider, "db": args.db, **result}) + "\n")


@contextmanager
def counting_statements(counts: Counter[str]) -> Iterator[None]:
    """Count the SQL statements every engine of this process sends, by their first words."""

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[" ".join(statement.split()[:4])[:60]] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def profile(
    facts: dict[str, Any],
    provider: str,
    count: int,
    top: int,
    sort: str = "cumulative",
    save: str | None = None,
) -> dict[str, Any]:
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    api = httpx.Client(
        base_url=facts["api_url"],
        headers={"Authorization": f"Bearer {facts['admin_token']}"},
        timeout=60,
    )
    emulator = httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=60)
    with api, emulator:
        # A mailbox row to take the agent from; its workflow reads an empty inbox.
        load_backlog(emulator, provider, ADDRESS, 0)
        load_backlog(emulator, provider, PROFILED, count)
        started = api.post("/api/v1/mailboxes", json={"provider": provider, "login_hint": ADDRESS})
        location = emulator.get(started.json()["authorization_url"]).headers["location"]
        api.get(location)
        [mailbox] = api.get("/api/v1/mailboxes").json()["items"]
        profiler = cProfile.Profile()
        statements: Counter[str] = Counter()
        clock = time.perf_counter()
        with counting_statements(statements):
            profiler.enable()
            base = run_baseline(facts, emulator, provider, PROFILED, mailbox["id"], count)
            profiler.disable()
        wall = time.perf_counter() - clock
    if save:
        profiler.dump_stats(save)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats(sort).print_stats(top)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    for label, (path, name) in HOT_SPOTS.items():
        cumulative = sum(
            row[3]
            for (filename, _line, function), row in raw.items()
            if function == name and (path is None or filename.endswith(path))
        )
        shares[label] = round(cumulative / wall, 3)
    calls = sum(
        row[0]
        for (filename, _line, function), row in raw.items()
        if function == "normalise_email" and filename.endswith("domain/mime.py")
    )
    return {
        "messages": count,
        "profiled_s": round(wall, 2),
        "msgs_per_s_profiled": round(count / wall, 1),
        "unprofiled_baseline_s_note": "cProfile slows the loop; read the shares, not the speed",
        "normalise_email_calls": calls,
        "share_of_wall": shares,
        "sql_statements": statements.total(),
        "top_statements": dict(statements.most_common(8)),
        "counts": base.counts,
    }


if __name__ == "__main__":
    main()
