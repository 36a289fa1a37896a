"""Order groups: a bulk's operations are processed in request order unless their route says
otherwise. Operations queued before this revision have no group (they wait for no other).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bulkops_operation", sa.Column("order_group", sa.BigInteger(), nullable=True))
    op.add_column("bulkops_queue_message", sa.Column("order_group", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_bulkops_queue_message_order_group_operation_id",
        "bulkops_queue_message",
        ["order_group", "operation_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_bulkops_queue_message_order_group_operation_id", "bulkops_queue_message")
    op.drop_column("bulkops_queue_message", "order_group")
    op.drop_column("bulkops_operation", "order_group")
