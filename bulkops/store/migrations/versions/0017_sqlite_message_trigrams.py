"""On SQLite, an FTS5 trigram index of result_message: `like '%...%'` reads the matches, as
PostgreSQL's trigram index (0003) does, not the whole table. An external-content table (the
text stays in bulkops_operation only) kept by triggers; rows without a message are left out.

SQLite changes a table by copying it (Alembic's batch mode): a later migration that does so
to bulkops_operation drops these triggers and must create them again.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

from bulkops.store.tables import MESSAGE_TRIGRAMS

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_INDEXED = "INSERT INTO {fts} (rowid, result_message) SELECT {row}.id, {row}.result_message"
_REMOVED = (
    "INSERT INTO {fts} ({fts}, rowid, result_message) "
    "SELECT 'delete', {row}.id, {row}.result_message"
)
_TRIGGERS = {
    "inserted": f"""AFTER INSERT ON bulkops_operation WHEN new.result_message IS NOT NULL
        BEGIN {_INDEXED.format(fts=MESSAGE_TRIGRAMS, row="new")}; END""",
    "deleted": f"""AFTER DELETE ON bulkops_operation WHEN old.result_message IS NOT NULL
        BEGIN {_REMOVED.format(fts=MESSAGE_TRIGRAMS, row="old")}; END""",
    # The column's NOCASE comparison: a change of case only leaves the (caseless) trigrams
    # as they were.
    "updated": f"""AFTER UPDATE OF result_message ON bulkops_operation
        WHEN old.result_message IS NOT new.result_message BEGIN
            {_REMOVED.format(fts=MESSAGE_TRIGRAMS, row="old")} WHERE old.result_message IS NOT NULL;
            {_INDEXED.format(fts=MESSAGE_TRIGRAMS, row="new")} WHERE new.result_message IS NOT NULL;
        END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Caseless as the column is: ASCII letters folded, as NOCASE and LIKE fold them.
    op.execute(
        f"""CREATE VIRTUAL TABLE {MESSAGE_TRIGRAMS} USING fts5(result_message,
            content='bulkops_operation', content_rowid='id', tokenize='trigram case_sensitive 0')"""
    )
    op.execute(
        f"""INSERT INTO {MESSAGE_TRIGRAMS} (rowid, result_message)
            SELECT id, result_message FROM bulkops_operation WHERE result_message IS NOT NULL"""
    )
    for event, body in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {MESSAGE_TRIGRAMS}_{event} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {MESSAGE_TRIGRAMS}_{event}")
    op.execute(f"DROP TABLE IF EXISTS {MESSAGE_TRIGRAMS}")
