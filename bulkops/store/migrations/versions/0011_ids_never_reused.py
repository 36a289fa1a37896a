"""Ids are never used twice on SQLite: without AUTOINCREMENT, SQLite gives a new row the
largest id + 1, so once the cleanup (or anything else) has deleted the newest rows, their ids
come back, and a client holding an operation id would find someone else's operation under it.
PostgreSQL's sequences and InnoDB's counters never go back, so only SQLite changes.

SQLite cannot add AUTOINCREMENT to a table: each is rebuilt as its schema says (the 12 steps
of https://www.sqlite.org/lang_altertable.html#otheralter), from its own CREATE statement, so
that nothing else of it changes, and its indexes are created again. The rows keep their ids
and new ones continue past the largest. `bulkops.store.migrate` turns foreign keys off for it:
dropping a table referred to would otherwise delete the rows referring to it.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Every table with a generated integer id.
_TABLES = (
    "bulkops_bulk",
    "bulkops_operation",
    "bulkops_queue_message",
    "bulkops_admin_user",
    "bulkops_integration",
    "bulkops_access_token",
    "bulkops_oauth_consumer",
    "bulkops_demo_customer",
)


def upgrade() -> None:
    _rebuild_all(autoincrement=True)


def downgrade() -> None:
    _rebuild_all(autoincrement=False)


def _rebuild_all(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        plain = f"CONSTRAINT pk_{table} PRIMARY KEY (id)"
        counting = f"CONSTRAINT pk_{table} PRIMARY KEY (id AUTOINCREMENT)"
        _rebuild(table, *((plain, counting) if autoincrement else (counting, plain)))


def _rebuild(table: str, old: str, new: str) -> None:
    connection = op.get_bind()
    schema = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    if schema.count(old) != 1:
        raise RuntimeError(f"{table}: expected one {old!r} in its schema: {schema}")
    # Indexes without SQL are those of UNIQUE and PRIMARY KEY: the schema makes them again.
    indexes = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql NOT NULL",
        (table,),
    ).scalars()
    index_statements = list(indexes)
    copy = f"_new_{table}"
    # The schema after its name (SQLite quotes a renamed table's): its columns and constraints.
    columns = schema[schema.index("(") :]
    op.execute(f"CREATE TABLE {copy} {columns.replace(old, new)}")
    # Same statement, same columns in the same order; explicit ids move the AUTOINCREMENT
    # counter past the largest.
    op.execute(f"INSERT INTO {copy} SELECT * FROM {table}")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {copy} RENAME TO {table}")
    for statement in index_statements:
        op.execute(statement)
