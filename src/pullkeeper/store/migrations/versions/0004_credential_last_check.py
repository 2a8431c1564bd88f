"""credentials: the result of their last check against the registry

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("check_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("check_cause", sa.String(32), nullable=True))
        batch.add_column(sa.Column("check_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        for column in ("checked_at", "check_message", "check_cause", "check_status"):
            batch.drop_column(column)
