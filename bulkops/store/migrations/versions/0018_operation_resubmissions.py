"""Where a failed operation was resubmitted: the new bulk and the operation's key in it.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import exact_text

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: added without rewriting the table (see 0010).
    op.add_column(
        "bulkops_operation", sa.Column("resubmitted_to_bulk", exact_text(39), nullable=True)
    )
    op.add_column("bulkops_operation", sa.Column("resubmitted_to_key", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("bulkops_operation", "resubmitted_to_key")
    op.drop_column("bulkops_operation", "resubmitted_to_bulk")
