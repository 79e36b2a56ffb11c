"""An email delivered to a connected mailbox until its ticket is visible through the API, with
"poll now" and with the poll interval alone, through `deskclone dev`.

    .venv/bin/python -m bench.latency [--provider gmail|outlook] [--messages 50]
                                      [--interval-messages 20] [--interval 10]
                                      [--db postgres|sqlite] [--check-every 0.025] [--seed 1]

One mailbox is connected through the real OAuth flow (the API's authorization URL, the
emulator's consent redirect, the API callback), and its first (connecting) poll is let finish.
Each sample is one new email (its own sender and subject, text and HTML parts), delivered
through the emulator's control API while no other mail is in flight; the clock runs from the
start of the delivery request until `GET /api/v1/tickets?q=<the email's token>` first lists its
ticket (the API is read every `--check-every` seconds).

1. Poll now (`--messages` samples): right after the delivery, `POST
   /api/v1/mailboxes/{id}/poll`. During this phase the mailbox's interval is set to an hour,
   so every sample is served by the "poll now" path and never by a timer poll that happens to
   fall just after the delivery.
2. Interval (`--interval-messages` samples): the interval is set to `--interval` seconds (the
   API's minimum is 10) and nobody asks for a poll. Each email is delivered at a uniformly
   random point of the wait between two polls: `U(0, interval)` after the previous ticket
   became visible (the moment the workflow, its poll done, starts its next interval timer).
   Its latency is then the rest of that wait plus the work of the poll, `U(0, interval) +
   processing`, as for mail that arrives whenever it likes. Each sample costs about one
   interval of wall time: 20 samples at 10 s take about 3.5 minutes, which is why this phase
   has its own, smaller count.

Baseline, same run, interleaved with the poll-now samples (one baseline sample after each):
"poll now" without Temporal. A second emulator mailbox (same provider), with credentials from
the product's own OAuth code exchange (`bench.ingest_baseline.oauth_credentials`) and a
mailbox row written with `store.mailboxes.connect` but no workflow, is read by this process
calling the worker's own mailbox activities in a row, in-process
(`temporalio.testing.ActivityEnvironment`): `fetch_new_mail`, `filter_mail`, `create_tickets`
(same `MailboxActivities`, same provider factory, same database), then the same API reads
until the ticket is visible. So the baseline holds everything but orchestration: the delivery,
the provider round trips, the parsing and database writes, the API reads and the granularity
of checking; `poll_now_p50_ms / baseline_p50_ms` is what the signal, the workflow tasks and
three activity dispatches add. Also measured after each poll-now sample: `read_*`, the same
API read for the ticket just made (the floor of seeing anything through the API).

p99 is the nearest-rank percentile (`bench.harness.percentile`); below 100 samples it is the
slowest or second slowest sample. Goals (issue 7, item 4): poll-now p99 <= 2 s; interval p99
<= interval + 2 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
from sqlalchemy import Engine
from temporalio.testing import ActivityEnvironment

from activities.mailbox import MailboxActivities
from activities.mailbox_types import CreateTicketsInput, FetchInput, FilterInput
from bench.clients import api_client, connect_mailbox, deliver, emulator_client
from bench.harness import percentile, postgres_database, running_dev
from bench.ingest_baseline import oauth_credentials, worker_settings
from core.crypto import Cipher
from providers.registry import build_provider
from store import mailboxes
from store.db import make_engine, transaction

ADDRESS = "latency@acme.example"
BASELINE_ADDRESS = "latency-baseline@acme.example"
# The interval while "poll now" is measured: long enough that no timer poll interferes.
QUIET_INTERVAL_S = 3600
# Give up on one sample after this long past its expected wait.
SAMPLE_TIMEOUT_S = 60.0
# As the API names a mailbox's counts.
OUTCOMES = ("tickets_created", "appended", "skipped", "failed")


@dataclass
class Samples:
    poll_now_ms: list[float] = field(default_factory=list)
    interval_ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    baseline_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))


def support_email(to: str, token: str) -> bytes:
    """A new support request: a sender of its own (no thread, no flood guard), a subject and
    body carrying `token`, text and HTML parts."""
    message = EmailMessage()
    message["From"] = f"Customer {token} <{token}@customer.example>"
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="customer.example")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Subject"] = f"The CSV export fails [{token}]"
    text = (
        f"Hello,\n\nsince this morning the CSV export of our invoices fails ({token}).\n"
        "We tried two browsers. Could you have a look?\n\nThanks,\nA customer\n"
    )
    message.set_content(text)
    html = "".join(f"<p>{line}</p>" for line in text.splitlines() if line)
    message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    return message.as_bytes()


def find_ticket(api: httpx.Client, token: str) -> bool:
    answer = api.get("/api/v1/tickets", params={"q": token, "limit": 1})
    answer.raise_for_status()
    return bool(answer.json()["items"])


def wait_visible(api: httpx.Client, token: str, every: float, patience: float) -> float:
    """Reads the API every `every` seconds until the ticket carrying `token` is listed;
    returns the `perf_counter` time of the answer that listed it."""
    deadline = time.perf_counter() + patience
    while True:
        found = find_ticket(api, token)
        now = time.perf_counter()
        if found:
            return now
        if now > deadline:
            raise TimeoutError(f"no ticket for {token} within {patience:.0f} s")
        time.sleep(every)


def wait_for_poll(api: httpx.Client, mailbox_url: str, after: str | None, every: float) -> float:
    """Until the mailbox reports a poll later than `after`; returns when that was seen."""
    deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
    while True:
        polled = api.get(mailbox_url).json()["last_polled_at"]
        now = time.perf_counter()
        if polled is not None and polled != after:
            return now
        if now > deadline:
            raise TimeoutError("the mailbox did not poll")
        time.sleep(every)


def set_interval(api: httpx.Client, mailbox_url: str, seconds: int, every: float) -> float:
    """PATCH the interval; the settings change wakes the workflow, which polls once and then
    sleeps the new interval. Returns when that poll was seen."""
    before = api.get(mailbox_url).json()["last_polled_at"]
    api.patch(mailbox_url, json={"poll_interval_seconds": seconds}).raise_for_status()
    return wait_for_poll(api, mailbox_url, before, every)


class NoTemporal:
    """The baseline's mailbox: the worker's mailbox activities called in a row, in-process."""

    def __init__(
        self, facts: dict[str, Any], emulator: httpx.Client, provider: str, like_mailbox_id: str
    ) -> None:
        settings = worker_settings(facts)
        self.engine: Engine = make_engine(settings.effective_database_url)
        cipher = Cipher.from_settings(settings)
        self.activities = MailboxActivities(self.engine, settings, cipher, build_provider)
        self.env = ActivityEnvironment()
        credentials = oauth_credentials(settings, emulator, provider, BASELINE_ADDRESS)
        with transaction(self.engine) as session:
            like = mailboxes.get_for_worker(session, like_mailbox_id)
            assert like is not None
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=like.agent_id,
                provider=provider,
                address=BASELINE_ADDRESS,
                credentials_encrypted=cipher.encrypt_credentials(credentials),
            )
            self.mailbox_id = mailbox.id
        self.poll()  # the connecting poll: the initial cursor

    def poll(self) -> dict[str, int]:
        acts, mailbox_id = self.activities, self.mailbox_id
        fetched = self.env.run(acts.fetch_new_mail, FetchInput(mailbox_id))
        counts = dict.fromkeys(OUTCOMES, 0)
        if not fetched.ledger_ids:
            return counts
        filtered = self.env.run(acts.filter_mail, FilterInput(mailbox_id, fetched.ledger_ids))
        counts["skipped"] += filtered.skipped
        if filtered.accepted_ids:
            made = self.env.run(
                acts.create_tickets, CreateTicketsInput(mailbox_id, filtered.accepted_ids)
            )
            counts["tickets_created"] += made.tickets_created
            counts["appended"] += made.appended
            counts["skipped"] += made.skipped
            counts["failed"] += made.failed
        return counts


def sample(
    api: httpx.Client,
    emulator: httpx.Client,
    address: str,
    token: str,
    every: float,
    after_delivery: Callable[[], None] = lambda: None,
    patience: float = SAMPLE_TIMEOUT_S,
) -> tuple[float, float]:
    """Deliver one email carrying `token` to `address`, then `after_delivery()`: milliseconds
    until its ticket is visible, and the `perf_counter` time it was seen."""
    raw = support_email(address, token)
    clock = time.perf_counter()
    deliver(emulator, address, raw)
    after_delivery()
    seen = wait_visible(api, token, every, patience)
    return (seen - clock) * 1000, seen


def run(
    facts: dict[str, Any],
    provider: str,
    messages: int,
    interval_messages: int,
    interval: int,
    every: float,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    samples = Samples()

    def token(kind: str, i: int) -> str:
        return f"lat{tag}-{kind}-{i:05d}"

    with api_client(facts) as api, emulator_client(facts) as emulator:
        for address in (ADDRESS, BASELINE_ADDRESS):
            emulator.post(
                "/_emulator/mailboxes", json={"provider": provider, "address": address}
            ).raise_for_status()
        mailbox = connect_mailbox(api, emulator, provider, ADDRESS)
        mailbox_url = f"/api/v1/mailboxes/{mailbox['id']}"
        wait_for_poll(api, mailbox_url, None, every)  # the connecting poll
        baseline = NoTemporal(facts, emulator, provider, mailbox["id"])
        set_interval(api, mailbox_url, QUIET_INTERVAL_S, every)

        def poll_now() -> None:
            api.post(f"{mailbox_url}/poll").raise_for_status()

        def baseline_poll() -> None:
            for key, value in baseline.poll().items():
                samples.baseline_counts[key] += value

        for i in range(messages):
            ms, _ = sample(api, emulator, ADDRESS, token("pn", i), every, poll_now)
            samples.poll_now_ms.append(ms)
            started = time.perf_counter()
            if not find_ticket(api, token("pn", i)):
                raise RuntimeError(f"the ticket for {token('pn', i)} disappeared")
            samples.read_ms.append((time.perf_counter() - started) * 1000)
            ms, _ = sample(api, emulator, BASELINE_ADDRESS, token("bl", i), every, baseline_poll)
            samples.baseline_ms.append(ms)

        if interval_messages:
            last_poll = set_interval(api, mailbox_url, interval, every)
            for i in range(interval_messages):
                # The workflow starts its next interval as the last ticket became visible.
                time.sleep(max(0.0, last_poll + rng.uniform(0, interval) - time.perf_counter()))
                patience = interval + SAMPLE_TIMEOUT_S
                ms, last_poll = sample(
                    api, emulator, ADDRESS, token("iv", i), every, patience=patience
                )
                samples.interval_ms.append(ms)

        counts: dict[str, int] = api.get(mailbox_url).json()["counts"]
        baseline.engine.dispose()
    return report(samples, counts, messages, interval_messages, interval)


def _ms(values: list[float], fraction: float | None) -> float | None:
    if not values:
        return None
    value = statistics.median(values) if fraction is None else percentile(values, fraction)
    return round(value, 1)


def report(
    samples: Samples, counts: dict[str, int], messages: int, interval_messages: int, interval: int
) -> dict[str, Any]:
    poll_now_p99 = _ms(samples.poll_now_ms, 0.99)
    interval_p99 = _ms(samples.interval_ms, 0.99)
    poll_now_p50 = _ms(samples.poll_now_ms, None)
    baseline_p50 = _ms(samples.baseline_ms, None)
    return {
        "messages": messages,
        "interval_messages": interval_messages,
        "interval_s": interval,
        "poll_now_p50_ms": poll_now_p50,
        "poll_now_p99_ms": poll_now_p99,
        "poll_now_max_ms": round(max(samples.poll_now_ms), 1) if samples.poll_now_ms else None,
        "interval_p50_ms": _ms(samples.interval_ms, None),
        "interval_p99_ms": interval_p99,
        "interval_max_ms": round(max(samples.interval_ms), 1) if samples.interval_ms else None,
        "baseline_p50_ms": baseline_p50,
        "baseline_p99_ms": _ms(samples.baseline_ms, 0.99),
        "read_p50_ms": _ms(samples.read_ms, None),
        "read_p99_ms": _ms(samples.read_ms, 0.99),
        "ratio_p50": (
            round(poll_now_p50 / baseline_p50, 2) if poll_now_p50 and baseline_p50 else None
        ),
        "poll_now_goal_met": poll_now_p99 is not None and poll_now_p99 <= 2000,
        "interval_goal_met": (interval_p99 is not None and interval_p99 <= interval * 1000 + 2000),
        "delivered": messages + interval_messages,
        "tickets_created": counts["tickets_created"],
        "counts": counts,
        "baseline_delivered": messages,
        "baseline_tickets_created": samples.baseline_counts["tickets_created"],
        "baseline_counts": samples.baseline_counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", choices=["gmail", "outlook"], default="gmail")
    parser.add_argument("--messages", type=int, default=50, help="poll-now samples")
    parser.add_argument("--interval-messages", type=int, default=20, help="interval samples")
    parser.add_argument("--interval", type=int, default=10, help="poll interval, >= 10 s")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--check-every", type=float, default=0.025, help="API read period, s")
    parser.add_argument("--seed", type=int, default=1, help="for the delivery points")
    args = parser.parse_args()
    if args.messages < 1 or args.interval_messages < 0 or args.interval < 10:
        parser.error("--messages >= 1, --interval-messages >= 0, --interval >= 10")
    began = time.perf_counter()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if args.db == "postgres" else None
        facts = stack.enter_context(running_dev(url))
        result = run(
            facts,
            args.provider,
            args.messages,
            args.interval_messages,
            args.interval,
            args.check_every,
            args.seed,
        )
    result = {
        "provider": args.provider,
        "db": args.db,
        **result,
        "wall_s": round(time.perf_counter() - began, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
