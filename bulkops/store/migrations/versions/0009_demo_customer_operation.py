"""The demo customers record the operation that created each: an operation delivered again
after a crash recognises the customer it created. Customers created before have none.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bulkops_demo_customer", sa.Column("operation_id", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("bulkops_demo_customer", "operation_id")
