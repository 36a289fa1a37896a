"""The connection pool, and read and write transactions with the same meaning on every backend."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    InvalidRequestError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from bulkops import regexps
from bulkops.outages import Outage
from bulkops.settings import ConfigurationError, Settings
from bulkops.store.sqlite_driver import OneTripConnection, OneTripDbapi
from bulkops.store.statement_limits import (
    MYSQL_LIMIT,
    SQLITE_CLOCK,
    SqliteStatementClock,
    StatementLimits,
)

log = logging.getLogger("bulkops.store")

# Async drivers for the URLs users write.
ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
}
# Other spellings of a backend's name.
BACKEND_ALIASES = {"postgres": "postgresql"}

MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})

POSTGRESQL_SESSION = {
    # JIT compiling a plan costs tens of milliseconds: more than these queries take.
    "jit": "off",
    # Statements are prepared and reused; a search's best plan depends on its values (a
    # status held by 90 % of the rows or by 0.1 %), so each execution is planned for them.
    "plan_cache_mode": "force_custom_plan",
}

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,  # connection lost, lock wait timed out, deadlock, "database is locked"
    InterfaceError,  # connection closed
    PoolTimeoutError,  # no free connection in time
    ConnectionError,  # drivers' own socket errors while connecting (asyncpg's refusal)
)
"""What a statement raises when the database cannot serve it now, rather than because of
the statement: worth trying again later."""


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the row a single-row INSERT made."""
    key = result.inserted_primary_key
    if key is None:
        raise ValueError("the statement was no single-row INSERT")
    return int(key[0])


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot serve now: one of `UNAVAILABLE_ERRORS`, or a
    connection lost in the middle of a statement, which comes as the driver's generic error
    (asyncpg's) that SQLAlchemy recognises as a disconnect."""
    return isinstance(error, UNAVAILABLE_ERRORS) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer, nor the writer readers
    "PRAGMA synchronous=NORMAL",  # durable at each checkpoint; safe with WAL
    "PRAGMA foreign_keys=ON",
    # LIKE ignores the case of ASCII letters (SQLite's default, said here as the search relies
    # on it): text searched exactly is matched with GLOB.
    "PRAGMA case_sensitive_like=OFF",
)


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """The connection pool of a database server (SQLite keeps SQLAlchemy's defaults)."""

    size: int = 10
    max_overflow: int = 10
    timeout_seconds: float = 30.0
    recycle_seconds: float = 3600.0
    pre_ping: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolOptions:
        return cls(
            size=settings.database_pool_size,
            max_overflow=settings.database_pool_max_overflow,
            timeout_seconds=settings.database_pool_timeout_seconds,
            recycle_seconds=settings.database_pool_recycle_seconds,
            pre_ping=settings.database_pool_pre_ping,
        )

    def engine_options(self) -> dict[str, Any]:
        return {
            "pool_size": self.size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.timeout_seconds,
            "pool_recycle": self.recycle_seconds,
            "pool_pre_ping": self.pre_ping,
        }


@dataclass(frozen=True)
class SqliteOptions:
    """How a SQLite database waits for locks and how large it may grow."""

    busy_timeout_seconds: float = 30.0
    max_page_count: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteOptions:
        return cls(
            busy_timeout_seconds=settings.sqlite_busy_timeout_seconds,
            max_page_count=settings.sqlite_max_page_count,
        )


URL_FORMS = (
    "sqlite:///relative/path, sqlite:////absolute/path, postgresql://user:password@host:port/name"
    " or mysql:// (mariadb://) likewise"
)
"""The URLs `BULKOPS_DATABASE_URL` takes, for messages that refuse one."""


def async_url(url: str | URL) -> URL:
    """`postgresql://...` -> `postgresql+asyncpg://...` and so on; explicit drivers are kept.
    MySQL and MariaDB connections speak utf8mb4 unless the URL says otherwise. A URL of no
    backend bulkops stores in raises ConfigurationError."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"BULKOPS_DATABASE_URL: not a database URL; expected {URL_FORMS}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    backend = BACKEND_ALIASES.get(backend, backend)
    if backend not in ASYNC_DRIVERS:
        raise ConfigurationError(
            f'BULKOPS_DATABASE_URL: unknown database "{backend}"; expected {URL_FORMS}'
        )
    driver = driver or ASYNC_DRIVERS[backend]
    parsed = parsed.set(drivername=f"{backend}+{driver}")
    if backend in MYSQL_BACKENDS and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


# SQLite's REGEXP ignoring case, for the text searches compare caselessly.
CASELESS_REGEXP_FUNCTION = "regexp_caseless"


def _caseless_regexp(pattern: str | None, value: Any) -> bool | None:
    return regexps.search(pattern, value, caseless=True)


_AFTER_COMMIT = "bulkops.after_commit"


def after_commit(connection: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction of `connection` (one of `Database.write`) is
    committed; never if it is rolled back."""
    connection.info.setdefault(_AFTER_COMMIT, []).append(callback)


