"""Migrations build exactly the schema the code declares, and can be undone."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Select, Table, event, func, inspect, select

from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk_rows
from bulkops.store.database import Database
from bulkops.store.lifecycle import cleanup_bulks, expired_bulks
from bulkops.store.migrate import Migration, alembic_config, downgrade, upgrade
from bulkops.store.queue import enqueue_open_operations
from bulkops.store.tables import (
    DESCRIPTION_INDEX,
    MESSAGE_TRIGRAMS,
    RESULT_MESSAGE_TRIGRAMS,
    acknowledged_bulk,
    bulk,
    change_head,
    finished_minute,
    idempotency_key,
    metadata,
    operation,
    operation_change,
    operation_tally,
    queue_message,
    webhook_delivery,
)


def _declared(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
    if type_ == "table":
        return not _message_trigrams(name or "")
    return not (type_ == "index" and name == RESULT_MESSAGE_TRIGRAMS)


def _message_trigrams(name: str) -> bool:
    """SQLite's trigram index of result messages: its table, shadow tables and triggers."""
    return name.startswith(MESSAGE_TRIGRAMS)


def _differences(connection: Connection) -> list[object]:
    options = {"compare_type": True, "include_name": _declared}
    context = MigrationContext.configure(connection, opts=options)
    return compare_metadata(context, metadata)


def _operation_indexes(connection: Connection) -> set[str]:
    """Every index name, those on expressions included (SQLite's are not reflected)."""
    if connection.dialect.name == "sqlite":
        found = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bulkops_operation'"
        )
        return set(found.scalars())
    return {ix["name"] for ix in inspect(connection).get_indexes("bulkops_operation")}


async def test_upgrade_matches_the_tables_and_downgrade_removes_them(database_url: str) -> None:
    database = Database(database_url)
    try:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert await upgrade(database) == Migration(None, head)
        assert await upgrade(database) == Migration(head, head)  # a second run is a no-op
        async with database.write() as connection:
            assert await connection.run_sync(_differences) == []
            indexes = await connection.run_sync(_operation_indexes)
        assert {
            "ix_bulkops_operation_status_id",
            "ix_bulkops_operation_topic_name_status_id",
            "ix_bulkops_operation_start_time_id",
            "ix_bulkops_operation_bulk_uuid_operation_key",
        } <= indexes
        # The trigram index, on PostgreSQL only.
        assert (RESULT_MESSAGE_TRIGRAMS in indexes) == (database.backend == "postgresql")

        await downgrade(database, "base")
        async with database.read() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert tables == ["alembic_version"]
    finally:
        await database.dispose()


NOW = datetime(2030, 6, 1, 12, 0, 0)
LIFETIME = timedelta(days=60)
EXPIRED = NOW - 2 * LIFETIME
# Tables whose rows go in `_add`, each with its newest id.
COUNTED = (bulk, operation, queue_message)


def _bulk(number: int, start_time: datetime, items: int = 3) -> NewBulk:
    return NewBulk(
        uuid=f"d0000000-0000-4000-8000-{number:012d}",
        description=None,
        user_id=1,
        user_type=2,
        start_time=start_time,
        operations=[
            NewOperation(operation_key=key, topic_name="async.V1.things.POST", serialized_data="[]")
            for key in range(items)
        ],
    )


async def _add(database: Database, *bulks: NewBulk) -> None:
    async with database.write() as connection:
        for one in bulks:
            await insert_bulk_rows(connection, one)
            await enqueue_open_operations(connection, one.uuid, one.start_time)


async def _newest_ids(database: Database) -> dict[str, int]:
    async with database.read() as connection:
        return {
            table.name: (await connection.execute(select(func.max(table.c.id)))).scalar_one()
            for table in COUNTED
        }


# Columns and indexes that migrations after 0011 add: compared without them.
LATER_COLUMNS = {
    "bulkops_bulk": {"version", "expires_at", "callback_url"},
    "bulkops_operation": {"resubmitted_to_bulk", "resubmitted_to_key"},
}
EXPIRY_INDEX = "ix_bulkops_bulk_expires_at"


async def _rows(database: Database) -> dict[str, list[tuple[object, ...]]]:
    async with database.read() as connection:
        return {
            table.name: [tuple(row) for row in await connection.execute(_earlier(table))]
            for table in COUNTED
        }


def _earlier(table: Table) -> Select[Any]:
    later = LATER_COLUMNS.get(table.name, set())
    return select(*(column for column in table.c if column.name not in later))


