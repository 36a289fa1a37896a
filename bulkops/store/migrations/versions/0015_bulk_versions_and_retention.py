"""A bulk's version, bumped with every change of its operations that the status routes show
(their ETags), and its own retention: when it expires, if its submitter chose.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import Timestamp

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant defaults: added without rewriting the table (see 0010).
    op.add_column(
        "bulkops_bulk",
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("bulkops_bulk", sa.Column("expires_at", Timestamp, nullable=True))
    op.create_index("ix_bulkops_bulk_expires_at", "bulkops_bulk", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_bulkops_bulk_expires_at", "bulkops_bulk")
    op.drop_column("bulkops_bulk", "expires_at")
    op.drop_column("bulkops_bulk", "version")
