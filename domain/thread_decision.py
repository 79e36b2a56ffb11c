"""Which ticket an email belongs to: a new one, an existing one, or none (already stored).

Split in two so the rule stays pure: `thread_keys` says what the caller must look up, the
caller queries the database, and `decide_thread` decides from what was found. The order
follows osTicket's lookupByEmailHeaders: strong signals first, the subject's ticket number
last and only from someone already on that ticket ("avoid message injection"), never the
subject text alone (Zammad #5064, osTicket #3607).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from domain.mime import NormalisedEmail

# "[#123]" as our outgoing subjects carry it; at most 18 digits so it fits a bigint.
_TICKET_TOKEN = re.compile(r"\[\s*#\s*(\d{1,18})\s*\]")
_MAX_TICKET_TOKENS = 5


class ThreadOutcome(enum.Enum):
    NEW_TICKET = "new_ticket"
    APPEND = "append"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class ThreadKeys:
    """What the caller must look up, all within one mailbox."""

    provider_thread_id: str | None
    # In-Reply-To first, then References newest first; never the email's own id.
    reference_ids: tuple[str, ...]
    ticket_numbers: tuple[int, ...]
    own_message_id: str | None


@dataclass(frozen=True)
class ThreadLookup:
    """What the caller found for a ThreadKeys; leave out whatever was not found."""

    thread_ticket_id: str | None = None
    ticket_by_message_id: Mapping[str, str] = field(default_factory=dict)
    # ticket number -> (ticket id, lowercased addresses of everyone on that ticket)
    ticket_by_number: Mapping[int, tuple[str, Set[str]]] = field(default_factory=dict)
    own_message_ticket_id: str | None = None


@dataclass(frozen=True)
class ThreadVerdict:
    outcome: ThreadOutcome
    ticket_id: str | None
    reason: str


def thread_keys(email: NormalisedEmail, provider_thread_id: str | None) -> ThreadKeys:
    own = email.message_id
    ordered = [*email.in_reply_to, *reversed(email.references)]
    reference_ids = tuple(dict.fromkeys(mid for mid in ordered if mid and mid != own))
    numbers = tuple(dict.fromkeys(int(n) for n in _TICKET_TOKEN.findall(email.subject)))
    return ThreadKeys(
        provider_thread_id=provider_thread_id or None,
        reference_ids=reference_ids,
        ticket_numbers=numbers[:_MAX_TICKET_TOKENS],
        own_message_id=own,
    )


def decide_thread(email: NormalisedEmail, keys: ThreadKeys, found: ThreadLookup) -> ThreadVerdict:
    if found.own_message_ticket_id is not None:
        shown = f" (Message-ID <{keys.own_message_id}>)" if keys.own_message_id else ""
        return ThreadVerdict(
            ThreadOutcome.DUPLICATE,
            found.own_message_ticket_id,
            f"this email{shown} is already stored on the ticket, so it is not added again",
        )
    if found.thread_ticket_id is not None:
        return ThreadVerdict(
            ThreadOutcome.APPEND,
            found.thread_ticket_id,
            "the mailbox provider puts it in the same conversation as the ticket",
        )
    for message_id in keys.reference_ids:
        ticket_id = found.ticket_by_message_id.get(message_id)
        if ticket_id is not None:
            return ThreadVerdict(
                ThreadOutcome.APPEND,
                ticket_id,
                f"it replies to an email of the ticket (Message-ID <{message_id}>)",
            )

    why_not: list[str] = []
    sender = (email.from_address or "").strip().lower()
    for number in keys.ticket_numbers:
        match = found.ticket_by_number.get(number)
        if match is None:
            why_not.append(f"the subject mentions [#{number}] but there is no such ticket")
            continue
        ticket_id, participants = match
        if not sender:
            why_not.append(
                f"the subject mentions ticket [#{number}] but the email has no sender "
                "to check against its participants"
            )
        elif sender in {address.strip().lower() for address in participants}:
            return ThreadVerdict(
                ThreadOutcome.APPEND,
                ticket_id,
                f"the subject mentions ticket [#{number}] and {sender} already takes part in it",
            )
        else:
            why_not.append(
                f"the subject mentions ticket [#{number}] but {sender} does not take part in "
                "it, so the email is not added to it"
            )
    if keys.reference_ids:
        why_not.insert(0, "none of the emails it replies to belongs to a ticket")
    reason = "; ".join(why_not) if why_not else "it does not reply to any email of a ticket"
    return ThreadVerdict(ThreadOutcome.NEW_TICKET, None, f"new conversation: {reason}")
