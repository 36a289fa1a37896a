"""The schema routes: `/schema`, `/async/schema`, `/async/bulk/schema` (Swagger 2.0, as
Magento's SchemaRequestProcessor and WebapiAsync's AsynchronousSchemaRequestProcessor answer
them) and `/openapi.json` (OpenAPI 3.1), each under `/rest[/<store code>]`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import caller
from bulkops.api.formats import JSON
from bulkops.api.hosts import public_base_url
from bulkops.api.paths import REST_PREFIX_KEY
from bulkops.api.schema.catalog import SYNC_METHODS, ServiceMethod, async_methods
from bulkops.api.schema.openapi import openapi_document
from bulkops.api.schema.selection import requested_services, select
from bulkops.api.schema.swagger import Variant, swagger_document

SERVICES_PARAMETER = "services"


async def _selected(request: Request, methods: list[ServiceMethod]) -> list[ServiceMethod]:
    requested = requested_services(request.query_params.get(SERVICES_PARAMETER))
    return select(methods, await caller(request), requested)


def _origin(request: Request) -> tuple[str, str, str]:
    """Scheme, host and REST prefix of the request, as Magento takes them for the schema (the
    host only when it can be believed)."""
    public = urlsplit(public_base_url(request))
    return public.scheme, public.netloc, request.scope[REST_PREFIX_KEY]


def _swagger(variant: Variant, suffix: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        routes = request.app.state.routes
        catalog = list(SYNC_METHODS) if variant == "sync" else async_methods(routes)
        methods = await _selected(request, catalog)
        scheme, host, prefix = _origin(request)
        return _json(swagger_document(methods, variant, scheme, host, prefix + suffix))

    return endpoint


async def openapi(request: Request) -> Response:
    catalog = [*SYNC_METHODS, *async_methods(request.app.state.routes)]
    methods = await _selected(request, catalog)
    metrics = request.app.state.settings.metrics_enabled
    return _json(openapi_document(methods, *_origin(request), metrics=metrics))


routes = [
    Route("/schema", _swagger("sync", ""), methods=["GET"]),
    Route("/async/schema", _swagger("async", "/async"), methods=["GET"]),
    Route("/async/bulk/schema", _swagger("bulk", "/async/bulk"), methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


def _json(document: dict[str, Any]) -> Response:
    # Schemas are JSON whatever the Accept header says, as Magento's schema processors answer.
    return Response(JSON.document(document), media_type=JSON.content_type)
