"""SQLite's statements in one trip to the driver's thread: what SQLAlchemy reads of a statement
(rows, counts, inserted keys, errors, streamed rows) is as the driver gives it, transactions
begin and lock as they did, and no trip is made that nothing needs."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from bulkops.store.database import Database, inserted_id

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'driver.sqlite3'}")
    async with database.write() as connection:
        await connection.run_sync(METADATA.create_all)
    yield database
    await database.dispose()


async def test_rows_counts_and_keys(database: Database) -> None:
    async with database.write() as connection:
        first = inserted_id(await connection.execute(insert(ITEMS).values(name="a")))
        second = inserted_id(await connection.execute(insert(ITEMS).values(name="b")))
        many = await connection.execute(insert(ITEMS), [{"name": "c"}, {"name": "d"}])
        changed = await connection.execute(
            update(ITEMS).where(ITEMS.c.id > first).values(name=ITEMS.c.name + "!")
        )
    assert (first, second) == (1, 2)
    assert many.rowcount == 2
    assert changed.rowcount == 3
    async with database.read() as connection:
        rows = (await connection.execute(select(ITEMS).order_by(ITEMS.c.id))).all()
        names = (await connection.execute(select(ITEMS.c.name).order_by(ITEMS.c.id))).scalars()
        assert list(names) == ["a", "b!", "c!", "d!"]
        assert await connection.scalar(select(ITEMS.c.id).where(ITEMS.c.name == "x")) is None
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d!")]


async def test_an_error_rolls_back(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.write() as connection:
            await connection.execute(insert(ITEMS).values(name="a"))
            await connection.execute(insert(ITEMS).values(name="a"))
    async with database.read() as connection:
        assert (await connection.execute(select(ITEMS))).all() == []


async def test_streamed_rows(database: Database) -> None:
    async with database.write() as connection:
        await connection.execute(insert(ITEMS), [{"name": f"n{n:03}"} for n in range(250)])
    async with database.read() as connection:
        streamed = await connection.stream(select(ITEMS.c.name).order_by(ITEMS.c.id))
        names = [name async for name in streamed.scalars()]
    assert names == [f"n{n:03}" for n in range(250)]


def _driver(connection: Any) -> sqlite3.Connection:
    """The sqlite3 connection under an aiosqlite one, for reading its flags only."""
    return connection.driver_connection._connection  # type: ignore[no-any-return]


async def test_a_stream_first_runs_in_the_transaction(database: Database) -> None:
    """BEGIN waits for the transaction's first statement; a streamed read, which makes its
    own trips, sends it first."""
    async with database.write() as connection:
        await connection.execute(insert(ITEMS), [{"name": "a"}, {"name": "b"}])
    async with database.read() as connection:
        raw = await connection.get_raw_connection()
        assert not _driver(raw).in_transaction
        streamed = await connection.stream(select(ITEMS.c.name).order_by(ITEMS.c.id))
        assert _driver(raw).in_transaction
        assert [name async for name in streamed.scalars()] == ["a", "b"]


async def test_a_write_holds_the_write_lock_from_its_first_statement(
    database: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "driver.sqlite3", timeout=0, isolation_level=None)
    try:
        async with database.write() as connection:
            await connection.execute(select(ITEMS.c.id))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_trips_to_the_drivers_thread(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of two statements makes three (BEGIN with the first, the second, COMMIT); a
    transaction without statements, and the pool's rollback after a commit, make none."""
    trips: list[object] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, function: Any, *args: Any) -> Any:
        trips.append(function)
        return await execute(self, function, *args)

    async with database.read() as connection:  # a pooled connection, connected
        await connection.execute(select(ITEMS.c.id))
    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    async with database.read() as connection:
        await connection.execute(select(ITEMS.c.id))
        await connection.execute(select(ITEMS.c.name))
    assert len(trips) == 3
    trips.clear()
    async with database.write():
        pass
    assert trips == []
