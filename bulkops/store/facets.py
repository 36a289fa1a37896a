"""Facets: the operations a search matches, counted by the values of one or more fields
(crossed: one count per combination that occurs). Sorting and paging of the criteria play no
part.

Counted from the operations' counts by bulk, topic and status (`tallies`) when the facets and
every filter are on what those hold (a row per bulk, topic and status, whatever the number of
operations); otherwise by a GROUP BY of the operations on the search's own where clause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import Condition, SearchCriteria
from bulkops.store.search import field_column, from_clause, where_clause
from bulkops.store.tables import bulk, operation_tally

FACETS = ("status", "topic_name", "error_code", "user_type")
"""The fields operations can be counted by: few distinct values each."""

FacetValue = int | str | None


@dataclass(frozen=True, slots=True)
class FacetCount:
    values: tuple[FacetValue, ...]
    """One value per facet asked, in the order asked."""
    count: int


# What the counts can answer: facets and filters on their own columns or their bulk's, and
# filters that compare values (not patterns, ranges or payloads).
_BULK_FIELDS = ("user_type", "user_id")
_TALLIED_FACETS = frozenset({"status", "topic_name", "user_type"})
_TALLIED_FILTERS = frozenset({"bulk_uuid", "topic_name", "status", *_BULK_FIELDS})
_TALLIED_CONDITIONS = frozenset({Condition.EQ, Condition.NEQ, Condition.IN, Condition.NIN})


def tallied(criteria: SearchCriteria, facets: Sequence[str]) -> bool:
    """Whether the counts (`tally_query`) can answer these facets of this search."""
    return set(facets) <= _TALLIED_FACETS and all(
        flt.field in _TALLIED_FILTERS and flt.condition in _TALLIED_CONDITIONS
        for group in criteria.filter_groups
        for flt in group.filters
    )


def _tally_column(field: str) -> ColumnElement[Any]:
    return bulk.c[field] if field in _BULK_FIELDS else operation_tally.c[field]


def tally_query(criteria: SearchCriteria, facets: Sequence[str], backend: str) -> Select[Any]:
    """The facets summed from the counts (see `tallied`)."""
    columns = [_tally_column(facet) for facet in facets]
    fields = {flt.field for group in criteria.filter_groups for flt in group.filters}
    source: Any = operation_tally
    if (fields | set(facets)) & set(_BULK_FIELDS):
        source = source.join(bulk, bulk.c.uuid == operation_tally.c.bulk_uuid)
    operations = func.sum(operation_tally.c.operations)
    return (
        select(*columns, operations)
        .select_from(source)
        .where(where_clause(criteria, backend, _tally_column))
        .group_by(*columns)
        # Counts fallen to 0 keep their rows.
        .having(operations > 0)
    )


def facet_query(criteria: SearchCriteria, facets: Sequence[str], backend: str) -> Select[Any]:
    """The facets counted from the operations themselves."""
    columns = [field_column(facet) for facet in facets]
    return (
        select(*columns, func.count())
        .select_from(from_clause(criteria, *facets))
        .where(where_clause(criteria, backend))
        .group_by(*columns)
    )


def _order(count: FacetCount) -> tuple[tuple[bool, Any], ...]:
    # NULL first, then ascending: the same order on every backend.
    return tuple((value is not None, value) for value in count.values)


async def count_facets(
    connection: AsyncConnection, criteria: SearchCriteria, facets: Sequence[str], backend: str
) -> list[FacetCount]:
    """The count of each combination of the `facets`' values among the matches (those that
    occur), ordered by the values."""
    counted = tally_query if tallied(criteria, facets) else facet_query
    rows = await connection.execute(counted(criteria, facets, backend))
    # int(): MySQL sums as DECIMAL.
    counts = [FacetCount(tuple(row[:-1]), int(row[-1])) for row in rows]
    return sorted(counts, key=_order)
