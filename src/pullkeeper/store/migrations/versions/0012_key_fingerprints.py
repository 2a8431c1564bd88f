"""encryption_keys, stored_secrets: the store knows which keys its secrets need

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled at the next start from the key files the data directory holds (services/keys.py).
    op.create_table(
        "encryption_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # One current key, whatever replicas start or rotate at the same moment.
    op.create_index(
        "ux_encryption_keys_current",
        "encryption_keys",
        ["current"],
        unique=True,
        sqlite_where=sa.text('"current"'),
        postgresql_where=sa.text('"current"'),
    )
    op.create_table(
        "stored_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret_key_id", sa.String(32), nullable=False),
        sa.Column("secret_blob", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_stored_secrets_secret_key_id", "stored_secrets", ["secret_key_id"])
    # Which key ids records use is asked at every start and rotation.
    op.create_index("ix_credentials_secret_key_id", "credentials", ["secret_key_id"])


def downgrade() -> None:
    op.drop_index("ix_credentials_secret_key_id", "credentials")
    op.drop_index("ix_stored_secrets_secret_key_id", "stored_secrets")
    op.drop_table("stored_secrets")
    op.drop_index("ux_encryption_keys_current", "encryption_keys")
    op.drop_table("encryption_keys")
