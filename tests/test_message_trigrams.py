"""SQLite's trigram index of result messages (migration 0017): `like` filters on the message
read it, and its triggers keep it equal to the messages as operations are added, finish,
change and go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update

from bulkops.criteria import parse_search_criteria
from bulkops.status import OperationStatus
from bulkops.store import search
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from bulkops.store.tables import MESSAGE_TRIGRAMS, bulk, operation
from tests.storage import insert_bulks_async

FAILED = OperationStatus.NOT_RETRIABLY_FAILED
MESSAGES = ["URL key for specified store already exists.", None, 'Café "closed"', "url KEY 100%"]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/store.sqlite3")
    await upgrade(database)
    operations = [
        NewOperation(key, "async.V1.products.POST", "{}", FAILED if message else 4, message)
        for key, message in enumerate(MESSAGES)
    ]
    one = NewBulk("b-1", None, 1, 2, datetime(2024, 5, 1), operations)
    await insert_bulks_async(database, [one])
    yield database
    await database.dispose()


def _like(pattern: str) -> search.SearchCriteria:
    like = {"field": "result_message", "value": pattern, "condition_type": "like"}
    groups = {"0": {"filters": {"0": like}}}
    return parse_search_criteria({"searchCriteria": {"filter_groups": groups, "pageSize": "100"}})


async def _keys(database: Database, pattern: str) -> list[int]:
    async with database.read() as connection:
        page = await search.search_page(connection, _like(pattern), database.backend)
    return [row.operation_key for row in page.rows]


async def _check_index(database: Database) -> None:
    """The index holds exactly what one built afresh from the operations' messages holds:
    every trigram, in every operation, at every offset."""
    statements = [
        f"CREATE VIRTUAL TABLE temp.kept USING fts5vocab(main, {MESSAGE_TRIGRAMS}, 'instance')",
        "CREATE VIRTUAL TABLE temp.fresh_index USING fts5(result_message, "
        "tokenize='trigram case_sensitive 0')",
        "INSERT INTO temp.fresh_index (rowid, result_message) "
        "SELECT id, result_message FROM bulkops_operation WHERE result_message IS NOT NULL",
        "CREATE VIRTUAL TABLE temp.fresh USING fts5vocab(temp, fresh_index, 'instance')",
    ]
    async with database.write() as connection:
        for statement in statements:
            await connection.exec_driver_sql(statement)
        kept = set(await connection.exec_driver_sql("SELECT * FROM temp.kept"))
        fresh = set(await connection.exec_driver_sql("SELECT * FROM temp.fresh"))
        for name in ("kept", "fresh", "fresh_index"):
            await connection.exec_driver_sql(f"DROP TABLE temp.{name}")
    assert kept == fresh


async def test_like_reads_the_trigram_index(database: Database) -> None:
    async with database.read() as connection:
        query = search.count_query(_like("%url key%"), database.backend)
        compiled = query.compile(connection.sync_engine, compile_kwargs={"literal_binds": True})
        rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        plan = " ".join(row[-1] for row in rows)
    assert f"SCAN {MESSAGE_TRIGRAMS} VIRTUAL TABLE INDEX 0:M" in plan
    assert await _keys(database, "%url key%") == [0, 3]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%URL key%", [0, 3]),  # caseless: ASCII letters folded, as the column's LIKE
        ("url%", [0, 3]),  # anchored at the start
        ("%exists.", [0]),  # and at the end
        ("%store_already%", [0]),  # `_` is any one character
        ("%for%store%", [0]),  # several runs
        ("%café%", [2]),  # letters beyond ASCII compared exactly, as LIKE does on SQLite
        ("%CAFÉ%", []),  # (the index, folding them, finds it)
        ('%"closed"%', [2]),
        ("%ur%", [0, 3]),  # fewer than three characters in a row: the plain LIKE alone
        ("%KEY 100\\%", [3]),  # escaped wildcards are text
        ("%key\\_%", []),
    ],
)
async def test_like_matches_as_the_plain_like(
    database: Database, pattern: str, expected: list[int]
) -> None:
    assert await _keys(database, pattern) == expected


async def test_the_index_follows_the_operations(database: Database) -> None:
    async with database.write() as connection:
        # A result recorded, a message changed, a message removed.
        for key, message in [(1, "URL key again"), (3, "Taken"), (0, None)]:
            changed = update(operation).where(operation.c.operation_key == key)
            await connection.execute(changed.values(result_message=message))
    await _check_index(database)
    assert await _keys(database, "%url key%") == [1]
    assert await _keys(database, "%taken%") == [3]
    assert await _keys(database, "%100\\%") == []

    async with database.write() as connection:
        await connection.execute(delete(operation))
        await connection.execute(delete(bulk))
    await _check_index(database)
    assert await _keys(database, "%url key%") == []
