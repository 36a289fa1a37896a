"""HTTP requests counted and timed by route template, method and status code. Labels never
hold a raw path (ids, store codes, search values): their number stays bounded.

The outer middleware sees every response, those of the middlewares refusing a request
included; the inner one, behind the router's rewrites of the path, learns which route
matched and tells the outer through a holder both see in their copies of the scope."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bulkops.metrics import instruments

_ROUTE_KEY = "bulkops.metrics.route"
UNMATCHED = "unmatched"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, unmeasured: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.unmeasured = unmeasured
        """Routes not counted: `/metrics` itself, so that scrapes do not change what they read."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        holder = scope[_ROUTE_KEY] = [UNMATCHED]
        code = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = holder[0]
            if route not in self.unmeasured:
                method = scope["method"]
                instruments.http_requests.labels(route, method, str(code)).inc()
                instruments.http_seconds.labels(route, method).observe(
                    time.perf_counter() - started
                )


class RouteLabelMiddleware:
    """Innermost: the matched route's path template, which the router puts in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            holder = scope.get(_ROUTE_KEY)
            if holder is not None and route is not None:
                holder[0] = getattr(route, "path", UNMATCHED)
