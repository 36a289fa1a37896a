"""`DELETE /V1/bulk/:bulkUuid`: delete a bulk with its operations (bulkops' own; Magento's
bulks only go with its cleanup job). Answers `true`, as Magento's DELETE routes do.

Who may: the caller needs the bulk resource, as for every bulk route, and the resource of the
route of each of the bulk's operations, as retrying them needs: erasing a route's record is
an act on that route, and an integration granted only the log may read it, not empty it. A
caller limited to its own bulks deletes only those; another's is missing (404), as when read.

A bulk with open operations (queued, or in a worker's hands) is refused (400) unless
`?force=true`: its messages then go with it from the database's queue, and a worker that
receives one from a broker finds no open operation and drops it; a result recorded for an
operation gone changes nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import bulk_or_404
from bulkops.api.flags import query_flag
from bulkops.api.responses import ApiResponse
from bulkops.api.retry import require_route_resources
from bulkops.errors import InputError
from bulkops.status import OperationStatus
from bulkops.store import bulks
from bulkops.store.lifecycle import delete_bulks

FORCE = "force"


async def delete_bulk(request: Request) -> Response:
    user = await require_bulk_reader(request)
    force = query_flag(request, FORCE)
    state = request.app.state
    async with state.database.write() as connection:
        found = await bulk_or_404(request, connection, user)
        uuid = found["uuid"]
        topics = await bulks.bulk_topics(connection, uuid)
        require_route_resources(state.routes, topics, user)
        if not force:
            still_open = await bulks.count_operations(connection, uuid, OperationStatus.OPEN)
            if still_open:
                raise InputError(
                    "Bulk %bulkUuid has %count open operations. Wait until they finish, or "
                    "delete it with force=true.",
                    {"bulkUuid": uuid, "count": still_open},
                )
        await delete_bulks(connection, [(found["id"], uuid)])
    return ApiResponse(True)


routes = [Route("/V1/bulk/{bulk_uuid}", delete_bulk, methods=["DELETE"])]
