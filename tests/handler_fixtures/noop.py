"""A handler that does nothing, for measuring the worker's own cost."""

from __future__ import annotations

from bulkops.handlers import OperationInput, registry

SERVICE = "Tests\\Api\\NoopInterface::run"


@registry.route("POST", "/V1/tests/noop", service=SERVICE)
async def run(_: OperationInput) -> None:
    return None
