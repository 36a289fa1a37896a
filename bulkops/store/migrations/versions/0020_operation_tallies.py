"""Operations counted by bulk, topic and status, for facets: counted from the operations.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.tallies import RECOUNT
from bulkops.store.types import caseless_text, exact_text

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulkops_operation_tally",
        sa.Column("bulk_uuid", exact_text(39), nullable=False),
        sa.Column("topic_name", caseless_text(255), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("operations", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_uuid"],
            ["bulkops_bulk.uuid"],
            name="fk_bulkops_operation_tally_bulk_uuid_bulkops_bulk",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "bulk_uuid", "topic_name", "status", name="pk_bulkops_operation_tally"
        ),
    )
    op.execute(RECOUNT)


def downgrade() -> None:
    op.drop_table("bulkops_operation_tally")
