"""Operations counted by bulk, topic and status, for facets: filled from the operations.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import caseless_text, exact_text

revision = "0016"
down_revision = "0015"
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
    op.execute(
        "INSERT INTO bulkops_operation_tally (bulk_uuid, topic_name, status, operations)"
        " SELECT bulk_uuid, topic_name, status, count(*) FROM bulkops_operation"
        " GROUP BY bulk_uuid, topic_name, status"
    )


def downgrade() -> None:
    op.drop_table("bulkops_operation_tally")
