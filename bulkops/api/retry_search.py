"""`POST /V1/bulk/retry?searchCriteria...`: queue again every failed operation (status 2 or
3) that a search matches, across bulks; `dry_run=true` answers how many it would, changing
nothing.

The criteria are the search's (`GET /V1/bulk`), scoped to the caller's bulks the same way;
matches in other statuses are neither retried nor counted, and sorting and paging play no
part. The caller needs the bulk resource and the resource of the route of every operation
it would requeue, checked before anything changes (a 401 naming those it lacks, for a dry
run too). The operations are requeued in batches, each in a transaction of its own: a
large match is neither held in memory nor in one long transaction. The answer is the
number of operations requeued (or, on a dry run, that would be)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import applied_search
from bulkops.api.flags import query_flag
from bulkops.api.negotiation import query_of
from bulkops.api.responses import ApiResponse
from bulkops.api.retry import require_route_resources
from bulkops.criteria import parse_search_criteria
from bulkops.store.lifecycle import retry_searched, searched_retry_topics, utc_now

DRY_RUN = "dry_run"


async def retry_by_search(request: Request) -> Response:
    user = await require_bulk_reader(request)
    state = request.app.state
    query = query_of(request.scope)
    criteria = parse_search_criteria(query, state.settings.page_limits)
    dry_run = query_flag(request, DRY_RUN)
    applied = applied_search(state, user, criteria)
    async with state.database.read() as connection:
        by_topic = await searched_retry_topics(connection, applied, state.database.backend)
    # Retrying runs the operations' handlers again: the caller needs each one's route resource.
    require_route_resources(state.routes, by_topic, user)
    if dry_run:
        return ApiResponse(sum(by_topic.values()))
    try:
        count = await retry_searched(state.database, applied, by_topic, utc_now())
    finally:
        # Batches committed before a failure are queued too.
        state.transport.announce()
    return ApiResponse(count)


routes = [Route("/V1/bulk/retry", retry_by_search, methods=["POST"])]
