"""Magento's XML rendering of a response (`Webapi\\Rest\\Response\\Renderer\\Xml` through
`Xml\\Generator` and PHP's DOMDocument, formatted output).

The root element is `response`; list members are `item` elements; `true`/`false` for booleans,
an empty element (`<x></x>`) for null, a self-closing one for an empty list or object. Keys lose
the characters Magento removes, spaces and colons become `_`, and a key starting with a digit,
`,`, `.` or `-` is prefixed with `item_`. Indentation is libxml's, two spaces. The document has
no declared encoding, so libxml (and this module) writes every non-ASCII character as a
hexadecimal character reference; escaping is the standard library's.
"""

from __future__ import annotations

import codecs
import re
from typing import Any
from xml.sax.saxutils import escape

DECLARATION = '<?xml version="1.0"?>\n'
ROOT = "response"
ITEM = "item"
INDENT = "  "

# Renderer\Xml::_prepareKey's replacement map.
_PREPARED = str.maketrans(dict.fromkeys("!\"#$%&'()*+,/;<=>?@[\\]^`{|}~") | {" ": "_", ":": "_"})
_PROHIBITED_START = re.compile(r"[0-9,.\-]")
# Xml\Generator keeps word characters and `-` (PCRE's \w without the u flag: ASCII).
_NOT_NAME = re.compile(r"[^\w-]", re.ASCII)
_NAME_START = re.compile(r"[A-Za-z_]")
_DIGITS = re.compile(r"\d+", re.ASCII)
# libxml writes a carriage return in text as a character reference.
_TEXT_ENTITIES = {"\r": "&#13;"}
# What XML 1.0 cannot hold in any form, not even as a character reference (control
# characters, lone surrogates, U+FFFE, U+FFFF) becomes U+FFFD: every document is well-formed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def document(data: Any) -> bytes:
    return encode(DECLARATION + element(ROOT, data) + "\n")


def encode(text: str) -> bytes:
    return text.encode("ascii", _HEX_REFERENCES)


def _hex_references(error: UnicodeError) -> tuple[str, int]:
    """libxml's `&#xE9;` for what ASCII cannot hold (the standard handler writes `&#233;`)."""
    assert isinstance(error, UnicodeEncodeError)
    replaced = error.object[error.start : error.end]
    return "".join(f"&#x{ord(char):X};" for char in replaced), error.end


_HEX_REFERENCES = "bulkops.xml_hex_references"
codecs.register_error(_HEX_REFERENCES, _hex_references)


def element(name: str, value: Any, depth: int = 0) -> str:
    """`value` as the element `name`, indented for `depth`, without a final newline."""
    indent = INDENT * depth
    children = _children(value)
    if children is None:
        text = _NOT_XML.sub("\ufffd", _text(value))
        return f"{indent}<{name}>{escape(text, _TEXT_ENTITIES)}</{name}>"
    if not children:
        return f"{indent}<{name}/>"
    inner = "\n".join(element(key, child, depth + 1) for key, child in children)
    return f"{indent}<{name}>\n{inner}\n{indent}</{name}>"


def _children(value: Any) -> list[tuple[str, Any]] | None:
    """The child elements of an array value; None for a scalar (a text element)."""
    if isinstance(value, list):
        return [(ITEM, child) for child in value]
    if not isinstance(value, dict):
        return None
    # Renderer\Xml: an array whose keys, joined, are digits is a list.
    if _DIGITS.fullmatch("".join(str(key) for key in value)):
        return [(ITEM, child) for child in value.values()]
    # A key prepared to the same name as an earlier one replaces its value, in its place.
    named = {element_name(key): child for key, child in value.items()}
    return list(named.items())


def element_name(key: Any) -> str:
    name = str(key).translate(_PREPARED).strip("_")
    if _PROHIBITED_START.match(name):
        name = f"{ITEM}_{name}"
    name = _NOT_NAME.sub("", name)
    # Magento fails on a name that is empty or not a name once stripped; it gets the prefix.
    return name if _NAME_START.match(name) else f"{ITEM}_{name}"


def _text(value: Any) -> str:
    """PHP's string conversion of a scalar, booleans as Renderer\\Xml::_formatValue writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
