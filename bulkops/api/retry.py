"""`POST /V1/bulk/:bulkUuid/retry`: queue a bulk's failed operations again.

The body is optional: `{"statuses": [2, 3], "error_codes": [...]}`; statuses default to the
failed ones (2 and 3), the only ones that may be retried, error codes to any. The caller needs
the bulk resource, may retry only the bulks it reads, and needs the resource of the route of
every operation it requeues. The answer is the number of operations requeued.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import not_authorized, require_bulk_reader
from bulkops.api.bulk import bulk_or_404
from bulkops.api.request_body import json_value
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import ALL_RESOURCES, ANONYMOUS, UserContext
from bulkops.errors import InputError, PayloadTooLargeError
from bulkops.handlers.registry import HandlerRegistry
from bulkops.store.lifecycle import (
    DEFAULT_RETRY_STATUSES,
    ErrorGroup,
    check_retry_statuses,
    retried_topics,
    retry_operations,
    utc_now,
)

MAX_BODY_BYTES = 64 * 1024
FIELDS = ("statuses", "error_codes")


async def retry_bulk(request: Request) -> Response:
    user = await require_bulk_reader(request)
    body = await _body(request)
    statuses = _integers(body, "statuses")
    error_codes = _integers(body, "error_codes")
    if statuses is None:
        statuses = DEFAULT_RETRY_STATUSES
    check_retry_statuses(statuses)
    return ApiResponse(await retry_failed(request, user, statuses, error_codes))


async def retry_failed(
    request: Request,
    user: UserContext,
    statuses: Sequence[int] = DEFAULT_RETRY_STATUSES,
    error_codes: Sequence[int] | None = None,
    error_group: ErrorGroup | None = None,
    operation_ids: Sequence[int] | None = None,
) -> int:
    """Requeues the failed operations of the path's bulk (`bulk_uuid`) that match, if `user`
    reads the bulk and may run them; answers how many."""
    state = request.app.state
    async with state.database.write() as connection:
        found = await bulk_or_404(request, connection, user)
        # Retrying runs the operations' handlers again, as submitting them did: the caller
        # needs each one's route resource too, checked before anything is reopened.
        topics = await retried_topics(
            connection, found["uuid"], statuses, error_codes, error_group, operation_ids
        )
        require_route_resources(state.routes, topics, user)
        count = await retry_operations(
            connection,
            found["uuid"],
            utc_now(),
            statuses,
            error_codes,
            error_group,
            operation_ids,
        )
    state.transport.announce()
    assert count is not None, "bulk_or_404 found the bulk"
    return int(count)


def require_route_resources(
    routes: HandlerRegistry, topics: Iterable[str], user: UserContext
) -> None:
    """Acting on operations (running them again, erasing them) needs the ACL resource of
    each one's route, anonymous ones left out; 403 naming those the user lacks. A topic no
    route serves any more needs every resource (`Magento_Backend::all`): what it would run
    is unknown."""
    resources = [
        ALL_RESOURCES if route is None else route.resource
        for route in map(routes.for_topic, sorted(topics))
    ]
    lacking = [
        resource
        for resource in dict.fromkeys(resources)
        if resource != ANONYMOUS and not user.is_allowed(resource)
    ]
    if lacking:
        raise not_authorized(*lacking)


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                "The request body is larger than %max bytes.", {"max": MAX_BODY_BYTES}
            )
    if not raw.strip():
        return {}
    body = json_value(raw)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InputError('The body must be an object such as {"statuses": [2, 3]}.')
    for name in body:
        if name not in FIELDS:
            raise InputError.not_supported(name)
    return body


def _integers(body: dict[str, Any], name: str) -> Sequence[int] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise InputError.invalid_type(name, orjson.dumps(value).decode(), "int[]")
    return value


routes = [Route("/V1/bulk/{bulk_uuid}/retry", retry_bulk, methods=["POST"])]
