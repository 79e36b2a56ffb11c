"""Mailboxes, the inbound ledger and pending OAuth states.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("allowed_senders", sa.JSON(), nullable=False),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("last_polled_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("agent_id", "provider", "address", name="uq_mailboxes_agent_address"),
    )
    op.create_index("ix_mailboxes_agent_id", "mailboxes", ["agent_id"])
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("mailbox_id", sa.String(36), sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("provider_message_id", sa.String(255), nullable=False),
        sa.Column("provider_thread_id", sa.String(255), nullable=True),
        sa.Column("internet_message_id", sa.String(998), nullable=True),
        sa.Column("from_address", sa.String(320), nullable=True),
        sa.Column("from_name", sa.String(200), nullable=True),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("received_at", TS, nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ticket_id", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.UniqueConstraint(
            "mailbox_id", "provider_message_id", name="uq_inbound_mailbox_provider_message"
        ),
    )
    op.create_index("ix_inbound_mailbox_created", "inbound_messages", ["mailbox_id", "created_at"])
    op.create_index("ix_inbound_mailbox_outcome", "inbound_messages", ["mailbox_id", "outcome"])
    op.create_index(
        "ix_inbound_agent_message_id", "inbound_messages", ["agent_id", "internet_message_id"]
    )
    op.create_index(
        "ix_inbound_mailbox_thread", "inbound_messages", ["mailbox_id", "provider_thread_id"]
    )
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("verifier_encrypted", sa.Text(), nullable=False),
        sa.Column("mailbox_id", sa.String(36), nullable=True),
        sa.Column("login_hint", sa.String(320), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("oauth_states")
    op.drop_table("inbound_messages")
    op.drop_table("mailboxes")
