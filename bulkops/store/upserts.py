"""Counters kept in rows: one statement adds to each, in the database itself, so that
transactions counting at once lose nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, postgresql, sqlite


def adding(table: Table, counted: str, dialect: str, rows: Sequence[dict[str, Any]]) -> Any:
    """INSERT `rows` into `table`; a row whose primary key exists already adds its `counted`
    column to the existing row's instead."""
    column = table.c[counted]
    if dialect in ("mysql", "mariadb"):
        on_mysql = mysql.insert(table).values(rows)
        return on_mysql.on_duplicate_key_update({counted: column + on_mysql.inserted[counted]})
    on_conflict = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(rows)
    return on_conflict.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={counted: column + on_conflict.excluded[counted]},
    )
