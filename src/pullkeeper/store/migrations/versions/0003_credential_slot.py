"""credentials.slot: scope and address in one indexed value, for supersession

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("slot", sa.String(900), nullable=False, server_default=""))
        batch.create_index("ix_credentials_slot", ["slot"])
    conn = op.get_bind()
    t = sa.table(
        "credentials",
        *(
            sa.column(c, sa.String)
            for c in ("id", "cluster_id", "scope", "project_id", "namespace", "address_key")
        ),
        sa.column("slot", sa.String),
    )
    rows = conn.execute(
        sa.select(t.c.id, t.c.cluster_id, t.c.scope, t.c.project_id, t.c.namespace, t.c.address_key)
    ).all()
    for cred_id, cluster_id, scope, project_id, namespace, key in rows:
        slot = f"{cluster_id}/{scope}/{project_id or ''}/{namespace or ''}/{key}"
        conn.execute(t.update().where(t.c.id == cred_id).values(slot=slot))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_index("ix_credentials_slot")
        batch.drop_column("slot")
