"""Bring the schema to the newest migration (Alembic), on the service's own async connection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

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
    """The schema's revision before and after an upgrade (None: no schema at all)."""

    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before == self.after:
            return f"already at {self.after or '<none>'}"
        return f"migrated {self.before or '<none>'} → {self.after}"


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(database: Database, revision: str = "head") -> Migration:
    def run(connection: Connection) -> Migration:
        before = _current_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        return Migration(before, _current_revision(connection))

    async with database.engine.begin() as connection:
        if database.backend == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        elif database.backend in ("mysql", "mariadb"):
            await connection.execute(
                text("SELECT GET_LOCK(:name, :wait)"),
                {"name": LOCK_NAME, "wait": LOCK_WAIT_SECONDS},
            )
        try:
            return await connection.run_sync(run)
        finally:
            if database.backend in ("mysql", "mariadb"):
                await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
