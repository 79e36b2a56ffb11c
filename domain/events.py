"""What the outside world hears (CONTRACT.md §6): the event types, and the shape of an event.

An event is `{"id": "evt_...", "type", "created_at", "data"}`. Its data is a snapshot taken in
the transaction of the change, so a receiver acts on it without a second call (ticket number,
title, source, requester, mailbox address) and a retried delivery carries the same words. Never
a token, a secret or a credential: only what the Tickets and Sources pages show anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.outcomes import MailboxStatus

# Long text (a description, a message body) is cut to this many characters in an event; the
# ticket's API answer has all of it. Keeps a delivery well under the size receivers accept.
TEXT_LIMIT = 2000


class EventType(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_MESSAGE_ADDED = "ticket.message_added"
    TICKET_STATUS_CHANGED = "ticket.status_changed"
    MAILBOX_AUTH_EXPIRED = "mailbox.auth_expired"
    MAILBOX_RECONNECTED = "mailbox.reconnected"


EVENT_TYPES = tuple(EventType)


def iso(value: datetime) -> str:
    """`2026-12-07T10:00:00Z`: the one way the API and events write an instant."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TicketFacts:
    id: str
    number: int
    title: str
    description: str
    source: str
    status: str
    requester_email: str | None
    requester_name: str | None
    mailbox_id: str | None
    mailbox_address: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MessageFacts:
    id: str
    author_email: str | None
    author_name: str | None
    role: str
    body_text: str
    sent_at: datetime
    attachments: list[dict[str, Any]]


@dataclass(frozen=True)
class MailboxFacts:
    id: str
    provider: str
    address: str
    status: str
    last_error: str | None


def _cut(text: str) -> dict[str, Any]:
    return {"text": text[:TEXT_LIMIT], "truncated": len(text) > TEXT_LIMIT}


def ticket_data(ticket: TicketFacts) -> dict[str, Any]:
    description = _cut(ticket.description)
    return {
        "ticket": {
            "id": ticket.id,
            "number": ticket.number,
            "title": ticket.title,
            "description": description["text"],
            "description_truncated": description["truncated"],
            "source": ticket.source,
            "status": ticket.status,
            "requester": {"email": ticket.requester_email, "name": ticket.requester_name},
            "mailbox": (
                {"id": ticket.mailbox_id, "address": ticket.mailbox_address}
                if ticket.mailbox_id
                else None
            ),
            "message_count": ticket.message_count,
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
        }
    }


def message_added_data(ticket: TicketFacts, message: MessageFacts) -> dict[str, Any]:
    body = _cut(message.body_text)
    return {
        **ticket_data(ticket),
        "message": {
            "id": message.id,
            "author": {"email": message.author_email, "name": message.author_name},
            "role": message.role,
            "body_text": body["text"],
            "body_truncated": body["truncated"],
            "sent_at": iso(message.sent_at),
            "attachments": attachments_json(message.attachments),
        },
    }


def attachments_json(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What is said of a message's attachments: name, type and size, never their content."""
    return [
        {
            "filename": a.get("filename"),
            "content_type": a.get("content_type"),
            "size": a.get("size"),
        }
        for a in attachments
    ]


def status_changed_data(ticket: TicketFacts, previous: str) -> dict[str, Any]:
    return {**ticket_data(ticket), "previous_status": previous}


def mailbox_data(mailbox: MailboxFacts) -> dict[str, Any]:
    return {
        "mailbox": {
            "id": mailbox.id,
            "provider": mailbox.provider,
            "address": mailbox.address,
            "status": mailbox.status,
            "last_error": mailbox.last_error,
        }
    }


def mailbox_status_event(before: MailboxStatus, after: MailboxStatus) -> EventType | None:
    """The event a mailbox's status change is, if any: expiring, and coming back from it."""
    if before == MailboxStatus.ACTIVE and after == MailboxStatus.AUTH_EXPIRED:
        return EventType.MAILBOX_AUTH_EXPIRED
    if before == MailboxStatus.AUTH_EXPIRED and after == MailboxStatus.ACTIVE:
        return EventType.MAILBOX_RECONNECTED
    return None


def envelope(
    event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "created_at": iso(created_at), "data": data}


def body(event: dict[str, Any]) -> str:
    """The exact text a webhook delivery sends and signs: the same for every attempt."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
