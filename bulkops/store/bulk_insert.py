"""Many rows into one table in the caller's transaction, the fastest way each backend takes
them: PostgreSQL's COPY, the driver's own `executemany` elsewhere (sqlite3 loops in C,
aiomysql writes multi-row INSERTs). SQLAlchemy's per-row parameter processing is skipped:
values every row shares are processed once, the others only for the columns whose type
processes anything on this backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any]


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    shared: Mapping[str, Any],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """A row per tuple of `rows` (values of `columns`, in order), each with the `shared`
    values too, inserted in the order given (auto-incremented ids follow it)."""
    if not rows:
        return
    dialect = connection.dialect
    names = [*shared, *columns]
    constants = tuple(_processed(dialect, table, name)(value) for name, value in shared.items())
    processors = [(index, _processor(dialect, table, name)) for index, name in enumerate(columns)]
    varying = [(index, process) for index, process in processors if process is not None]
    records = [constants + _apply(row, varying) for row in rows]
    if dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        # The driver's connection, in the transaction SQLAlchemy began on it.
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=names
        )
        return
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)})"
        f" VALUES ({', '.join(_placeholders(dialect, len(names)))})"
    )
    await connection.exec_driver_sql(statement, records)


def _apply(row: tuple[Any, ...], varying: list[tuple[int, Processor]]) -> tuple[Any, ...]:
    if not varying:
        return row
    values = list(row)
    for index, process in varying:
        values[index] = process(values[index])
    return tuple(values)


def _processor(dialect: Dialect, table: Table, name: str) -> Processor | None:
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)


def _processed(dialect: Dialect, table: Table, name: str) -> Processor:
    return _processor(dialect, table, name) or (lambda value: value)


def _placeholders(dialect: Dialect, count: int) -> list[str]:
    style = dialect.paramstyle
    if style == "qmark":
        return ["?"] * count
    if style == "format":
        return ["%s"] * count
    raise NotImplementedError(f"paramstyle {style}")
