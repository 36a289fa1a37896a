"""The routes a process serves, gathered from the settings."""

from __future__ import annotations

import importlib

from bulkops.handlers.base import HandlerConfigError
from bulkops.handlers.customers import customers_route
from bulkops.handlers.registry import HandlerRegistry, registry
from bulkops.handlers.upstream import UpstreamHandler, load_upstreams
from bulkops.settings import Settings
from bulkops.store.database import Database


def load_routes(settings: Settings, database: Database) -> HandlerRegistry:
    """A new registry with, each replacing any earlier route of the same method and path: the
    demo customers route, the upstreams file's routes, then every route of the process-wide
    `registry` once the handler modules are imported."""
    routes = HandlerRegistry()
    if settings.demo_customers:
        routes.add(customers_route(settings, database))
    if settings.upstreams_file is not None:
        for route in load_upstreams(settings.upstreams_file):
            routes.add(route)
    for module in settings.handler_modules:
        import_handler_module(module)
    for route in registry.routes():
        routes.add(route)
    return routes


def import_handler_module(name: str) -> None:
    """Import a module that registers handlers; Python imports it once per process, so its
    routes are registered once however often this runs."""
    try:
        importlib.import_module(name)
    except Exception as error:
        raise HandlerConfigError(
            f'Cannot import the handler module "{name}" named in BULKOPS_HANDLER_MODULES: '
            f"{type(error).__name__}: {error}"
        ) from error


async def close_routes(routes: HandlerRegistry) -> None:
    """Release what handlers keep between operations (upstream connections); at shutdown."""
    handlers = [route.handler for route in routes.routes()]
    for upstream in {h.upstream for h in handlers if isinstance(h, UpstreamHandler)}:
        await upstream.aclose()
