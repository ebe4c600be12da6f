"""Drop conversations.prompt_class: written at creation but never read (the service's prompt class is
configuration, not per conversation).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE on both backends (SQLite >= 3.35 drops columns in place). Not batch mode:
    # rebuilding the SQLite table would drop it, and with foreign keys on that deletes its messages.
    op.drop_column("conversations", "prompt_class")


def downgrade() -> None:
    # Existing rows need a value; PostgreSQL then loses the default again, as 0001 created the column.
    op.add_column(
        "conversations", sa.Column("prompt_class", sa.String(200), nullable=False, server_default="")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("conversations", "prompt_class", server_default=None)
