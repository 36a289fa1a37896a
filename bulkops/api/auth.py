"""Credentials on requests (a Bearer token, or an OAuth 1.0a signature), and the ACL check
with Magento's 401 body."""

from __future__ import annotations

from starlette.requests import Request

from bulkops.api.paths import REQUEST_PATH_KEY
from bulkops.auth.context import BULK_OPERATIONS, GUEST, UserContext
from bulkops.auth.oauth import SignedRequest, protocol_parameters
from bulkops.errors import AuthenticationError


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def signed_request(request: Request) -> SignedRequest | None:
    """The request as an OAuth signature covers it, if it carries one."""
    protocol = protocol_parameters(request.headers.get("authorization", ""))
    if protocol is None:
        return None
    scope = request.scope
    # Scheme (from X-Forwarded-Proto behind a trusted proxy) and Host as the client used them.
    host = request.headers.get("host") or "{}:{}".format(*scope["server"])
    path = scope.get(REQUEST_PATH_KEY, scope.get("raw_path") or scope["path"].encode())
    uri = f"{scope['scheme']}://{host}{path.decode('latin-1')}"
    return SignedRequest(request.method, uri, scope["query_string"].decode("latin-1"), protocol)


async def caller(request: Request) -> UserContext:
    """The request's user; an absent, unknown or expired token is a guest, as in Magento. A
    signed request that fails its checks gets Magento's error instead."""
    auth = request.app.state.auth
    signed = signed_request(request)
    if signed is not None:
        return await auth.resolve_signed(signed) or GUEST
    token = bearer_token(request)
    if token is None:
        return GUEST
    return await auth.resolve_bearer(token) or GUEST


def not_authorized(*resources: str) -> AuthenticationError:
    """Magento's ACL refusal, naming the resources the caller lacks."""
    return AuthenticationError(
        "The consumer isn't authorized to access %resources.", {"resources": ", ".join(resources)}
    )


async def require(request: Request, resource: str) -> UserContext:
    """The caller, counted against its rate limit, if it may use `resource`."""
    user = await caller(request)
    await request.app.state.rate_limits.count(request, user)
    if not user.is_allowed(resource):
        raise not_authorized(resource)
    return user


async def require_bulk_reader(request: Request) -> UserContext:
    """The caller of a route that reads bulks: it needs Magento's bulk resource and, unless it
    reads every bulk, an id to own bulks by (guests and customers see nothing of bulks)."""
    user = await require(request, BULK_OPERATIONS)
    if not reads_bulks(user):
        raise not_authorized(BULK_OPERATIONS)
    return user


def reads_bulks(user: UserContext) -> bool:
    """Whether the user may read bulks: Magento's bulk resource and, unless it reads every
    bulk, an id to own bulks by."""
    return user.is_allowed(BULK_OPERATIONS) and (user.all_bulks or user.user_id is not None)
