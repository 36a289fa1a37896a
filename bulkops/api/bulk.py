"""The bulk status routes: operation search, and the per-bulk status endpoints."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from typing import Any

from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bulkops.api import cursors
from bulkops.api.auth import require_bulk_reader
from bulkops.api.etags import not_modified, validators
from bulkops.api.fields import FieldsFilter, select
from bulkops.api.formats import Chunk, Format
from bulkops.api.negotiation import fields_of, format_of, query_of
from bulkops.api.ownership import reads, visible_to
from bulkops.api.representations import OperationView, bulk_status
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import UserContext
from bulkops.criteria import SearchCriteria, parse_integer, parse_search_criteria
from bulkops.errors import NotFoundError
from bulkops.store import bulks, keyset, search
from bulkops.store.database import Database

ITEMS = "items"
# Pages larger than this are streamed as they are read, as every match is without a page size:
# the memory a search takes stays the same whatever the page size asked.
STREAMED_PAGE_SIZE = 1000


async def search_operations(request: Request) -> Response:
    user = await require_bulk_reader(request)
    state = request.app.state
    query = query_of(request.scope)
    criteria = parse_search_criteria(query, state.settings.page_limits)
    applied = applied_search(state, user, criteria)
    cursor = cursors.requested(query)
    if cursor is not None:
        return await _keyset_page(state, criteria, applied, cursor)
    if not criteria.page_size or criteria.page_size > STREAMED_PAGE_SIZE:
        return await _stream(request, criteria, applied)
    items, total_count = await searched_page(state, applied)
    return ApiResponse(_answer(items, criteria, total_count))


def applied_search(state: State, user: UserContext, criteria: SearchCriteria) -> SearchCriteria:
    """The search as run for `user`: filters and sorts on `id` mean the `id` the answer
    shows; only the user's bulks are searched (and counted) unless it reads every bulk."""
    state.payloads.check_search(criteria, reads_others=user.all_bulks)
    return visible_to(user, criteria.aliased("id", state.operation_view.id_field))


async def searched_page(state: State, applied: SearchCriteria) -> tuple[list[Any], int]:
    """The items of one page of an `applied_search` (its page size set), and the count of
    every match."""
    async with state.database.read() as connection:
        page = await search.search_page(connection, applied, state.database.backend)
    return state.operation_view.searched(page.rows), page.total_count


async def _keyset_page(
    state: State, criteria: SearchCriteria, applied: SearchCriteria, cursor: str
) -> Response:
    """A page after the cursor's position (`cursors`): Magento's answer, and the next page's
    cursor."""
    cursors.check_search(criteria)
    position = cursors.decode(applied, cursor)
    async with state.database.read() as connection:
        page = await keyset.keyset_page(connection, applied, state.database.backend, position)
    items = state.operation_view.searched(page.rows)
    following = None if page.next_position is None else cursors.encode(applied, page.next_position)
    answer = _answer(items, criteria, page.total_count) | {cursors.BODY_KEY: following}
    return ApiResponse(answer, headers={} if following is None else {cursors.HEADER: following})


