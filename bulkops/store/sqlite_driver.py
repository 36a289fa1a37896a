"""SQLAlchemy's aiosqlite adapter, with reads on the event loop and one trip to the driver's
thread per write statement.

aiosqlite runs each call on a thread of its own; SQLAlchemy's adapter makes four calls per
statement (create a cursor, execute, fetch every row, close), and each is a hand-over between
threads that costs more than an indexed SELECT: the event loop and the thread trade the GIL.
Here the four run as one call; a transaction's BEGIN goes with its first statement, and a
rollback with no transaction open makes no trip.

A read transaction's statements (and its COMMIT) run on the event loop itself, no trip at all:
most take less time than a trip. One that runs longer than `LOOP_SECONDS` is stopped by the
progress handler and run again on the thread, in the same transaction, so that the loop is
never held long; the same statement then goes to the thread at once, until it runs that short
there. On the thread SQLite works without the GIL, beside the event loop: the progress handler
is called there rarely, since each call must take the GIL back. (What the handler cannot stop:
WAL's rare waits for a reader's slot, a few milliseconds.) Writes stay on the thread: they wait
for the write lock, and a write stopped half way would roll its whole transaction back.
Server-side cursors (streamed reads) keep SQLAlchemy's own, which fetch on the thread as the
reader asks."""

from __future__ import annotations

import collections
import sqlite3
import time
from collections.abc import Callable, Sequence
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


_READ_BEGIN = "BEGIN"

LOOP_SECONDS = 0.005
"""How long a read's statement may hold the event loop before it moves to the driver's thread."""

LOOP_STEPS = 4000
"""On the event loop, SQLite calls the progress handler every this many virtual machine
instructions (some microseconds' work)."""

THREAD_STEPS = 1_000_000
"""On the driver's thread, every this many (milliseconds' work): each call takes the GIL,
which the event loop may hold for a while, and there it only keeps time limits."""

REMEMBERED_STATEMENTS = 1000
"""Statements remembered as long (see `Progress.on_loop`)."""

_long_statements: dict[str, None] = {}
"""Reads' statements that last ran longer than `LOOP_SECONDS`: run on the thread at once."""


class Progress:
    """A connection's progress handler: stops the statement that has held the event loop past
    its deadline (to be run again on the thread), or that the connection's `watch` says must
    stop (a statement time limit's). Called by SQLite in whichever thread runs the statement."""

    __slots__ = ("driver", "loop_deadline", "moved", "watch")

    def __init__(self, driver: sqlite3.Connection) -> None:
        self.driver = driver
        self.loop_deadline: float | None = None
        self.moved = False
        self.watch: Callable[[], bool] | None = None
        driver.set_progress_handler(self, THREAD_STEPS)

    def __call__(self) -> bool:
        deadline = self.loop_deadline
        if deadline is not None and time.monotonic() > deadline:
            self.moved = True
            return True
        return self.watch is not None and self.watch()

    def on_loop(self, sql: str, statement: Callable[[], _Done]) -> _Done | None:
        """The statement's outcome, run here; None if it is to run on the thread: it ran too
        long and was stopped, or it did the last time (a statement is remembered as long
        until it runs within `LOOP_SECONDS` on the thread, see `timed`)."""
        if sql in _long_statements:
            return None
        self.loop_deadline = time.monotonic() + LOOP_SECONDS
        self.moved = False
        self.driver.set_progress_handler(self, LOOP_STEPS)
        try:
            return statement()
        except sqlite3.OperationalError:
            if not self.moved:
                raise
            if len(_long_statements) >= REMEMBERED_STATEMENTS:
                _long_statements.clear()
            _long_statements[sql] = None
            return None
        finally:
            self.loop_deadline = None
            self.driver.set_progress_handler(self, THREAD_STEPS)

    @staticmethod
    def timed(sql: str, statement: Callable[[], _Done]) -> Callable[[], _Done]:
        """`statement` on the thread, forgotten as long if it runs within `LOOP_SECONDS`."""

        def run() -> _Done:
            started = time.monotonic()
            done = statement()
            if time.monotonic() - started <= LOOP_SECONDS:
                _long_statements.pop(sql, None)
            return done

        return run


