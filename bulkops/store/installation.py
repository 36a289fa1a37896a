"""Values of the installation: set once, by whichever process needs one first, then the same
for every process and every start."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bulkops.store.database import Database
from bulkops.store.tables import installation


async def _stored(database: Database, name: str) -> str | None:
    query = select(installation.c.value).where(installation.c.name == name)
    async with database.read() as connection:
        return (await connection.execute(query)).scalar_one_or_none()


async def installation_value(database: Database, name: str, new_value: Callable[[], str]) -> str:
    """The value stored under `name`; if there is none yet, `new_value()` is stored. Processes
    starting together may each try to store theirs: the primary key keeps the first one, and
    every process returns it."""
    found = await _stored(database, name)
    if found is not None:
        return found
    value = new_value()
    try:
        async with database.write() as connection:
            await connection.execute(insert(installation).values(name=name, value=value))
    except IntegrityError:
        pass  # another process stored its value first: that one is read below
    stored = await _stored(database, name)
    assert stored is not None
    return stored
