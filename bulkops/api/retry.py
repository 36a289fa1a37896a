"""`POST /V1/bulk/:bulkUuid/retry`: queue a bulk's failed operations again.

The body is optional: `{"statuses": [2, 3], "error_codes": [...]}`; statuses default to the
failed ones (2 and 3), error codes to any. The answer is the number of operations requeued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require
from bulkops.api.request_body import json_value
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import BULK_OPERATIONS
from bulkops.errors import InputError, NotFoundError, PayloadTooLargeError
from bulkops.status import OperationStatus
from bulkops.store.lifecycle import DEFAULT_RETRY_STATUSES, retry_operations, utc_now

MAX_BODY_BYTES = 64 * 1024
FIELDS = ("statuses", "error_codes")


async def retry_bulk(request: Request) -> Response:
    await require(request, BULK_OPERATIONS)
    body = await _body(request)
    statuses = _integers(body, "statuses")
    error_codes = _integers(body, "error_codes")
    if statuses is not None:
        valid = {int(status) for status in OperationStatus}
        for status in statuses:
            if status not in valid:
                raise InputError(
                    'Invalid value of "%value" provided for the %fieldName field.',
                    {"value": status, "fieldName": "statuses"},
                )
    bulk_uuid = request.path_params["bulk_uuid"]
    async with request.app.state.database.write() as connection:
        count = await retry_operations(
            connection,
            bulk_uuid,
            utc_now(),
            DEFAULT_RETRY_STATUSES if statuses is None else statuses,
            error_codes,
        )
    if count is None:
        raise NotFoundError("Bulk uuid %bulkUuid not exist", {"bulkUuid": bulk_uuid})
    request.app.state.transport.announce()
    return ApiResponse(count)


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                "The request body is larger than %max bytes.", {"max": MAX_BODY_BYTES}
            )
    if not raw.strip():
        return {}
    body = json_value(raw)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InputError('The body must be an object such as {"statuses": [2, 3]}.')
    for name in body:
        if name not in FIELDS:
            raise InputError.not_supported(name)
    return body


def _integers(body: dict[str, Any], name: str) -> Sequence[int] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise InputError.invalid_type(name, orjson.dumps(value).decode(), "int[]")
    return value


routes = [Route("/V1/bulk/{bulk_uuid}/retry", retry_bulk, methods=["POST"])]
