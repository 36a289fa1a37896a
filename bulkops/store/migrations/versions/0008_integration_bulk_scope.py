"""Ownership scopes: an integration reads only the bulks it submitted unless it has the right
to read every bulk. Integrations created before this revision are scoped too.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bulkops_integration",
        sa.Column("all_bulks", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("bulkops_integration", "all_bulks")
