"""Dismissed notifications of finished bulks, as Magento's `magento_acknowledged_bulk`.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import Timestamp, exact_text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulkops_acknowledged_bulk",
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("acknowledged_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_uuid"],
            ["bulkops_bulk.uuid"],
            name="fk_bulkops_acknowledged_bulk_bulk_uuid_bulkops_bulk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bulk_uuid", name="pk_bulkops_acknowledged_bulk"),
    )


def downgrade() -> None:
    op.drop_table("bulkops_acknowledged_bulk")
