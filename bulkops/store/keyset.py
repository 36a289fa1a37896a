"""Keyset paging of an operation search: each page starts after the last row of the one
before, found in the index that serves the sort, rather than after skipping every row before
it. So a page costs the same however deep it is, and rows inserted or deleted between pages
neither repeat nor skip the others.

The position is the last row's value of each sort field, then its `id`, which orders rows
that tie (`search` sorts them so). The rows after it are those greater in that order,
compared as the sort compares them: caseless text folded, NULL the smallest value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import SearchCriteria
from bulkops.searchable import CASELESS_FIELDS, SEARCHABLE_FIELDS, FieldKind
from bulkops.store import search
from bulkops.store.types import fold, int64_value

KEY_LABEL = "keyset_{}"
"""The label of each position column read beside a page's items."""


def key_fields(criteria: SearchCriteria) -> tuple[tuple[str, bool], ...]:
    """(field, descending) of the position: the sort's fields up to `id`, which is unique,
    or then `id` ascending, as `search` adds it."""
    fields: list[tuple[str, bool]] = []
    for field, descending in criteria.effective_sort():
        fields.append((field, descending))
        if field == "id":
            return tuple(fields)
    return (*fields, ("id", False))


def _bound(field: str, value: Any) -> Any:
    if field in CASELESS_FIELDS:
        return fold(value)
    if SEARCHABLE_FIELDS[field] is FieldKind.INTEGER:
        return int64_value(value)
    return value


def _equal(field: str, value: Any) -> ColumnElement[bool]:
    column = search.field_column(field)
    if value is None:
        return column.is_(None)
    equal: ColumnElement[bool] = search.compared_value(field, column) == _bound(field, value)
    return equal


def _past(field: str, descending: bool, value: Any) -> ColumnElement[bool]:
    """Rows after `value` in the field's order. NULL is the smallest value: first when
    ascending, last when descending."""
    column = search.field_column(field)
    if value is None:
        return false() if descending else column.is_not(None)
    compared = search.compared_value(field, column)
    bound = _bound(field, value)
    if not descending:
        # NULL < anything: `>` never matches it, as wanted.
        greater: ColumnElement[bool] = compared > bound
        return greater
    past: ColumnElement[bool] = compared < bound
    return or_(past, column.is_(None)) if column.nullable else past


def after(criteria: SearchCriteria, position: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after `position` (one value per `key_fields`) in the search's order: greater on
    the first field, or equal on it and greater on the second, and so on."""
    fields = key_fields(criteria)
    assert len(position) == len(fields)
    alternatives = []
    for index, (field, descending) in enumerate(fields):
        equal = [_equal(name, value) for (name, _), value in zip(fields, position, strict=False)]
        alternatives.append(and_(*equal[:index], _past(field, descending, position[index])))
    (first, descending), start = fields[0], position[0]
    return and_(*_from(first, descending, start), or_(*alternatives))


def _from(field: str, descending: bool, value: Any) -> list[ColumnElement[bool]]:
    """The range of the first field the rows after the position are in, said once more on
    its own: a planner seeks to it in the index that serves the sort, where the alternatives
    alone may make it walk the index from its start. None where NULLs would be in it."""
    column = search.field_column(field)
    if value is None or (descending and column.nullable):
        return []
    compared = search.compared_value(field, column)
    bound = _bound(field, value)
    within: ColumnElement[bool] = compared <= bound if descending else compared >= bound
    return [within]


def key_columns(criteria: SearchCriteria) -> list[ColumnElement[Any]]:
    """The position's columns, as stored (not folded), to read beside a page's items."""
    return [
        search.field_column(field).label(KEY_LABEL.format(index))
        for index, (field, _) in enumerate(key_fields(criteria))
    ]


@dataclass(frozen=True, slots=True)
class KeysetPage:
    rows: Sequence[Row[Any]]
    total_count: int
    next_position: tuple[Any, ...] | None
    """The last row's position, when more rows follow; None at the end."""


async def keyset_page(
    connection: AsyncConnection,
    criteria: SearchCriteria,
    backend: str,
    position: Sequence[Any] | None,
) -> KeysetPage:
    """The page (criteria.page_size rows) after `position`, or the first; with the count of
    every match, read in the same transaction as `search.search_page` does."""
    assert criteria.page_size
    matches = await search.count_matches(connection, criteria, backend)
    columns = key_columns(criteria)
    query = search.page_query(
        criteria,
        backend,
        matches,
        # One more row tells whether another page follows.
        criteria.page_size + 1,
        0,
        after=None if position is None else after(criteria, position),
        extra_columns=columns,
    )
    rows = (await connection.execute(query)).all()
    page, more = rows[: criteria.page_size], len(rows) > criteria.page_size
    next_position = None
    if more:
        last = page[-1]._mapping
        next_position = tuple(last[column.name] for column in columns)
    return KeysetPage(page, matches.count, next_position)
