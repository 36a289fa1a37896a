"""Facets: the operations a search matches, counted by the values of one or more fields
(crossed: one count per combination that occurs), read by one GROUP BY on the search's own
where clause. Sorting and paging of the criteria play no part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import SearchCriteria
from bulkops.store.search import field_column, from_clause, where_clause

FACETS = ("status", "topic_name", "error_code", "user_type")
"""The fields operations can be counted by: few distinct values each."""

FacetValue = int | str | None


@dataclass(frozen=True, slots=True)
class FacetCount:
    values: tuple[FacetValue, ...]
    """One value per facet asked, in the order asked."""
    count: int


def facet_query(criteria: SearchCriteria, facets: Sequence[str], backend: str) -> Select[Any]:
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
    rows = await connection.execute(facet_query(criteria, facets, backend))
    # int(): MySQL may count as DECIMAL.
    counts = [FacetCount(tuple(row[:-1]), int(row[-1])) for row in rows]
    return sorted(counts, key=_order)
