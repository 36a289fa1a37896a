"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.types import TypeEngine

# SQLite only aliases the rowid (and so auto-increments) for a column typed INTEGER.
RowId: TypeEngine = BigInteger().with_variant(Integer, "sqlite")

# UTC, whole seconds. SQLite keeps the text form clients see (`YYYY-MM-DD HH:MM:SS`), so
# comparisons and LIKE on it behave as on a real timestamp column elsewhere.
Timestamp: TypeEngine = DateTime().with_variant(
    sqlite.DATETIME(
        storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
        regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)",
    ),
    "sqlite",
)


def exact_text(length: int | None = None) -> TypeEngine:
    """Text compared and ordered byte for byte (code point order), case-sensitively, on every
    backend: SQLite's default, the "C" collation on PostgreSQL, utf8mb4_bin on MySQL."""
    if length is None:
        return (
            Text()
            .with_variant(postgresql.TEXT(collation="C"), "postgresql")
            .with_variant(mysql.LONGTEXT(collation="utf8mb4_bin"), "mysql", "mariadb")
        )
    return (
        String(length)
        .with_variant(postgresql.VARCHAR(length, collation="C"), "postgresql")
        .with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")
    )
