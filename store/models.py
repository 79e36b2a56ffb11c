"""Tables. Every row belongs to an agent (a workspace); every query filters by `agent_id`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain import poll_interval
from domain.events import EventType
from domain.outcomes import (
    MailboxStatus,
    Outcome,
    PushState,
    SkipReason,
    TicketSource,
    TicketStatus,
)
from domain.webhooks import DeliveryStatus, DisabledReason


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class AwareDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that leaves the store timezone-aware on every database: PostgreSQL keeps
    the zone, SQLite keeps none, so what it hands back is read as the UTC it was stored in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            return value.astimezone(UTC)
        return value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: sa.Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Named(sa.TypeDecorator[StrEnum]):
    """A `StrEnum` kept as its plain string (the column stays VARCHAR, no database enum) and
    read back as the member, so code compares and mypy checks named values."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else str(self.enum(value))

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> StrEnum | None:  # noqa: ARG002
        return None if value is None else self.enum(value)


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=AwareDateTime(), **kwargs)


class Agent(SQLModel, table=True):
    __tablename__ = "agents"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    public_key: str = Field(max_length=64, unique=True)
    # SHA-256 of the admin token: the token itself is never stored.
    admin_token_sha256: str = Field(max_length=64, unique=True)
    escalation_mode: str = Field(default="ticket", max_length=16)
    escalation_email: str | None = Field(default=None, max_length=320)
    escalation_phone: str | None = Field(default=None, max_length=64)
    escalation_live_chat_url: str | None = Field(default=None, max_length=2048)
    # The next ticket number to hand out; bumped under a row lock (see store.tickets).
    next_ticket_number: int = Field(default=1)
    # The next event's place in the workspace's order, handed out under the same lock
    # (store/events.py): events commit in the order of their numbers.
    next_event_seq: int = Field(default=1)
    created_at: datetime = _ts(default_factory=utcnow)


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"
    __table_args__ = (
        sa.UniqueConstraint("agent_id", "number", name="uq_tickets_agent_number"),
        # The natural key of whatever made the ticket (form reference, conversation id,
        # mailbox + message id): a retried activity finds the ticket instead of making another.
        sa.UniqueConstraint("agent_id", "source", "source_ref", name="uq_tickets_agent_source_ref"),
        sa.Index("ix_tickets_agent_updated", "agent_id", "updated_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=36)
    number: int
    source: TicketSource = Field(sa_type=Named(TicketSource))
    source_ref: str = Field(max_length=255)
    status: TicketStatus = Field(default=TicketStatus.OPEN, sa_type=Named(TicketStatus))
    requester_email: str | None = Field(default=None, max_length=320)
    requester_name: str | None = Field(default=None, max_length=200)
    title: str = Field(max_length=500)
    description: str = Field(sa_type=sa.Text)
    mailbox_id: str | None = Field(default=None, max_length=36)
    message_count: int = Field(default=0)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_messages"
    __table_args__ = (
        # Appending the same source message twice is a no-op, not a second message.
        sa.UniqueConstraint("ticket_id", "source_ref", name="uq_ticket_messages_ticket_source_ref"),
        sa.Index("ix_ticket_messages_ticket_sent", "ticket_id", "sent_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=36)
    ticket_id: str = Field(foreign_key="tickets.id", max_length=36)
    source_ref: str = Field(max_length=255)
    author_email: str | None = Field(default=None, max_length=320)
    author_name: str | None = Field(default=None, max_length=200)
    # "requester", "visitor", "assistant": who wrote it, as the source knows it.
    author_role: str = Field(default="requester", max_length=16)
    body_text: str = Field(sa_type=sa.Text)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    sent_at: datetime = _ts(default_factory=utcnow)
    created_at: datetime = _ts(default_factory=utcnow)


class Event(SQLModel, table=True):
    """The outbox (CONTRACT.md §6): written in the transaction of the change it reports,
    numbered per workspace under the workspace's row lock, read by the feed, the stream
    and the webhook dispatchers, each from its own place in that order."""

    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("agent_id", "seq", name="uq_events_agent_seq"),)

    # "evt_" and 24 hex digits: the id every delivery of this event carries.
    id: str = Field(primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    seq: int
    type: EventType = Field(sa_type=Named(EventType, 32))
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = _ts(default_factory=utcnow)


class WebhookEndpoint(SQLModel, table=True):
    """Where a workspace's events are POSTed; one dispatcher workflow each."""

    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=36)
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    # The event types it wants; empty means every type.
    event_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    enabled: bool = Field(default=True)
    disabled_reason: DisabledReason | None = Field(default=None, sa_type=Named(DisabledReason))
    disabled_at: datetime | None = _ts(default=None, nullable=True)
    # Fernet tokens of the signing secrets; the previous one signs too until it expires.
    secret_encrypted: str = Field(sa_type=sa.Text)
    previous_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    previous_secret_expires_at: datetime | None = _ts(default=None, nullable=True)
    # The workspace event (seq) up to which deliveries have been made for it.
    cursor: int = Field(default=0)
    # The newest event its dispatcher was woken for (api/webhook_control.py).
    signalled_seq: int = Field(default=0)
    # While a delivery round runs and watches for new events itself, no wake-up is needed.
    busy_until: datetime | None = _ts(default=None, nullable=True)
    # Set by the first failed attempt after a success; a day of it disables the endpoint.
    failing_since: datetime | None = _ts(default=None, nullable=True)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: its attempts, its last answer, when it is tried next."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # A retried claim finds the delivery instead of adding one.
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
        sa.Index("ix_webhook_deliveries_due", "endpoint_id", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", max_length=36)
    event_id: str = Field(foreign_key="events.id", max_length=36)
    event_type: EventType = Field(sa_type=Named(EventType, 32))
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=Named(DeliveryStatus))
    attempts: int = Field(default=0)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    next_attempt_at: datetime | None = _ts(default=None, nullable=True)
    last_attempt_at: datetime | None = _ts(default=None, nullable=True)
    created_at: datetime = _ts(default_factory=utcnow)


class Mailbox(SQLModel, table=True):
    """A connected mailbox (Gmail, Outlook, IMAP). Disconnecting keeps the row (and its tickets)."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        sa.UniqueConstraint("agent_id", "provider", "address", name="uq_mailboxes_agent_address"),
        # A Gmail push names only the address: every workspace's mailbox of it is found.
        sa.Index("ix_mailboxes_provider_address", "provider", "address"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=36)
    provider: str = Field(max_length=16)
    address: str = Field(max_length=320)
    status: MailboxStatus = Field(default=MailboxStatus.ACTIVE, sa_type=Named(MailboxStatus))
    allowed_senders: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    poll_interval_seconds: int = Field(default=poll_interval.DEFAULT_SECONDS)
    # The provider's opaque sync cursor; advanced only after the mail it covers is stored.
    cursor: str | None = Field(default=None, sa_type=sa.Text)
    # Fernet token of the provider credentials (refresh token and all); never stored plain.
    credentials_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    # A password provider's server (IMAP: host, port, security, username, folder); no secret.
    server: dict[str, str | int] | None = Field(default=None, sa_type=sa.JSON)
    last_polled_at: datetime | None = _ts(default=None, nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    # Push (CONTRACT.md §5): kept by the mailbox's workflow; notifications are only hints.
    push_state: PushState = Field(
        default=PushState.OFF,
        sa_type=Named(PushState),
        sa_column_kwargs={"server_default": PushState.OFF.value},
    )
    # The Graph subscription id (a Gmail watch has none): how a notification finds its mailbox.
    push_id: str | None = Field(default=None, max_length=255, index=True)
    push_expires_at: datetime | None = _ts(default=None, nullable=True)
    # Fernet token of the secret Graph echoes as `clientState` with every notification.
    push_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    push_error: str | None = Field(default=None, sa_type=sa.Text)
    last_notification_at: datetime | None = _ts(default=None, nullable=True)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class InboundMessage(SQLModel, table=True):
    """The inbound ledger: one row per provider message, whatever became of it, and why."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # A re-fetched page or a retried activity finds the row instead of adding one.
        sa.UniqueConstraint(
            "mailbox_id", "provider_message_id", name="uq_inbound_mailbox_provider_message"
        ),
        sa.Index("ix_inbound_mailbox_created", "mailbox_id", "created_at"),
        sa.Index("ix_inbound_mailbox_outcome", "mailbox_id", "outcome"),
        sa.Index("ix_inbound_agent_message_id", "agent_id", "internet_message_id"),
        sa.Index("ix_inbound_mailbox_thread", "mailbox_id", "provider_thread_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    mailbox_id: str = Field(foreign_key="mailboxes.id", max_length=36)
    provider_message_id: str = Field(max_length=255)
    provider_thread_id: str | None = Field(default=None, max_length=255)
    internet_message_id: str | None = Field(default=None, max_length=998)
    from_address: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    subject: str = Field(default="", max_length=998)
    received_at: datetime | None = _ts(default=None, nullable=True)
    size: int = Field(default=0)
    raw: bytes = Field(sa_type=sa.LargeBinary)
    outcome: Outcome = Field(default=Outcome.PENDING, sa_type=Named(Outcome))
    reason: str | None = Field(default=None, sa_type=sa.Text)
    # Why a skipped email was skipped, as a name (domain.outcomes.SkipReason); `reason` says
    # it in a sentence.
    skip_reason: SkipReason | None = Field(default=None, sa_type=Named(SkipReason, 32))
    ticket_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts(default_factory=utcnow)
    processed_at: datetime | None = _ts(default=None, nullable=True)


class OAuthState(SQLModel, table=True):
    """A pending OAuth consent: single-use, expiring, held server-side with its PKCE verifier."""

    __tablename__ = "oauth_states"

    state: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    provider: str = Field(max_length=16)
    # Fernet token of the PKCE code verifier.
    verifier_encrypted: str = Field(sa_type=sa.Text)
    # Set for a Reconnect: the consent must come back for this mailbox's own account.
    mailbox_id: str | None = Field(default=None, max_length=36)
    login_hint: str | None = Field(default=None, max_length=320)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(default=None, nullable=True)


class RateLimitWindow(SQLModel, table=True):
    """Hits counted for one key in one fixed window, shared by every API process
    (store/rate_limits.py); only the current and the previous window are kept."""

    __tablename__ = "rate_limits"

    # Which limit: "form", "escalation", "public_key".
    scope: str = Field(primary_key=True, max_length=32)
    # The client address or public key; a longer one is stored as its SHA-256.
    key: str = Field(primary_key=True, max_length=128)
    window_start: datetime = _ts(primary_key=True)
    hits: int
