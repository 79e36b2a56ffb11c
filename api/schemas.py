"""Request bodies (validated with pydantic) and the JSON shapes of CONTRACT.md §2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from api.errors import ApiError, validation_error
from domain.events import EventType, attachments_json
from domain.events import iso as iso
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

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # The hosted page posts form fields, which json_body's check never sees.
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, str) and "\x00" in value:
                    raise ValueError(f"{name} may not contain NUL characters")
        return data


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class Visitor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    email: EmailStr | None = Field(default=None, max_length=320)

    _blank_name = field_validator("name", "email", mode="before")(_blank_is_none)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["visitor", "assistant"]
    content: Annotated[NonBlank, StringConstraints(max_length=20_000)]
    at: AwareDatetime

    @field_validator("at", mode="before")
    @classmethod
    def _iso_text_only(cls, value: Any) -> Any:
        # Lax pydantic would read 1700000000 as a date; the contract says ISO 8601 text.
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 timestamp with a timezone, as text")
        return value

    @field_validator("at")
    @classmethod
    def _representable_in_utc(cls, value: datetime) -> datetime:
        try:
            value.astimezone(UTC)
        except OverflowError as error:
            raise ValueError("is outside the years 1 to 9999 once converted to UTC") from error
        return value


MAX_ESCALATION_MESSAGES = 500
MAX_ESCALATION_BYTES = 512 * 1024


class Escalation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Becomes part of a workflow id: keep it to characters every tool shows plainly.
    conversation_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    visitor: Visitor = Field(default_factory=Visitor)
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_ESCALATION_MESSAGES)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


PHONE_PATTERN = r"^\+?[0-9][0-9 ().-]{3,30}[0-9]$"


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host, like https://chat.example.com")
    return value


class EscalationBehaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["ticket", "email", "phone", "live_chat"]
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=PHONE_PATTERN)] | None
    ) = None
    live_chat_url: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)] | None
    ) = None

    _url = field_validator("live_chat_url")(lambda v: None if v is None else _check_url(v))

    @model_validator(mode="after")
    def _mode_has_its_value(self) -> EscalationBehaviour:
        # live_chat without a URL is allowed: escalations then fall back to a ticket.
        if self.mode == "email" and self.email is None:
            raise ValueError("an email address is required when the mode is email")
        if self.mode == "phone" and self.phone is None:
            raise ValueError("a phone number is required when the mode is phone")
        return self


class BehaviourUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    escalation: EscalationBehaviour


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


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "description": ticket.description,
        "source": ticket.source,
        "status": ticket.status,
        "requester": {
            "email": ticket.requester_email,
            "name": ticket.requester_name,
            "reachable_by_email": ticket.requester_email is not None,
        },
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
        "attachments": attachments_json(message.attachments),
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


WebhookDescription = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
    # Omitted or empty: every type, those added later included.
    events: list[EventType] | None = None
    description: WebhookDescription | None = None


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
        | None
    ) = None
    events: list[EventType] | None = None
    description: WebhookDescription | None = None
    enabled: bool | None = None
