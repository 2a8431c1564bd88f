"""credentials: a cloud identity (its kind, what of it is not secret, its encrypted secret)
and the life of the token it was exchanged for

An ECR, GCR or ACR credential may hold a cloud identity instead of a static password;
its password is then the newest token the identity was exchanged for, refreshed before
half its life is gone (token_refresh_at), retried with backoff when the exchange fails
(token_failures, token_error).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("identity_kind", sa.String(16)),
    ("identity_key_id", sa.String(32)),
    ("identity_blob", sa.LargeBinary()),
    ("token_issued_at", sa.DateTime(timezone=True)),
    ("token_expires_at", sa.DateTime(timezone=True)),
    ("token_refresh_at", sa.DateTime(timezone=True)),
    ("token_error", sa.Text()),
    ("token_error_cause", sa.String(16)),
)


# Plain ALTER TABLE, no batch copy: on SQLite, copying the credentials table would cascade
# the deletion of the old one to its checks.
def upgrade() -> None:
    op.add_column(
        "credentials",
        sa.Column("identity", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    for name, kind in _COLUMNS:
        op.add_column("credentials", sa.Column(name, kind, nullable=True))
    op.add_column(
        "credentials",
        sa.Column("token_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    # The refresher's question: which tokens are due.
    op.create_index("ix_credentials_token_refresh_at", "credentials", ["token_refresh_at"])


def downgrade() -> None:
    op.drop_index("ix_credentials_token_refresh_at", table_name="credentials")
    for name in ("token_failures", *(n for n, _ in reversed(_COLUMNS)), "identity"):
        op.drop_column("credentials", name)
