"""A plain-Python model of operation search, written from the stated semantics (DESIGN.md and
bulkops.store.search): what the SQL must agree with on any data and any criteria."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bulkops.criteria import Condition, Filter, SearchCriteria

Row = dict[str, Any]


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


def matches(row: Row, flt: Filter) -> bool:
    value = row[flt.field]
    operand = flt.operand
    condition = flt.condition
    if condition is Condition.NULL:
        return value is None
    if value is None:
        # SQL's unknown: NULL satisfies no other condition, negative ones included.
        return False
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


def model_search(rows: list[Row], criteria: SearchCriteria) -> tuple[list[Row], int]:
    """(the page, or every match without a page size; the number of matches)."""
    found = [
        row
        for row in rows
        if all(
            any(matches(row, flt) for flt in group.filters)
            for group in criteria.filter_groups
            if group.filters
        )
    ]
    found.sort(key=lambda row: row["id"])
    for field, descending in reversed(criteria.effective_sort()):
        # NULL is the smallest value; Python's sort is stable, so earlier keys win.
        found.sort(
            key=lambda row, f=field: (row[f] is not None, row[f] if row[f] is not None else 0),
            reverse=descending,
        )
    total = len(found)
    if not criteria.page_size:
        return found, total
    # Pages below 1 are page 1; past the end, a page is empty (Magento 2.4).
    start = (max(criteria.current_page or 1, 1) - 1) * criteria.page_size
    return found[start : start + criteria.page_size], total
