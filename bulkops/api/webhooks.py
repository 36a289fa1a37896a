"""`GET /V1/bulk/:bulkUuid/webhooks`: the delivery log of a bulk's completion webhooks, one
entry per completion (a retried bulk completes again), with its attempts, last answer and
state. Read as the bulk's status is: the bulk resource, and only the caller's own bulks
(another's is missing)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import bulk_or_404
from bulkops.api.responses import ApiResponse
from bulkops.store.webhooks import bulk_deliveries


async def webhook_deliveries(request: Request) -> Response:
    user = await require_bulk_reader(request)
    async with request.app.state.database.read() as connection:
        found = await bulk_or_404(request, connection, user)
        deliveries = await bulk_deliveries(connection, found["uuid"])
    return ApiResponse(deliveries)


routes = [Route("/V1/bulk/{bulk_uuid}/webhooks", webhook_deliveries, methods=["GET"])]
