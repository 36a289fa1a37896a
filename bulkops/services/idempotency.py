"""Idempotency keys of submissions (`Idempotency-Key`, as Stripe's): the key a caller sends,
what makes two requests the same one, and the answer to a repeat."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.datastructures import Headers

from bulkops.auth.context import UserContext
from bulkops.errors import InputError, UnprocessableError
from bulkops.services.data_hash import DataHasher
from bulkops.store.idempotency import KeyScope, StoredKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
"""On an answer given again to a repeated request (Stripe's name)."""
REPLAYED: Mapping[str, str] = {REPLAYED_HEADER: "true"}
MAX_KEY_LENGTH = 255
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")


def key_scope(headers: Headers, user: UserContext) -> KeyScope | None:
    """The caller's idempotency key, if the request has one: printable ASCII (taken as it
    is, quotes included), in the scope of the caller. A caller without an id (no token) has
    no scope of its own, and one shared by every such caller would let each learn of the
    others' keys and confirm their requests: it cannot use keys."""
    values = headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1 or not _KEY.fullmatch(values[0]):
        raise InputError(
            'The "%header" header must be sent once, with 1 to %max printable ASCII characters.',
            {"header": HEADER, "max": MAX_KEY_LENGTH},
        )
    if user.user_id is None:
        raise InputError(
            'Idempotency keys need an authenticated caller: send a token, or no "%header" header.',
            {"header": HEADER},
        )
    return KeyScope(int(user.user_type), user.user_id, values[0])


class RequestDigest:
    """A request with a key, read item by item. What tells one request from another under a
    key: its method, route, bulk or single form, store, and each item as it is stored
    (`serialized_data`), so that bodies the service reads alike (spacing, escapes, JSON or
    XML) are the same request and whatever would be stored differently is not. An HMAC with
    the installation's key, as `data_hash`: the stored digest cannot confirm a guessed
    payload."""

    __slots__ = ("_hmac", "scope")

    def __init__(
        self,
        scope: KeyScope,
        hasher: DataHasher,
        method: str,
        route_path: str,
        bulk: bool,
        store_code: str,
    ) -> None:
        self.scope = scope
        self._hmac = hasher.keyed()
        # JSON, as the items: no part holds a raw newline, which separates them.
        self._hmac.update(orjson.dumps([method, route_path, bulk, store_code]))

    def add(self, serialized_data: str) -> None:
        self._hmac.update(b"\n" + serialized_data.encode())

    def use(self, now: datetime, retention: timedelta) -> KeyUse:
        """The key's use by the whole request, once every item was added."""
        return KeyUse(self.scope, self._hmac.hexdigest(), now - retention)


@dataclass(frozen=True, slots=True)
class KeyUse:
    """A request with a key: which, and since when an earlier use of the key still counts."""

    scope: KeyScope
    request_hash: str
    used_after: datetime

    def replay(self, stored: StoredKey) -> dict[str, Any]:
        """The first answer of the key, if it was for this request."""
        if stored.request_hash != self.request_hash:
            raise UnprocessableError(
                'The idempotency key "%key" was already used for a different request. '
                "Send a new key with a new request.",
                {"key": self.scope.key},
            )
        answer: dict[str, Any] = orjson.loads(stored.response)
        return answer
