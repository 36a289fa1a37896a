"""`bulkops migrate`, and the migration `bulkops serve` starts with, said aloud: which
database, and what migrating did."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import typer

from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade


async def _nothing(_database: Database) -> None:
    return None


def migrate_database(
    settings: Settings, then: Callable[[Database], Awaitable[None]] = _nothing
) -> None:
    """Bring the configured database's schema up to date, then run `then` on it; print the
    database (its password masked) and the revisions."""

    async def run() -> None:
        database = Database.from_settings(settings)
        try:
            migration = await upgrade(database)
            typer.echo(f"database: {database.url.render_as_string(hide_password=True)}")
            typer.echo(f"schema: {migration}")
            await then(database)
        finally:
            await database.dispose()

    asyncio.run(run())


def migrate() -> None:
    """Bring the database schema up to date, then exit."""
    migrate_database(Settings())
