"""Which services a schema describes: those the `services` parameter names (all by default),
reduced to the methods the caller may use (Webapi\\Model\\AbstractSchemaGenerator)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bulkops.api.schema.catalog import ServiceMethod
from bulkops.auth.context import UserContext
from bulkops.errors import AuthenticationError, InputError

ALL_SERVICES = "all"
# Framework\Webapi\Request::_convertRequestParamToServiceArray
_SERVICES = re.compile(r"^[a-zA-Z\d]*V\d+(,[a-zA-Z\d]*V\d+)*$")


def requested_services(value: str | None) -> list[str] | None:
    """The names in `?services=a,b`; None for all (the parameter absent or `all`)."""
    if value is None or value == ALL_SERVICES:
        return None
    if not _SERVICES.match(value):
        raise InputError("Incorrect format of request URI or Requested services are missing.")
    return list(dict.fromkeys(value.split(",")))


def select(
    methods: Sequence[ServiceMethod], user: UserContext, requested: list[str] | None
) -> list[ServiceMethod]:
    """The methods of the requested services that `user` may call, in catalog order."""
    if requested is not None:
        known = {method.service for method in methods}
        for name in requested:
            if name not in known:
                raise InputError(
                    'Requested service is not available: "%service"', {"service": name}
                )
    chosen = [
        method
        for method in methods
        if (requested is None or method.service in requested) and user.is_allowed(method.resource)
    ]
    if not chosen:
        # Magento names the services asked for (none when all were).
        raise AuthenticationError(
            "The consumer isn't authorized to access %resources.",
            {"resources": ", ".join(requested or [])},
        )
    return chosen