_Call = Callable[[sqlite3.Cursor], object]
"""What a statement does with a driver's cursor."""


def _execution(sql: str, parameters: Any) -> _Call:
    return lambda cursor: cursor.execute(sql, parameters)


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

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        call = _execution(operation, parameters or ())
        self._keep(await self._adapted.run(call, operation))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        def call(cursor: sqlite3.Cursor) -> object:
            return cursor.executemany(operation, seq_of_parameters)

        self._keep(await self._adapted.run(call, None))

    @property
    def _adapted(self) -> OneTripConnection:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        return adapted

    def _keep(self, done: _Done) -> None:
        self._done = done
        self._rows = collections.deque(done.rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin", "progress", "reading")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None
        self.reading = False
        """In a read transaction (a deferred BEGIN): its statements run on the event loop."""
        self.progress = Progress(self._driver)

    @property
    def _driver(self) -> sqlite3.Connection:
        driver: sqlite3.Connection = self._connection._conn
        return driver

    def defer_begin(self, begin: str) -> None:
        """BEGIN (or BEGIN IMMEDIATE), left for the next statement's trip to send first:
        SQLAlchemy's "begin" event says it here (`database`), without a statement."""
        self._begin = begin
        self.reading = begin == _READ_BEGIN

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    def fetch_all(self, sql: str, parameters: Sequence[Any]) -> tuple[Any, list[Any]]:
        """The columns' description and rows of a statement run without SQLAlchemy's cursor
        (`direct_reads`), called from its synchronous core: a read's short statement makes no
        switch out of its greenlet (SQLAlchemy's own execution must make one: it checks that
        the driver is an asyncio one). Raises as SQLAlchemy's adapter does."""
        try:
            statement = self._statement(_execution(sql, parameters))
            done = self._on_loop(sql, statement)
            if done is None:
                done = await_(self._on_thread(sql, statement))
        except Exception as error:
            self._handle_exception(error)
        return done.description, done.rows

    async def run(self, call: _Call, sql: str | None) -> _Done:
        """Runs `call` on a cursor: a read's statement (`sql`) on the event loop if it is
        short, anything else on the driver's thread."""
        statement = self._statement(call)
        done = self._on_loop(sql, statement)
        return done if done is not None else await self._on_thread(sql, statement)

    def _statement(self, call: _Call) -> Callable[[], _Done]:
        """`call` on a cursor of the driver, after the transaction's BEGIN if it is due."""
        driver = self._driver
        begin = self.take_begin()

        def statement() -> _Done:
            nonlocal begin
            if begin is not None:
                driver.execute(begin)
                begin = None  # not again if the statement moves to the thread
            cursor = driver.cursor()
            try:
                call(cursor)
                return _Done(cursor, cursor.fetchall() if cursor.description else [])
            finally:
                cursor.close()

        return statement

    def _on_loop(self, sql: str | None, statement: Callable[[], _Done]) -> _Done | None:
        """A read's statement run here, unless it is (or was last time) too long: None."""
        if sql is None or not self.reading:
            return None
        return self.progress.on_loop(sql, statement)

    async def _on_thread(self, sql: str | None, statement: Callable[[], _Done]) -> _Done:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        if sql is not None and self.reading:
            statement = Progress.timed(sql, statement)
        async with self._execute_mutex:
            done: _Done = await connection._execute(statement)  # type: ignore[no-untyped-call]
        return done

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
        # A transaction that ran no statement never began: nothing to send. A read's end
        # only lets go of its snapshot: done here.
        if self.take_begin() is None:
            self._end(self._driver.commit, super().commit)

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most often after a commit:
        # with no transaction open there is nothing to send to the driver's thread. (Whether
        # one is open is a flag of the SQLite connection, read without a statement.)
        driver: sqlite3.Connection | None = self._connection._connection
        if self.take_begin() is None and driver is not None and driver.in_transaction:
            self._end(driver.rollback, super().rollback)

    def _end(self, here: Callable[[], None], on_thread: Callable[[], None]) -> None:
        reading, self.reading = self.reading, False
        if not reading:
            on_thread()
            return
        try:
            here()
        except sqlite3.Error as error:
            self._handle_exception(error)


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """`create_async_engine(..., module=OneTripDbapi())`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
