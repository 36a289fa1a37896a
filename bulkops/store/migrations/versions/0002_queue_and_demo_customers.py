"""The db transport's queue, the store code of a bulk, and the demo customers handler's table.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import RowId, Timestamp, exact_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulkops_bulk") as batch:
        batch.add_column(
            sa.Column("store_code", exact_text(32), nullable=False, server_default="default")
        )
    op.create_table(
        "bulkops_queue_message",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_name", exact_text(255), nullable=False),
        sa.Column("available_at", Timestamp, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", exact_text(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["bulkops_operation.id"],
            name="fk_bulkops_queue_message_operation_id_bulkops_operation",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_queue_message"),
        sa.UniqueConstraint("operation_id", name="uq_bulkops_queue_message_operation_id"),
    )
    op.create_index(
        "ix_bulkops_queue_message_available_at_id",
        "bulkops_queue_message",
        ["available_at", "id"],
    )
    op.create_table(
        "bulkops_demo_customer",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("website_id", sa.Integer(), nullable=False),
        sa.Column("email", exact_text(255), nullable=False),
        sa.Column("firstname", exact_text(255), nullable=True),
        sa.Column("lastname", exact_text(255), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_demo_customer"),
    )
    op.create_index(
        "ix_bulkops_demo_customer_website_id_email",
        "bulkops_demo_customer",
        ["website_id", "email"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("bulkops_demo_customer")
    op.drop_table("bulkops_queue_message")
    with op.batch_alter_table("bulkops_bulk") as batch:
        batch.drop_column("store_code")
