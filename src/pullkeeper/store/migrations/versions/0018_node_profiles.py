"""node_profiles and node_states: a cluster's node profiles, and what each node's agent
last reported

A node profile names, for the nodes its selector matches, each registry's CA, insecurity
and mirrors, and the cluster's credentials that become their logins. A node state is a
node's last report (applied, drifted, failed). Both go with their cluster.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_profiles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "cluster_id",
            sa.String(32),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("node_selector", sa.JSON(), nullable=False),
        sa.Column("registries", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.JSON(), nullable=False),
        sa.Column("mirror_default_registry", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.UniqueConstraint("cluster_id", "name"),
    )
    op.create_table(
        "node_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "cluster_id",
            sa.String(32),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("node", sa.String(253), nullable=False),
        sa.Column("profile", sa.String(63), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("cluster_id", "node"),
    )


def downgrade() -> None:
    op.drop_table("node_states")
    op.drop_table("node_profiles")
