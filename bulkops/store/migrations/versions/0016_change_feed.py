"""The change feed: changes of operations' statuses (and bulks deleted), positioned after
commit, and the feed's head row.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import RowId, Timestamp, exact_text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLE = "bulkops_operation_change"
HEAD = "bulkops_change_head"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=True),
        sa.Column("operation_key", sa.Integer(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("user_type", sa.SmallInteger(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_operation_change"),
    )
    op.create_index("ix_bulkops_operation_change_position", TABLE, ["position"], unique=True)
    op.create_index(
        "ix_bulkops_operation_change_user_type_user_id_position",
        TABLE,
        ["user_type", "user_id", "position"],
    )
    op.create_index("ix_bulkops_operation_change_changed_at", TABLE, ["changed_at"])
    head = op.create_table(
        HEAD,
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_change_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_position": 0, "pruned_through": 0}])


def downgrade() -> None:
    op.drop_table(HEAD)
    op.drop_table(TABLE)
