"""Cached statements run straight on SQLite's driver give what SQLAlchemy's execution gives:
the same rows and column names, parameters expanded and bound by their types, values read by
their types, the same errors; and a read's statements there make no trip to the driver's
thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from bulkops.store import direct_reads, sqlite_driver
from bulkops.store.database import Database
from bulkops.store.types import Timestamp

METADATA = MetaData()
EVENTS = Table(
    "events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("at", Timestamp, nullable=False),
)
MISSING = Table("missing", MetaData(), Column("id", Integer, primary_key=True))

BY_KINDS = (
    select(EVENTS.c.id, EVENTS.c.at, func.upper(EVENTS.c.kind).label("loud"))
    .where(EVENTS.c.kind.in_(bindparam("kinds", expanding=True)))
    .where(EVENTS.c.at >= bindparam("since", type_=Timestamp))
    .order_by(EVENTS.c.id)
)
"""IN of a list (expanded per call), a bound value its type changes (a datetime with a
fraction, cut to whole seconds), a value its type reads (the text SQLite holds, as a datetime)."""

COUNT = select(func.coalesce(func.sum(EVENTS.c.id), 0), func.count()).where(
    EVENTS.c.kind == bindparam("kind")
)
"""A constant of the statement's own (the 0) beside the caller's value."""


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'direct.sqlite3'}")
    async with database.write() as connection:
        await connection.run_sync(METADATA.create_all)
        await connection.execute(
            insert(EVENTS),
            [
                {"kind": kind, "at": datetime(2024, 5, day, 12, 0, 0)}
                for day in range(1, 11)
                for kind in ("a", "b", "c")
            ],
        )
    yield database
    await database.dispose()


def _both(connection: Connection, statement: Any, values: dict[str, Any]) -> tuple[Any, Any]:
    """The rows run straight on the driver, and through SQLAlchemy's execution."""
    direct = direct_reads.fetch_all(connection, statement, values)
    executed = connection.execute(statement, values).all()
    return direct, executed


@pytest.mark.parametrize(
    ("statement", "values"),
    [
        (BY_KINDS, {"kinds": ["a"], "since": datetime(2024, 5, 3, 12, 0, 0, 999_999)}),
        (BY_KINDS, {"kinds": ["a", "c", "z"], "since": datetime(2024, 5, 8)}),
        (BY_KINDS, {"kinds": [], "since": datetime(2024, 5, 1)}),
        (COUNT, {"kind": "b"}),
        (COUNT, {"kind": "nothing"}),
    ],
)
async def test_rows_as_sqlalchemy_reads_them(
    database: Database, statement: Any, values: dict[str, Any]
) -> None:
    async with database.read() as connection:
        direct, executed = await connection.run_sync(_both, statement, values)
    assert [tuple(row) for row in direct] == [tuple(row) for row in executed]
    if executed:
        assert direct[0]._fields == executed[0]._fields
    if statement is BY_KINDS and values["kinds"]:
        assert isinstance(direct[0].at, datetime)


def _errors(connection: Connection, statement: Any) -> tuple[Exception, Exception]:
    with pytest.raises(OperationalError) as direct:
        direct_reads.fetch_all(connection, statement, {})
    with pytest.raises(OperationalError) as executed:
        connection.execute(statement).all()
    return direct.value, executed.value


async def test_errors_as_sqlalchemy_raises_them(database: Database) -> None:
    async with database.read() as connection:
        direct, executed = await connection.run_sync(_errors, select(MISSING.c.id))
    assert type(direct) is type(executed)
    assert str(direct.orig) == str(executed.orig) == "no such table: missing"


async def test_a_reads_statements_make_no_trip(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[object] = []
    on_thread = sqlite_driver.OneTripConnection._on_thread

    async def counted(self: Any, sql: Any, statement: Any) -> Any:
        trips.append(sql)
        return await on_thread(self, sql, statement)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_on_thread", counted)
    async with database.read() as connection:
        rows = await connection.run_sync(direct_reads.fetch_all, COUNT, {"kind": "a"})
    assert tuple(rows[0]) == (sum(range(1, 31, 3)), 10)
    assert trips == []
    async with database.write() as connection:
        await connection.run_sync(direct_reads.fetch_all, COUNT, {"kind": "a"})
    assert len(trips) == 1  # a write's statements go to the thread
