"""`GET /V1/bulk/changes`: the change feed (bulkops' own). Each answer lists the changes of
operations' statuses (and the bulks deleted) past the request's cursor, in the order the
feed gives them (`bulkops.store.changes`), with the cursor to ask from next: a client that
always sends the last `next_cursor` sees every change once.

`after`: a cursor of an earlier answer; absent, from the oldest change kept. A cursor older
than the oldest kept is a 410 (changes were deleted past their retention since): the client
must read the state again (a search) and follow from the start. `limit`: 1 to 1000 (100).
`wait`: seconds (capped by `BULKOPS_CHANGE_WAIT_MAX_SECONDS`) to wait for a change when there
is none yet, polled without holding a database connection in between.

A caller limited to its own bulks sees only their changes; the cursor still moves past the
others', which it never learns of."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.representations import timestamp
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import UserContext
from bulkops.criteria import parse_integer
from bulkops.errors import GoneError, InputError
from bulkops.store.changes import Owner, assign_positions, changes_after, has_news
from bulkops.store.database import Database

AFTER, LIMIT, WAIT = "after", "limit", "wait"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_PREFIX = "c"
_CURSOR = re.compile(r"c(0|[1-9][0-9]{0,17})")

STATUS_CHANGED = "status"
BULK_DELETED = "bulk_deleted"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The position of a cursor; anything not made by `encode_cursor` is a 400."""
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    match = _CURSOR.fullmatch(decoded)
    if match is None or encode_cursor(int(match[1])) != text:
        raise InputError("The cursor %cursor is not valid.", {"cursor": text})
    return int(match[1])


def _bounded(name: str, text: str | None, default: int, lowest: int, highest: int) -> int:
    if text is None:
        return default
    value = parse_integer(name, text)
    if not lowest <= value <= highest:
        raise InputError(
            '"%fieldName" must be between %min and %max.',
            {"fieldName": name, "min": lowest, "max": highest},
        )
    return value


def owner_of(user: UserContext) -> Owner | None:
    if user.all_bulks:
        return None
    assert user.user_id is not None, "require_bulk_reader refuses users without an id"
    return int(user.user_type), user.user_id


@dataclass(frozen=True, slots=True)
class ChangePage:
    rows: list[Row[Any]]
    next_position: int


async def read_page(
    database: Database, after: int | None, limit: int, owner: Owner | None
) -> ChangePage:
    """One page past `after` (None: from the start), positioning what is committed first."""
    async with database.write() as connection:
        head = await assign_positions(connection)
        if after is None:
            after = head.pruned_through
        elif after < head.pruned_through:
            raise GoneError(
                "The cursor %cursor is older than the oldest change kept: read the bulks "
                "again and follow the changes from the start.",
                {"cursor": encode_cursor(after)},
            )
        elif after > head.last_position:
            raise InputError("The cursor %cursor is not valid.", {"cursor": encode_cursor(after)})
        rows = list(await changes_after(connection, after, limit, owner))
    # A page not full holds every change of the caller up to the head.
    next_position = rows[-1].position if len(rows) == limit else max(after, head.last_position)
    return ChangePage(rows, next_position)


async def _news(database: Database, after: int, owner: Owner | None) -> bool:
    async with database.read() as connection:
        return await has_news(connection, after, owner)


async def changes(request: Request) -> Response:
    user = await require_bulk_reader(request)
    state = request.app.state
    params = request.query_params
    cursor = params.get(AFTER)
    after = None if cursor is None else decode_cursor(cursor)
    limit = _bounded(LIMIT, params.get(LIMIT), DEFAULT_LIMIT, 1, MAX_LIMIT)
    wait = _bounded(WAIT, params.get(WAIT), 0, 0, 2**31)
    owner = owner_of(user)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, state.settings.change_wait_max_seconds)
    page = await read_page(state.database, after, limit, owner)
    # Long poll: cheap reads, no connection held between them, until a change or the deadline.
    while not page.rows and loop.time() < deadline:
        await asyncio.sleep(min(state.settings.change_poll_seconds, deadline - loop.time()))
        if await _news(state.database, page.next_position, owner):
            page = await read_page(state.database, page.next_position, limit, owner)
    view_id = state.operation_view.id_field
    return ApiResponse(
        {
            "items": [_item(row, view_id) for row in page.rows],
            "next_cursor": encode_cursor(page.next_position),
        }
    )


def _item(row: Row[Any], id_field: str) -> dict[str, Any]:
    deleted = row.operation_id is None
    shown_id = row.operation_key if id_field == "operation_key" else row.operation_id
    return {
        "change": BULK_DELETED if deleted else STATUS_CHANGED,
        "bulk_uuid": row.bulk_uuid,
        "operation_id": shown_id,
        "status": row.status,
        "changed_at": timestamp(row.changed_at),
    }


routes = [Route("/V1/bulk/changes", changes, methods=["GET"])]
