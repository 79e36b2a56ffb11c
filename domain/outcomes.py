"""The names the system gives what happened: an email's outcome, why it was skipped, a
mailbox's status, a ticket's source and status.

`StrEnum`s, so a member is its own string: the database, the API and Temporal payloads carry
the same words they always did, and mypy finds a misspelt one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What became of one email in the inbound ledger."""

    PENDING = "pending"
    TICKET_CREATED = "ticket_created"
    APPENDED = "appended"
    SKIPPED = "skipped"
    FAILED = "failed"


# The outcomes an email ends with (the API's counts and filters).
FINAL_OUTCOMES = (Outcome.TICKET_CREATED, Outcome.APPENDED, Outcome.SKIPPED, Outcome.FAILED)


class SkipReason(StrEnum):
    """Why an email did not become a ticket, as a name (the ledger also keeps a sentence).
    Also the `reason` label of the `deskclone_messages_skipped` metric."""

    TOO_LARGE = "too_large"
    OWN_MAIL = "own_mail"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    MAILING_LIST = "mailing_list"
    SENDER_NOT_ALLOWED = "sender_not_allowed"
    DUPLICATE = "duplicate"
    FLOOD = "flood"


class MailboxStatus(StrEnum):
    ACTIVE = "active"
    AUTH_EXPIRED = "auth_expired"
    DISCONNECTED = "disconnected"


class TicketSource(StrEnum):
    EMAIL = "email"
    FORM = "form"
    WIDGET = "widget"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"


@dataclass
class MailCounts:
    """How many emails ended how: one batch's, or a mailbox's running totals."""

    tickets_created: int = 0
    appended: int = 0
    skipped: int = 0
    failed: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.TICKET_CREATED:
            self.tickets_created += 1
        elif outcome is Outcome.APPENDED:
            self.appended += 1
        elif outcome is Outcome.SKIPPED:
            self.skipped += 1
        elif outcome is Outcome.FAILED:
            self.failed += 1

    def add(self, other: MailCounts) -> None:
        self.tickets_created += other.tickets_created
        self.appended += other.appended
        self.skipped += other.skipped
        self.failed += other.failed


class PushState(StrEnum):
    """Whether the provider tells us of new mail (CONTRACT.md §5): `live` while a Gmail watch
    or Graph subscription holds, `failed` when setting one up failed or it proved broken,
    `off` where push is not configured or the mailbox cannot be read."""

    OFF = "off"
    LIVE = "live"
    FAILED = "failed"
