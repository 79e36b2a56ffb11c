"""Words a support person reads: labels for statuses, outcomes and sources, and card data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.pages.queries import MailboxRow
from api.pages.render import ago, as_utc, duration, iso, when
from domain.outcomes import MailboxStatus, Outcome, PushState, TicketSource, TicketStatus
from providers.registry import provider_info
from store.models import Mailbox

MAILBOX_STATUSES = {
    MailboxStatus.ACTIVE: "Active",
    MailboxStatus.AUTH_EXPIRED: "Auth Expired",
    MailboxStatus.DISCONNECTED: "Disconnected",
}
OUTCOMES = {
    Outcome.TICKET_CREATED: "Ticket created",
    Outcome.APPENDED: "Added to a ticket",
    Outcome.SKIPPED: "Not a ticket",
    Outcome.FAILED: "Failed",
    Outcome.PENDING: "Waiting",
}
SOURCES = {TicketSource.EMAIL: "Email", TicketSource.FORM: "Form", TicketSource.WIDGET: "Chat"}
TICKET_STATUSES = {
    TicketStatus.OPEN: "Open",
    TicketStatus.PENDING: "Pending",
    TicketStatus.SOLVED: "Solved",
}
COUNTS = (
    ("tickets_created", Outcome.TICKET_CREATED, "Tickets created"),
    ("appended", Outcome.APPENDED, "Replies added"),
    ("skipped", Outcome.SKIPPED, "Not tickets"),
    ("failed", Outcome.FAILED, "Failed"),
)


def sentence(text: str | None) -> str:
    """A reason from the rules (`sender x is not ...`) as a sentence."""
    if not text:
        return ""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def problem_words(provider: str, status: str, last_error: str | None) -> str:
    """The card's trouble in words; the workflow already writes its errors for people."""
    if last_error:
        return sentence(last_error)
    if status == MailboxStatus.AUTH_EXPIRED:
        return provider_info(provider).auth_expired_words()
    return ""


SECURITY_WORDS = {"tls": "TLS", "starttls": "STARTTLS", "none": "unencrypted"}


def server_words(server: dict[str, str | int] | None) -> str:
    """Where a password provider's mailbox is read, for its card; empty for OAuth ones."""
    if not server:
        return ""
    security = SECURITY_WORDS.get(str(server.get("security")), str(server.get("security")))
    where = f"{server.get('host')}:{server.get('port')} ({security})"
    return f"{where}, folder {server.get('folder', 'INBOX')}, as {server.get('username')}"


def new_mail_words(mailbox: Mailbox, safety_poll_seconds: int) -> str:
    """How the card hears of new mail: pushed ("Live") or polled ("Checks every 1 minute")."""
    if mailbox.status == MailboxStatus.ACTIVE and mailbox.push_state == PushState.LIVE:
        every = max(mailbox.poll_interval_seconds, safety_poll_seconds)
        return f"Live (and checks every {duration(every)} to be sure)"
    return f"Checks every {duration(mailbox.poll_interval_seconds)}"


@dataclass(frozen=True)
class MailboxCard:
    id: str
    provider: str
    provider_name: str
    address: str
    status: str
    status_label: str
    last_polled_at: datetime | None
    poll_interval_seconds: int
    allowed_senders: list[str]
    counts: list[tuple[str, str, int]]  # (key, label, value)
    problem: str
    push_state: str
    new_mail: str
    # A mail server signed in to with a password (IMAP): Reconnect asks for the new one.
    asks_password: bool = False
    server: str = ""  # where an IMAP mailbox is read: "imap.example.com:993, TLS, INBOX"

    @classmethod
    def of(
        cls, row: MailboxRow, safety_poll_seconds: int, live_poll: datetime | None = None
    ) -> MailboxCard:
        m = row.mailbox
        polled = m.last_polled_at
        if live_poll is not None and (polled is None or as_utc(live_poll) > as_utc(polled)):
            polled = live_poll
        return cls(
            id=m.id,
            provider=m.provider,
            provider_name=provider_info(m.provider).label,
            address=m.address,
            status=m.status,
            status_label=MAILBOX_STATUSES.get(m.status, m.status),
            last_polled_at=polled,
            poll_interval_seconds=m.poll_interval_seconds,
            allowed_senders=list(m.allowed_senders),
            counts=[(key, label, row.counts.get(outcome, 0)) for key, outcome, label in COUNTS],
            problem=problem_words(m.provider, m.status, m.last_error),
            push_state=m.push_state if m.status == MailboxStatus.ACTIVE else PushState.OFF,
            new_mail=new_mail_words(m, safety_poll_seconds),
            asks_password=provider_info(m.provider).sign_in == "password",
            server=server_words(m.server),
        )

    def status_json(self) -> dict[str, Any]:
        """What the Sources page's script needs to refresh a card without a reload."""
        return {
            "id": self.id,
            "status": self.status,
            "status_label": self.status_label,
            "last_polled_at": iso(self.last_polled_at) or None,
            "last_polled_text": ago(self.last_polled_at) if self.last_polled_at else "not yet",
            "last_polled_title": when(self.last_polled_at),
            "problem": self.problem,
            "counts": {key: value for key, _label, value in self.counts},
            "push_state": self.push_state,
            "new_mail": self.new_mail,
        }
