"""Rows and selects whose columns are read by name: SQLAlchemy types a row by its columns'
types, which the Core tables here leave as Any."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Select
from sqlalchemy.engine import Row

# Strings: only type checkers read them (SQLAlchemy 2.0's classes take no `*tuple`).
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
"""A row of any columns."""
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
"""A select of any columns."""
