"""Ownership scopes: an integration reads only the bulks it submitted unless it has the right
to read every bulk. Integrations created before this revision are scoped too. The operations
of a caller's bulks are found by bulk and status.

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
    op.create_index(
        "ix_bulkops_operation_bulk_uuid_status_id",
        "bulkops_operation",
        ["bulk_uuid", "status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_bulkops_operation_bulk_uuid_status_id", "bulkops_operation")
    op.drop_column("bulkops_integration", "all_bulks")
