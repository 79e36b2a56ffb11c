"""The rules that keep an email from becoming a ticket: `FILTERS`, one rule each, in the order
they run. The first that fires names the skip; an email no filter stops becomes a ticket or
joins one.

Each filter is a small pure function of a `Candidate`: the email's header fields (the body is
never needed to refuse one), the mailbox's settings and, once the pipeline has looked them
up, the facts about its thread and its sender. Filters that need those facts pass while they
are unknown (`thread is None`), so the header filters can also run alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain import bounces, loop_guards
from domain.flood import check_flood
from domain.loop_guards import LoopVerdict
from domain.mime import NormalisedEmail
from domain.outcomes import SkipReason
from domain.senders import check_sender
from domain.thread_decision import ThreadOutcome, ThreadVerdict

# The largest email that may become a ticket: Gmail's and Outlook's own limit for a message.
MAX_EMAIL_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class Skip:
    reason: SkipReason
    why: str  # for the person asking "why did this not become a ticket?"
    rule: str | None = None  # the header or check that fired, when there is more than one
    ticket_id: str | None = None  # a duplicate: the ticket that already holds the email


@dataclass(frozen=True)
class Candidate:
    """One email as the filters see it."""

    email: NormalisedEmail  # header fields are enough: `text` may be empty
    raw: bytes
    mailbox_address: str
    allowed_senders: Sequence[str] = ()
    # Known once the pipeline has looked up the thread and the sender (the ticket step):
    thread: ThreadVerdict | None = None
    # A ticket was already made from this very email (a ledger row lost with a disconnect).
    ticket_exists: bool = False
    sender_tickets_last_hour: int = 0
    flood_limit: int = 20
    size: int = field(default=-1)

    @property
    def byte_size(self) -> int:
        return len(self.raw) if self.size < 0 else self.size


Filter = Callable[[Candidate], Skip | None]


def too_large(mail: Candidate) -> Skip | None:
    size = mail.byte_size
    if size <= MAX_EMAIL_BYTES:
        return None
    limit = MAX_EMAIL_BYTES // (1024 * 1024)
    return Skip(
        SkipReason.TOO_LARGE, f"the email is {size / 1e6:.1f} MB, over the {limit} MB limit"
    )


def own_mail(mail: Candidate) -> Skip | None:
    return _loop_skip(loop_guards.own_mail(mail.email, mail.mailbox_address))


def bounce_report(mail: Candidate) -> Skip | None:
    """Delivery status reports, X-Failed-Recipients, mailer-daemon senders, read receipts."""
    return _loop_skip(loop_guards.bounce(mail.email, mail.mailbox_address))


def bounce_without_report(mail: Candidate) -> Skip | None:
    """Classic bounces from a mail system that carry no delivery-status part; the parts are
    read only for the rare email whose sender is a mail system."""
    email = mail.email
    if not bounces.is_mail_system(email.from_address, email.from_name):
        return None
    found = bounces.part_types(mail.raw)
    why = bounces.classic_bounce(email.from_address, email.from_name, email.subject, found)
    return None if why is None else Skip(SkipReason.BOUNCE, why, "classic-bounce")


def auto_reply(mail: Candidate) -> Skip | None:
    return _loop_skip(loop_guards.auto_reply(mail.email, mail.mailbox_address))


def mailing_list(mail: Candidate) -> Skip | None:
    return _loop_skip(loop_guards.mailing_list(mail.email, mail.mailbox_address))


def null_return_path(mail: Candidate) -> Skip | None:
    return _loop_skip(loop_guards.null_return_path(mail.email, mail.mailbox_address))


def sender_not_allowed(mail: Candidate) -> Skip | None:
    """Also the skip of an email without a requester: no From, or none a reply could go to."""
    verdict = check_sender(mail.email.from_address, list(mail.allowed_senders))
    if verdict.allowed:
        return None
    written = (mail.email.header("from") or "").strip()
    if mail.email.from_address is None and written:
        why = f"the email's From header ({written[:80]!r}) holds no valid sender address"
        return Skip(SkipReason.SENDER_NOT_ALLOWED, why)
    return Skip(SkipReason.SENDER_NOT_ALLOWED, verdict.reason)


def duplicate(mail: Candidate) -> Skip | None:
    thread = mail.thread
    if thread is None or thread.outcome is not ThreadOutcome.DUPLICATE:
        return None
    return Skip(SkipReason.DUPLICATE, thread.reason, ticket_id=thread.ticket_id)


def flood(mail: Candidate) -> Skip | None:
    """Only an email that would open a new ticket counts: replies are never held back."""
    thread = mail.thread
    if thread is None or thread.outcome is not ThreadOutcome.NEW_TICKET or mail.ticket_exists:
        return None
    verdict = check_flood(mail.email.from_address, mail.sender_tickets_last_hour, mail.flood_limit)
    return None if verdict.allowed else Skip(SkipReason.FLOOD, verdict.reason)


# The order is the loop guards' (most certain first), then who may write, then what the
# thread and the sender's history say.
FILTERS: tuple[Filter, ...] = (
    too_large,
    own_mail,
    bounce_report,
    bounce_without_report,
    auto_reply,
    mailing_list,
    null_return_path,
    sender_not_allowed,
    duplicate,
    flood,
)


def first_skip(mail: Candidate, filters: Sequence[Filter] = FILTERS) -> Skip | None:
    for rule in filters:
        skip = rule(mail)
        if skip is not None:
            return skip
    return None


def _loop_skip(verdict: LoopVerdict | None) -> Skip | None:
    if verdict is None:
        return None
    return Skip(SkipReason(verdict.outcome.value), verdict.reason, verdict.rule)
