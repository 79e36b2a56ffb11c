"""Agents, tickets, ticket messages and ticket events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("admin_token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("escalation_mode", sa.String(16), nullable=False),
        sa.Column("escalation_email", sa.String(320), nullable=True),
        sa.Column("escalation_phone", sa.String(64), nullable=True),
        sa.Column("escalation_live_chat_url", sa.String(2048), nullable=True),
        sa.Column("next_ticket_number", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requester_email", sa.String(320), nullable=True),
        sa.Column("requester_name", sa.String(200), nullable=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mailbox_id", sa.String(36), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("agent_id", "number", name="uq_tickets_agent_number"),
        sa.UniqueConstraint("agent_id", "source", "source_ref", name="uq_tickets_agent_source_ref"),
    )
    op.create_index("ix_tickets_agent_id", "tickets", ["agent_id"])
    op.create_index("ix_tickets_agent_updated", "tickets", ["agent_id", "updated_at"])
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("source_ref", sa.String(255), nullable=False),
        sa.Column("author_email", sa.String(320), nullable=True),
        sa.Column("author_name", sa.String(200), nullable=True),
        sa.Column("author_role", sa.String(16), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("ticket_id", "source_ref", name="uq_ticket_messages_ticket_source_ref"),
    )
    op.create_index("ix_ticket_messages_agent_id", "ticket_messages", ["agent_id"])
    op.create_index("ix_ticket_messages_ticket_sent", "ticket_messages", ["ticket_id", "sent_at"])
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("notified_at", TS, nullable=True),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])
    op.create_index("ix_ticket_events_agent_pending", "ticket_events", ["agent_id", "notified_at"])


def downgrade() -> None:
    op.drop_table("ticket_events")
    op.drop_table("ticket_messages")
    op.drop_table("tickets")
    op.drop_table("agents")
