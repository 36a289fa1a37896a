"""A bulk's `operation_count` counts its accepted operations only, as Magento's; the new
`operation_rows` counts every row, rejected ones included, for searches. The installation
table keeps values set once for every process (the crypt key of data hashes).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import exact_text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REJECTED = 5

bulk = sa.table(
    "bulkops_bulk",
    sa.column("uuid"),
    sa.column("operation_count"),
    sa.column("operation_rows"),
)
operation = sa.table("bulkops_operation", sa.column("bulk_uuid"), sa.column("status"))


def upgrade() -> None:
    # A column added in place on every backend (SQLite too): the table is not rebuilt.
    op.add_column(
        "bulkops_bulk",
        sa.Column("operation_rows", sa.Integer(), nullable=False, server_default="0"),
    )
    # Until now `operation_count` counted every row; rejected rows leave it.
    op.execute(bulk.update().values(operation_rows=bulk.c.operation_count))
    rejected = (
        sa.select(sa.func.count())
        .where(operation.c.bulk_uuid == bulk.c.uuid, operation.c.status == REJECTED)
        .scalar_subquery()
    )
    with_rejected = sa.select(operation.c.bulk_uuid).where(operation.c.status == REJECTED)
    op.execute(
        bulk.update()
        .where(bulk.c.uuid.in_(with_rejected))
        .values(operation_count=bulk.c.operation_count - rejected)
    )
    op.create_table(
        "bulkops_installation",
        sa.Column("name", exact_text(64), nullable=False),
        sa.Column("value", exact_text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_bulkops_installation"),
    )


def downgrade() -> None:
    op.drop_table("bulkops_installation")
    op.execute(bulk.update().values(operation_count=bulk.c.operation_rows))
    op.drop_column("bulkops_bulk", "operation_rows")
