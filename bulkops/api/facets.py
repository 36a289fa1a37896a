"""`GET /V1/bulk/facets?searchCriteria...&facets[]=status&facets[]=topic_name`: how many
operations a search matches, counted by the values of one or more fields, crossed.

The criteria are the search's (`GET /V1/bulk`), parsed and scoped to the caller's bulks the
same way; their sort orders and paging change nothing here. The answer:
`{"facets": [...], "counts": [{<facet>: value, ..., "count": n}, ...], "total_count": N,
"search_criteria": {...}}`, a count for each combination that occurs, ordered by the values
(null first), and `total_count` the number of matches."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import applied_search
from bulkops.api.negotiation import query_of
from bulkops.api.responses import ApiResponse
from bulkops.criteria import parse_search_criteria
from bulkops.errors import InputError
from bulkops.store.facets import FACETS, FacetCount, count_facets

PARAMETER = "facets"


async def search_facets(request: Request) -> Response:
    user = await require_bulk_reader(request)
    state = request.app.state
    query = query_of(request.scope)
    criteria = parse_search_criteria(query, state.settings.page_limits)
    facets = parse_facets(query.get(PARAMETER))
    applied = applied_search(state, user, criteria)
    async with state.database.read() as connection:
        counts = await count_facets(connection, applied, facets, state.database.backend)
    return ApiResponse(
        {
            "facets": list(facets),
            "counts": [_count(facets, count) for count in counts],
            "total_count": sum(count.count for count in counts),
            "search_criteria": criteria.echo(),
        }
    )


def parse_facets(sent: Any) -> tuple[str, ...]:
    """`facets[]=a&facets[]=b` (any indexes) or `facets=a`: the names in the order sent, each
    once; at least one, each one of FACETS."""
    if sent is None or sent == "":
        raise InputError.required(PARAMETER)
    names = [sent] if isinstance(sent, str) else list(sent.values())
    for name in names:
        if not isinstance(name, str) or name not in FACETS:
            raise InputError(
                'Facet "%facet" is not supported. Use one of: %supported.',
                {
                    "facet": name if isinstance(name, str) else "array",
                    "supported": ", ".join(FACETS),
                },
            )
    return tuple(dict.fromkeys(names))


def _count(facets: tuple[str, ...], count: FacetCount) -> dict[str, Any]:
    return dict(zip(facets, count.values, strict=True)) | {"count": count.count}


routes = [Route("/V1/bulk/facets", search_facets, methods=["GET"])]
