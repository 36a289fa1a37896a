"""What processes operations: routes (method + path) bound to handlers, and their registry.

Users add Python handlers with `registry.route(...)` in a module named by the
`BULKOPS_HANDLER_MODULES` setting, or HTTP upstreams in a TOML file.
"""

from bulkops.handlers.base import (
    AsyncRoute,
    Handler,
    NotRetriableError,
    OperationInput,
    RetriableError,
)
from bulkops.handlers.registry import HandlerRegistry, registry

__all__ = [
    "AsyncRoute",
    "Handler",
    "HandlerRegistry",
    "NotRetriableError",
    "OperationInput",
    "RetriableError",
    "registry",
]
