"""Mailbox activity inputs and results: ids and small values, never mail or secrets."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.outcomes import MailboxStatus, MailCounts
from domain.push import PushStatus
from ingest.fetch import FetchResult

__all__ = [
    "CreateTicketsInput",
    "CreateTicketsResult",
    "FetchInput",
    "FetchResult",
    "FilterInput",
    "FilterResult",
    "KeepPushInput",
    "PushStatus",
    "SetStatusInput",
]

# What one `create_tickets` made of its emails.
CreateTicketsResult = MailCounts


@dataclass
class FetchInput:
    mailbox_id: str
    # A backlog drains a page per fetch/create round; each round costs a few Temporal
    # round trips, so pages of 250 rather than 100 cut orchestration per email by more than
    # half (bench.ingest: 70 → 107 emails/s) while an attempt stays a few seconds long.
    max_messages: int = 250
    # When the push notification this poll answers reached the API (ISO 8601), if one did.
    notified_at: str | None = None
    # A page of at most this many emails is made into tickets by the fetch itself.
    make_tickets_up_to: int = 0
    # Also hand back the rows an interrupted poll left pending. Off for a page fetched while
    # the page before it is still being made into tickets: its rows are pending too, and
    # the next poll that is not a fetch-ahead carries whatever is left.
    carry_pending: bool = True


@dataclass
class FilterInput:
    """Only workflow histories recorded before tickets were made in one step send it."""

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
class KeepPushInput:
    mailbox_id: str
    # The push held proved broken (a safety-net poll found mail no notification announced):
    # drop it and set up a new one.
    replace: bool = False


@dataclass
class SetStatusInput:
    mailbox_id: str
    status: MailboxStatus
    last_error: str | None = None
