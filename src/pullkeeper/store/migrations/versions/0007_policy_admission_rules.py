"""policies: require_digest, forbid_latest and mode, for the admission webhook

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("policies") as batch:
        batch.add_column(sa.Column("require_digest", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("forbid_latest", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policies") as batch:
        for column in ("mode", "forbid_latest", "require_digest"):
            batch.drop_column(column)
