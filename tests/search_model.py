"""A plain-Python model of operation search, written from the stated semantics (DESIGN.md and
bulkops.store.search): what the SQL must agree with on any data and any criteria. Text
searched without regard to case compares as each backend folds it (`COLLATIONS`)."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bulkops.criteria import Condition, Filter, SearchCriteria
from bulkops.searchable import CASELESS_FIELDS

Row = dict[str, Any]

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_folded(text: str) -> str:
    """SQLite's and PostgreSQL's lower() on text in a binary or "C" collation."""
    return text.translate(_ASCII_LOWER)


def general_ci_weights(text: str) -> str:
    """MariaDB's `utf8mb4_general_nopad_ci`, one weight per character, compared in code point
    order: letters upper-cased, Latin-1's accented letters as their base letter, every
    character beyond the Basic Multilingual Plane as U+FFFD (right for the characters the
    tests draw, not for every one: ß, for one, weighs as S)."""
    weights = []
    for char in text:
        if ord(char) > 0xFFFF:
            weights.append("\ufffd")
        elif 0xC0 <= ord(char) <= 0xFF:
            weights.append(unicodedata.normalize("NFD", char)[0].upper())
        else:
            weights.append(char.upper())
    return "".join(weights)


@dataclass(frozen=True)
class Collation:
    """How a backend compares the text searched without regard to case."""

    key: Callable[[str], str]
    """Text to what is compared, character for character, in code point order."""
    regexp_flags: int
    """The flags of Python's `re` that match as the backend's caseless regexp does."""


COLLATIONS = {
    "sqlite": Collation(ascii_folded, re.IGNORECASE),
    "postgresql": Collation(ascii_folded, re.IGNORECASE | re.ASCII),
    "mysql": Collation(general_ci_weights, re.IGNORECASE),
}


def as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def like_regex(pattern: str) -> re.Pattern[str]:
    """`%` any run, `_` any one character, backslash takes the next character literally
    (a trailing lone backslash is itself literal)."""
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.S)


def find_in_set(element: str, value: Any) -> bool:
    text = as_text(value)
    return "," not in element and text != "" and element in text.split(",")


def matches(row: Row, flt: Filter, collation: Collation) -> bool:
    value = row[flt.field]
    operand = flt.operand
    condition = flt.condition
    if condition is Condition.NULL:
        return value is None
    if value is None:
        # SQL's unknown: NULL satisfies no other condition, negative ones included.
        return False
    if flt.field in CASELESS_FIELDS:
        if condition is Condition.REGEXP:
            return re.search(operand, value, collation.regexp_flags) is not None
        value = collation.key(value)
        if isinstance(operand, tuple):
            operand = tuple(collation.key(element) for element in operand)
        elif isinstance(operand, str):
            operand = collation.key(operand)
    match condition:
        case Condition.NOTNULL:
            return True
        case Condition.EQ:
            return value == operand
        case Condition.NEQ:
            return value != operand
        case Condition.GT:
            return value > operand
        case Condition.LT:
            return value < operand
        case Condition.GTEQ:
            return value >= operand
        case Condition.LTEQ:
            return value <= operand
        case Condition.IN:
            return value in operand
        case Condition.NIN:
            return value not in operand
        case Condition.LIKE:
            return like_regex(operand).fullmatch(as_text(value)) is not None
        case Condition.NLIKE:
            return like_regex(operand).fullmatch(as_text(value)) is None
        case Condition.FINSET:
            return find_in_set(operand, value)
        case Condition.NFINSET:
            return not find_in_set(operand, value)
        case Condition.REGEXP:
            return re.search(operand, as_text(value)) is not None
    raise AssertionError(condition)


def _sort_key(field: str, collation: Collation) -> Callable[[Row], tuple[bool, Any]]:
    """NULL is the smallest value; caseless text sorts as it compares."""

    def key(row: Row) -> tuple[bool, Any]:
        value = row[field]
        if value is None:
            return False, 0
        return True, collation.key(value) if field in CASELESS_FIELDS else value

    return key


def model_search(rows: list[Row], criteria: SearchCriteria, backend: str) -> tuple[list[Row], int]:
    """(the page, or every match without a page size; the number of matches), on `backend`
    (its `Database.backend` name)."""
    collation = COLLATIONS[backend]
    found = [
        row
        for row in rows
        if all(
            any(matches(row, flt, collation) for flt in group.filters)
            for group in criteria.filter_groups
            if group.filters
        )
    ]
    found.sort(key=lambda row: row["id"])
    for field, descending in reversed(criteria.effective_sort()):
        # Python's sort is stable, so earlier keys win.
        found.sort(key=_sort_key(field, collation), reverse=descending)
    total = len(found)
    if not criteria.page_size:
        return found, total
    # Pages below 1 are page 1; past the end, a page is empty (Magento 2.4).
    start = (max(criteria.current_page or 1, 1) - 1) * criteria.page_size
    return found[start : start + criteria.page_size], total
