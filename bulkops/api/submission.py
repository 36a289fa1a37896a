"""Magento's asynchronous routes: `/async/V1/<route>` (one item) and `/async/bulk/V1/<route>`
(an array of items, path parameters written `by<Param>`), answered with 202 at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require
from bulkops.api.path_parameters import override_body_id
from bulkops.api.paths import STORE_CODE_KEY
from bulkops.api.request_body import decode, read_body
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import UserContext
from bulkops.criteria import parse_integer
from bulkops.errors import InputError, RouteNotFoundError
from bulkops.handlers.base import AsyncRoute
from bulkops.services.idempotency import REPLAYED, RequestDigest, key_scope
from bulkops.services.submission import prepare, rejection, submit
from bulkops.services.webhook_targets import CALLBACK_HEADER, check_callback_url
from bulkops.settings import Settings
from bulkops.status import UserType

BULK_PREFIX = "/async/bulk"
SINGLE_PREFIX = "/async"
RETENTION_HEADER = "X-Bulk-Retention-Days"
MAX_RETENTION_DAYS = 36500
"""A hundred years: past it, a date would not fit every backend's timestamps."""


def retention_of(request: Request) -> timedelta | None:
    """The bulk's own retention, from its submission's `X-Bulk-Retention-Days` header."""
    text = request.headers.get(RETENTION_HEADER)
    if text is None:
        return None
    days = parse_integer(RETENTION_HEADER, text)
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise InputError(
            "%header must be a whole number of days from 1 to %max.",
            {"header": RETENTION_HEADER, "max": MAX_RETENTION_DAYS},
        )
    return timedelta(days=days)


def _single_item(
    body: Any, method: str, path_parameters: dict[str, str], route: AsyncRoute
) -> dict[str, Any]:
    """One item: the body's parameters (PHP's (array) of the body) with the path's parameters
    over them, as Magento's InputParamsResolver::getInputData builds them."""
    if isinstance(body, dict):
        item = dict(body)
    elif isinstance(body, list):
        item = {str(index): value for index, value in enumerate(body)}
    else:
        item = {} if body is None else {"0": body}
    if not path_parameters:
        return item
    if method == "PUT":
        override_body_id(item, path_parameters, route.signature)
    return item | path_parameters


def bulk_items(body: Any, settings: Settings) -> list[Any]:
    if body is None:
        return []
    if isinstance(body, dict) and list(body) == ["item"]:
        # XML: `<request><item>...</item><item>...</item></request>`; one <item> is no list.
        items = body["item"]
        body = items if isinstance(items, list) else [items]
    if not isinstance(body, list):
        raise InputError("A bulk request's body must be a JSON array of items.")
    if len(body) > settings.max_request_items:
        raise InputError(
            "The request has %count items; at most %max are accepted in one request.",
            {"count": len(body), "max": settings.max_request_items},
        )
    return body


def body_limit(settings: Settings, user: UserContext) -> int:
    """Bytes a request body may have: few for a caller without a token, whom nothing stops
    from storing what it sends."""
    if user.user_type == UserType.GUEST:
        return min(settings.anonymous_max_request_bytes, settings.max_request_bytes)
    return settings.max_request_bytes


async def submit_items(request: Request) -> Response:
    path: str = request.scope["path"]
    if request.method == "GET":
        raise InputError("Specified request cannot be processed.")
    bulk = path.startswith(BULK_PREFIX + "/")
    route_path = path.removeprefix(BULK_PREFIX if bulk else SINGLE_PREFIX)
    state = request.app.state
    matched = state.routes.match(request.method, route_path, bulk)
    if matched is None:
        raise RouteNotFoundError()
    route, path_parameters = matched
    user = await require(request, route.resource)
    scope = key_scope(request.headers, user)
    retention = retention_of(request)
    settings: Settings = state.settings
    callback = request.headers.get(CALLBACK_HEADER)
    callback_url = None if callback is None else check_callback_url(callback, settings)
    raw = await read_body(request, body_limit(settings, user))
    content_type = request.headers.get("content-type")
    if bulk:
        items = bulk_items(decode(raw, content_type), settings)
    else:
        # Magento reads no body for a single DELETE: its parameters are in the path.
        body = None if request.method == "DELETE" else decode(raw, content_type)
        item = _single_item(body, request.method, path_parameters, route)
        # One item is all or nothing: an invalid one is the request's 400, nothing is stored.
        error = rejection(route, item)
        if error is not None:
            raise error
        items = [item]
    store_code = request.scope[STORE_CODE_KEY]
    digest = (
        None
        if scope is None
        else RequestDigest(scope, state.data_hasher, route.method, route.path, bulk, store_code)
    )
    prepared = prepare(
        route,
        items,
        user,
        settings.topic_style,
        store_code,
        state.data_hasher,
        state.payloads,
        digest,
        retention,
        callback_url,
    )
    key_retention = timedelta(hours=settings.idempotency_retention_hours)
    key = None if digest is None else digest.use(prepared.bulk.start_time, key_retention)
    submitted = await submit(state.database, prepared, key)
    if submitted.replayed:
        # An earlier request's answer: its bulk was published then.
        return ApiResponse(submitted.body, status_code=202, headers=REPLAYED)
    # Committed: publish the bulk's messages in the background (the 202 does not wait).
    state.transport.announce()
    return ApiResponse(submitted.body, status_code=202)


routes = [
    Route(
        "/async/{route_path:path}",
        submit_items,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )
]
