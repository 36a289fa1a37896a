"""Time limits on the statements of read transactions, the same on every backend.

- PostgreSQL: `SET LOCAL statement_timeout` in the read transaction; a streamed read's cursor
  is limited at each fetch (the server times each Execute message).
- MariaDB: the session's `max_statement_time`, set as a connection goes from writes to reads
  and back (MySQL 8: `max_execution_time`, which limits SELECTs). A streamed read is one
  statement as long as its client reads: it gets the stream limit, as a whole.
- SQLite: a progress handler interrupts a statement past its deadline; a streamed read's
  deadline is moved at each fetch.

Writes and migrations have none: their statements are the service's own, on indexed keys, and
stopping one half way would fail an operation for no fault of its own.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError

SQLITE_CLOCK = "bulkops_statement_clock"
MYSQL_LIMIT = "bulkops_statement_limit"

# What each backend answers for a statement it stopped at its time limit.
POSTGRESQL_QUERY_CANCELED = "57014"
MARIADB_STATEMENT_TIMEOUT = 1969
MYSQL_QUERY_TIMEOUT = 3024
# ... and for a regular expression it cannot read.
POSTGRESQL_INVALID_REGULAR_EXPRESSION = "2201B"
MYSQL_REGEXP_ERRORS = frozenset({1139, *range(3685, 3699)})


@dataclass(frozen=True, slots=True)
class StatementLimits:
    """Seconds; 0 is no limit."""

    read_seconds: float = 0.0
    """Each statement of a read transaction; each fetch of a streamed read (not on MariaDB)."""
    stream_seconds: float = 0.0
    """A streamed read as a whole, on MariaDB and MySQL."""


class SqliteStatementClock:
    """The deadline of the statement running on one SQLite connection; its `expired` is the
    progress handler (called in the driver's thread: it reads, the event loop writes)."""

    def __init__(self, read_seconds: float) -> None:
        self.read_seconds = read_seconds
        self.seconds = 0.0
        self.deadline: float | None = None

    def start(self, readonly: bool) -> None:
        """A statement starts: a read transaction's has `read_seconds`, others no limit."""
        self.seconds = self.read_seconds if readonly else 0.0
        self.restart()

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.seconds if self.seconds else None

    def expired(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() > deadline


def start_clock(info: dict[str, Any], readonly: bool) -> None:
    """A statement starts outside SQLAlchemy's execution (SQLite)."""
    clock = info.get(SQLITE_CLOCK)
    if clock is not None:
        clock.start(readonly)


def restart_clock(info: dict[str, Any]) -> None:
    """A streamed read is about to fetch: its statement's time starts again (SQLite)."""
    clock = info.get(SQLITE_CLOCK)
    if clock is not None:
        clock.restart()


def _original(error: BaseException) -> BaseException | None:
    """The driver's exception: SQLAlchemy wraps most, not all (asyncpg's, from a cursor)."""
    return error.orig if isinstance(error, DBAPIError) else error


def _codes(error: BaseException) -> set[Any]:
    """The driver's codes for the error: SQLite's result code; PostgreSQL's SQLSTATE; MySQL's
    error number and SQLSTATE."""
    original = _original(error)
    if isinstance(original, sqlite3.Error):
        return {original.sqlite_errorcode}
    args = getattr(original, "args", ())
    return {getattr(original, "sqlstate", None), args[0] if args else None} - {None}


def timed_out(error: BaseException) -> bool:
    """Whether the database stopped the statement at its time limit."""
    if isinstance(_original(error), sqlite3.Error):
        return _codes(error) == {sqlite3.SQLITE_INTERRUPT}
    return bool(
        _codes(error) & {POSTGRESQL_QUERY_CANCELED, MARIADB_STATEMENT_TIMEOUT, MYSQL_QUERY_TIMEOUT}
    )


def invalid_regexp(error: BaseException) -> bool:
    """Whether the database refused a regular expression."""
    if isinstance(_original(error), sqlite3.Error):
        return False
    codes = _codes(error)
    return POSTGRESQL_INVALID_REGULAR_EXPRESSION in codes or bool(codes & MYSQL_REGEXP_ERRORS)
