"""Intake activities: the form and the widget end here, as one idempotent ticket write."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import metrics
from domain.outcomes import TicketSource
from store import agents, tickets
from store.db import transaction
from store.tickets import NewMessage, NewTicket


@dataclass
class IntakeMessage:
    role: str  # "requester", "visitor" or "assistant"
    content: str
    at: str  # ISO 8601, timezone-aware
    author_email: str | None = None
    author_name: str | None = None
    # Identity within the intake when the source has one (the form's single message);
    # otherwise who said what when.
    key: str | None = None


@dataclass
class CreateIntakeTicketInput:
    """One submission (the `IntakeWorkflow`'s input too) or one batch of its messages."""

    agent_id: str
    source: TicketSource  # form or widget
    reference: str
    title: str
    description: str
    requester_email: str | None
    requester_name: str | None
    messages: list[IntakeMessage] = field(default_factory=list)


@dataclass
class CreateIntakeTicketResult:
    ticket_id: str
    ticket_number: int
    created: bool
    messages_added: int = 0


class IntakeActivities:
    """Holds the engine; the worker registers the bound methods."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="create_ticket")
    def create_ticket(self, inp: CreateIntakeTicketInput) -> CreateIntakeTicketResult:
        """Idempotent on (agent, source, reference): a retry returns the ticket it made first,
        appending only messages it does not hold yet. The ticket event is written in the same
        transaction, so the team is told about exactly the tickets that exist."""
        messages = [
            _to_new_message(inp.reference, index, m) for index, m in enumerate(inp.messages)
        ]
        with transaction(self._engine) as session:
            if agents.get(session, inp.agent_id) is None:
                raise ApplicationError(
                    f"agent {inp.agent_id} does not exist", type="AgentNotFound", non_retryable=True
                )
            made = tickets.create_ticket(
                session,
                NewTicket(
                    agent_id=inp.agent_id,
                    source=inp.source,
                    source_ref=inp.reference,
                    title=inp.title,
                    description=inp.description,
                    requester_email=inp.requester_email,
                    requester_name=inp.requester_name,
                    messages=messages,
                ),
            )
            added = len(messages) if made.created else 0
            if not made.created:
                added = tickets.append_messages(session, made.ticket, messages)
            result = CreateIntakeTicketResult(
                ticket_id=made.ticket.id,
                ticket_number=made.ticket.number,
                created=made.created,
                messages_added=added,
            )
        if result.created:  # counted once committed
            metrics.ticket_created(inp.source)
        return result


def _to_new_message(reference: str, index: int, message: IntakeMessage) -> NewMessage:
    try:
        sent_at = datetime.fromisoformat(message.at)
    except ValueError as error:
        raise ApplicationError(
            f"message {index} has a bad timestamp {message.at!r}",
            type="InvalidIntake",
            non_retryable=True,
        ) from error
    if sent_at.tzinfo is None:
        raise ApplicationError(
            f"message {index} timestamp {message.at!r} has no timezone",
            type="InvalidIntake",
            non_retryable=True,
        )
    # A message is who said what when: a conversation escalated again (the widget sends it
    # whole) appends only what is new, whatever the batches it arrived in.
    key = message.key
    if key is None:
        instant = sent_at.astimezone(UTC).isoformat()
        key = hashlib.sha256(f"{message.role}\0{instant}\0{message.content}".encode()).hexdigest()
    return NewMessage(
        source_ref=f"{reference}#{key[:24]}",
        body_text=message.content,
        sent_at=sent_at,
        author_email=message.author_email,
        author_name=message.author_name,
        author_role=message.role,
    )
