"""Putting operations in a store through the store's own Python API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import sqlalchemy
from sqlalchemy.pool import NullPool

from bulkops.store.bulks import NewBulk, insert_bulk
from bulkops.store.database import Database
from tests.backends import sync_url


async def insert_bulks_async(database: Database, bulks: Iterable[NewBulk]) -> None:
    async with database.write() as connection:
        for new_bulk in bulks:
            await insert_bulk(connection, new_bulk)


def insert_bulks(database_url: str, bulks: Iterable[NewBulk]) -> None:
    """For tests that talk to a running server: write into its database, then let go."""

    async def run() -> None:
        database = Database(database_url)
        try:
            await insert_bulks_async(database, bulks)
        finally:
            await database.dispose()

    asyncio.run(run())


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql`, read behind bulkops' back (as an operator would), on any backend."""
    engine = sqlalchemy.create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def execute(database_url: str, sql: str) -> None:
    """Change rows behind bulkops' back, committed."""
    engine = sqlalchemy.create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(sql)
    finally:
        engine.dispose()


def count(database_url: str, sql: str) -> int:
    return query(database_url, sql)[0][0]
