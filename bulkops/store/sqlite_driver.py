"""SQLAlchemy's aiosqlite adapter with one trip to the driver's thread per statement.

aiosqlite runs each call on a thread of its own; SQLAlchemy's adapter makes four calls per
statement (create a cursor, execute, fetch every row, close), and each is a hand-over between
threads that costs more than an indexed SELECT. Here the four run as one call. Server-side
cursors (streamed reads) keep SQLAlchemy's own, which fetch as the reader asks."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class _Done:
    """What a statement left that SQLAlchemy reads after it: read in the driver's thread,
    since sqlite3 objects belong to the thread that made them."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any]) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.rows = rows


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_done",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor yet: the statement's call makes (and closes) its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._done: _Done | None = None
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    @property
    def description(self) -> Any:
        return None if self._done is None else self._done.description

    @property
    def rowcount(self) -> int:
        return -1 if self._done is None else self._done.rowcount

    @property
    def lastrowid(self) -> int:
        return 0 if self._done is None else (self._done.lastrowid or 0)

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # every row is fetched at once

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        pass  # the driver's cursor is closed already

    async def _run(self, call: Callable[[sqlite3.Cursor], object]) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        driver: sqlite3.Connection = connection._conn

        def statement() -> _Done:
            cursor = driver.cursor()
            try:
                call(cursor)
                return _Done(cursor, cursor.fetchall() if cursor.description else [])
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            self._done = await connection._execute(statement)  # type: ignore[no-untyped-call]
        self._rows = collections.deque(self._done.rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._run(lambda cursor: cursor.execute(operation, parameters or ()))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """`create_async_engine(..., module=OneTripDbapi())`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
