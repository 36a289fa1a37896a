"""Where webhooks may go: a callback URL is checked when it is given (scheme and host, against
`BULKOPS_WEBHOOK_ALLOWED_HOSTS`), and the address it resolves to when it is delivered: a
non-public one (loopback, private, link-local...) is refused unless
`BULKOPS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES`, so that a name that resolves to the service's own
network cannot reach it. The delivery connects to the very address checked, so a name that
resolves differently the next time (DNS rebinding) changes nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from bulkops.api.hosts import is_trusted
from bulkops.errors import InputError
from bulkops.settings import Settings

CALLBACK_HEADER = "X-Bulk-Callback-Url"
MAX_URL_LENGTH = 2048
_SCHEMES = {"http": 80, "https": 443}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _invalid(why: str) -> InputError:
    return InputError(
        "%header is not a URL webhooks may be sent to: %reason",
        {"header": CALLBACK_HEADER, "reason": why},
    )


def check_callback_url(url: str, settings: Settings) -> str:
    """The URL if webhooks may be sent to it, else an `InputError` saying why."""
    if settings.webhook_secret is None:
        raise InputError(
            "%header needs webhooks to be configured: the installation has no webhook secret.",
            {"header": CALLBACK_HEADER},
        )
    if len(url) > MAX_URL_LENGTH or not url.isascii() or not url.isprintable():
        raise _invalid(f"it must have at most {MAX_URL_LENGTH} printable ASCII characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise _invalid("it cannot be read as a URL.") from None
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise _invalid("it must be an http or https URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise _invalid("it must hold no credentials.")
    if not is_trusted(parts.hostname, settings.webhook_allowed_hosts):
        raise _invalid("its host is not one of the allowed webhook hosts.")
    return url


class RefusedTarget(Exception):
    """The URL's host resolves to no address a webhook may be sent to."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one delivery goes: the URL to request (its host replaced by the checked address),
    and the original host, for the `Host` header and TLS (SNI and the certificate's name)."""

    url: str
    host_header: str
    server_name: str


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve_target(url: str, allowed_hosts: Sequence[str], allow_private: bool) -> Target:
    """Resolve the URL's host, and keep its first address if a webhook may go there. The host
    is checked again: the allowed ones may have changed since the URL was given."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not is_trusted(host, allowed_hosts):
        raise RefusedTarget(f"{host} is not one of the allowed webhook hosts")
    port = parts.port or _SCHEMES[parts.scheme]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as error:
        raise RefusedTarget(f"cannot resolve {host}: {error}") from None
    if not found:
        raise RefusedTarget(f"{host} resolves to no address")
    address = ipaddress.ip_address(str(found[0][4][0]).partition("%")[0])
    if not allow_private and not _public(address):
        raise RefusedTarget(f"{host} resolves to {address}, a non-public address")
    return Target(_with_host(parts, address, port), parts.netloc, host)


def _with_host(parts: SplitResult, address: IpAddress, port: int) -> str:
    shown = f"[{address}]" if address.version == 6 else str(address)
    return parts._replace(netloc=f"{shown}:{port}").geturl()
