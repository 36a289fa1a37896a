"""Query strings parsed the way PHP's `parse_str` does, since Magento clients are written for it.

`a[b][0][c]=v` builds nested dicts, `a[]=v` appends with PHP's next integer key, and literal and
percent-encoded brackets are the same thing. Keys are always strings; PHP would turn canonical
integer keys (`"1"`, not `"01"`) into ints, which only matters for `[]` and is handled here.

Where PHP has quirks they are kept, because a client that works against Magento must work here:
- leading spaces of a name are dropped, and `.` or ` ` in the base name become `_`;
- `[ ]` (one space) appends like `[]`; any other key is taken verbatim, spaces included;
- anything after a `]` that is not followed by `[` is ignored (`a[b]c=1` sets `a[b]`);
- a `[` with no closing `]`: in the first segment the name is taken literally, with `[`, `.` and
  ` ` turned into `_` (`a[b=1` sets `a_b`); in a later segment the rest of the name is ignored;
- appending past the largest 64-bit key is dropped, as PHP drops it.

Unlike PHP, which silently drops or truncates, the protective limits raise `InputError`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from bulkops.errors import InputError

MAX_PAIRS = 1000
MAX_DEPTH = 16

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# PHP's canonical integer keys: no leading zeros, no "+", no "-0".
_CANONICAL_INT = re.compile(r"-?[1-9][0-9]{0,18}|0", re.ASCII)

Segment = str | None
"""A bracket segment: a key, or None for `[]` (append)."""


class _Array:
    """A PHP array while it is built: ordered entries and the next key `[]` appends with."""

    __slots__ = ("entries", "next_index")

    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}
        self.next_index = 0

    def set(self, key: str, value: Any) -> None:
        if _CANONICAL_INT.fullmatch(key):
            index = int(key)
            if _INT64_MIN <= index <= _INT64_MAX and index >= self.next_index:
                self.next_index = index + 1
        self.entries[key] = value

    def append(self, value: Any) -> bool:
        """False when the next key would pass the largest 64-bit integer (PHP drops the value)."""
        if self.next_index > _INT64_MAX:
            return False
        self.set(str(self.next_index), value)
        return True

    def child(self, key: Segment) -> _Array | None:
        """The array at `key`, created (replacing any scalar in place) if needed."""
        if key is None:
            created = _Array()
            return created if self.append(created) else None
        found = self.entries.get(key)
        if not isinstance(found, _Array):
            found = _Array()
            self.set(key, found)
        return found

    def plain(self) -> dict[str, Any]:
        return {
            key: value.plain() if isinstance(value, _Array) else value
            for key, value in self.entries.items()
        }


def parse_query_string(raw: bytes | str) -> dict[str, Any]:
    """Parse a raw query string (without the `?`) into nested dicts of strings."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    pairs = [pair for pair in data.split(b"&") if pair]
    if len(pairs) > MAX_PAIRS:
        raise InputError(
            "The query string has more than %max parameters. Send fewer and try again.",
            {"max": MAX_PAIRS},
        )
    root = _Array()
    for pair in pairs:
        raw_name, _, raw_value = pair.partition(b"=")
        name, value = _decode(raw_name), _decode(raw_value)
        if "\0" in name or "\0" in value:
            raise InputError(
                'The "%name" query parameter contains a NUL character. Remove it and try again.',
                {"name": name.replace("\0", "\\0")},
            )
        path = _split_name(name)
        if path is not None:
            _assign(root, path, value)
    return root.plain()


def _decode(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")


def _split_name(name: str) -> tuple[str, list[Segment]] | None:
    """The base name and bracket segments of a decoded name; None when PHP skips the pair."""
    name = name.lstrip(" ")
    bracket = name.find("[")
    head = name if bracket < 0 else name[:bracket]
    base = head.replace(" ", "_").replace(".", "_")
    if not base:
        return None
    segments: list[Segment] = []
    position = bracket
    while 0 <= position < len(name) and name[position] == "[":
        if len(segments) == MAX_DEPTH:
            raise InputError(
                'The "%name" query parameter is nested deeper than %max levels.',
                {"name": base, "max": MAX_DEPTH},
            )
        start = position + 1
        if name.startswith("]", start) or name.startswith(" ]", start):
            segments.append(None)
            position = name.index("]", start) + 1
            continue
        end = name.find("]", start)
        if end < 0:
            if not segments:
                rest = re.sub(r"[ .\[]", "_", name[start:])
                return f"{base}_{rest}", []
            break
        segments.append(name[start:end])
        position = end + 1
    return base, segments


def _assign(root: _Array, path: tuple[str, list[Segment]], value: str) -> None:
    base, segments = path
    target: _Array = root
    key: Segment = base
    for segment in segments:
        child = target.child(key)
        if child is None:
            return
        target, key = child, segment
    if key is None:
        target.append(value)
    else:
        target.set(key, value)
