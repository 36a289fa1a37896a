"""Which format answers a request, chosen from its Accept header as Magento chooses a renderer
(`Webapi\\Rest\\Request::getAcceptTypes` and `Webapi\\Rest\\Response\\RendererFactory`, with the
renderers of `module-webapi/etc/di.xml`), the `fields` filter a GET asks for, and the query
string itself.

Accept types are taken by quality, highest first, in the order sent; the first one a renderer
matches (its type, `<its major type>/*` or `*/*`) decides. So `text/*` and a browser's
`text/html,application/xhtml+xml,...` get XML, `*/*` or no Accept header JSON.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Scope

from bulkops.api.fields import FieldsFilter
from bulkops.api.formats import JSON, XML, Format
from bulkops.querystring import parse_query_string

ANY = "*/*"
# Magento's renderers in their configured order.
RENDERERS: tuple[tuple[str, Format], ...] = (
    (ANY, JSON),
    ("application/json", JSON),
    ("text/xml", XML),
    ("application/xml", XML),
    ("application/xhtml+xml", XML),
)
_MEDIA_TYPE = re.compile(r"[0-9a-z*+\-]+(?:/[0-9a-z*+\-.]+)?", re.IGNORECASE)
_SEPARATOR = re.compile(r",\s*")
FIELDS_KEY = "bulkops.fields"
QUERY_KEY = "bulkops.query"
EVENT_STREAM = "text/event-stream"
EVENTS_SUFFIX = "/events"


def accept_types(header: str) -> list[str]:
    """The media types of an Accept header, highest quality first; `*/*` when none is valid."""
    by_quality: dict[float, list[str]] = {}
    for definition in _SEPARATOR.split(header):
        media_type, *parameters = definition.split(";")
        media_type = media_type.strip()
        if not _MEDIA_TYPE.fullmatch(media_type):
            continue
        # Magento reads the quality from the first parameter, whatever its name.
        quality = 1.0
        if parameters and len(first := parameters[0].split("=")) == 2:
            quality = _quality(first[1])
        by_quality.setdefault(quality, []).append(media_type)
    ordered = [t for quality in sorted(by_quality, reverse=True) for t in by_quality[quality]]
    return list(dict.fromkeys(ordered)) or [ANY]


def _quality(text: str) -> float:
    try:
        quality = float(text)
    except ValueError:
        return 0.0
    return quality if math.isfinite(quality) else 0.0


def format_for(types: list[str]) -> Format | None:
    for accepted in types:
        for renderer_type, rendered in RENDERERS:
            major = renderer_type.split("/")[0]
            if accepted in (renderer_type, f"{major}/*", ANY):
                return rendered
    return None


def format_of(scope: Scope) -> Format:
    """The request's format; JSON when none fits (the 406 itself is JSON)."""
    return format_for(accept_types_of(scope)) or JSON


def asks_for_events(scope: Scope, types: list[str]) -> bool:
    """Whether the request asks a server-sent events route for its stream, which no renderer
    writes: the route answers it (its errors are JSON)."""
    return scope["path"].endswith(EVENTS_SUFFIX) and EVENT_STREAM in types


def accept_types_of(scope: Scope) -> list[str]:
    return accept_types(Headers(scope=scope).get("accept", ""))


def query_of(scope: Scope) -> dict[str, Any]:
    """The request's query string as PHP parses it (`parse_query_string`), parsed once per
    request (the `fields` filter and the route both read it). Not to be changed."""
    found = scope.get(QUERY_KEY)
    if found is None:
        found = scope[QUERY_KEY] = parse_query_string(scope["query_string"])
    return found


def fields_of(scope: Scope) -> FieldsFilter | None:
    found = scope.get(FIELDS_KEY)
    return found if isinstance(found, FieldsFilter) else None
