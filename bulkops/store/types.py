"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    literal,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only aliases the rowid (and so auto-increments) for a column typed INTEGER.
RowId: TypeEngine[int] = BigInteger().with_variant(Integer, "sqlite")

# SQLite keeps the text form clients see (`YYYY-MM-DD HH:MM:SS`), so comparisons and LIKE on
# it behave as on a real timestamp column elsewhere.
# SQLAlchemy leaves the SQLite types' constructors unannotated.
_SQLITE_DATETIME = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
    regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)",
)


class _Timestamp(TypeDecorator[datetime]):
    """UTC, naive, whole seconds. Fractions are cut before they reach the database: SQLite's
    text form has none, MySQL would round them and PostgreSQL keep them."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLITE_DATETIME)
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime):
            return value.replace(microsecond=0)
        return value


Timestamp: TypeEngine[datetime] = _Timestamp()

# Byte-order (code point order), case-sensitive collations that compare trailing spaces too
# (the plain `utf8mb4_bin` of both MySQL and MariaDB ignores them: 'a' = 'a ').
MARIADB_EXACT_COLLATION = "utf8mb4_nopad_bin"
MYSQL_EXACT_COLLATION = "utf8mb4_0900_bin"
POSTGRESQL_EXACT_COLLATION = "C"
# Case- and accent-insensitive collations that compare trailing spaces too: Magento's
# `utf8_general_ci` without its PAD SPACE (MySQL has no `general` NO PAD one; its UCA 9.0
# collation is the nearest).
MARIADB_CASELESS_COLLATION = "utf8mb4_general_nopad_ci"
MYSQL_CASELESS_COLLATION = "utf8mb4_0900_ai_ci"


class _ExactText(TypeDecorator[str]):
    """Text compared and ordered byte for byte (code point order), case-sensitively, trailing
    spaces included, on every backend: SQLite's default, the "C" collation on PostgreSQL, a
    binary NO PAD collation on MySQL and MariaDB (chosen by the server the DDL runs on, as a
    `mysql://` URL may reach either)."""

    impl = Text
    cache_ok = True
    mariadb_collation: ClassVar[str] = MARIADB_EXACT_COLLATION
    mysql_collation: ClassVar[str] = MYSQL_EXACT_COLLATION

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        length = self.length
        if dialect.name == "postgresql":
            collation = POSTGRESQL_EXACT_COLLATION
            if length is None:
                return dialect.type_descriptor(postgresql.TEXT(collation=collation))
            return dialect.type_descriptor(postgresql.VARCHAR(length, collation=collation))
        if dialect.name in ("mysql", "mariadb"):
            mariadb = getattr(dialect, "is_mariadb", False)
            collation = self.mariadb_collation if mariadb else self.mysql_collation
            if length is None:
                return dialect.type_descriptor(mysql.LONGTEXT(collation=collation))
            return dialect.type_descriptor(mysql.VARCHAR(length, collation=collation))
        return dialect.type_descriptor(Text() if length is None else String(length))


def exact_text(length: int | None = None) -> TypeEngine[str]:
    """Text compared byte for byte, case-sensitively (see `_ExactText`); VARCHAR(length), or
    unbounded text without a length."""
    return _ExactText(length)


class _CaselessText(_ExactText):
    """Text that searches compare without regard to case (see `folded`): stored as exact
    text, except on MySQL and MariaDB, whose collation itself ignores case (and accents)."""

    cache_ok = True
    mariadb_collation = MARIADB_CASELESS_COLLATION
    mysql_collation = MYSQL_CASELESS_COLLATION


def caseless_text(length: int | None = None) -> TypeEngine[str]:
    """Text searched without regard to case (see `_CaselessText`)."""
    return _CaselessText(length)


class folded(ColumnElement[str]):
    """Caseless text as searches compare and sort it, and as its indexes hold it: under
    SQLite's NOCASE collation, as `lower(text)` on PostgreSQL, both folding ASCII letters
    only (the text's binary or "C" collation makes PostgreSQL's lower() do so); on MySQL and
    MariaDB the text itself, whose caseless collation folds every letter, and accents. Not a
    function element, so that MySQL's DDL puts it in an index as a plain column."""

    __visit_name__ = "folded"
    inherit_cache = True
    # A class attribute, which SQLAlchemy reads from the class, but declares without ClassVar.
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = [  # type: ignore[misc]
        ("text", InternalTraversal.dp_clauseelement)
    ]

    def __init__(self, text: ColumnElement[str]) -> None:
        self.text = text
        self.type = text.type


class folded_text(folded):
    """Caseless text as LIKE matches it: `lower(text)` on PostgreSQL, the text itself on
    SQLite, whose LIKE ignores the case of ASCII letters (as NOCASE), and on MySQL/MariaDB."""

    __visit_name__ = "folded_text"
    inherit_cache = True


@compiles(folded)
@compiles(folded_text)
def _lowered(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.text, **kw)})"


@compiles(folded, "sqlite")
def _nocase(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    # A collation, not an expression: an index on it covers the column (SQLite would read
    # the table for a column an expression index only holds lower() of).
    return f"{compiler.process(element.text, **kw)} COLLATE NOCASE"


@compiles(folded, "mysql")
@compiles(folded_text, "mysql")
@compiles(folded_text, "sqlite")
def _by_collation(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    # The text as it is: its collation, or the operator, ignores case.
    return compiler.process(element.text, **kw)


def fold(text: str) -> str:
    """A value as `folded` compares it: ASCII letters in lower case, as SQLite's NOCASE and
    lower() and PostgreSQL's lower() make them (harmless where the collation folds)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def int64_value(value: int) -> BindParameter[int]:
    """An integer bound as a 64-bit integer whatever the width of the column it is compared
    with: PostgreSQL refuses `smallint_column = 70000` (out of range) instead of finding
    nothing. Comparisons between integer widths still use the column's index."""
    return literal(value, BigInteger)


def in_int64(values: Iterable[int]) -> BindParameter[int]:
    """`values` for an IN list against an integer column, bound as 64-bit integers; values
    beyond 64 bits match no row, so they are left out rather than refused by the driver."""
    kept = tuple(value for value in values if INT64_MIN <= value <= INT64_MAX)
    return bindparam(None, kept, type_=BigInteger, expanding=True)


def storable_text(value: str) -> bool:
    """Whether any stored text could equal `value`: PostgreSQL can hold no NUL character (and
    refuses one even in a query), and no value the service writes has one."""
    return "\x00" not in value
