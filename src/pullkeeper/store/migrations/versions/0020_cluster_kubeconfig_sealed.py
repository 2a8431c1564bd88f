"""clusters: kubeconfig_key_id, kubeconfig_blob, an uploaded kubeconfig encrypted in the store

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, no batch copy: on SQLite, copying the clusters table would cascade the
# deletion of the old one to its projects and namespaces.
def upgrade() -> None:
    op.add_column("clusters", sa.Column("kubeconfig_key_id", sa.String(32), nullable=True))
    op.add_column("clusters", sa.Column("kubeconfig_blob", sa.LargeBinary(), nullable=True))
    op.create_index("ix_clusters_kubeconfig_key_id", "clusters", ["kubeconfig_key_id"])


def downgrade() -> None:
    # A downgrade cannot keep a kubeconfig it has no file for: such clusters lose their access.
    op.drop_index("ix_clusters_kubeconfig_key_id", table_name="clusters")
    op.drop_column("clusters", "kubeconfig_blob")
    op.drop_column("clusters", "kubeconfig_key_id")
