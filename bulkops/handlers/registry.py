"""The routes this service accepts asynchronously, by method and path, and by topic."""

from __future__ import annotations

from collections.abc import Callable

from bulkops.auth.context import ANONYMOUS, SERVICE_RESOURCES
from bulkops.handlers.base import AsyncRoute, Handler, TopicStyle, Validator
from bulkops.services.signature import Signature


class HandlerRegistry:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], AsyncRoute] = {}

    def add(self, route: AsyncRoute) -> AsyncRoute:
        """Register a route; a later registration of the same method and path replaces it."""
        self._routes[(route.method, route.path)] = route
        return route

    def route(
        self,
        method: str,
        path: str,
        *,
        service: str,
        resource: str = ANONYMOUS,
        validate: Validator | None = None,
        signature: Signature | None = None,
        max_attempts: int = 1,
        independent: bool = False,
        ordering_key: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator: `@registry.route("POST", "/V1/things", service="Vendor\\\\Api\\\\X::save")`
        on an `async def handler(operation: OperationInput) -> result`. A bulk's items are
        processed in request order unless `independent` (any order, in parallel) or an
        `ordering_key` (only items with the same value there keep their order) is given."""

        def register(handler: Handler) -> Handler:
            self.add(
                AsyncRoute(
                    method=method.upper(),
                    path=path,
                    service=service,
                    handler=handler,
                    resource=resource,
                    validate=validate,
                    signature=signature,
                    max_attempts=max_attempts,
                    independent=independent,
                    ordering_key=ordering_key,
                )
            )
            return handler

        return register

    def match(self, method: str, path: str, bulk: bool) -> tuple[AsyncRoute, dict[str, str]] | None:
        for route in self._routes.values():
            if route.method == method:
                parameters = route.match(path, bulk)
                if parameters is not None:
                    return route, parameters
        return None

    def by_topic(self, topic_name: str, style: TopicStyle) -> AsyncRoute | None:
        for route in self._routes.values():
            if route.topic_name(style) == topic_name:
                return route
        return None

    def for_topic(self, topic_name: str) -> AsyncRoute | None:
        """The route of an operation's topic in either style: operations stored before the
        style setting changed keep theirs."""
        return self.by_topic(topic_name, "service") or self.by_topic(topic_name, "route")

    def routes(self) -> list[AsyncRoute]:
        return list(self._routes.values())

    def grantable_resources(self) -> set[str]:
        """The ACL resources an integration may be granted: the service's own and those the
        routes need (`anonymous` needs none)."""
        needed = {route.resource for route in self._routes.values()} - {ANONYMOUS}
        return needed | set(SERVICE_RESOURCES)

    def __repr__(self) -> str:
        return f"HandlerRegistry({sorted(self._routes)!r})"


registry = HandlerRegistry()
"""The process-wide registry that handler modules add their routes to."""
