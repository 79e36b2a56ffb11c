"""Mailbox push: the state of its Gmail watch or Graph subscription, its id and expiry, the
per-mailbox secret Graph echoes (encrypted), and the last notification.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as table:
        table.add_column(
            sa.Column("push_state", sa.String(16), nullable=False, server_default="off")
        )
        table.add_column(sa.Column("push_id", sa.String(255), nullable=True))
        table.add_column(sa.Column("push_expires_at", TS, nullable=True))
        table.add_column(sa.Column("push_secret_encrypted", sa.Text(), nullable=True))
        table.add_column(sa.Column("push_error", sa.Text(), nullable=True))
        table.add_column(sa.Column("last_notification_at", TS, nullable=True))
    op.create_index("ix_mailboxes_push_id", "mailboxes", ["push_id"])
    op.create_index("ix_mailboxes_provider_address", "mailboxes", ["provider", "address"])


def downgrade() -> None:
    op.drop_index("ix_mailboxes_provider_address", "mailboxes")
    op.drop_index("ix_mailboxes_push_id", "mailboxes")
    with op.batch_alter_table("mailboxes") as table:
        for name in (
            "last_notification_at",
            "push_error",
            "push_secret_encrypted",
            "push_expires_at",
            "push_id",
            "push_state",
        ):
            table.drop_column(name)
