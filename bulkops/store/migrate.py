"""Bring the schema to the newest migration (Alembic), on the service's own async connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Processes starting together (several `bulkops serve`) migrate one after the other.
LOCK_KEY = 7_301_929_184_155
"""PostgreSQL's advisory lock key for migrations."""
LOCK_NAME = "bulkops.migrate"
"""MySQL's named lock; session-level, since DDL commits MySQL transactions implicitly."""
LOCK_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Migration:
    """The schema's revision before and after a migration (None: no schema at all)."""

    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before == self.after:
            return f"already at {self.after or '<none>'}"
        return f"migrated {self.before or '<none>'} → {self.after}"


async def upgrade(database: Database, revision: str = "head") -> Migration:
    return await _migrate(database, lambda config: command.upgrade(config, revision))


async def downgrade(database: Database, revision: str) -> Migration:
    return await _migrate(database, lambda config: command.downgrade(config, revision))


async def _migrate(database: Database, run: Callable[[Config], None]) -> Migration:
    async with database.engine.connect() as connection:
        sqlite = database.backend == "sqlite"
        if sqlite:
            # SQLite changes a table by copying it and dropping the original, which with
            # foreign keys on would delete the rows of every table referring to it (`ON
            # DELETE CASCADE`); the pragma is ignored inside a transaction.
            await _sqlite_foreign_keys(connection, "OFF")
        try:
            async with connection.begin():
                await _lock(connection, database.backend)
                before = await connection.run_sync(_revision)
                await connection.run_sync(lambda sync: run(alembic_config(sync)))
                after = await connection.run_sync(_revision)
                # Only after a change: the check reads every table.
                if sqlite and after != before:
                    await _check_foreign_keys(connection)
            return Migration(before, after)
        finally:
            # Once committed: a process waiting for the lock then reads the revision reached.
            # (MySQL commits each DDL statement, but not the version written after the last.)
            await _unlock(connection, database.backend)
            if sqlite:
                await _sqlite_foreign_keys(connection, "ON")


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _lock(connection: AsyncConnection, backend: str) -> None:
    if backend == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif backend in ("mysql", "mariadb"):
        await connection.execute(
            text("SELECT GET_LOCK(:name, :wait)"), {"name": LOCK_NAME, "wait": LOCK_WAIT_SECONDS}
        )


async def _unlock(connection: AsyncConnection, backend: str) -> None:
    if backend in ("mysql", "mariadb"):
        await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})


async def _sqlite_foreign_keys(connection: AsyncConnection, state: str) -> None:
    """Outside any transaction: through the driver, as SQLAlchemy would begin one first."""
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None, "a connection in use has its driver's"
    cursor = await raw.driver_connection.execute(f"PRAGMA foreign_keys={state}")
    await cursor.close()


async def _check_foreign_keys(connection: AsyncConnection) -> None:
    """What SQLite would have refused with foreign keys on: a migration that left a row
    referring to nothing is rolled back."""
    dangling = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
    if dangling:
        raise RuntimeError(f"migration left rows without their referenced rows: {dangling}")
