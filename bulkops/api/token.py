"""`POST /V1/integration/admin/token`: an admin token for a username and password."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.responses import ApiResponse
from bulkops.errors import InputError, PayloadTooLargeError, WebapiError

# Far above any real credentials; the route is anonymous, so nothing large is buffered.
MAX_BODY_BYTES = 64 * 1024
FIELDS = ("username", "password")
JSON_TYPES = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError("The request body is too large.")
    return bytes(body)


def _decode(body: bytes) -> dict[str, Any]:
    # As Magento, an empty body is no parameters rather than bad JSON.
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError("Decoding error.") from None
    if not isinstance(data, dict):
        raise InputError('The request body must be a JSON object with "username" and "password".')
    return data


def credentials(body: bytes) -> tuple[str, str]:
    """Username and password from the body, with Magento's errors for missing ones."""
    data = _decode(body)
    errors: list[WebapiError] = []
    for field in FIELDS:
        value = data.get(field)
        if value is None or value == "":
            errors.append(InputError.required(field))
        elif not isinstance(value, str):
            # The type, not the value: it may be a password.
            errors.append(InputError.invalid_type(field, JSON_TYPES[type(value)], "string"))
    if errors:
        raise InputError.aggregate(errors)
    return data["username"], data["password"]


async def create_admin_token(request: Request) -> Response:
    # Any Authorization header is ignored, as in Magento: the route is anonymous.
    username, password = credentials(await _read_body(request))
    return ApiResponse(await request.app.state.auth.issue_admin_token(username, password))


routes = [Route("/V1/integration/admin/token", create_admin_token, methods=["POST"])]
