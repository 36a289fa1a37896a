"""Tokens a process resolved lately, so that most requests skip the token query."""

from __future__ import annotations

from datetime import datetime

from cachetools import TTLCache

from bulkops.auth.context import UserContext
from bulkops.status import UserType


class ResolvedTokens:
    """Live tokens by hash, each kept for `seconds` at most and never past its expiry.

    Only live tokens are kept: an unknown token is looked up every time, so a token issued
    by another process works at once. A revocation or deactivation is seen at most `seconds`
    late; 0 keeps nothing."""

    def __init__(self, seconds: float, size: int) -> None:
        self._entries: TTLCache[str, tuple[UserContext, datetime | None]] | None = (
            TTLCache(maxsize=size, ttl=seconds) if seconds > 0 else None
        )

    def get(self, hashed: str, now: datetime) -> UserContext | None:
        if self._entries is None:
            return None
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        user, expires_at = entry
        if expires_at is not None and expires_at <= now:
            del self._entries[hashed]
            return None
        return user

    def put(self, hashed: str, user: UserContext, expires_at: datetime | None) -> None:
        if self._entries is not None:
            self._entries[hashed] = (user, expires_at)

    def forget(self, hashed: str) -> None:
        if self._entries is not None:
            self._entries.pop(hashed, None)

    def forget_user(self, user_type: UserType, user_id: int) -> None:
        """Every token of the user: the next request of each asks the database again."""
        if self._entries is None:
            return
        for hashed, (user, _) in list(self._entries.items()):
            if (user.user_type, user.user_id) == (user_type, user_id):
                self._entries.pop(hashed, None)
