"""The opt-in keyset cursor of the operation search (`GET /V1/bulk?searchCriteria...&cursor=`):
an empty `cursor` asks for the first page, each answer gives the next page's cursor
(`next_cursor`, and the `X-Next-Cursor` header; null and absent at the end).

A cursor is opaque to clients: base64url of JSON holding a format version, a digest of the
search it belongs to (its filters and sort orders, as run for the caller) and the last row's
position. Anything else, a cursor of another search (or another caller's) included, is a 400:
a position read against other filters or another order would skip or repeat rows."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from bulkops.criteria import SearchCriteria
from bulkops.errors import InputError
from bulkops.searchable import SEARCHABLE_FIELDS, FieldKind
from bulkops.services.payloads import PAYLOAD_FIELDS
from bulkops.store.keyset import key_fields
from bulkops.store.types import INT64_MAX, INT64_MIN

PARAMETER = "cursor"
HEADER = "X-Next-Cursor"
BODY_KEY = "next_cursor"
VERSION = 1
MAX_LENGTH = 8192
MAX_PAGE_SIZE = 1000
"""A keyset page is answered whole: pages are the point of a cursor."""
_DATETIME = "%Y-%m-%d %H:%M:%S"


def invalid() -> InputError:
    return InputError(
        'The "%parameter" parameter is not a cursor this search gave. Send the cursor of '
        "the last answer with the same filters and sort orders, or an empty one to start.",
        {"parameter": PARAMETER},
    )


def requested(query: dict[str, Any]) -> str | None:
    """The cursor sent (empty: the first page), or None without one."""
    if PARAMETER not in query:
        return None
    value = query[PARAMETER]
    if not isinstance(value, str):
        raise invalid()
    return value


def check_search(criteria: SearchCriteria) -> None:
    """A keyset search needs a page size, and takes no page number; it cannot sort on a
    payload (the cursor would carry it, masked secrets included)."""
    if not criteria.page_size or criteria.page_size > MAX_PAGE_SIZE:
        raise InputError(
            'A search with a "%parameter" needs searchCriteria[pageSize] from 1 to %max.',
            {"parameter": PARAMETER, "max": MAX_PAGE_SIZE},
        )
    if criteria.current_page is not None:
        raise InputError(
            'A search with a "%parameter" takes no searchCriteria[currentPage]: the cursor '
            "says where the page starts.",
            {"parameter": PARAMETER},
        )
    sorted_payloads = sorted(PAYLOAD_FIELDS & {field for field, _ in criteria.effective_sort()})
    if sorted_payloads:
        raise InputError(
            'A search with a "%parameter" cannot sort on "%fieldName".',
            {"parameter": PARAMETER, "fieldName": sorted_payloads[0]},
        )


def _digest(applied: SearchCriteria) -> str:
    """The search a cursor belongs to: its filters and order as run (the caller's own bulks
    included), not its page size."""
    search = [
        [[flt.field, flt.condition.value, flt.operand] for flt in group.filters]
        for group in applied.filter_groups
    ]
    document = orjson.dumps([search, key_fields(applied)], default=str)
    return hashlib.sha256(document).hexdigest()[:32]


def _encoded(value: Any) -> Any:
    return value.strftime(_DATETIME) if isinstance(value, datetime) else value


def encode(applied: SearchCriteria, position: Sequence[Any]) -> str:
    values = [_encoded(value) for value in position]
    document = orjson.dumps([VERSION, _digest(applied), values])
    return base64.urlsafe_b64encode(document).rstrip(b"=").decode()


def _decoded(field: str, value: Any) -> Any:
    """A position's value as the field's kind holds it; InputError otherwise."""
    if value is None:
        return None
    match SEARCHABLE_FIELDS[field]:
        case FieldKind.INTEGER:
            if type(value) is int and INT64_MIN <= value <= INT64_MAX:
                return value
        case FieldKind.DATETIME:
            if isinstance(value, str):
                try:
                    return datetime.strptime(value, _DATETIME)
                except ValueError:
                    pass
        case FieldKind.TEXT:
            if isinstance(value, str):
                return value
    raise invalid()


def decode(applied: SearchCriteria, token: str) -> list[Any] | None:
    """The position a cursor holds, None for an empty one (the first page)."""
    if not token:
        return None
    if len(token) > MAX_LENGTH:
        raise invalid()
    try:
        document = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid() from None
    fields = key_fields(applied)
    if (
        not isinstance(document, list)
        or len(document) != 3
        or document[:2] != [VERSION, _digest(applied)]
        or not isinstance(document[2], list)
        or len(document[2]) != len(fields)
    ):
        raise invalid()
    return [_decoded(field, value) for (field, _), value in zip(fields, document[2], strict=True)]
