"""Operations finished each minute, by topic and status, for the console's dashboard; the
bulks' caseless description indexed, for the log's sort.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.tables import DESCRIPTION_INDEX
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

    dialect = op.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        # The column's collation folds case itself.
        op.create_index(DESCRIPTION_INDEX, "bulkops_bulk", ["description", "id"])
    else:
        folded = "description COLLATE NOCASE" if dialect == "sqlite" else "lower(description)"
        op.execute(f"CREATE INDEX {DESCRIPTION_INDEX} ON bulkops_bulk ({folded}, id)")


def downgrade() -> None:
    op.drop_index(DESCRIPTION_INDEX, "bulkops_bulk")
    op.drop_table("bulkops_finished_minute")