class Database:
    """One engine per process. Reads see one snapshot (a search's count and page agree);
    writes are isolated so that concurrent writers cannot deadlock on the locks they take:

    - SQLite: reads `BEGIN`; writes `BEGIN IMMEDIATE`, the write lock up front, so two
      writers never deadlock upgrading a read lock.
    - PostgreSQL: reads REPEATABLE READ, READ ONLY; writes READ COMMITTED.
    - MySQL/MariaDB: reads REPEATABLE READ (InnoDB's consistent snapshot); writes READ
      COMMITTED, which takes no gap locks, so workers leasing and settling messages while
      others enqueue do not deadlock on index ranges.

    `pool` defaults to the `BULKOPS_DATABASE_POOL_*` settings, `sqlite` to the
    `BULKOPS_SQLITE_*` ones; `limits` bound the time of reads' statements (none by default,
    see `statement_limits`)."""

    def __init__(
        self,
        url: str | URL,
        pool: PoolOptions | None = None,
        limits: StatementLimits | None = None,
        sqlite: SqliteOptions | None = None,
        **options: Any,
    ) -> None:
        self.url = async_url(url)
        self.backend = self.url.get_backend_name()
        self.outage = Outage("the database", log)
        """Logs, once, that the database is away, for every background job of the process."""
        self.limits = limits = limits or StatementLimits()
        engine_options: dict[str, Any] = {}
        if self.backend == "sqlite":
            _prepare_sqlite_file(self.url)
            if self.url.get_driver_name() == "aiosqlite":
                engine_options["module"] = OneTripDbapi()
                # Reads run on the event loop, writes on the driver's thread (see
                # `sqlite_driver`): never two at once, a connection's calls are awaited in turn.
                engine_options["connect_args"] = {"check_same_thread": False}
        else:
            engine_options |= (pool or PoolOptions.from_settings(Settings())).engine_options()
            engine_options["isolation_level"] = (
                "REPEATABLE READ" if self.backend in MYSQL_BACKENDS else "READ COMMITTED"
            )
        if self.backend == "postgresql" and self.url.get_driver_name() == "asyncpg":
            engine_options["connect_args"] = {"server_settings": POSTGRESQL_SESSION}
        try:
            self.engine: AsyncEngine = create_async_engine(self.url, **(engine_options | options))
        except (NoSuchModuleError, ImportError, InvalidRequestError) as error:
            # A driver that does not exist, is not installed, or is not an asyncio one.
            raise ConfigurationError(
                f'BULKOPS_DATABASE_URL: cannot use the driver "{self.url.drivername}": {error}'
            ) from error
        _quiet_resets(self.engine)
        if self.backend == "sqlite":
            _configure_sqlite(
                self.engine, limits, sqlite or SqliteOptions.from_settings(Settings())
            )
        elif self.backend in MYSQL_BACKENDS:
            _configure_mysql(self.engine, limits)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        limits = StatementLimits(
            read_seconds=settings.statement_timeout_seconds,
            stream_seconds=settings.search_stream_timeout_seconds,
        )
        return cls(
            settings.database_url,
            PoolOptions.from_settings(settings),
            limits,
            SqliteOptions.from_settings(settings),
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._transaction(readonly=True) as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed at the end; then what `after_commit` was given runs."""
        async with self._transaction(readonly=False) as connection:
            # A list of this transaction's: an earlier one rolled back leaves its own behind.
            committed: list[Callable[[], None]] = []
            connection.info[_AFTER_COMMIT] = committed
            yield connection
        for callback in committed:
            callback()

    @asynccontextmanager
    async def _transaction(self, readonly: bool) -> AsyncIterator[AsyncConnection]:
        """A connection from the pool in a transaction, committed at the end (rolled back on
        an error) and handed back. Taking, beginning, and ending then handing back are one
        pass each through SQLAlchemy's synchronous core (one greenlet), not three."""
        sync_connection = await greenlet_spawn(self._begin, readonly)
        # SQLite's reads end on the event loop (`sqlite_driver`), without waiting: nothing
        # can interrupt them there. Elsewhere the end is kept from a cancellation.
        ending = _end_now if readonly and self.backend == "sqlite" else _to_the_end
        try:
            yield AsyncConnection(self.engine, sync_connection)
        except BaseException:
            await ending(greenlet_spawn(_end, sync_connection, False))
            raise
        await ending(greenlet_spawn(_end, sync_connection, True))

    def _begin(self, readonly: bool) -> Connection:
        connection = self.engine.sync_engine.connect()
        try:
            if readonly:
                options: dict[str, Any] = {"bulkops_readonly": True}
                if self.backend == "postgresql":
                    options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                connection.execution_options(**options)
            connection.begin()
            if readonly and self.backend == "postgresql" and self.limits.read_seconds:
                milliseconds = max(1, round(self.limits.read_seconds * 1000))
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        except BaseException:
            connection.close()
            raise
        return connection

    async def dispose(self) -> None:
        await self.engine.dispose()


def _end(connection: Connection, commit: bool) -> None:
    """Commit or roll back the connection's transaction, and hand it back to the pool."""
    try:
        transaction = connection.get_transaction()
        if transaction is not None and transaction.is_active:
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
    finally:
        connection.close()


async def _end_now(ending: Coroutine[Any, Any, None]) -> None:
    await ending


async def _to_the_end(ending: Coroutine[Any, Any, None]) -> None:
    """Run `ending` to its end even if the caller is cancelled meanwhile (the cancellation is
    raised after it): a connection left half way would never go back to the pool."""
    task = asyncio.ensure_future(ending)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            cancelled = error
    task.result()
    if cancelled is not None:
        raise cancelled


class QuietResets(logging.Filter):
    """SQLAlchemy's pool logs the traceback of a connection it could not reset as it came back
    (its rollback, on a connection the server lost): the pool discards the connection, and
    whoever used the database logs the outage (`Outage`). One line is enough."""

    MESSAGE = "Exception during reset"

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(self.MESSAGE):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_resets(engine: AsyncEngine) -> None:
    logger = engine.sync_engine.pool.logger
    if isinstance(logger, logging.Logger) and not any(
        isinstance(existing, QuietResets) for existing in logger.filters
    ):
        logger.addFilter(QuietResets())


def _prepare_sqlite_file(url: URL) -> None:
    """Create the directory of a SQLite database file. ConfigurationError, naming the path,
    when the file cannot be written: SQLite would only say "unable to open database file"."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return
    path = Path(url.database).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        # mkdir says "File exists" of a file in the way, without saying that it is a file.
        reason = "a file is in the way" if isinstance(error, FileExistsError) else error.strerror
        raise ConfigurationError(
            f"BULKOPS_DATABASE_URL: cannot create the directory {path.parent} for the SQLite "
            f"database ({reason})"
        ) from error
    if path.is_dir():
        reason = "a directory is in the way"
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        reason = "permission denied"
    else:
        return
    raise ConfigurationError(
        f"BULKOPS_DATABASE_URL: cannot write the SQLite database {path} ({reason})"
    )


def _readonly(connection: Any) -> bool:
    return bool(connection.get_execution_options().get("bulkops_readonly", False))


def is_storage_full(error: BaseException) -> bool:
    """The database refused a write for want of space (SQLite: its disk, or its size limit)."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _configure_sqlite(engine: AsyncEngine, limits: StatementLimits, options: SqliteOptions) -> None:
    sync_engine = engine.sync_engine
    # Every statement, BEGIN IMMEDIATE included, waits this long for another connection's
    # lock before it fails with "database is locked".
    pragmas: tuple[str, ...] = (
        *SQLITE_PRAGMAS,
        f"PRAGMA busy_timeout={round(options.busy_timeout_seconds * 1000)}",
    )
    if options.max_page_count is not None:
        pragmas = (*pragmas, f"PRAGMA max_page_count={options.max_page_count}")

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own handling of
        # transactions would start none for reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()
        dbapi_connection.create_function("regexp", 2, regexps.search, deterministic=True)
        dbapi_connection.create_function(
            CASELESS_REGEXP_FUNCTION, 2, _caseless_regexp, deterministic=True
        )
        if limits.read_seconds:
            clock = SqliteStatementClock(limits.read_seconds)
            record.info[SQLITE_CLOCK] = clock
            dbapi_connection.progress.watch = clock.expired

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        driver: OneTripConnection = connection.connection.dbapi_connection
        driver.defer_begin("BEGIN" if _readonly(connection) else "BEGIN IMMEDIATE")

    if limits.read_seconds:

        @event.listens_for(sync_engine, "before_cursor_execute")
        def on_execute(connection: Any, *_args: Any) -> None:
            connection.info[SQLITE_CLOCK].start(_readonly(connection))


def _configure_mysql(engine: AsyncEngine, limits: StatementLimits) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        readonly = _readonly(connection)
        if limits.read_seconds or limits.stream_seconds:
            _limit_mysql_session(connection, limits.read_seconds if readonly else 0.0)
        # The session stays REPEATABLE READ, so reads cost no extra statement; this applies
        # to the next transaction only (the driver starts it with the first statement).
        if not readonly:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    if limits.stream_seconds:

        @event.listens_for(sync_engine, "before_cursor_execute", retval=True)
        def on_execute(
            connection: Any,
            _cursor: Any,
            statement: str,
            parameters: Any,
            context: Any,
            _executemany: bool,
        ) -> tuple[str, Any]:
            streamed = context is not None and context.execution_options.get("stream_results")
            if streamed and _readonly(connection) and _is_mariadb(connection):
                statement = (
                    f"SET STATEMENT max_statement_time={limits.stream_seconds} FOR {statement}"
                )
            return statement, parameters


def _is_mariadb(connection: Any) -> bool:
    return bool(getattr(connection.dialect, "is_mariadb", False))


def _limit_mysql_session(connection: Any, seconds: float) -> None:
    """The session's statement time limit, set only when it changes (a connection serves
    reads and writes in turn)."""
    info = connection.connection.info
    if info.get(MYSQL_LIMIT) == seconds:
        return
    if _is_mariadb(connection):
        connection.exec_driver_sql(f"SET max_statement_time = {seconds}")
    else:
        connection.exec_driver_sql(f"SET max_execution_time = {round(seconds * 1000)}")
    info[MYSQL_LIMIT] = seconds
