"""`GET /metrics`: Prometheus's text format, to the allowed networks and to the holders of
the metrics token; anyone else gets Magento's 403 body."""

from __future__ import annotations

import hmac
import os
from ipaddress import ip_address

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import bearer_token
from bulkops.errors import ForbiddenError
from bulkops.metrics.processes import MULTIPROCESS_DIR
from bulkops.settings import Settings

METRICS_PATH = "/metrics"


async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not allowed(request, settings):
        raise ForbiddenError(
            "The consumer isn't authorized to access %resources.", {"resources": "metrics"}
        )
    figures = await request.app.state.metrics_figures.current()
    body = generate_latest(_processes()) + generate_latest(figures)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def allowed(request: Request, settings: Settings) -> bool:
    """From an allowed network, or with the metrics token (compared in constant time)."""
    token = bearer_token(request)
    if settings.metrics_token is not None and token is not None:
        expected = settings.metrics_token.get_secret_value().encode()
        if hmac.compare_digest(token.encode(), expected):
            return True
    if request.client is None:
        return False
    try:
        address = ip_address(request.client.host)
    except ValueError:
        return False  # not an IP address (a Unix socket's peer)
    return any(address in network for network in settings.metrics_allowed_networks)


def _processes() -> Collector:
    """Every process's counts under `serve --processes N`; this process's otherwise."""
    if MULTIPROCESS_DIR not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


routes = [Route(METRICS_PATH, metrics, methods=["GET"])]
