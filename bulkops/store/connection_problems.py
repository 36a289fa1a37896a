"""Why a database cannot be opened at all, in words that say what to fix in its URL: a server
that does not answer, a database that does not exist, credentials refused, a SQLite file that
cannot be written. Errors of a database that was reachable and then failed are not these."""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from bulkops.outages import driver_message

SETTING = "BULKOPS_DATABASE_URL"

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}

# PostgreSQL's SQLSTATEs when connecting.
PG_NO_DATABASE = "3D000"
PG_LOGIN_REFUSED = frozenset({"28000", "28P01"})  # unknown role or wrong password

# MySQL's and MariaDB's error numbers when connecting.
MYSQL_UNREACHABLE = frozenset({2002, 2003, 2005})  # socket, refused/timed out, unknown host
MYSQL_NO_DATABASE = 1049
MYSQL_LOGIN_REFUSED = frozenset({1044, 1045})  # no access to the database, wrong password

SQLITE_UNWRITABLE = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY})


@dataclass(frozen=True)
class ConnectionProblem:
    message: str
    """What to fix, naming the setting."""
    lasting: bool
    """Waiting will not help (a database that does not exist, a login refused), as it may for
    a server that does not answer (not started yet, or restarting)."""


def connection_problem(url: URL, error: BaseException) -> ConnectionProblem | None:
    """What kept the database at `url` from being opened, when `error` says; None when it is
    no such error."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_problem(url, error)
    server = f"{url.host}:{url.port or DEFAULT_PORTS.get(url.get_backend_name(), '')}"
    if isinstance(error, socket.gaierror | ConnectionError | TimeoutError):
        # asyncpg lets the socket's own error through.
        reason = error.strerror if isinstance(error, socket.gaierror) else _socket_reason(error)
        return _unreachable(server, str(reason))
    if not isinstance(error, DBAPIError) or error.orig is None:
        return None
    code, message = _code(url, error.orig)
    if code in MYSQL_UNREACHABLE:
        return _unreachable(server, message)
    if code in (PG_NO_DATABASE, MYSQL_NO_DATABASE):
        return ConnectionProblem(
            f'{SETTING}: the database "{url.database}" does not exist on {server}; '
            "create it (empty), or name another",
            lasting=True,
        )
    if code in PG_LOGIN_REFUSED or code in MYSQL_LOGIN_REFUSED:
        return ConnectionProblem(
            f"{SETTING}: the database server at {server} refused the login ({message})",
            lasting=True,
        )
    return None


def _unreachable(server: str, reason: str) -> ConnectionProblem:
    return ConnectionProblem(
        f"{SETTING}: cannot reach the database server at {server} ({reason})", lasting=False
    )


def _socket_reason(error: OSError) -> str:
    # asyncio's refusal says "Connect call failed (address)": the errno's own words are clearer.
    if error.errno is not None:
        return os.strerror(error.errno)
    return str(error) or "timed out"


def _code(url: URL, original: BaseException) -> tuple[str | int | None, str]:
    """The driver's code for `original`, and its message."""
    if url.get_backend_name() == "postgresql":
        return getattr(original, "sqlstate", None), driver_message(original)
    # PyMySQL's errors carry (number, message).
    args: tuple[object, ...] = getattr(original, "args", ())
    match args:
        case (int() as number, message):
            return number, str(message)
    return None, driver_message(original)


def _sqlite_problem(url: URL, error: BaseException) -> ConnectionProblem | None:
    original = error.orig if isinstance(error, DBAPIError) else None
    code = getattr(original, "sqlite_errorcode", None)
    path = Path(url.database or "").absolute()
    if code in SQLITE_UNWRITABLE:
        return ConnectionProblem(
            f"{SETTING}: cannot write the SQLite database {path} ({original})", lasting=True
        )
    if code == sqlite3.SQLITE_NOTADB:
        return ConnectionProblem(f"{SETTING}: {path} is not a SQLite database", lasting=True)
    return None
