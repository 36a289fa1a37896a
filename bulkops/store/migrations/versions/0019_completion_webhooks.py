"""Completion webhooks: a bulk's callback URL, an integration's default one, and the
deliveries of the completions.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import RowId, Timestamp, exact_text

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLE = "bulkops_webhook_delivery"


def upgrade() -> None:
    op.add_column("bulkops_bulk", sa.Column("callback_url", exact_text(2048), nullable=True))
    op.add_column("bulkops_integration", sa.Column("webhook_url", exact_text(2048), nullable=True))
    op.create_table(
        TABLE,
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("event_id", exact_text(64), nullable=False),
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("url", exact_text(2048), nullable=False),
        sa.Column("payload", exact_text(), nullable=False),
        sa.Column("state", exact_text(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=True),
        sa.Column("lease_owner", exact_text(64), nullable=True),
        sa.Column("last_attempt_at", Timestamp, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", exact_text(255), nullable=True),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["bulk_uuid"],
            ["bulkops_bulk.uuid"],
            name="fk_bulkops_webhook_delivery_bulk_uuid_bulkops_bulk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_webhook_delivery"),
        sa.UniqueConstraint("event_id", name="uq_bulkops_webhook_delivery_event_id"),
    )
    op.create_index(
        "ix_bulkops_webhook_delivery_next_attempt_at_id", TABLE, ["next_attempt_at", "id"]
    )
    op.create_index("ix_bulkops_webhook_delivery_bulk_uuid", TABLE, ["bulk_uuid"])


def downgrade() -> None:
    op.drop_table(TABLE)
    op.drop_column("bulkops_integration", "webhook_url")
    op.drop_column("bulkops_bulk", "callback_url")
