"""Operations, bulks, admin users, integrations and access tokens.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import RowId, Timestamp, exact_text

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulkops_bulk",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("uuid", exact_text(39), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_type", sa.SmallInteger(), nullable=True),
        sa.Column("description", exact_text(255), nullable=True),
        sa.Column("operation_count", sa.Integer(), nullable=False),
        sa.Column("start_time", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_bulk"),
        sa.UniqueConstraint("uuid", name="uq_bulkops_bulk_uuid"),
    )
    op.create_index("ix_bulkops_bulk_start_time", "bulkops_bulk", ["start_time"])
    op.create_index("ix_bulkops_bulk_user_type_user_id", "bulkops_bulk", ["user_type", "user_id"])

    op.create_table(
        "bulkops_operation",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("operation_key", sa.Integer(), nullable=False),
        sa.Column("topic_name", exact_text(255), nullable=False),
        sa.Column("serialized_data", exact_text(), nullable=True),
        sa.Column("result_serialized_data", exact_text(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("result_message", exact_text(), nullable=True),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("start_time", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_uuid"],
            ["bulkops_bulk.uuid"],
            name="fk_bulkops_operation_bulk_uuid_bulkops_bulk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_operation"),
    )
    for name, columns, unique in (
        ("bulk_uuid_operation_key", ["bulk_uuid", "operation_key"], True),
        ("status_id", ["status", "id"], False),
        ("topic_name_status_id", ["topic_name", "status", "id"], False),
        ("start_time_id", ["start_time", "id"], False),
    ):
        op.create_index(f"ix_bulkops_operation_{name}", "bulkops_operation", columns, unique=unique)

    op.create_table(
        "bulkops_admin_user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", exact_text(40), nullable=False),
        sa.Column("password_hash", exact_text(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failures_count", sa.Integer(), nullable=False),
        sa.Column("lock_expires", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_admin_user"),
        sa.UniqueConstraint("username", name="uq_bulkops_admin_user_username"),
    )
    op.create_table(
        "bulkops_integration",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", exact_text(255), nullable=False),
        sa.Column("resources", exact_text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_integration"),
        sa.UniqueConstraint("name", name="uq_bulkops_integration_name"),
    )
    op.create_table(
        "bulkops_access_token",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("token_hash", exact_text(64), nullable=False),
        sa.Column("user_type", sa.SmallInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_access_token"),
        sa.UniqueConstraint("token_hash", name="uq_bulkops_access_token_token_hash"),
    )
    op.create_index(
        "ix_bulkops_access_token_user_type_user_id",
        "bulkops_access_token",
        ["user_type", "user_id"],
    )


def downgrade() -> None:
    for table in (
        "bulkops_access_token",
        "bulkops_integration",
        "bulkops_admin_user",
        "bulkops_operation",
        "bulkops_bulk",
    ):
        op.drop_table(table)
