"""A password provider's server settings (IMAP: host, port, security, username, folder), kept
in the clear for the API to show; the password stays in the encrypted credentials.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as table:
        table.add_column(sa.Column("server", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as table:
        table.drop_column("server")
