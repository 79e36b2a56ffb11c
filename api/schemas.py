"""Request bodies (validated with pydantic) and the JSON shapes of CONTRACT.md §2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, ValidationError

from api.errors import ApiError, validation_error
from store.models import Agent, Ticket, TicketMessage

TicketStatus = Literal["open", "pending", "solved"]
TicketSource = Literal["email", "form", "widget"]

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class FormSubmission(BaseModel):
    # Unknown fields are ignored: embedding sites add their own inputs.
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    email: EmailStr = Field(max_length=320)
    subject: Annotated[NonBlank, StringConstraints(max_length=250)]
    description: Annotated[NonBlank, StringConstraints(max_length=50_000)]
    # A hidden input made when the form is shown: a double-click or a retried POST
    # carries the same id and so joins the same ticket.
    submission_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None
    # Honeypot: invisible to people, filled in by naive bots.
    website: str = ""


class TicketPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TicketStatus


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "body: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error) from error


def iso(value: datetime) -> str:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "description": ticket.description,
        "source": ticket.source,
        "status": ticket.status,
        "requester": {"email": ticket.requester_email, "name": ticket.requester_name},
        "mailbox_id": ticket.mailbox_id,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "message_count": ticket.message_count,
    }


def message_json(message: TicketMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": {"email": message.author_email, "name": message.author_name},
        "role": message.author_role,
        "body_text": message.body_text,
        "sent_at": iso(message.sent_at),
        "attachments": [
            {
                "filename": a.get("filename"),
                "content_type": a.get("content_type"),
                "size": a.get("size"),
            }
            for a in message.attachments
        ],
    }


def agent_json(agent: Agent) -> dict[str, Any]:
    escalation: dict[str, Any] = {"mode": agent.escalation_mode}
    for key, value in (
        ("email", agent.escalation_email),
        ("phone", agent.escalation_phone),
        ("live_chat_url", agent.escalation_live_chat_url),
    ):
        if value is not None:
            escalation[key] = value
    return {
        "id": agent.id,
        "name": agent.name,
        "public_key": agent.public_key,
        "escalation": escalation,
    }
