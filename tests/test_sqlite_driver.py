"""SQLite's statements in one trip to the driver's thread, or none for reads: what SQLAlchemy
reads of a statement (rows, counts, inserted keys, errors, streamed rows) is as the driver
gives it, transactions begin and lock as they did, no trip is made that nothing needs, and a
long read leaves the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store import sqlite_driver
from bulkops.store.database import Database, inserted_id

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
)


@pytest.fixture(autouse=True)
def no_long_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no statement remembered as long."""
    monkeypatch.setattr(sqlite_driver, "_long_statements", {})


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


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The calls handed over to the driver's thread from now on."""
    made: list[object] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, function: Any, *args: Any) -> Any:
        made.append(function)
        return await execute(self, function, *args)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_trips_to_the_drivers_thread(database: Database, trips: list[object]) -> None:
    """A write of two statements makes three trips (BEGIN IMMEDIATE with the first, the
    second, COMMIT); a read makes none (it runs on the event loop), nor does a transaction
    without statements, nor the pool's rollback after a commit."""
    async with database.write() as connection:
        await connection.execute(insert(ITEMS).values(name="a"))
        await connection.execute(select(ITEMS.c.name))
    assert len(trips) == 3
    trips.clear()
    async with database.read() as connection:
        await connection.execute(select(ITEMS.c.id))
        assert (await connection.execute(select(ITEMS.c.name))).scalars().all() == ["a"]
    async with database.write():
        pass
    assert trips == []


# Long enough for SQLite to call the progress handler: it counts to 100,000.
LONG_READ = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
    "SELECT count(*) FROM n, items"
)


async def _long_read_beside_a_task(connection: AsyncConnection) -> tuple[int, list[str]]:
    """`LONG_READ`'s count, and the order in which it and a task made ready before it ended:
    the task first ("loop") while the read runs on the thread, last if the read holds the
    loop."""
    order: list[str] = []

    async def meanwhile() -> None:
        order.append("loop")

    task = asyncio.create_task(meanwhile())
    counted = await connection.scalar(LONG_READ)
    order.append("read")
    await task
    return counted, order


async def test_a_long_read_moves_to_the_thread_in_its_transaction(
    database: Database, tmp_path: Path, trips: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read's statement that holds the event loop past `LOOP_SECONDS` is stopped and run
    again on the driver's thread, in the same transaction (its snapshot): meanwhile the loop
    serves other tasks."""
    monkeypatch.setattr(sqlite_driver, "LOOP_SECONDS", 0.0)
    async with database.write() as connection:
        await connection.execute(insert(ITEMS).values(name="a"))
    trips.clear()
    other = sqlite3.connect(tmp_path / "driver.sqlite3", isolation_level=None)
    try:
        async with database.read() as connection:
            assert (await connection.execute(select(ITEMS.c.name))).scalars().all() == ["a"]
            assert trips == []
            other.execute("INSERT INTO items (name) VALUES ('b')")  # after the snapshot
            counted, order = await _long_read_beside_a_task(connection)
            assert counted == 100000
        assert len(trips) == 1
        assert order == ["loop", "read"]
    finally:
        other.close()


async def test_a_long_read_goes_to_the_thread_until_it_runs_short_there(
    database: Database, trips: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement that moved runs on the thread at once the next time (no time lost on the
    loop); once it runs within `LOOP_SECONDS` there, it is back on the loop."""
    monkeypatch.setattr(sqlite_driver, "LOOP_SECONDS", 0.0)
    async with database.read() as connection:
        assert await connection.scalar(LONG_READ) == 0
    assert len(trips) == 1
    monkeypatch.setattr(sqlite_driver, "LOOP_SECONDS", 3600.0)
    async with database.read() as connection:
        counted, order = await _long_read_beside_a_task(connection)
        assert counted == 0
    assert order == ["loop", "read"]  # on the thread at once
    assert len(trips) == 2
    async with database.read() as connection:
        assert await connection.scalar(LONG_READ) == 0
    assert len(trips) == 2  # short on the thread: back on the loop


async def test_a_short_read_holds_the_loop(
    database: Database, trips: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read within `LOOP_SECONDS` runs on the event loop to its end: no other task runs
    meanwhile, and nothing goes to the thread."""
    monkeypatch.setattr(sqlite_driver, "LOOP_SECONDS", 3600.0)
    async with database.read() as connection:
        counted, order = await _long_read_beside_a_task(connection)
        assert counted == 0
    assert order == ["read", "loop"]
    assert trips == []


async def test_an_error_of_a_read_on_the_loop(database: Database) -> None:
    with pytest.raises(OperationalError, match="no such table"):
        async with database.read() as connection:
            await connection.execute(text("SELECT * FROM missing"))
    async with database.read() as connection:
        assert (await connection.execute(select(ITEMS))).all() == []
