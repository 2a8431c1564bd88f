"""credential_checks: the last checks of each credential, with what was checked and by whom

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "credential_id",
            sa.String(32),
            sa.ForeignKey("credentials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("image", sa.String(1024), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_credential_checks_credential_at", "credential_checks", ["credential_id", "at"]
    )
    # The last check each credential already has starts its history.
    op.execute(
        "INSERT INTO credential_checks (credential_id, at, kind, actor, status, cause, message) "
        "SELECT id, checked_at, 'login', '', check_status, check_cause, check_message "
        "FROM credentials WHERE checked_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_credential_checks_credential_at", "credential_checks")
    op.drop_table("credential_checks")
