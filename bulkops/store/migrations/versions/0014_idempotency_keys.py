"""Idempotency keys of submissions, each with its request's hash and its answer, deleted with
its bulk.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import RowId, Timestamp, exact_text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLE = "bulkops_idempotency_key"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("user_type", sa.SmallInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", exact_text(255), nullable=False),
        sa.Column("request_hash", exact_text(64), nullable=False),
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("response", exact_text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_uuid"],
            ["bulkops_bulk.uuid"],
            name="fk_bulkops_idempotency_key_bulk_uuid_bulkops_bulk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_idempotency_key"),
    )
    op.create_index(
        "ix_bulkops_idempotency_key_user_type_user_id_idempotency_key",
        TABLE,
        ["user_type", "user_id", "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_bulkops_idempotency_key_created_at", TABLE, ["created_at"])
    op.create_index("ix_bulkops_idempotency_key_bulk_uuid", TABLE, ["bulk_uuid"])


def downgrade() -> None:
    op.drop_table(TABLE)