async def test_ids_are_never_used_twice(database: Database) -> None:
    """The cleanup deletes the newest bulk: the next one's ids still go past its ids."""
    await _add(database, _bulk(1, NOW), _bulk(2, EXPIRED))
    deleted = await _newest_ids(database)
    cleaned = await cleanup_bulks(database, expired_bulks(NOW, LIFETIME))
    assert (cleaned.bulks, cleaned.operations) == (1, 3)

    await _add(database, _bulk(3, NOW))
    newest = await _newest_ids(database)
    assert all(newest[name] > deleted[name] for name in deleted), (newest, deleted)


LATER_TABLES = (
    acknowledged_bulk,
    finished_minute,
    idempotency_key,
    operation_change,
    change_head,
    webhook_delivery,
    operation_tally,
)
"""Tables of migrations after 0011."""


def _schemas(connection: Connection) -> dict[str, str]:
    found = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE sql NOT NULL AND name NOT LIKE 'sqlite_%'"
    )
    # A table SQLite renamed has its name quoted.
    return {name: sql.replace(f'"{name}"', name) for name, sql in found}


async def test_sqlite_databases_get_ids_never_used_twice(tmp_path: Path) -> None:
    """Migration 0011 rebuilds SQLite's tables with AUTOINCREMENT: rows, ids, indexes and the
    rows referring to them stay; new ids go past the largest, even once it is deleted."""
    database = Database(f"sqlite:///{tmp_path}/store.sqlite3")
    try:
        await upgrade(database, "0010")
        await _add(database, _bulk(1, NOW), _bulk(2, EXPIRED))
        before = await _rows(database)
        async with database.read() as connection:
            schemas = await connection.run_sync(_schemas)

        await upgrade(database)
        assert await _rows(database) == before  # queue messages too: nothing cascaded
        async with database.read() as connection:
            migrated = await connection.run_sync(_schemas)
            assert await connection.run_sync(_differences) == []
        # With the tables (and their indexes) of the later migrations.
        later = {DESCRIPTION_INDEX, EXPIRY_INDEX} | {
            name
            for name in migrated
            for table in LATER_TABLES
            if name == table.name or name.startswith(f"ix_{table.name}_")
        }
        later |= {name for name in migrated if _message_trigrams(name)}
        assert later >= {table.name for table in LATER_TABLES}
        assert migrated.keys() - later == schemas.keys()
        counting = {name for name, sql in migrated.items() if "AUTOINCREMENT" in sql}
        assert counting == {table.name for table in metadata.tables.values() if _counts(table)}
        assert len(counting) == 8
        # Indexes are the same, expression ones included.
        assert {n: s for n, s in migrated.items() if n.startswith("ix_") and n not in later} == {
            n: s for n, s in schemas.items() if n.startswith("ix_")
        }

        deleted = await _newest_ids(database)
        await cleanup_bulks(database, expired_bulks(NOW, LIFETIME))
        # Foreign keys are on again: the expired bulk's messages went with its operations.
        assert len((await _rows(database))["bulkops_queue_message"]) == 3
        await _add(database, _bulk(3, NOW))
        newest = await _newest_ids(database)
        assert all(newest[name] > deleted[name] for name in deleted), (newest, deleted)

        await downgrade(database, "0010")
        async with database.read() as connection:
            assert await connection.run_sync(_schemas) == schemas
        assert len((await _rows(database))["bulkops_operation"]) == 6
    finally:
        await database.dispose()


def _counts(table: Table) -> bool:
    return bool(table.dialect_options["sqlite"]["autoincrement"])


async def test_the_migration_lock_is_released_once_the_revision_is_committed(
    database_url: str,
) -> None:
    """Processes starting together migrate one at a time: the one waiting for the lock reads
    the revision the first reached. On MySQL and MariaDB the lock is the session's, and each
    DDL statement commits, but not the version written after the last: the lock must outlast
    the commit, or the next process runs the last migration again."""
    database = Database(database_url)
    events: list[str] = []
    engine = database.engine.sync_engine

    def on_commit(_connection: Any) -> None:
        events.append("commit")

    def on_statement(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "RELEASE_LOCK" in statement:
            events.append("release")

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        await upgrade(database, "0020")
        events.clear()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert await upgrade(database) == Migration("0020", head)
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_statement)
        await database.dispose()
    if database.backend in ("mysql", "mariadb"):
        assert events == ["commit", "release"]
    else:
        # PostgreSQL's lock is the transaction's, SQLite's the database's write lock.
        assert events == ["commit"]
