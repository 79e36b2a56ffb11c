"""A form ticket to write in tests about events: one `ticket.created` event each."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.outcomes import TicketSource
from store.tickets import NewMessage, NewTicket


def form_ticket(agent_id: str, ref: str, title: str | None = None) -> NewTicket:
    return NewTicket(
        agent_id=agent_id,
        source=TicketSource.FORM,
        source_ref=ref,
        title=title or f"Ticket {ref}",
        description="It broke.",
        requester_email="ann@customer.example",
        requester_name="Ann Lee",
        messages=[NewMessage(f"{ref}#1", "It broke.", datetime.now(UTC))],
    )
