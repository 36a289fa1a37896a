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

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import SearchCriteria
from bulkops.store.search import (
    counts_tallied,
    field_column,
    from_clause,
    tally_column,
    tally_source,
    where_clause,
)
from bulkops.store.tables import operation_tally

FACETS = ("status", "topic_name", "error_code", "user_type")
"""The fields operations can be counted by: few distinct values each."""

FacetValue = int | str | None


@dataclass(frozen=True, slots=True)
class FacetCount:
    values: tuple[FacetValue, ...]
    """One value per facet asked, in the order asked."""
    count: int


# What the counts can answer: facets on their own columns or their bulk's user (and filters
# `search.counts_tallied` takes).
_TALLIED_FACETS = frozenset({"status", "topic_name", "user_type"})


def tallied(criteria: SearchCriteria, facets: Sequence[str]) -> bool:
    """Whether the counts (`tally_query`) can answer these facets of this search."""
    return set(facets) <= _TALLIED_FACETS and counts_tallied(criteria)


def tally_query(criteria: SearchCriteria, facets: Sequence[str], backend: str) -> Select[Any]:
    """The facets summed from the counts (see `tallied`)."""
    columns = [tally_column(facet) for facet in facets]
    fields = {flt.field for group in criteria.filter_groups for flt in group.filters}
    operations = func.sum(operation_tally.c.operations)
    return (
        select(*columns, operations)
        .select_from(tally_source(fields | set(facets)))
        .where(where_clause(criteria, backend, tally_column))
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
