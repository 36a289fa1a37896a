"""A slow handler that records every call it gets, and whether its operation was still open
then, in a JSON-lines file named by SLOW_HANDLER_CALLS. Each call takes SLOW_HANDLER_SECONDS."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from typing import Any

from sqlalchemy.engine import make_url

from bulkops.handlers import OperationInput, registry

SERVICE = "Tests\\Api\\SlowInterface::handle"


def _record(**fields: Any) -> None:
    # One short write per line with O_APPEND: lines from several processes do not mix.
    line = json.dumps(fields) + "\n"
    descriptor = os.open(os.environ["SLOW_HANDLER_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def _status(operation_id: int) -> int:
    database = make_url(os.environ["BULKOPS_DATABASE_URL"]).database
    with sqlite3.connect(database, timeout=30) as connection:
        (status,) = connection.execute(
            "SELECT status FROM bulkops_operation WHERE id = ?", (operation_id,)
        ).fetchone()
    connection.close()
    return status


@registry.route("POST", "/V1/tests/slow", service=SERVICE)
async def handle(operation: OperationInput) -> dict[str, Any]:
    call = uuid.uuid4().hex
    pid = os.getpid()
    _record(
        call=call,
        operation=operation.operation_id,
        pid=pid,
        event="start",
        status=_status(operation.operation_id),
        time=time.time(),
    )
    await asyncio.sleep(float(os.environ.get("SLOW_HANDLER_SECONDS", "0.02")))
    _record(call=call, operation=operation.operation_id, pid=pid, event="end", time=time.time())
    return {"call": call, "pid": pid}
