"""Migrations build exactly the schema the code declares, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from bulkops.store.database import Database
from bulkops.store.migrate import Migration, alembic_config, upgrade
from bulkops.store.tables import RESULT_MESSAGE_TRIGRAMS, metadata


def _declared(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
    return not (type_ == "index" and name == RESULT_MESSAGE_TRIGRAMS)


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

        async with database.write() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert tables == ["alembic_version"]
    finally:
        await database.dispose()
