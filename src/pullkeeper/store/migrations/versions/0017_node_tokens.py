"""api_tokens: node tokens, bound to one cluster (kind, cluster_id)

A node token is an API token a cluster's nodes present to read that cluster's node
credentials (its credentials of cluster scope) and nothing else; deleting the cluster
deletes its node tokens.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


# A batch copy on SQLite (which cannot add a foreign key to a table): nothing refers to
# api_tokens, so the copy cascades nowhere.
def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(8), nullable=False, server_default=sa.text("'user'"))
        )
        batch.add_column(sa.Column("cluster_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_api_tokens_cluster_id_clusters",
            "clusters",
            ["cluster_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_api_tokens_cluster_id", ["cluster_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_cluster_id")
        batch.drop_constraint("fk_api_tokens_cluster_id_clusters", type_="foreignkey")
        batch.drop_column("cluster_id")
        batch.drop_column("kind")
