"""A handler module: registers its route on the process-wide registry when imported."""

from __future__ import annotations

from typing import Any

from bulkops.handlers import NotRetriableError, OperationInput, registry


@registry.route(
    "POST",
    "/V1/echo/:name",
    service="Vendor\\Echo\\Api\\EchoInterface::echo",
    resource="Vendor_Echo::echo",
    max_attempts=3,
)
async def echo(operation: OperationInput) -> Any:
    if operation.payload.get("fail"):
        raise NotRetriableError(
            "Cannot echo %name.", parameters={"name": operation.payload["name"]}
        )
    return {"echo": operation.payload, "store": operation.store_code}
