"""The Host header values the service answers to, and the public origin it reports (store
base URLs, schemas): a Host header is only believed once it has been checked."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bulkops.api.health import HEALTH_PATH
from bulkops.api.responses import error_response
from bulkops.errors import InputError
from bulkops.settings import Settings

ANY_HOST = "*"


def host_name(host: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:8080` -> `[::1]`."""
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and not name.endswith(":") else host


def is_trusted(host: str, patterns: Sequence[str]) -> bool:
    """Whether a Host header matches a pattern: a name, or `*.example.com` for its subdomains."""
    name = host_name(host).lower()
    return any(
        pattern == ANY_HOST
        or name == pattern.lower()
        or (pattern.startswith("*.") and name.endswith(pattern[1:].lower()))
        for pattern in patterns
    )


class TrustedHostMiddleware:
    """Refuses (400) a request whose Host is none of the configured ones; the health check,
    which load balancers call by address, is exempt."""

    def __init__(self, app: ASGIApp, trusted_hosts: Sequence[str]) -> None:
        self.app = app
        self.trusted_hosts = trusted_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or ANY_HOST in self.trusted_hosts
            or scope["path"] == HEALTH_PATH
            or is_trusted(Headers(scope=scope).get("host", ""), self.trusted_hosts)
        ):
            await self.app(scope, receive, send)
            return
        await error_response(InputError("Invalid host header."))(scope, receive, send)


def public_base_url(request: Request) -> str:
    """The URL clients reach the service at, ending with `/`: `base_url` when set; else the
    request's, once its Host was checked against `trusted_hosts`; else (any Host accepted,
    so it says nothing) the address the connection came in on."""
    settings: Settings = request.app.state.settings
    if settings.base_url:
        return settings.base_url.rstrip("/") + "/"
    if ANY_HOST not in settings.trusted_hosts:
        return str(request.base_url)
    host, port = request.scope.get("server") or (settings.host, settings.port)
    return f"{request.url.scheme}://{host}:{port}/"
