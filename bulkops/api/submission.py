"""Magento's asynchronous routes: `/async/V1/<route>` (one item) and `/async/bulk/V1/<route>`
(a JSON array of items, path parameters written `by<Param>`), answered with 202 at once."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require
from bulkops.api.paths import STORE_CODE_KEY
from bulkops.api.responses import ApiResponse
from bulkops.errors import InputError, PayloadTooLargeError, RouteNotFoundError
from bulkops.services.submission import submit
from bulkops.settings import Settings

BULK_PREFIX = "/async/bulk"
SINGLE_PREFIX = "/async"


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body as JSON, refusing more than `max_bytes` before reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError("Decoding error.") from None


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        "The request body is larger than %max bytes. Send fewer items per request.",
        {"max": max_bytes},
    )


def _items(body: Any, bulk: bool, path_parameters: dict[str, str], settings: Settings) -> list[Any]:
    if not bulk:
        # One item; the path's parameters travel inside it, as in a bulk item.
        if path_parameters and isinstance(body, dict):
            return [body | path_parameters]
        return [body]
    if not isinstance(body, list):
        raise InputError("A bulk request's body must be a JSON array of items.")
    if len(body) > settings.max_request_items:
        raise InputError(
            "The request has %count items; at most %max are accepted in one request.",
            {"count": len(body), "max": settings.max_request_items},
        )
    return body


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
    settings: Settings = state.settings
    body = await read_json(request, settings.max_request_bytes)
    items = _items(body, bulk, path_parameters, settings)
    accepted = await submit(
        state.database,
        route,
        items,
        user,
        settings.topic_style,
        request.scope[STORE_CODE_KEY],
    )
    # Committed: publish the bulk's messages in the background (the 202 does not wait).
    state.transport.announce()
    return ApiResponse(accepted.as_json(), status_code=202)


routes = [
    Route(
        "/async/{route_path:path}",
        submit_items,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )
]
