"""topic_name, result_message and the bulk's description are searched without regard to case,
as Magento's `utf8_general_ci` columns: on MySQL and MariaDB their collation becomes a caseless
one (the table is rebuilt, with its indexes); on SQLite and PostgreSQL the indexes that serve
them hold the folded text (NOCASE on SQLite, lower(...) on PostgreSQL).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.tables import RESULT_MESSAGE_TRIGRAMS, TOPIC_STATUS_INDEX
from bulkops.store.types import caseless_text, exact_text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The index that serves `topic_name eq T` (and `status in ...`), on the folded topic.
_FOLDED_TOPIC_INDEX = {
    "sqlite": "(topic_name COLLATE NOCASE, status, id)",
    # The column itself too, so that a count reads the index alone.
    "postgresql": "(lower(topic_name), status, id) INCLUDE (topic_name)",
}

# (table, column, length, nullable)
_COLUMNS = [
    ("bulkops_operation", "topic_name", 255, False),
    ("bulkops_operation", "result_message", None, True),
    ("bulkops_bulk", "description", 255, True),
]


def upgrade() -> None:
    _migrate(folded=True)


def downgrade() -> None:
    _migrate(folded=False)


def _migrate(folded: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        new_type, old_type = (caseless_text, exact_text) if folded else (exact_text, caseless_text)
        for table, column, length, nullable in _COLUMNS:
            op.alter_column(
                table,
                column,
                type_=new_type(length),
                existing_type=old_type(length),
                existing_nullable=nullable,
            )
        return
    op.drop_index(TOPIC_STATUS_INDEX, "bulkops_operation")
    op.execute(
        f"CREATE INDEX {TOPIC_STATUS_INDEX} ON bulkops_operation"
        f" {_FOLDED_TOPIC_INDEX[dialect] if folded else '(topic_name, status, id)'}"
    )
    if dialect == "postgresql":
        _trigrams("lower(result_message)" if folded else "result_message")
    if _analyzed(dialect):
        # The planner's statistics on the new index expressions.
        op.execute("ANALYZE bulkops_operation")


def _analyzed(dialect: str) -> bool:
    """Whether the planner keeps statistics to update: always on PostgreSQL; on SQLite only
    once the database has been analyzed (statistics taken now would stay those of today)."""
    if dialect == "postgresql":
        return True
    found = op.get_bind().execute(
        sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    )
    return found.first() is not None


def _trigrams(expression: str) -> None:
    """The trigram index of migration 0003 on `expression`, where it exists (pg_trgm may not
    have been available)."""
    exists = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_indexes WHERE indexname = :name"),
        {"name": RESULT_MESSAGE_TRIGRAMS},
    )
    if exists.first() is None:
        return
    op.drop_index(RESULT_MESSAGE_TRIGRAMS, "bulkops_operation")
    op.execute(
        f"CREATE INDEX {RESULT_MESSAGE_TRIGRAMS} ON bulkops_operation"
        f" USING gin ({expression} gin_trgm_ops)"
    )
