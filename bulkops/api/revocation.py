"""Revoking access tokens: one token, every token of an admin user, every token of an
integration. Magento revokes admin tokens from its admin (System > Permissions > All Users >
Force Sign-In, `AdminTokenServiceInterface::revokeAdminAccessToken(int $adminId)`) without a
REST route; these routes follow its `/V1/integration/<user kind>/token` naming and answer
`true`, as that service method does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import caller, not_authorized, require
from bulkops.api.request_body import decode, read_body
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import ADMIN_USERS, INTEGRATIONS
from bulkops.auth.service import AuthService
from bulkops.errors import NotFoundError
from bulkops.services.signature import Parameter, Signature, convert
from bulkops.status import UserType

MAX_BODY_BYTES = 64 * 1024
RESOURCE_OF = {UserType.ADMIN: ADMIN_USERS, UserType.INTEGRATION: INTEGRATIONS}
"""Who may revoke the tokens of each kind of user."""


def no_such_entity(field_name: str, value: object) -> NotFoundError:
    """Magento's NoSuchEntityException::singleField."""
    return NotFoundError(
        "No such entity with %fieldName = %fieldValue",
        {"fieldName": field_name, "fieldValue": value},
    )


async def _parameter(request: Request, parameter: Parameter) -> object:
    body = await read_body(request, MAX_BODY_BYTES)
    signature: Signature = (parameter,)
    return convert(signature, decode(body, request.headers.get("content-type")))[parameter.name]


def _user_tokens(user_type: UserType, parameter: str) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint revoking every token of the user of that kind whose id is `parameter`."""

    async def revoke(request: Request) -> Response:
        await require(request, RESOURCE_OF[user_type])
        user_id = await _parameter(request, Parameter(parameter, "int"))
        assert isinstance(user_id, int), "convert answers an int parameter as an int"
        auth: AuthService = request.app.state.auth
        if not await auth.revoke_user_tokens(user_type, user_id):
            raise no_such_entity(parameter, user_id)
        return ApiResponse(True)

    return revoke


async def revoke_token(request: Request) -> Response:
    """One token, given in the body; the caller needs the resource of its user's kind."""
    user = await caller(request)
    if not any(user.is_allowed(resource) for resource in RESOURCE_OF.values()):
        raise not_authorized(*RESOURCE_OF.values())
    token = str(await _parameter(request, Parameter("token", "string"))).strip()
    auth: AuthService = request.app.state.auth
    owner_type = await auth.token_user_type(token)
    if owner_type is None:
        # The token is not echoed: it may be a live credential pasted in by mistake.
        raise NotFoundError("The token does not exist.")
    resource = RESOURCE_OF[owner_type]
    if not user.is_allowed(resource):
        raise not_authorized(resource)
    await auth.revoke_token(token)
    return ApiResponse(True)


routes = [
    Route(
        "/V1/integration/admin/token/revoke",
        _user_tokens(UserType.ADMIN, "adminId"),
        methods=["POST"],
    ),
    Route(
        "/V1/integration/integration/token/revoke",
        _user_tokens(UserType.INTEGRATION, "integrationId"),
        methods=["POST"],
    ),
    Route("/V1/integration/token/revoke", revoke_token, methods=["POST"]),
]
