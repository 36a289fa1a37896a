"""JSON as Magento writes it (`Serializer\\Json::serialize`, PHP's json_encode without flags)
of a value decoded as PHP's json_decode(..., true) would hold it: an object whose keys are 0,
1, 2... in order (or none: `{}`) is a PHP list and is written as an array, floats are written
with the shortest digits and no `.0` (1.0 is `1`, 1e20 is `1.0e+20`), non-ASCII as \\uXXXX,
slashes escaped."""

from __future__ import annotations

import json
from typing import Any

from bulkops.services.signature import php_float

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def php_json(value: Any) -> str:
    # Most items hold no list-like object and no float PHP writes otherwise than Python: the C
    # encoder writes them as PHP does.
    text = _compact(value) if _plain(value) else "".join(_encode(value))
    return text.replace("/", "\\/")


def _is_list(value: dict[str, Any]) -> bool:
    # Most objects' first key is not "0": settled without a loop.
    first = next(iter(value), None)
    return first is None or (
        first == "0" and all(key == str(index) for index, key in enumerate(value))
    )


_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether the C encoder writes `value` as PHP does: no list-like object, no float that
    PHP writes otherwise. Scalars are checked inline (this runs for every item submitted)."""
    kind = type(value)
    if kind is dict:
        if _is_list(value):
            return False
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind in _SCALARS or (kind is float and _plain_float(value))
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not _plain_float(item):
                return False
        elif not _plain(item):
            return False
    return True


def _plain_float(value: float) -> bool:
    """Whether Python's shortest form of the float is PHP's too: digits with a fraction, no
    exponent (PHP writes `1.0e+20` and `1`, Python `1e+20` and `1.0`; `inf` and `nan` end in
    a letter)."""
    text = repr(value)
    return text[-1].isdigit() and "e" not in text and not text.endswith(".0")


def _encode(value: Any) -> list[str]:
    if isinstance(value, dict):
        if _is_list(value):
            return _encode(list(value.values()))
        parts = ["{"]
        for index, (key, item) in enumerate(value.items()):
            parts.extend((",", _compact(key), ":") if index else (_compact(key), ":"))
            parts.extend(_encode(item))
        parts.append("}")
        return parts
    if isinstance(value, list):
        parts = ["["]
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            parts.extend(_encode(item))
        parts.append("]")
        return parts
    if isinstance(value, float):
        return [php_float(value, 0, "e")]
    return [_compact(value)]
