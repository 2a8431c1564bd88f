"""leases, sync_statuses, sync_cluster_errors: one replica syncs, every replica reports

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sync_statuses",
        sa.Column("credential_id", sa.String(32), primary_key=True),
        sa.Column("cluster_id", sa.String(32), primary_key=True),
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("secret", sa.String(253), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sync_statuses_place", "sync_statuses", ["cluster_id", "namespace"])
    op.create_table(
        "sync_cluster_errors",
        sa.Column("cluster_id", sa.String(32), primary_key=True),
        sa.Column("message", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_cluster_errors")
    op.drop_index("ix_sync_statuses_place", "sync_statuses")
    op.drop_table("sync_statuses")
    op.drop_table("leases")
