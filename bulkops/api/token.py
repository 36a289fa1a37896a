"""`POST /V1/integration/admin/token`: an admin token for a username and password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.request_body import decode, read_body
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import GUEST
from bulkops.errors import InputError
from bulkops.services.signature import Parameter, convert

SIGNATURE = (Parameter("username", "string"), Parameter("password", "string"))
"""AdminTokenServiceInterface::createAdminAccessToken(string $username, string $password)."""


def credentials(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Username and password from the body, converted as Magento does (a number given for
    the password is its text), with Magento's errors for missing or empty ones."""
    parameters = convert(SIGNATURE, decode(body, content_type))
    # AdminTokenService's CredentialsValidator refuses empty strings as well.
    empty = [name for name, value in parameters.items() if value == ""]
    if empty:
        raise InputError.aggregate([InputError.required(name) for name in empty])
    return parameters["username"], parameters["password"]


async def create_admin_token(request: Request) -> Response:
    # Any Authorization header is ignored, as in Magento: the route is anonymous.
    state = request.app.state
    await state.rate_limits.count(request, GUEST)
    body = await read_body(request, state.settings.anonymous_max_request_bytes)
    username, password = credentials(body, request.headers.get("content-type"))
    return ApiResponse(await state.auth.issue_admin_token(username, password))


routes = [Route("/V1/integration/admin/token", create_admin_token, methods=["POST"])]
