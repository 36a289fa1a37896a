"""The databases a benchmark runs on, reached by bulkops (its URL) and by each backend's
synchronous DB-API driver (sqlite3, psycopg, pymysql) for loading and for raw SQL."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

SERVER_URLS = {
    "postgresql": os.environ.get(
        "BULKOPS_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("BULKOPS_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


@dataclass(frozen=True)
class Backend:
    """A database under test."""

    url: URL

    @property
    def name(self) -> str:
        """`sqlite`, `postgresql` or `mysql` (MySQL and MariaDB speak the same SQL here)."""
        backend = self.url.get_backend_name()
        return "mysql" if backend == "mariadb" else backend

    @property
    def placeholder(self) -> str:
        return "?" if self.name == "sqlite" else "%s"

    @property
    def bulkops_url(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def connect(self) -> Any:
        """A DB-API connection of the backend's synchronous driver."""
        url = self.url
        if self.name == "sqlite":
            return sqlite3.connect(str(url.database), check_same_thread=False)
        if self.name == "postgresql":
            import psycopg

            return psycopg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                dbname=url.database,
            )
        import pymysql

        return pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=url.database,
            charset="utf8mb4",
            local_infile=True,
        )

    def scalar(self, sql: str) -> Any:
        with closing(self.connect()) as connection:
            cursor = connection.cursor()
            cursor.execute(sql)
            value = cursor.fetchone()[0]
            cursor.close()
            return value

    def version(self) -> str:
        if self.name == "sqlite":
            return sqlite3.sqlite_version
        if self.name == "postgresql":
            return str(self.scalar("SHOW server_version")).split()[0]
        return str(self.scalar("SELECT VERSION()"))

    def flavour(self) -> str:
        """The product: `sqlite`, `postgresql`, `mariadb` or `mysql`."""
        if self.name != "mysql":
            return self.name
        return "mariadb" if "mariadb" in self.version().lower() else "mysql"


def sqlite_backend(path: Path) -> Backend:
    return Backend(make_url(f"sqlite:///{path}"))


def server_is_up(server_url: str) -> bool:
    try:
        Backend(make_url(server_url)).scalar("SELECT 1")
    except Exception:
        return False
    return True


def database_on(server_url: str, name: str) -> Backend:
    """The database `name` on the server of `server_url`, whether it exists or not."""
    return Backend(make_url(server_url).set(database=name))


def database_exists(server_url: str, name: str) -> bool:
    server = Backend(make_url(server_url))
    if server.name == "postgresql":
        sql = f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    else:
        sql = f"SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{name}'"
    return bool(server.scalar(sql))


def create_database(server_url: str, name: str) -> Backend:
    """A new, empty database `name` on the server of `server_url` (connected to as given)."""
    drop_database(server_url, name)
    server = Backend(make_url(server_url))
    suffix = " CHARACTER SET utf8mb4" if server.name == "mysql" else ""
    _administer(server, f"CREATE DATABASE {name}{suffix}")
    return database_on(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    server = Backend(make_url(server_url))
    force = " WITH (FORCE)" if server.name == "postgresql" else ""
    _administer(server, f"DROP DATABASE IF EXISTS {name}{force}")


def _administer(server: Backend, statement: str) -> None:
    with closing(server.connect()) as connection:
        if server.name == "postgresql":
            connection.autocommit = True  # CREATE/DROP DATABASE refuse a transaction
        cursor = connection.cursor()
        cursor.execute(statement)
        cursor.close()


def answering(names: list[str]) -> list[str]:
    """The backends of `names` that can be run now: SQLite always, a server if it answers."""
    return [n for n in names if n == "sqlite" or server_is_up(SERVER_URLS[n])]


@contextmanager
def scratch(name: str, database: str, workdir: Path) -> Iterator[Backend]:
    """An empty database `database` for one measurement (a file in `workdir` for SQLite),
    dropped afterwards whatever happens."""
    if name == "sqlite":
        path = workdir / f"{database}.sqlite3"
        path.unlink(missing_ok=True)
        yield sqlite_backend(path)
        return
    server_url = SERVER_URLS[name]
    try:
        yield create_database(server_url, database)
    finally:
        drop_database(server_url, database)
