"""Push: mail spread over many live mailboxes becomes tickets without any poll-now, and idle
mailboxes cost almost nothing.

    .venv/bin/python -m bench.push [--mailboxes 1000] [--mails 1000] [--rate 20]
                                   [--provider gmail|outlook|imap] [--idle-duration 960]
                                   [--db postgres|sqlite]

Setup (not measured): `deskclone dev` with push on (as `make run`); M emulator mailboxes, each
with credentials from the product's own OAuth code exchange, a mailbox row written as the OAuth
callback writes it, and its workflow started as the callback starts it; then wait until every
mailbox's push is live and its first poll done. The poll interval stays the default (60 s), so
with push live each polls only as the safety net (DESKCLONE_PUSH_SAFETY_POLL_SECONDS, 900 s).

Measured:
- delivery: `--mails` emails sent through the emulator's control API to random mailboxes at
  `--rate` per second; for each, from the moment the emulator accepted it (it is then in the
  mailbox and Gmail publishes / Graph notifies) to its ticket row's `created_at`
  (`push_p50_ms`, `push_p99_ms`, `push_max_ms`); `lost` = emails with no ticket
  `--settle` seconds after the last was sent; `duplicated` = emails with more than one;
- idle: the emulator's request counts over `--idle-duration` seconds with no mail, per
  mailbox-hour (`idle_requests_per_mailbox_hour`; safety-net polls and renewals): run it for
  at least one safety interval (900 s), or the safety polls that fall due later are missed;
- the worker's RSS at the end (`worker_rss_mb`), and the emulator's push counts.

With `--provider imap` the mailboxes are users of a real Dovecot (emulator/dovecot.py) started
for the run, connected as the API's connect stores them (plaintext on loopback, as `deskclone
dev` allows); delivery is an IMAP `APPEND` and push is the worker's IDLE supervisor. The same
keys, where `idle_requests_per_mailbox_hour` counts IMAP logins (the polls' connections and
any IDLE reconnections) and `pushes` is empty; beside them `imap_connections` (the worker's
established connections to Dovecot at the end), `dovecot_processes` and `imap_idle_live`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import httpx
from sqlmodel import col, select

from bench import imap_push as imap_bench
from bench.harness import percentile, postgres_database, rss_mb, running_dev
from bench.ingest_baseline import connect_mailboxes, start_until_ready, worker_settings
from domain.outcomes import PushState
from emulator.dovecot import Dovecot
from store.db import make_engine, transaction
from store.models import Mailbox, Ticket

DELIVER = "/_emulator/mailboxes/{}/messages"


def mail(subject: str) -> bytes:
    sender = f"c{uuid.uuid4().hex[:10]}@customer.example"
    return (
        f"From: {sender}\r\nTo: support@acme.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\n\r\nPlease help.\r\n"
    ).encode()


async def connect_all(facts: dict[str, Any], provider: str, count: int) -> list[Mailbox]:
    """M mailboxes connected as the OAuth callback connects them, workflows started; returns
    once every push is live and every first poll done."""
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    addresses = [f"push{i}@acme.example" for i in range(count)]
    with httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=60) as emulator:
        rows = await connect_mailboxes(facts, emulator, provider, addresses)
    await start_until_ready(
        facts,
        rows,
        ready=lambda m: m.push_state == PushState.LIVE and m.last_polled_at is not None,
        failed=lambda m: m.push_state == PushState.FAILED,
    )
    return rows


def deliver_spread(
    facts: dict[str, Any], rows: list[Mailbox], count: int, rate: float
) -> dict[str, float]:
    """Subject -> when the emulator accepted it (Unix seconds), sent at `rate` per second."""
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    sent: dict[str, float] = {}
    rng = random.Random(7)
    started = time.monotonic()
    with httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=30) as emulator:
        for i in range(count):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            subject = f"Push bench {i} {uuid.uuid4().hex[:8]}"
            address = rng.choice(rows).address
            answer = emulator.post(
                DELIVER.format(address),
                content=mail(subject),
                headers={"Content-Type": "message/rfc822"},
            )
            answer.raise_for_status()
            sent[subject] = time.time()
    return sent


def tickets_for(database_url: str, subjects: set[str]) -> dict[str, list[datetime]]:
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            rows = session.exec(
                select(Ticket.title, Ticket.created_at).where(col(Ticket.title).in_(subjects))
            ).all()
    finally:
        engine.dispose()
    found: dict[str, list[datetime]] = {}
    for title, created in rows:
        found.setdefault(title, []).append(created)
    return found


def over_by_tenth(in_send_order: list[float], limit_ms: float) -> list[int]:
    """How many of each tenth of the mails (in the order sent) took over `limit_ms`."""
    tenths = [0] * 10
    for i, ms in enumerate(in_send_order):
        if ms > limit_ms:
            tenths[i * 10 // len(in_send_order)] += 1
    return tenths


def request_count(facts: dict[str, Any]) -> int:
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    with httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=30) as emulator:
        counts: dict[str, int] = emulator.get("/_emulator/requests").json()["counts"]
    return sum(counts.values())


def push_counts(facts: dict[str, Any]) -> dict[str, int]:
    verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    with httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=30) as emulator:
        pushes: dict[str, int] = emulator.get("/_emulator/requests").json().get("pushes", {})
    return pushes


def run(
    args: argparse.Namespace, facts: dict[str, Any], dovecot: Dovecot | None = None
) -> dict[str, Any]:
    setup_started = time.monotonic()
    if dovecot is not None:
        rows = asyncio.run(imap_bench.connect_all(facts, dovecot, args.mailboxes))
    else:
        rows = asyncio.run(connect_all(facts, args.provider, args.mailboxes))
    setup_s = time.monotonic() - setup_started
    database_url = worker_settings(facts).effective_database_url
    if dovecot is not None:
        sent = imap_bench.deliver_spread(dovecot, rows, args.mails, args.rate)
    else:
        sent = deliver_spread(facts, rows, args.mails, args.rate)
    deadline = time.monotonic() + args.settle
    found: dict[str, list[datetime]] = {}
    while time.monotonic() < deadline:
        found = tickets_for(database_url, set(sent))
        if len(found) == len(sent):
            break
        time.sleep(1)
    # In send order: a tail from a queue the setup left behind sits in the first tenths.
    timed = [(min(found[s]).timestamp() - at) * 1000 for s, at in sent.items() if s in found]
    latencies = sorted(timed)
    worker_pid = int(facts["pids"]["worker"])
    before = imap_bench.logins(dovecot) if dovecot else request_count(facts)
    time.sleep(args.idle_duration)
    after = imap_bench.logins(dovecot) if dovecot else request_count(facts)
    idle_requests = after - before
    mailbox_hours = args.mailboxes * args.idle_duration / 3600
    extra = imap_bench.figures(dovecot, worker_pid, database_url) if dovecot else {}
    return {
        "provider": args.provider,
        "db": args.db,
        "mailboxes": args.mailboxes,
        "mails": args.mails,
        "rate_per_s": args.rate,
        "push_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "push_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "push_max_ms": round(max(latencies), 1) if latencies else None,
        "over_2s": sum(1 for ms in latencies if ms > 2000),
        "over_2s_by_tenth": over_by_tenth(timed, 2000.0),
        "lost": len(sent) - len(found),
        "duplicated": sum(1 for times in found.values() if len(times) > 1),
        "idle_duration_s": args.idle_duration,
        "idle_requests_per_mailbox_hour": round(idle_requests / mailbox_hours, 2),
        "worker_rss_mb": round(rss_mb(worker_pid), 1),
        "pushes": {} if dovecot else push_counts(facts),
        "setup_s": round(setup_s, 1),
        "cached_workflows": args.cached_workflows
        or worker_settings(facts).worker_max_cached_workflows,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="mails per second")
    parser.add_argument("--provider", choices=["gmail", "outlook", "imap"], default="gmail")
    parser.add_argument("--idle-duration", type=float, default=960.0)
    parser.add_argument("--settle", type=float, default=120.0, help="wait for tickets, s")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--cached-workflows",
        type=int,
        default=None,
        help="the worker's sticky cache (DESKCLONE_WORKER_MAX_CACHED_WORKFLOWS); its default else",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        dovecot = None
        if args.provider == "imap":
            dovecot = stack.enter_context(imap_bench.running_dovecot(args.mailboxes))
        # Loopback plaintext for the bench's Dovecot, as `deskclone dev` allows it.
        extra = {"DESKCLONE_IMAP_ALLOW_PLAINTEXT": "1"} if dovecot else {}
        if args.cached_workflows is not None:
            extra["DESKCLONE_WORKER_MAX_CACHED_WORKFLOWS"] = str(args.cached_workflows)
        facts = stack.enter_context(running_dev(url, extra, push=True))
        result = run(args, facts, dovecot)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
