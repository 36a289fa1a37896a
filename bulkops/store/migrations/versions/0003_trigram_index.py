"""On PostgreSQL, a trigram index on result_message: `like '%...%'` reads the matches, not the
whole table. Other databases have no index for a leading wildcard.

Revision ID: 0003
Revises: 0002
"""

import logging

import sqlalchemy as sa
from alembic import op

from bulkops.store.tables import RESULT_MESSAGE_TRIGRAMS

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("bulkops.migrate")


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    try:
        # pg_trgm ships with PostgreSQL and is a trusted extension: a database owner may add
        # it. Where it cannot be added, searches still work, as full scans.
        with connection.begin_nested():
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning("no trigram index on result_message (pg_trgm unavailable): %s", error)
        return
    op.create_index(
        RESULT_MESSAGE_TRIGRAMS,
        "bulkops_operation",
        ["result_message"],
        postgresql_using="gin",
        postgresql_ops={"result_message": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(RESULT_MESSAGE_TRIGRAMS, "bulkops_operation", if_exists=True)
