"""A handler that fails retriably the first `failures` times it is called for an operation (the
item's field), then succeeds. Each call is recorded, with its time, in a JSON-lines file named
by FLAKY_HANDLER_CALLS; the calls made before are counted from it, so that the count holds
across worker processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bulkops.handlers import OperationInput, RetriableError, registry

SERVICE = "Tests\\Api\\FlakyInterface::handle"
MAX_ATTEMPTS = 3


def _calls(operation_id: int) -> int:
    path = Path(os.environ["FLAKY_HANDLER_CALLS"])
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    return sum(json.loads(line)["operation"] == operation_id for line in lines)


def _record(operation_id: int) -> None:
    line = json.dumps({"operation": operation_id, "pid": os.getpid(), "time": time.time()})
    # One short write with O_APPEND: lines from several processes do not mix.
    descriptor = os.open(os.environ["FLAKY_HANDLER_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


@registry.route("POST", "/V1/tests/flaky", service=SERVICE, max_attempts=MAX_ATTEMPTS)
async def handle(operation: OperationInput) -> dict[str, Any]:
    earlier = _calls(operation.operation_id)
    _record(operation.operation_id)
    if earlier < operation.payload["failures"]:
        raise RetriableError("Not yet (call %call).", parameters={"call": earlier + 1})
    return {"calls": earlier + 1}
