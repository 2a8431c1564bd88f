"""credentials: token_hosts, the token servers on other hosts a login may be sent to

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, no batch copy: on SQLite, copying the credentials table would cascade
# the deletion of the old one to its checks.
def upgrade() -> None:
    op.add_column(
        "credentials",
        sa.Column("token_hosts", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    op.drop_column("credentials", "token_hosts")
