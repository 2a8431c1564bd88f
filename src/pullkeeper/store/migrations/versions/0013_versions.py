"""clusters, projects, credentials, policies: version, bumped by every write (ETag, If-Match)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("clusters", "projects", "credentials", "policies")


# Plain ALTER TABLE, never a batch copy: on SQLite a batch drops and re-creates the table,
# and dropping clusters would cascade to every project, credential and policy.


def upgrade() -> None:
    # Rows that exist already start at version 1, as new ones do.
    for table in TABLES:
        op.add_column(
            table, sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "version")
