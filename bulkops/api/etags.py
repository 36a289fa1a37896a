"""ETags of the per-bulk status routes, so that clients polling a bulk revalidate cheaply:
`If-None-Match` with the tag of the last answer gets a 304 without a body, as long as
nothing of the answer has changed, for one read of the bulk's row.

A tag is weak (`W/"..."`): it stands for the bulk's version (`bulkops.store.bulk_versions`)
as this representation renders it, not for the bytes, which another release may lay out
otherwise. Besides the version it holds a digest of everything else that shapes the answer:
the format (from Accept: `Vary: Accept` says so to caches as well), the route and its query
string (`fields=`), and the settings that change how operations are shown (the id field, the keys
masked) with the release. Every answer says `Cache-Control: no-cache`: caches may keep it, but
must ask again each time.

Whether the caller may read the bulk is decided before any of this: another's bulk is a 404
(or the count 0) as before, whatever the request's `If-None-Match`."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from bulkops import __version__
from bulkops.api.negotiation import format_of
from bulkops.settings import Settings

NO_CACHE = "no-cache"
WEAK = "W/"


class BulkTags:
    def __init__(self, shown_as: str) -> None:
        self.shown_as = shown_as.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> BulkTags:
        masked = ",".join(sorted({key.lower() for key in settings.redact_keys}))
        return cls(f"{__version__}|{settings.operation_id}|{masked}")

    def tag(self, request: Request, version: int) -> str:
        """The ETag of the request's answer at this version of its bulk."""
        shape = hashlib.blake2b(self.shown_as, digest_size=8)
        shape.update(b"|" + format_of(request.scope).content_type.encode())
        shape.update(b"|" + request.scope["path"].encode())
        shape.update(b"|" + request.scope["query_string"])
        return f'{WEAK}"{version}-{shape.hexdigest()}"'


def not_modified(request: Request, tag: str) -> Response | None:
    """A 304 when the request's `If-None-Match` holds `tag` (or is `*`), compared weakly as
    RFC 9110 has it for GET; None otherwise."""
    header = request.headers.get("if-none-match")
    if header is None:
        return None
    wanted = _opaque(tag)
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or _opaque(candidate) == wanted:
            return Response(status_code=304, headers=validators(tag))
    return None


def validators(tag: str) -> dict[str, str]:
    """The headers of an answer with this tag, 200 or 304 alike."""
    return {"ETag": tag, "Cache-Control": NO_CACHE, "Vary": "Accept"}


def _opaque(tag: str) -> str:
    return tag.removeprefix(WEAK)
