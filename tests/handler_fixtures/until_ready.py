"""A handler that fails (status 3, with the item's `message` and `code`) while the file the item
names (`ready_file`) does not exist, and completes once it does: its failed operations, retried
after the file is made, complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulkops.handlers import NotRetriableError, OperationInput, registry

SERVICE = "Tests\\Api\\UntilReadyInterface::apply"


@registry.route("POST", "/V1/tests/until-ready", service=SERVICE)
async def apply(operation: OperationInput) -> dict[str, Any]:
    payload = operation.payload
    if not Path(payload["ready_file"]).exists():
        raise NotRetriableError(payload["message"], code=payload["code"])
    return {"done": payload["message"]}
