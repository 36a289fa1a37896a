"""Handlers that record when each call begins and ends, in the JSON-lines file named by
ORDER_HANDLER_CALLS, to tell in which order a bulk's items ran and whether any two overlapped.

An item may ask to `meet` others: its call waits until `count` calls that asked to meet under
the same name have begun (in any process), and records whether they all did, which only
happens if those items may run at the same time. An item with `fail_first` fails retriably
the first time it runs."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from bulkops.handlers import OperationInput, RetriableError, registry

MEETING_SECONDS = 30.0
"""How long a call waits for the others before it gives up (only a failing run waits so)."""


def _record(event: str, operation: OperationInput, **fields: Any) -> None:
    line = json.dumps(
        {"event": event, "bulk": operation.bulk_uuid, "key": operation.operation_key} | fields
    )
    # One short write per line with O_APPEND: lines of several processes do not mix, and
    # their order in the file is the order they happened in.
    descriptor = os.open(os.environ["ORDER_HANDLER_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


def _records() -> list[dict[str, Any]]:
    with open(os.environ["ORDER_HANDLER_CALLS"]) as calls:
        return [json.loads(line) for line in calls]


async def _meet(name: str, count: int) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEETING_SECONDS
    while loop.time() < deadline:
        begun = [r for r in _records() if r["event"] == "begin" and r.get("meet") == name]
        if len(begun) >= count:
            return True
        await asyncio.sleep(0.02)
    return False


async def _run(operation: OperationInput) -> None:
    item = operation.payload
    meeting = item.get("meet")
    _record("begin", operation, meet=meeting)
    met = await _meet(meeting, item["count"]) if meeting else None
    # Lets another call of the same bulk begin now, if the worker would allow it.
    await asyncio.sleep(0.002)
    first_time = not any(
        r["event"] == "end"
        and r["bulk"] == operation.bulk_uuid
        and r["key"] == operation.operation_key
        for r in _records()
    )
    _record("end", operation, met=met)
    if item.get("fail_first") and first_time:
        raise RetriableError("Failing once, as asked.")


@registry.route(
    "POST", "/V1/tests/ordered", service="Tests\\Api\\OrderedInterface::run", max_attempts=2
)
async def ordered(operation: OperationInput) -> None:
    await _run(operation)


@registry.route(
    "POST",
    "/V1/tests/independent",
    service="Tests\\Api\\IndependentInterface::run",
    independent=True,
)
async def independent(operation: OperationInput) -> None:
    await _run(operation)


@registry.route(
    "POST", "/V1/tests/keyed", service="Tests\\Api\\KeyedInterface::run", ordering_key="sku"
)
async def keyed(operation: OperationInput) -> None:
    await _run(operation)
