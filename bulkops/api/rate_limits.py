"""Rate limits: each user or integration has a budget of requests, whatever its token, and each
client address one for the requests that carry no valid token (anonymous routes, logins,
refused credentials). Counted with the `limits` package, in the process's memory or in Redis,
which every process and host using it then shares."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.requests import Request

from bulkops.auth.context import UserContext
from bulkops.errors import TooManyRequestsError
from bulkops.settings import Settings
from bulkops.status import UserType

log = logging.getLogger("bulkops.api")


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.per_caller = _limit(settings.rate_limit_per_caller)
        self.per_address = _limit(settings.rate_limit_per_address)
        self.prefix = settings.rate_limit_key_prefix
        self.storage = _async_storage(settings.rate_limit_storage_url)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.store_down = False

    async def count(self, request: Request, user: UserContext) -> None:
        """Counts the request against its caller's budget (a guest's: its address's), or
        raises TooManyRequestsError once the budget is spent."""
        if user.user_type == UserType.GUEST:
            address = request.client.host if request.client else "unknown"
            await self._hit(self.per_address, "address", address)
        else:
            await self._hit(self.per_caller, "caller", f"{user.user_type}.{user.user_id}")

    async def _hit(self, limit: RateLimitItem | None, kind: str, identity: str) -> None:
        if limit is None:
            return
        keys = (self.prefix, kind, identity)
        try:
            allowed = await self.limiter.hit(limit, *keys)
            stats = None if allowed else await self.limiter.get_window_stats(limit, *keys)
        except StorageError as error:
            # An unreachable shared store must not stop the service: requests go uncounted,
            # said once (not once a request) until the store answers again.
            if not self.store_down:
                log.warning("rate limit store unavailable: %s", error.storage_error)
                self.store_down = True
            return
        if self.store_down:
            log.warning("rate limit store available again")
            self.store_down = False
        if stats is None:
            return
        raise TooManyRequestsError(max(1, math.ceil(stats.reset_time - time.time())))


def _limit(text: str) -> RateLimitItem | None:
    return parse(text) if text.strip() else None


def _async_storage(url: str) -> Storage:
    """The `limits` async storage of a URL written as for any client (`redis://...`)."""
    scheme = url if url.startswith("async+") else f"async+{url}"
    storage = storage_from_string(scheme, wrap_exceptions=True)
    assert isinstance(storage, Storage)
    return storage
