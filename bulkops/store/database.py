"""The connection pool, and read and write transactions with the same meaning on every backend."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Async drivers for the URLs users write.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "aiomysql"}

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer, nor the writer readers
    "PRAGMA synchronous=NORMAL",  # durable at each checkpoint; safe with WAL
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA case_sensitive_like=ON",  # LIKE is case-sensitive on every backend
)


def async_url(url: str) -> URL:
    """`postgresql://...` -> `postgresql+asyncpg://...` and so on; explicit drivers are kept."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if parsed.drivername == backend and backend in ASYNC_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")
    if backend == "mariadb":
        parsed = parsed.set(drivername="mysql+aiomysql")
    return parsed


def _regexp(pattern: str | None, value: Any) -> bool | None:
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


class Database:
    """One engine per process. Reads see one snapshot; writes take the write lock up front
    (on SQLite, `BEGIN IMMEDIATE`, so two writers never deadlock upgrading a read lock)."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = async_url(url)
        self.backend = self.url.get_backend_name()
        if self.backend == "sqlite":
            _ensure_sqlite_directory(self.url)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_options)
        if self.backend == "sqlite":
            _configure_sqlite(self.engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            await connection.execution_options(bulkops_readonly=True)
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


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own handling of
        # transactions would start none for reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("bulkops_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
