"""A route that accepts asynchronous submissions, the handler behind it, and its errors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bulkops.auth.context import ANONYMOUS
from bulkops.errors import Parameters, WebapiError, render
from bulkops.services.signature import Signature

TopicStyle = Literal["service", "route"]


class HandlerConfigError(Exception):
    """Handlers cannot be loaded as configured (a handler module, the upstreams file); the
    message names what and where."""


class HandlerError(Exception):
    """A handler's failure; `message` becomes the operation's result_message and `code` its
    error_code. Magento's `%placeholders` in the message are filled from `parameters`: a dict
    for `%name`, a list for `%1`, `%2`..."""

    def __init__(self, message: str, code: int = 0, parameters: Parameters | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.parameters: Parameters = parameters or {}

    @property
    def result_message(self) -> str:
        """The message with its placeholders filled, as an operation's result_message."""
        return render(self.message, self.parameters)


class RetriableError(HandlerError):
    """The operation may succeed if tried again unchanged (status 2)."""


class NotRetriableError(HandlerError):
    """The operation needs different input to succeed (status 3)."""


@dataclass(frozen=True, slots=True)
class OperationInput:
    """What a handler gets: one item of a request, as the client sent it, with the path's
    parameters merged in (a bulk request carries them in each item already)."""

    payload: Any
    bulk_uuid: str
    operation_id: int
    operation_key: int
    store_code: str
    user_type: int | None
    user_id: int | None


Handler = Callable[[OperationInput], Awaitable[Any]]
"""Returns the result (JSON-serialisable, stored as result_serialized_data) or raises."""

Validator = Callable[[Any], WebapiError | None]
"""Returns why an item is refused, as Magento's error (`InputError` of `bulkops.errors`), or None
to accept it: a single-item request answers it as a 400, a bulk stores the item as rejected
(status 5) with the rendered message."""

_PARAMETER = re.compile(r"^:(\w+)$")


def _at_path(item: Any, path: str) -> Any:
    """The value at a dotted path inside an item; None where the path does not lead."""
    for name in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(name)
    return item


@dataclass(frozen=True)
class AsyncRoute:
    method: str
    """POST, PUT, PATCH or DELETE."""
    path: str
    """Magento's route path, parameters written `:name`: `/V1/products/:sku/media`."""
    service: str
    """The service contract, `Vendor\\Module\\Api\\SomeInterface::method`; names the topic."""
    handler: Handler
    resource: str = ANONYMOUS
    """The ACL resource a caller needs to submit to this route."""
    validate: Validator | None = None
    """Gets the item, or when the route has a signature its converted parameters by name."""
    signature: Signature | None = None
    """The service method's parameters: items are converted against it as Magento does, its
    types' properties say where a path parameter overrides a single item's body."""
    max_attempts: int = 1
    """Deliveries before a RetriableError is final (status 2); retries back off."""
    independent: bool = False
    """A bulk's items may be processed in any order, in parallel. By default they are
    processed one after the other in request order, as Magento's consumer does."""
    ordering_key: str | None = None
    """A dotted path inside an item (`product.sku`): only items of a bulk with the same value
    there keep their request order; the others proceed in parallel."""
    segments: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.strip("/").split("/")))
        if self.independent and self.ordering_key is not None:
            raise HandlerConfigError(
                f"{self.method} {self.path}: a route is independent or has an ordering key, "
                "not both"
            )

    def order_group(self, bulk_uuid: str, item: Any) -> int | None:
        """The group whose operations are processed one after the other in id order (a
        63-bit number: a shared one between two groups only costs parallelism), or None for
        an operation that waits for no other."""
        if self.independent:
            return None
        key = bulk_uuid
        if self.ordering_key is not None:
            key += "\0" + repr(_at_path(item, self.ordering_key))
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest) >> 1

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(m[1] for s in self.segments if (m := _PARAMETER.match(s)))

    @property
    def bulk_path(self) -> str:
        """Magento's bulk form of the path: `/:sku/` becomes `/bySku/`."""
        return "/" + "/".join(
            f"by{m[1][:1].upper()}{m[1][1:]}" if (m := _PARAMETER.match(s)) else s
            for s in self.segments
        )

    def topic_name(self, style: TopicStyle = "service") -> str:
        """`async.magento.customer.api.accountmanagementinterface.createaccount.post`, or in
        Magento 2.3.0's route style `async.V1.customers.POST`."""
        if style == "route":
            return ".".join(["async", *(s.lstrip(":") for s in self.segments), self.method])
        service = self.service.replace("\\", ".").replace("::", ".")
        return f"async.{service}.{self.method}".lower()

    def match(self, path: str, bulk: bool) -> dict[str, str] | None:
        """The path parameters if `path` is this route (in its bulk form when `bulk`)."""
        sent = path.strip("/").split("/")
        if len(sent) != len(self.segments):
            return None
        found: dict[str, str] = {}
        for own, given in zip(self.segments, sent, strict=True):
            parameter = _PARAMETER.match(own)
            if parameter is None:
                if own != given:
                    return None
            elif bulk:
                name = parameter[1]
                if given != f"by{name[:1].upper()}{name[1:]}":
                    return None
            else:
                found[parameter[1]] = given
        return found
