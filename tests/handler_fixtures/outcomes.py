"""A handler whose outcome depends on the item alone, so that runs on different setups can be
compared: `{"n": <int>}` completes with its double, unless n % 7 == 3 (status 3); anything else
is rejected at submission (status 5). Each call takes OUTCOME_HANDLER_SECONDS."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bulkops.errors import InputError
from bulkops.handlers import NotRetriableError, OperationInput, registry

SERVICE = "Tests\\Api\\OutcomeInterface::apply"


def validate(item: Any) -> InputError | None:
    if isinstance(item, dict) and type(item.get("n")) is int:
        return None
    return InputError('An item must be {"n": <integer>}.')


@registry.route("POST", "/V1/tests/outcomes", service=SERVICE, validate=validate)
async def apply(operation: OperationInput) -> dict[str, int]:
    n = operation.payload["n"]
    await asyncio.sleep(float(os.environ.get("OUTCOME_HANDLER_SECONDS", "0")))
    if n % 7 == 3:
        raise NotRetriableError("Item %n is refused.", code=7, parameters={"n": n})
    return {"n": n, "double": 2 * n}
