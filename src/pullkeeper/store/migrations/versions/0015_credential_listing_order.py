"""credentials: index (name, id), the listing's order, in place of the index on name alone;
index (state, slot)

The listing reads credentials by name, then id: with both in one index a page is
read in order, and a keyset page (the rows after a name and id) starts with one seek.
The superseded filter looks for the slots with more than one active credential:
(state, slot) answers that from the index alone.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_credentials_name_id", "credentials", ["name", "id"])
    op.drop_index("ix_credentials_name", table_name="credentials")
    op.create_index("ix_credentials_state_slot", "credentials", ["state", "slot"])


def downgrade() -> None:
    op.drop_index("ix_credentials_state_slot", table_name="credentials")
    op.create_index("ix_credentials_name", "credentials", ["name"])
    op.drop_index("ix_credentials_name_id", table_name="credentials")