def _answer(items: list[Any], criteria: SearchCriteria, total_count: int) -> dict[str, Any]:
    return {"items": items, "search_criteria": criteria.echo(), "total_count": total_count}


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body generator (and so the database cursor) even if the client leaves."""

    def __init__(
        self,
        content: AsyncGenerator[Chunk, None],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.generator = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.generator.aclose()


async def _stream(request: Request, criteria: SearchCriteria, applied: SearchCriteria) -> Response:
    """Every match of `applied` (no page size) or its page, streamed as it is read, in the
    request's format and through its `fields` filter, with the echo of `criteria` as sent: the
    same bytes as a page answered whole. `total_count` comes last in the object; without a
    page size it is simply the number of items sent."""
    rendering = format_of(request.scope)
    fields = fields_of(request.scope)
    if fields is not None and not fields.keeps(ITEMS):
        # Nothing of the list is sent: the answer is small, and rendered whole.
        total = await _count(request.app.state.database, applied)
        return ApiResponse(_answer([], criteria, total))
    body = _search_body(request, criteria, applied, rendering, fields)
    # Run the query before answering, so that a database error is still a proper error
    # response rather than a truncated 200.
    head = await anext(body)

    async def chunks() -> AsyncGenerator[Chunk, None]:
        yield head
        async for chunk in body:
            yield chunk

    return ClosingStreamingResponse(chunks(), media_type=rendering.content_type)


async def _search_body(
    request: Request,
    criteria: SearchCriteria,
    applied: SearchCriteria,
    rendering: Format,
    fields: FieldsFilter | None,
) -> AsyncIterator[Chunk]:
    view: OperationView = request.app.state.operation_view
    database: Database = request.app.state.database
    selection = fields.inside(ITEMS) if fields is not None else None

    def shaped(rows: Sequence[Row[Any]]) -> list[Any]:
        items = view.searched(rows)
        return items if selection is None else [select(item, selection) for item in items]

    async with database.read() as connection:
        stream = await search.open_stream(connection, applied, database.backend)

        def tail(sent: int) -> dict[str, Any]:
            total = sent if stream.total_count is None else stream.total_count
            rest = {"search_criteria": criteria.echo(), "total_count": total}
            kept = rest if fields is None else fields.apply(rest)
            # Nothing kept is PHP's empty array: no keys.
            return kept if isinstance(kept, dict) else {}

        batches = (shaped(rows) async for rows in stream.batches())
        # An empty list is written as Magento's filter leaves it.
        empty = [] if selection is None else select([], selection)
        async for chunk in rendering.listing(ITEMS, batches, empty, tail):
            yield chunk


async def _count(database: Database, criteria: SearchCriteria) -> int:
    async with database.read() as connection:
        return (await search.count_matches(connection, criteria, database.backend)).count


def bulk_not_found(uuid: str) -> NotFoundError:
    return NotFoundError("Bulk uuid %bulkUuid not exist", {"bulkUuid": uuid})


async def bulk_or_404(
    request: Request, connection: AsyncConnection, user: UserContext
) -> RowMapping:
    """The bulk of the path, if the user may read it; another's is missing as well."""
    uuid = request.path_params["bulk_uuid"]
    found = await bulks.find_bulk(connection, uuid)
    if found is None or not reads(user, found):
        raise bulk_not_found(uuid)
    return found


def _bulk_status(shape: str) -> Callable[[Request], Awaitable[Response]]:
    """A status endpoint listing every operation of the bulk in the view's `shape`
    (`summary` for /status, `detailed` for /detailed-status), with its ETag: a 304 when the
    client's is still the bulk's."""

    async def endpoint(request: Request) -> Response:
        user = await require_bulk_reader(request)
        state = request.app.state
        render = getattr(state.operation_view, shape)
        async with state.database.read() as connection:
            # The bulk's version is read before its operations (`bulk_versions`).
            found = await bulk_or_404(request, connection, user)
            tag = state.bulk_tags.tag(request, found["version"])
            unchanged = not_modified(request, tag)
            if unchanged is not None:
                return unchanged
            rows = await bulks.bulk_operations(connection, found["uuid"])
        body = bulk_status(found, render(rows))
        return ApiResponse(body, headers=validators(tag))

    return endpoint


async def operation_count_by_status(request: Request) -> Response:
    user = await require_bulk_reader(request)
    status = parse_integer("status", request.path_params["status"])
    uuid = request.path_params["bulk_uuid"]
    state = request.app.state
    async with state.database.read() as connection:
        found = await bulks.find_bulk(connection, uuid)
        # Another's bulk counts nothing, as an unknown one does, and has no ETag either.
        if found is None or not reads(user, found):
            return ApiResponse(0)
        tag = state.bulk_tags.tag(request, found["version"])
        unchanged = not_modified(request, tag)
        if unchanged is not None:
            return unchanged
        count = await bulks.count_operations(connection, uuid, status)
    return ApiResponse(count, headers=validators(tag))


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
