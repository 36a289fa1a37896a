"""A slow handler that records every call it gets, and whether its operation was still open
then, in a JSON-lines file named by SLOW_HANDLER_CALLS. Each call takes SLOW_HANDLER_SECONDS.
It reads the status at SLOW_HANDLER_DATABASE_URL if set (a database its process reaches through
a proxy a test cuts), else at the process's own BULKOPS_DATABASE_URL."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from functools import cache
from typing import Any

import sqlalchemy

from bulkops.handlers import OperationInput, registry
from tests.backends import sync_url

SERVICE = "Tests\\Api\\SlowInterface::handle"


def _record(**fields: Any) -> None:
    # One short write per line with O_APPEND: lines from several processes do not mix.
    line = json.dumps(fields) + "\n"
    descriptor = os.open(os.environ["SLOW_HANDLER_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


@cache
def _engine() -> sqlalchemy.Engine:
    url = os.environ.get("SLOW_HANDLER_DATABASE_URL") or os.environ["BULKOPS_DATABASE_URL"]
    return sqlalchemy.create_engine(sync_url(url))


def _status(operation_id: int) -> int:
    """The operation's status as the handler starts, read on a connection of its own."""
    with _engine().connect() as connection:
        return connection.execute(
            sqlalchemy.text("SELECT status FROM bulkops_operation WHERE id = :id"),
            {"id": operation_id},
        ).scalar_one()


# Independent: the tests that use it count on a bulk's items being processed in parallel.
@registry.route("POST", "/V1/tests/slow", service=SERVICE, independent=True)
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
