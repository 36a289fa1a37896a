"""The operation search form: its fields are named as the API's query parameters
(`searchCriteria[filterGroups][0][filters][0][field]`), so the form's query, once its empty
rows are dropped, is the query string of the equal `GET /rest/V1/bulk`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from bulkops.querystring import parse_query_string

CRITERIA = "searchCriteria"
GROUPS = 3
"""Filter groups the form offers (AND across them)."""
FILTERS = 2
"""Filters per group (OR inside one)."""
DEFAULT_PAGE_SIZE = "20"


def _strings(sent: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The non-empty text values of `sent` (a parsed object) among `names`."""
    if not isinstance(sent, dict):
        return {}
    return {name: sent[name] for name in names if isinstance(sent.get(name), str) and sent[name]}


def _rows(sent: Any) -> list[Any]:
    return list(sent.values()) if isinstance(sent, dict) else []


def form_values(raw_query: bytes) -> dict[str, Any] | None:
    """The form's criteria without its empty rows, as nested dicts and lists; None when the
    form was not sent. Raises `InputError` for a query string that cannot be read."""
    sent = parse_query_string(raw_query).get(CRITERIA)
    if not isinstance(sent, dict):
        return None
    groups = []
    for group in _rows(sent.get("filterGroups")):
        filters = [
            _strings(flt, ("field", "value", "conditionType"))
            for flt in _rows(group.get("filters") if isinstance(group, dict) else None)
        ]
        filters = [flt for flt in filters if "field" in flt]
        if filters:
            groups.append(filters)
    orders = [_strings(order, ("field", "direction")) for order in _rows(sent.get("sortOrders"))]
    values: dict[str, Any] = {"filterGroups": groups}
    values["sortOrders"] = [order for order in orders if "field" in order]
    values |= _strings(sent, ("pageSize", "currentPage"))
    values.setdefault("pageSize", DEFAULT_PAGE_SIZE)
    return values


def query_string(values: dict[str, Any]) -> str:
    """The API's query string for the form's values, brackets left as they are."""
    pairs: list[tuple[str, str]] = []
    for g, group in enumerate(values["filterGroups"]):
        for f, flt in enumerate(group):
            prefix = f"{CRITERIA}[filterGroups][{g}][filters][{f}]"
            pairs += [(f"{prefix}[{name}]", value) for name, value in flt.items()]
    for s, order in enumerate(values["sortOrders"]):
        pairs += [(f"{CRITERIA}[sortOrders][{s}][{name}]", value) for name, value in order.items()]
    for name in ("pageSize", "currentPage"):
        if name in values:
            pairs.append((f"{CRITERIA}[{name}]", values[name]))
    return urlencode(pairs, safe="[]", quote_via=quote)
