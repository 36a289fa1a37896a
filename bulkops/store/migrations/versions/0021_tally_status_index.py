"""The operations' counts by status and topic, found without reading every bulk's: a search
filtered on status (and topic) is counted from them.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_bulkops_operation_tally_status_topic_name",
        "bulkops_operation_tally",
        ["status", "topic_name"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_bulkops_operation_tally_status_topic_name", table_name="bulkops_operation_tally"
    )
