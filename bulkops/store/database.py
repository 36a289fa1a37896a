"""The connection pool, and read and write transactions with the same meaning on every backend."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bulkops.settings import Settings

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

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer, nor the writer readers
    "PRAGMA synchronous=NORMAL",  # durable at each checkpoint; safe with WAL
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
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


def async_url(url: str | URL) -> URL:
    """`postgresql://...` -> `postgresql+asyncpg://...` and so on; explicit drivers are kept.
    MySQL and MariaDB connections speak utf8mb4 unless the URL says otherwise."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    backend = BACKEND_ALIASES.get(backend, backend)
    if not driver and backend in ASYNC_DRIVERS:
        driver = ASYNC_DRIVERS[backend]
    parsed = parsed.set(drivername=f"{backend}+{driver}" if driver else backend)
    if backend in MYSQL_BACKENDS and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def _regexp(pattern: str | None, value: Any, flags: int = 0) -> bool | None:
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value), flags) is not None


# SQLite's REGEXP ignoring case, for the text searches compare caselessly.
CASELESS_REGEXP_FUNCTION = "regexp_caseless"


def _caseless_regexp(pattern: str | None, value: Any) -> bool | None:
    return _regexp(pattern, value, re.IGNORECASE)


class Database:
    """One engine per process. Reads see one snapshot (a search's count and page agree);
    writes are isolated so that concurrent writers cannot deadlock on the locks they take:

    - SQLite: reads `BEGIN`; writes `BEGIN IMMEDIATE`, the write lock up front, so two
      writers never deadlock upgrading a read lock.
    - PostgreSQL: reads REPEATABLE READ, READ ONLY; writes READ COMMITTED.
    - MySQL/MariaDB: reads REPEATABLE READ (InnoDB's consistent snapshot); writes READ
      COMMITTED, which takes no gap locks, so workers leasing and settling messages while
      others enqueue do not deadlock on index ranges.

    `pool` defaults to the `BULKOPS_DATABASE_POOL_*` settings; `sqlite_max_page_count` limits
    the size of a SQLite database."""

    def __init__(
        self,
        url: str | URL,
        pool: PoolOptions | None = None,
        *,
        sqlite_max_page_count: int | None = None,
        **options: Any,
    ) -> None:
        self.url = async_url(url)
        self.backend = self.url.get_backend_name()
        engine_options: dict[str, Any] = {}
        if self.backend == "sqlite":
            _ensure_sqlite_directory(self.url)
        else:
            engine_options |= (pool or PoolOptions.from_settings(Settings())).engine_options()
            engine_options["isolation_level"] = (
                "REPEATABLE READ" if self.backend in MYSQL_BACKENDS else "READ COMMITTED"
            )
        if self.backend == "postgresql" and self.url.get_driver_name() == "asyncpg":
            engine_options["connect_args"] = {"server_settings": POSTGRESQL_SESSION}
        self.engine: AsyncEngine = create_async_engine(self.url, **(engine_options | options))
        if self.backend == "sqlite":
            _configure_sqlite(self.engine, sqlite_max_page_count)
        elif self.backend in MYSQL_BACKENDS:
            _configure_mysql(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            PoolOptions.from_settings(settings),
            sqlite_max_page_count=settings.sqlite_max_page_count,
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            options: dict[str, Any] = {"bulkops_readonly": True}
            if self.backend == "postgresql":
                options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            await connection.execution_options(**options)
            async with connection.begin():
                yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ensure_sqlite_directory(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def is_storage_full(error: BaseException) -> bool:
    """The database refused a write for want of space (SQLite: its disk, or its size limit)."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _configure_sqlite(engine: AsyncEngine, max_page_count: int | None) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own handling of
        # transactions would start none for reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        if max_page_count is not None:
            cursor.execute(f"PRAGMA max_page_count={int(max_page_count)}")
        cursor.close()
        dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)
        dbapi_connection.create_function(
            CASELESS_REGEXP_FUNCTION, 2, _caseless_regexp, deterministic=True
        )

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("bulkops_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _configure_mysql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # The session stays REPEATABLE READ, so reads cost no extra statement; this applies
        # to the next transaction only (the driver starts it with the first statement).
        if not connection.get_execution_options().get("bulkops_readonly", False):
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
