"""Operations finished each minute, by topic and status, for the console's dashboard.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import Timestamp, exact_text

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulkops_finished_minute",
        sa.Column("minute", Timestamp, nullable=False),
        sa.Column("topic_name", exact_text(255), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("finished", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "minute", "topic_name", "status", name="pk_bulkops_finished_minute"
        ),
    )


def downgrade() -> None:
    op.drop_table("bulkops_finished_minute")
