"""Deliveries of an operation that ended without an outcome, so that one whose handler kills
its worker every time is abandoned rather than delivered forever.

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL 11+, MariaDB 10.3+ and SQLite add it without rewriting
    # the table.
    op.add_column(
        "bulkops_operation",
        sa.Column("deliveries", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("bulkops_operation", "deliveries")
