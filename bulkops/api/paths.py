"""Magento's REST path shapes, reduced to one route table.

`/rest/V1/x`, `/rest/<store code>/V1/x` and `/rest/all/V1/x` (and their async twins) all
reach the route `/V1/x`; a trailing slash is the same route. Nothing here ever redirects:
common clients raise on any 3xx.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from bulkops.api.health import HEALTH_PATH
from bulkops.api.responses import error_response
from bulkops.api.swagger_ui import SWAGGER_PATH
from bulkops.errors import RouteNotFoundError

REST_PREFIX = "/rest/"
# The first segment of a route under /rest (anything else there is a store code).
ROUTE_ROOTS = frozenset({"V1", "async", "schema", "openapi.json"})
STORE_CODE_KEY = "bulkops.store_code"
REST_PREFIX_KEY = "bulkops.rest_prefix"
"""`/rest` or `/rest/<store code>`, as the request wrote it (schemas' base path)."""
REQUEST_PATH_KEY = "bulkops.request_path"
"""The path as the client sent it, which OAuth signatures cover."""


def split_rest_path(path: str, store_codes: Collection[str]) -> tuple[str, str] | None:
    """`/rest/default/V1/bulk/` -> ("default", "/V1/bulk"); None when no route can match."""
    if not path.startswith(REST_PREFIX):
        return None
    segments = [segment for segment in path[len(REST_PREFIX) :].split("/")]
    while segments and segments[-1] == "":
        segments.pop()
    if not segments:
        return None
    store_code = "default"
    if segments[0] not in ROUTE_ROOTS:
        if segments[0] not in store_codes:
            return None
        store_code = segments.pop(0)
    if not segments or segments[0] not in ROUTE_ROOTS:
        return None
    return store_code, "/" + "/".join(segments)


class RestPathMiddleware:
    """Rewrites the scope's path to the route path and records the store code."""

    def __init__(
        self, app: ASGIApp, store_codes: Collection[str], served_as_is: Collection[str] = ()
    ) -> None:
        self.app = app
        self.store_codes = store_codes
        # With the Swagger UI page: paths served as they are, with everything under them.
        self.served_as_is = (SWAGGER_PATH, *served_as_is)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._outside_rest(scope["path"]):
            await self.app(scope, receive, send)
            return
        split = split_rest_path(scope["path"], self.store_codes)
        if split is None:
            await error_response(RouteNotFoundError())(scope, receive, send)
            return
        store_code, route_path = split
        first = scope["path"][len(REST_PREFIX) :].split("/", 1)[0]
        prefix = REST_PREFIX.rstrip("/") + ("" if first in ROUTE_ROOTS else f"/{first}")
        request_path = scope.get("raw_path") or scope["path"].encode()
        scope = dict(scope, path=route_path, raw_path=route_path.encode())
        scope[STORE_CODE_KEY] = store_code
        scope[REST_PREFIX_KEY] = prefix
        scope[REQUEST_PATH_KEY] = request_path
        await self.app(scope, receive, send)

    def _outside_rest(self, path: str) -> bool:
        """Paths served as they are: the health check, the Swagger UI page with its assets,
        and the paths `served_as_is`."""
        return path == HEALTH_PATH or any(
            path == prefix or path.startswith(prefix + "/") for prefix in self.served_as_is
        )
