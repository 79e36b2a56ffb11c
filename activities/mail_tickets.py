"""One ledger row → a new ticket or a message on the ticket it answers (one transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from domain.flood import check_flood
from domain.mime import NormalisedEmail, normalise_email
from domain.quotes import trim_quoted_reply
from domain.thread_decision import ThreadLookup, ThreadOutcome, decide_thread, thread_keys
from store import ledger, tickets
from store.models import InboundMessage
from store.tickets import NewMessage, NewTicket

MAX_TEXT_CHARS = 200_000
NO_SUBJECT = "(no subject)"
FLOOD_WINDOW = timedelta(hours=1)


def process_message(
    session: Session, mailbox_id: str, ledger_id: str, *, flood_limit: int = 20
) -> str | None:
    """Returns the outcome written, or None when the row was already done (a retry)."""
    rows = ledger.rows(session, [ledger_id], outcome="pending")
    if not rows:
        return None
    row = rows[0]
    if row.mailbox_id != mailbox_id:
        return None
    email = normalise_email(row.raw)
    keys = thread_keys(email, row.provider_thread_id)
    found = ThreadLookup(
        thread_ticket_id=(
            ledger.ticket_for_provider_thread(session, mailbox_id, keys.provider_thread_id)
            if keys.provider_thread_id
            else None
        ),
        ticket_by_message_id=ledger.tickets_for_message_ids(
            session, row.agent_id, keys.reference_ids, exclude_row=row.id
        ),
        ticket_by_number=ledger.tickets_by_number(session, row.agent_id, keys.ticket_numbers),
        own_message_ticket_id=(
            ledger.tickets_for_message_ids(
                session, row.agent_id, [keys.own_message_id], exclude_row=row.id
            ).get(keys.own_message_id)
            if keys.own_message_id
            else None
        ),
    )
    verdict = decide_thread(email, keys, found)
    if verdict.outcome is ThreadOutcome.DUPLICATE:
        ledger.mark(session, row, "skipped", verdict.reason, verdict.ticket_id)
        return "skipped"
    if verdict.outcome is ThreadOutcome.APPEND and verdict.ticket_id is not None:
        ticket = tickets.get(session, row.agent_id, verdict.ticket_id)
        if ticket is not None:
            text = trim_quoted_reply(email.text)
            tickets.append_messages(session, ticket, [_message(row, email, text)])
            ledger.mark(session, row, "appended", verdict.reason, ticket.id)
            return "appended"
    opened = tickets.opened_since(
        session, row.agent_id, mailbox_id, email.from_address, datetime.now(UTC) - FLOOD_WINDOW
    )
    flood = check_flood(email.from_address, opened, flood_limit)
    if not flood.allowed:
        ledger.mark(session, row, "skipped", flood.reason)
        return "skipped"
    text = email.text
    made = tickets.create_ticket(
        session,
        NewTicket(
            agent_id=row.agent_id,
            source="email",
            source_ref=_source_ref(row),
            title=(email.subject.strip() or NO_SUBJECT)[:500],
            description=text[:MAX_TEXT_CHARS],
            requester_email=email.from_address,
            requester_name=email.from_name,
            mailbox_id=mailbox_id,
            messages=[_message(row, email, text)],
        ),
    )
    ledger.mark(session, row, "ticket_created", verdict.reason, made.ticket.id)
    return "ticket_created"


def _source_ref(row: InboundMessage) -> str:
    return f"{row.mailbox_id}:{row.provider_message_id}"[:255]


def _message(row: InboundMessage, email: NormalisedEmail, text: str) -> NewMessage:
    sent_at = email.date or row.received_at or datetime.now(UTC)
    return NewMessage(
        source_ref=_source_ref(row),
        body_text=text[:MAX_TEXT_CHARS],
        sent_at=sent_at,
        author_email=email.from_address,
        author_name=email.from_name,
        author_role="requester",
        attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in email.attachments
        ],
    )
