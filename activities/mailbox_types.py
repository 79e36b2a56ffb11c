"""Mailbox activity inputs and results: ids and small values, never mail or secrets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FetchInput:
    mailbox_id: str
    # A backlog drains a page per fetch/filter/create round; each round costs a few Temporal
    # round trips, so pages of 250 rather than 100 cut orchestration per email by more than
    # half (bench.ingest: 70 → 107 emails/s) while an attempt stays a few seconds long.
    max_messages: int = 250


@dataclass
class FetchResult:
    # Ledger rows to filter and ticket: this page's new mail plus any row an earlier,
    # interrupted poll stored but did not finish.
    ledger_ids: list[str] = field(default_factory=list)
    more: bool = False
    cursor: str | None = None
    fetched: int = 0
    # Part of the page failed (e.g. throttled batch parts): wait this long before the next.
    retry_after_seconds: float | None = None


@dataclass
class FilterInput:
    mailbox_id: str
    ledger_ids: list[str]


@dataclass
class FilterResult:
    accepted_ids: list[str] = field(default_factory=list)
    skipped: int = 0


@dataclass
class CreateTicketsInput:
    mailbox_id: str
    ledger_ids: list[str]


@dataclass
class CreateTicketsResult:
    tickets_created: int = 0
    appended: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class SetStatusInput:
    mailbox_id: str
    status: str  # "active", "auth_expired"
    last_error: str | None = None
