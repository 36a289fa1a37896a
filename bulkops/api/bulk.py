"""The bulk status routes: operation search, and the per-bulk status endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bulkops.api.auth import require
from bulkops.api.representations import OperationView, bulk_status
from bulkops.api.responses import JSON_MEDIA_TYPE, JSONResponse
from bulkops.auth.context import BULK_OPERATIONS
from bulkops.criteria import SearchCriteria, parse_integer, parse_search_criteria
from bulkops.errors import NotFoundError
from bulkops.querystring import parse_query_string
from bulkops.store import bulks, search
from bulkops.store.database import Database


async def search_operations(request: Request) -> Response:
    await require(request, BULK_OPERATIONS)
    state = request.app.state
    criteria = parse_search_criteria(
        parse_query_string(request.scope["query_string"]), state.settings.page_limits
    )
    # Filters and sorts on `id` mean the `id` the answer shows.
    applied = criteria.aliased("id", state.operation_view.id_field)
    if not criteria.page_size:
        return await _stream_all(state.database, criteria, applied, state.operation_view)
    async with state.database.read() as connection:
        page = await search.search_page(connection, applied, state.database.backend)
    return JSONResponse(
        {
            "items": [state.operation_view.searched(row) for row in page.rows],
            "search_criteria": criteria.echo(),
            "total_count": page.total_count,
        }
    )


class _ClosingStreamingResponse(StreamingResponse):
    """Closes its body generator (and so the database cursor) even if the client leaves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[union-attr]


async def _stream_all(
    database: Database, criteria: SearchCriteria, applied: SearchCriteria, view: OperationView
) -> Response:
    """No page size: every match of `applied`, streamed as it is read, and the echo of
    `criteria` as sent. `total_count` comes last in the object, so it is simply the number of
    items sent."""
    body = _search_body(database, criteria, applied, view)
    # Run the query before answering, so that a database error is still a proper error
    # response rather than a truncated 200.
    head = await anext(body)

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        async for chunk in body:
            yield chunk

    return _ClosingStreamingResponse(chunks(), media_type=JSON_MEDIA_TYPE)


async def _search_body(
    database: Database, criteria: SearchCriteria, applied: SearchCriteria, view: OperationView
) -> AsyncIterator[bytes]:
    async with database.read() as connection:
        result = await search.open_stream(connection, applied, database.backend)
        yield b'{"items":['
        count = 0
        async for rows in result.partitions():
            chunk = b",".join(orjson.dumps(view.searched(row)) for row in rows)
            yield chunk if count == 0 else b"," + chunk
            count += len(rows)
        tail = {"search_criteria": criteria.echo(), "total_count": count}
        yield b"]," + orjson.dumps(tail)[1:]


async def _bulk_or_404(request: Request, connection: AsyncConnection) -> RowMapping:
    uuid = request.path_params["bulk_uuid"]
    found = await bulks.find_bulk(connection, uuid)
    if found is None:
        raise NotFoundError("Bulk uuid %bulkUuid not exist", {"bulkUuid": uuid})
    return found


def _bulk_status(shape: str) -> Callable[[Request], Awaitable[Response]]:
    """A status endpoint listing every operation of the bulk in the view's `shape`
    (`summary` for /status, `detailed` for /detailed-status)."""

    async def endpoint(request: Request) -> Response:
        await require(request, BULK_OPERATIONS)
        state = request.app.state
        render = getattr(state.operation_view, shape)
        async with state.database.read() as connection:
            found = await _bulk_or_404(request, connection)
            rows = await bulks.bulk_operations(connection, found["uuid"])
        return JSONResponse(bulk_status(found, [render(row) for row in rows]))

    return endpoint


async def operation_count_by_status(request: Request) -> Response:
    await require(request, BULK_OPERATIONS)
    status = parse_integer("status", request.path_params["status"])
    async with request.app.state.database.read() as connection:
        count = await bulks.count_operations(connection, request.path_params["bulk_uuid"], status)
    return JSONResponse(count)


routes = [
    Route("/V1/bulk", search_operations, methods=["GET"]),
    Route("/V1/bulk/{bulk_uuid}/status", _bulk_status("summary"), methods=["GET"]),
    Route("/V1/bulk/{bulk_uuid}/detailed-status", _bulk_status("detailed"), methods=["GET"]),
    Route(
        "/V1/bulk/{bulk_uuid}/operation-status/{status}",
        operation_count_by_status,
        methods=["GET"],
    ),
]
