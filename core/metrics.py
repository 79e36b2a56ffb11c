"""Prometheus metrics: what DeskClone counts, where, and under which names.

Events are counted where they happen, with one call each (`ticket_created("email")`):

* in this process's `REGISTRY` (prometheus_client), which the API's `/metrics` serves; and
* when the worker runs with `DESKCLONE_METRICS_PORT`, also on the Temporal SDK runtime's
  metric meter (`bind_temporal_meter`), so the worker's one Prometheus endpoint serves these
  next to the SDK's own `temporal_*` metrics.

State is read from the database when the API's `/metrics` is scraped (`DatabaseCollector`),
so it is right whichever process changed it. Labels are low-cardinality categories only:
never a mailbox id, an address or a reason sentence. docs/operations.md lists every name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from domain.outcomes import MailboxStatus, Outcome, SkipReason, TicketSource

log = logging.getLogger("deskclone.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
# process_* (CPU, memory, open files) and python_* for the process that serves REGISTRY.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# name (without `_total`) -> (help, label names). prometheus_client and the Temporal runtime
# (with counters_total_suffix) both expose them as `<name>_total`.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "deskclone_tickets_created": (
        "Tickets created, by source (email, form, widget).",
        ("source",),
    ),
    "deskclone_messages_skipped": (
        "Inbound emails skipped instead of becoming tickets, by reason category.",
        ("reason",),
    ),
    "deskclone_messages_failed": (
        "Inbound emails that could not be processed (ledger outcome `failed`).",
        (),
    ),
    "deskclone_mailbox_polls": (
        "Mailbox poll attempts, by provider and result (ok, auth_expired, throttled, transient).",
        ("provider", "result"),
    ),
    "deskclone_provider_errors": (
        "Errors from a mail provider, by provider and kind (auth_expired, throttled, transient).",
        ("provider", "kind"),
    ),
    "deskclone_mailboxes_auth_expired": (
        "Times a mailbox lost its provider's consent and needs Reconnect, by provider.",
        ("provider",),
    ),
    "deskclone_push_notifications": (
        "Push notifications received, by provider and result (verified, refused, unknown "
        "mailbox, ignored, validation handshake).",
        ("provider", "result"),
    ),
    "deskclone_push_renewals": (
        "Gmail watches and Graph subscriptions set up or renewed, by provider and result.",
        ("provider", "result"),
    ),
}

_counters: dict[str, Counter] = {
    name: Counter(name, doc, labels, registry=REGISTRY) for name, (doc, labels) in COUNTERS.items()
}

# name -> (help, label names); observed in seconds.
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "deskclone_push_to_poll_seconds": (
        "From a push notification reaching the API to the poll it caused starting, by provider.",
        ("provider",),
    ),
}
_histograms: dict[str, Histogram] = {
    name: Histogram(
        name,
        doc,
        labels,
        registry=REGISTRY,
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    )
    for name, (doc, labels) in HISTOGRAMS.items()
}


_temporal_lock = threading.Lock()
_temporal_counters: dict[str, Any] = {}


def bind_temporal_meter(meter: Any | None) -> None:
    """Also count on a Temporal `MetricMeter` (the worker's runtime); None unbinds."""
    with _temporal_lock:
        _temporal_counters.clear()
        if meter is None:
            return
        for name, (doc, _labels) in COUNTERS.items():
            _temporal_counters[name] = meter.create_counter(name, doc)
        for name, (doc, _labels) in HISTOGRAMS.items():
            _temporal_counters[name] = meter.create_histogram_float(name, doc, "s")


def _count(name: str, **labels: str) -> None:
    try:
        counter = _counters[name]
        (counter.labels(**labels) if labels else counter).inc()
        bridged = _temporal_counters.get(name)
        if bridged is not None:
            bridged.add(1, labels)
    except Exception:  # counting must never break the work it counts
        log.warning("could not count %s", name, exc_info=True)


def ticket_created(source: str) -> None:
    _count("deskclone_tickets_created", source=source)


def message_skipped(reason: SkipReason) -> None:
    _count("deskclone_messages_skipped", reason=reason)


def mail_outcome(outcome: Outcome, skip: SkipReason | None = None) -> None:
    """The outcome the ingest pipeline wrote for one ledger row, and why when it skipped it."""
    if outcome is Outcome.TICKET_CREATED:
        ticket_created(TicketSource.EMAIL)
    elif outcome is Outcome.SKIPPED and skip is not None:
        message_skipped(skip)
    elif outcome is Outcome.FAILED:
        _count("deskclone_messages_failed")


def mailbox_polled(provider: str, result: str = "ok") -> None:
    """One poll attempt; a result other than "ok" is also a provider error of that kind."""
    _count("deskclone_mailbox_polls", provider=provider, result=result)
    if result != "ok":
        _count("deskclone_provider_errors", provider=provider, kind=result)


def push_notification(provider: str, result: str) -> None:
    _count("deskclone_push_notifications", provider=provider, result=result)


def push_renewed(provider: str, result: str) -> None:
    _count("deskclone_push_renewals", provider=provider, result=result)


def push_to_poll(provider: str, seconds: float) -> None:
    """From a notification reaching the API to the poll it caused starting."""
    _observe("deskclone_push_to_poll_seconds", max(0.0, seconds), provider=provider)


def _observe(name: str, value: float, **labels: str) -> None:
    try:
        _histograms[name].labels(**labels).observe(value)
        bridged = _temporal_counters.get(name)
        if bridged is not None:
            bridged.record(value, labels)
    except Exception:  # counting must never break the work it counts
        log.warning("could not observe %s", name, exc_info=True)


def mailbox_status_changed(provider: str, old: str, new: str) -> None:
    if new == MailboxStatus.AUTH_EXPIRED and old != new:
        _count("deskclone_mailboxes_auth_expired", provider=provider)


# --- State, read from the database at scrape time (the API's /metrics) ---

GAUGES = {
    "deskclone_mailboxes": "Connected mailboxes now, by provider and status.",
    "deskclone_tickets": "Tickets that exist now, by source and status.",
}


class DatabaseCollector(Collector):
    """Mailboxes by status and tickets by source, across every agent, per scrape."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        mailboxes = GaugeMetricFamily(
            "deskclone_mailboxes", GAUGES["deskclone_mailboxes"], labels=["provider", "status"]
        )
        tickets = GaugeMetricFamily(
            "deskclone_tickets", GAUGES["deskclone_tickets"], labels=["source", "status"]
        )
        try:
            with self._engine.connect() as connection:
                for provider, status, count in connection.execute(
                    text("SELECT provider, status, count(*) FROM mailboxes GROUP BY 1, 2")
                ):
                    mailboxes.add_metric([str(provider), str(status)], float(count))
                for source, status, count in connection.execute(
                    text("SELECT source, status, count(*) FROM tickets GROUP BY 1, 2")
                ):
                    tickets.add_metric([str(source), str(status)], float(count))
        except Exception as error:  # a scrape reports what it can; /healthz reports the rest
            log.warning("metrics: the database did not answer: %s", error)
        yield mailboxes
        yield tickets

    def describe(self) -> Iterator[Metric]:
        return iter(())
