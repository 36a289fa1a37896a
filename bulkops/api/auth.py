"""Bearer tokens on requests, and the ACL check with Magento's 401 body."""

from __future__ import annotations

from starlette.requests import Request

from bulkops.auth.context import GUEST, UserContext
from bulkops.errors import AuthenticationError


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def caller(request: Request) -> UserContext:
    """The request's user; an absent, unknown or expired token is a guest, as in Magento."""
    token = bearer_token(request)
    if token is None:
        return GUEST
    return await request.app.state.auth.resolve_bearer(token) or GUEST


async def require(request: Request, resource: str) -> UserContext:
    user = await caller(request)
    if not user.is_allowed(resource):
        raise AuthenticationError(
            "The consumer isn't authorized to access %resources.", {"resources": resource}
        )
    return user
