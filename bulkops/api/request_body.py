"""A request's body decoded as Magento's `Webapi\\Rest\\Request` does: the Content-Type picks the
deserializer (JSON or XML, UTF-8 only), and the result is the PHP array Magento's input
processing works on.

Follows `Framework/Webapi/Rest/Request.php` (getContentType, getBodyParams),
`Rest/Request/DeserializerFactory.php`, `Deserializer/Json.php`, `Deserializer/Xml.php`,
`Framework/Xml/Parser.php`, and `filterInputData` in Webapi's `Controller/Rest/InputParamsResolver`.
"""

from __future__ import annotations

import re
from typing import Any
from xml.dom.minidom import CDATASection, Element, Text
from xml.parsers.expat import ExpatError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.minidom import parseString
from starlette.requests import Request

from bulkops.errors import InputError, PayloadTooLargeError

JSON_TYPES = frozenset({"application/json"})
XML_TYPES = frozenset({"application/xml", "application/xhtml+xml", "text/xml"})
# Magento's pattern: a media type, then at most a charset (`U`: ungreedy, `i`: any case).
_CONTENT_TYPE = re.compile(r"^([a-z\d/\-+.]+?)(?:; *charset=(.+))?$", re.IGNORECASE)
# Arrays and objects nested deeper than this are a decoding error, in JSON and XML. PHP's
# json_decode allows 512 levels and libxml 256 elements; fewer keep every recursive step after
# decoding (conversion, storage, rendering) far from Python's recursion limit.
MAX_NESTING = 100
INT64 = (-(2**63), 2**63 - 1)


def decoding_error() -> InputError:
    return InputError("Decoding error.")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing more than `max_bytes` before reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        "The request body is larger than %max bytes. Send fewer items per request.",
        {"max": max_bytes},
    )


def media_type(content_type: str | None) -> str:
    """The media type of a request that has a body, with Magento's errors."""
    if not content_type:
        raise InputError("Content-Type header is empty.")
    matched = _CONTENT_TYPE.match(content_type)
    if matched is None:
        raise InputError("Content-Type header is invalid.")
    if matched[2] is not None and matched[2].lower() != "utf-8":
        raise InputError("UTF-8 is the only supported charset.")
    return matched[1]


def decode(body: bytes, content_type: str | None) -> Any:
    """The body's parameters; None when there is no body (PHP's empty string and "0"), which
    needs no Content-Type. Magento compares media types case-sensitively; so do we."""
    if not body or body == b"0":
        return None
    kind = media_type(content_type)
    if kind in JSON_TYPES:
        return _json(body)
    if kind in XML_TYPES:
        return _xml(body)
    raise InputError("Server cannot understand Content-Type HTTP header media type %1", [kind])


def _json(body: bytes) -> Any:
    return php_input(json_value(body))


def json_value(body: bytes) -> Any:
    """The JSON document, or the decoding error PHP's json_decode gives, also when nested more
    than `MAX_NESTING` levels deep."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise decoding_error() from None
    if _deeper_than(value, MAX_NESTING):
        raise decoding_error()
    return value


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether arrays and objects nest more than `levels` deep in `value` (no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > levels:
                return True
            pending.extend(
                (child, depth + 1) for child in children if isinstance(child, dict | list)
            )
    return False


def php_input(value: Any) -> Any:
    """What PHP's json_decode(..., true) gives, then Magento's filterInputData: integers out of
    PHP's range become floats, and of the keys that are equal once lowercased without
    underscores (`first_name`, `firstName`), the first one is kept. The value is nested at
    most `MAX_NESTING` deep."""
    kind = type(value)
    if kind is dict:
        seen: set[str] = set()
        kept: dict[str, Any] = {}
        for key, item in value.items():
            normal = key.replace("_", "").lower()
            if normal not in seen:
                seen.add(normal)
                kept[key] = item if type(item) in _SCALARS else php_input(item)
        return kept
    if kind is list:
        return [item if type(item) in _SCALARS else php_input(item) for item in value]
    if kind is int and not INT64[0] <= value <= INT64[1]:
        return float(value)
    return value


# Decoded values that need no change (ints may be out of PHP's range).
_SCALARS = frozenset({str, float, bool, type(None)})


def _xml(body: bytes) -> Any:
    # defusedxml refuses entity declarations and external references outright.
    try:
        # The stubs take text only; expat reads bytes too, with the encoding they declare.
        document = parseString(body)  # type: ignore[arg-type]
    except (ExpatError, DefusedXmlException, ValueError):
        raise decoding_error() from None
    root = document.documentElement
    if root is None:
        raise decoding_error()
    # Deserializer\Xml returns the root element's content, whatever the root is called.
    return php_input(_element_value(root, 1))


def _element_value(element: Element, depth: int) -> Any:
    """An element as Framework\\Xml\\Parser::xmlToArray makes it: text, a dict of children
    (repeated names become lists), or None when empty; attributes wrap it in
    `{"_value": ..., "_attribute": {...}}`."""
    if depth > MAX_NESTING:
        raise decoding_error()
    value = _children(element, depth) if element.hasChildNodes() else None
    attributes = {
        name: attribute
        for name, attribute in element.attributes.items()
        if name != "xmlns" and not name.startswith("xmlns:")
    }
    if attributes:
        return {"_value": value, "_attribute": attributes}
    return value


def _children(element: Element, depth: int) -> Any:
    content: Any = ""
    for node in element.childNodes:
        if isinstance(node, Element):
            if isinstance(content, str) and content:
                # PHP fails on text followed by an element; that is no valid request.
                raise decoding_error()
            content = content or {}
            _add(content, node.nodeName, _element_value(node, depth + 1))
        elif isinstance(node, CDATASection) or (
            # Whitespace between elements is no content; CDATA always is.
            isinstance(node, Text) and node.data.strip()
        ):
            content = node.data
    return content


def _add(content: dict[str, Any], name: str, value: Any) -> None:
    """xmlToArray's rule for a repeated name, quirks included (isset() is false for null)."""
    existing = content.get(name)
    if existing is None:
        content[name] = value
        return
    first = existing[0] if isinstance(existing, list) and existing else None
    if (
        not isinstance(existing, list)
        or first is None
        or (isinstance(value, dict | list) and not isinstance(first, dict | list))
    ):
        content[name] = [existing]
    content[name].append(value)
