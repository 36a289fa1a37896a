"""The store backends the suite runs on, and a database of its own for each test.

SQLite always; PostgreSQL and MariaDB at the URLs of `BULKOPS_TEST_POSTGRESQL_URL` and
`BULKOPS_TEST_MARIADB_URL` (local servers by default). A server that does not answer skips its
tests with a reason, except in CI (`CI` set), where it fails them: there every backend runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import URL, Engine, make_url

NAMES = ("sqlite", "postgresql", "mariadb")

SERVER_URLS = {
    "postgresql": os.environ.get(
        "BULKOPS_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("BULKOPS_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}

# The synchronous drivers the tests use to look into a database behind bulkops' back.
SYNC_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
}


def sync_url(url: str) -> URL:
    """The URL bulkops is given, with the tests' synchronous driver."""
    parsed = make_url(url)
    return parsed.set(drivername=SYNC_DRIVERS[parsed.get_backend_name()])


@dataclass(frozen=True)
class Backend:
    name: str

    def create_database(self, directory: Path) -> str:
        """A new empty database; answers the URL to give bulkops (`BULKOPS_DATABASE_URL`)."""
        if self.name == "sqlite":
            return f"sqlite+aiosqlite:///{directory / 'bulkops.sqlite3'}"
        name = f"bulkops_test_{uuid.uuid4().hex[:16]}"
        options = " CHARACTER SET utf8mb4" if self.name == "mariadb" else ""
        _administer(self.name, f"CREATE DATABASE {name}{options}")
        return make_url(SERVER_URLS[self.name]).set(database=name).render_as_string(False)

    def drop_database(self, url: str) -> None:
        if self.name == "sqlite":
            return
        name = make_url(url).database
        force = " WITH (FORCE)" if self.name == "postgresql" else ""
        _administer(self.name, f"DROP DATABASE IF EXISTS {name}{force}")


def selected() -> Sequence[str]:
    """`BULKOPS_TEST_BACKENDS=sqlite,postgresql` runs only those; all by default."""
    chosen = os.environ.get("BULKOPS_TEST_BACKENDS", ",".join(NAMES))
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown backends in BULKOPS_TEST_BACKENDS: {sorted(unknown)}")
    return names


def unavailable_reason(name: str) -> str | None:
    """Why the backend cannot be used here, or None."""
    if name == "sqlite":
        return None
    try:
        _administer(name, "SELECT 1")
    except sqlalchemy.exc.OperationalError as error:
        where = make_url(SERVER_URLS[name]).render_as_string(hide_password=True)
        return f"{name} is not running at {where}: {error.orig}"
    return None


@cache
def _server_engine(name: str) -> Engine:
    return sqlalchemy.create_engine(
        sync_url(SERVER_URLS[name]), isolation_level="AUTOCOMMIT", pool_pre_ping=True
    )


def _administer(name: str, statement: str) -> None:
    with _server_engine(name).connect() as connection:
        connection.exec_driver_sql(statement)
