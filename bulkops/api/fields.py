"""`fields=` partial responses, as Magento's `Webapi\\Rest\\Response\\FieldsFilter` computes them.

`fields=items[id,status],total_count` keeps those keys, brackets nest, unknown names are ignored
and a list is filtered element by element. Magento's quirks are kept, because a client written
against Magento reads them: a malformed parameter (a character other than letters, digits, `_`,
`[`, `]` and `,`, or an unclosed bracket) answers `[]`; a filter that keeps nothing of an object
answers `[]` too (PHP's empty array); an empty list under a bracketed selection becomes `null`.
"""

from __future__ import annotations

import re
from typing import Any

PARAMETER = "fields"

Selection = dict[str, Any]
"""Names kept: each maps to 1 (the whole value) or to the Selection inside it."""

_MALFORMED = re.compile(r"[^\w\[\],]", re.ASCII)


def parse(text: str) -> Selection | None:
    """Magento's `FieldsFilter::parse`, step for step; None when the text is malformed."""
    if not text or _MALFORMED.search(text):
        return None
    current: Selection = {}
    stack: list[Selection] = []
    parents: list[str] = []
    start: int | None = None
    element = ""
    for position, char in enumerate(text):
        if char in "[],":
            if start is not None:
                element = text[start:position]
                current[element] = 1
            start = None
        if char == "[":
            # The name before the bracket, or (as in Magento) the last one read.
            parents.append(element)
            stack.append(current)
            current = {}
        elif char == "]":
            # A stray `]` pops nothing: PHP's array_pop gives null, a key of "".
            inner = current
            current = stack.pop() if stack else {}
            current[parents.pop() if parents else ""] = inner
        elif char != "," and start is None:
            start = position
    if stack:
        return None
    if start is not None:
        current[text[start:]] = 1
    return current


def select(data: Any, selection: Selection) -> Any:
    """Magento's `applyFilter`: a list is filtered element by element, an object by its keys."""
    if isinstance(data, list) or not data:
        # PHP's foreach over an empty array leaves the result null.
        return [_intersect(item, selection) for item in data] or None
    return _intersect(data, selection)


def _intersect(data: Any, selection: Selection) -> Any:
    if not isinstance(data, dict):
        # Magento fails on a scalar inside a filtered list; it is kept as it is.
        return data
    kept = {
        key: select(value, inner)
        if isinstance(inner, dict) and isinstance(value, dict | list)
        else value
        for key, value in data.items()
        if (inner := selection.get(key)) is not None
    }
    # An emptied object is PHP's empty array, which Magento sends as [].
    return kept or []


class FieldsFilter:
    """A request's `fields` parameter; `selection` is None when it is malformed."""

    def __init__(self, selection: Selection | None) -> None:
        self.selection = selection

    @classmethod
    def of_query(cls, query: dict[str, Any]) -> FieldsFilter | None:
        """The filter a parsed query string asks for; None when it asks for none (absent, ""
        or "0", which PHP takes as false)."""
        sent = query.get(PARAMETER)
        if not sent or sent == "0":
            return None
        return cls(parse(sent) if isinstance(sent, str) else None)

    def apply(self, data: Any) -> Any:
        """Magento's `filter()`: only arrays are filtered; a malformed parameter answers []."""
        if not isinstance(data, dict | list):
            return data
        if self.selection is None:
            return []
        return select(data, self.selection)

    def keeps(self, key: str) -> bool:
        return self.selection is not None and key in self.selection

    def inside(self, key: str) -> Selection | None:
        """The selection within `key`'s value; None keeps the whole value."""
        inner = self.selection.get(key) if self.selection is not None else None
        return inner if isinstance(inner, dict) else None
