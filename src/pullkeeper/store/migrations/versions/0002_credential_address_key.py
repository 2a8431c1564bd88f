"""credentials.address_key: the server as a keyring key, indexed

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pullkeeper.core.go.url import URLError
from pullkeeper.core.keyring import normalize_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _key(server: str) -> str:
    try:
        return normalize_key(server)
    except URLError:
        return server


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(
            sa.Column("address_key", sa.String(512), nullable=False, server_default="")
        )
        batch.create_index("ix_credentials_address_key", ["address_key"])
    conn = op.get_bind()
    table = sa.table(
        "credentials",
        sa.column("id", sa.String),
        sa.column("server", sa.String),
        sa.column("address_key", sa.String),
    )
    for cred_id, server in conn.execute(sa.select(table.c.id, table.c.server)).all():
        conn.execute(table.update().where(table.c.id == cred_id).values(address_key=_key(server)))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_index("ix_credentials_address_key")
        batch.drop_column("address_key")
