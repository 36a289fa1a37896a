"""SQLAlchemy's aiosqlite adapter with one trip to the driver's thread per statement.

aiosqlite runs each call on a thread of its own; SQLAlchemy's adapter makes four calls per
statement (create a cursor, execute, fetch every row, close), and each is a hand-over between
threads that costs more than an indexed SELECT. Here the four run as one call; a transaction's
BEGIN goes with its first statement, and a rollback with no transaction open makes no trip: a
search (BEGIN, count, page, COMMIT, the pool's rollback) makes 3 instead of 13. Server-side
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
from sqlalchemy.util.concurrency import await_


class _Done:
    """What a statement left that SQLAlchemy reads after it: read in the driver's thread,
    since sqlite3 objects belong to the thread that made them."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any]) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.rows = rows


class _Nothing(_Done):
    """A statement that has not run yet (a deferred BEGIN)."""

    def __init__(self) -> None:
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.rows = []


_NOTHING = _Nothing()
_BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE"})


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
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        driver: sqlite3.Connection = connection._conn
        begin = adapted.take_begin()

        def statement() -> _Done:
            if begin is not None:
                driver.execute(begin)
            cursor = driver.cursor()
            try:
                call(cursor)
                return _Done(cursor, cursor.fetchall() if cursor.description else [])
            finally:
                cursor.close()

        async with adapted._execute_mutex:
            self._done = await connection._execute(statement)  # type: ignore[no-untyped-call]
        self._rows = collections.deque(self._done.rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        if operation in _BEGINS and not parameters:
            # Sent with the transaction's first statement, in the same trip.
            adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
            adapted.defer_begin(operation)
            self._done = _NOTHING
            self._rows = collections.deque()
            return
        await self._run(lambda cursor: cursor.execute(operation, parameters or ()))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin",)
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None

    def defer_begin(self, begin: str) -> None:
        """BEGIN (or BEGIN IMMEDIATE), left for the next statement's trip to send first."""
        self._begin = begin

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            # SQLAlchemy's own cursor, which makes its own trips: the transaction first.
            begin = self.take_begin()
            if begin is not None:
                try:
                    await_(self._connection.execute(begin))
                except Exception as error:
                    self._handle_exception(error)
        return super().cursor(server_side)

    def commit(self) -> None:
        # A transaction that ran no statement never began: nothing to send.
        if self.take_begin() is None:
            super().commit()

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most often after a commit:
        # with no transaction open there is nothing to send to the driver's thread. (Whether
        # one is open is a flag of the SQLite connection, read without a statement.)
        driver: sqlite3.Connection | None = self._connection._connection
        if self.take_begin() is None and driver is not None and driver.in_transaction:
            super().rollback()


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """`create_async_engine(..., module=OneTripDbapi())`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
