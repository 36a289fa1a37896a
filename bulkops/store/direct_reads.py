"""Statements built once, compiled once and run straight on SQLite's driver.

SQLAlchemy's execution of a statement (its cache key, execution context, events, cursor and
result) costs several times what SQLite takes to answer an indexed read. A search's statements
are built once per shape of its criteria (`search`); here each is also compiled once for the
dialect, and run on the SQLite connection of bulkops' own adapter (`sqlite_driver`), which runs a
read's statements on the event loop. The rows come back as named tuples (positions and
`_fields`, as SQLAlchemy's rows). Other backends, and a connection with no transaction begun,
go through SQLAlchemy's execution."""

from __future__ import annotations

import collections
import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from bulkops.store.sqlite_driver import OneTripConnection
from bulkops.store.statement_limits import start_clock

COMPILED_STATEMENTS = 512
"""Compiled statements kept (a search's shapes each have a count and a page statement)."""


class CompiledRead:
    """A select compiled for one dialect: its SQL with each call's parameters expanded (the
    lists of IN) and bound as their types bind them, as SQLAlchemy's execution does; its rows
    read as their types read them, as named tuples of the columns' names in the SQL."""

    __slots__ = ("_binders", "_compiled", "_readers", "_row")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        self._compiled = compiled = statement.compile(dialect=dialect)
        binders = {
            compiled.escaped_bind_names.get(key, key): bind.type.dialect_impl(
                dialect
            ).bind_processor(dialect)
            for key, bind in compiled.binds.items()
        }
        self._binders: dict[str, Callable[[Any], Any]] = {
            name: binder for name, binder in binders.items() if binder is not None
        }
        readers = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self._readers: tuple[Callable[[Any], Any] | None, ...] | None = (
            tuple(readers) if any(readers) else None
        )
        self._row: Any = None
        """The rows' class, made from the names of the first result's columns."""

    def bound(self, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The SQL and its positional parameters for `values` (by parameter name)."""
        state = self._compiled.construct_expanded_state(dict(values))
        binders = {**self._binders, **state.processors} if state.processors else self._binders
        parameters = state.parameters
        assert state.positiontup is not None  # SQLite's parameters are positional
        return state.statement, tuple(
            binders[name](parameters[name]) if name in binders else parameters[name]
            for name in state.positiontup
        )

    def rows(self, description: Sequence[Sequence[Any]], raw: list[tuple[Any, ...]]) -> list[Any]:
        if self._row is None:
            names = [column[0] for column in description]
            self._row = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
        make = self._row._make
        readers = self._readers
        if readers is None:
            return list(map(make, raw))
        return [
            make(
                value if read is None else read(value)
                for read, value in zip(readers, row, strict=True)
            )
            for row in raw
        ]


@functools.lru_cache(maxsize=COMPILED_STATEMENTS)
def _compiled(statement: Select[Any], dialect: Dialect) -> CompiledRead:
    # Keyed by the statement object itself: only statements cached by their builders come here.
    return CompiledRead(statement, dialect)


def fetch_all(
    connection: Connection, statement: Select[Any], values: Mapping[str, Any]
) -> Sequence[Any]:
    """Every row of `statement` (one its builder caches: see `_compiled`) for `values`,
    in the connection's transaction."""
    driver = connection.connection.dbapi_connection
    if not isinstance(driver, OneTripConnection) or not connection.in_transaction():
        return connection.execute(statement, values).all()
    read = _compiled(statement, connection.dialect)
    sql, parameters = read.bound(values)
    start_clock(connection.info, driver.reading)
    try:
        description, rows = driver.fetch_all(sql, parameters)
    except sqlite3.Error as error:
        # As SQLAlchemy's execution raises it (OperationalError for "database is locked"...).
        raise DBAPIError.instance(
            sql, parameters, error, sqlite3.Error, dialect=connection.dialect
        ) from error
    return read.rows(description, rows)
