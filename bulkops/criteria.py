"""searchCriteria: the immutable value a search request is parsed into, and its echo.

No SQL here: the store compiles a `SearchCriteria` into a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bulkops import regexps
from bulkops.errors import InputError
from bulkops.searchable import SEARCHABLE_FIELDS, FieldKind


class Condition(StrEnum):
    """The condition types clients may send."""

    EQ = "eq"
    NEQ = "neq"
    LIKE = "like"
    NLIKE = "nlike"
    IN = "in"
    NIN = "nin"
    NULL = "null"
    NOTNULL = "notnull"
    GT = "gt"
    LT = "lt"
    GTEQ = "gteq"
    LTEQ = "lteq"
    MOREQ = "moreq"
    FROM = "from"
    TO = "to"
    FINSET = "finset"
    NFINSET = "nfinset"
    SEQ = "seq"
    SNEQ = "sneq"
    REGEXP = "regexp"
    FULLTEXT = "fulltext"


# The conditions a compiled filter can carry: the others are spelled in terms of these
# (moreq/from -> gteq, to -> lteq, fulltext -> like '%v%', seq/sneq -> eq/neq or null/notnull).
EFFECTIVE_CONDITIONS = frozenset(
    {
        Condition.EQ,
        Condition.NEQ,
        Condition.LIKE,
        Condition.NLIKE,
        Condition.IN,
        Condition.NIN,
        Condition.NULL,
        Condition.NOTNULL,
        Condition.GT,
        Condition.LT,
        Condition.GTEQ,
        Condition.LTEQ,
        Condition.FINSET,
        Condition.NFINSET,
        Condition.REGEXP,
    }
)

Scalar = int | str | datetime
Operand = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter, as sent (for the echo) and as it will be applied."""

    field: str
    """A name from `searchable.SEARCHABLE_FIELDS`."""
    value: str | None
    """The value to echo (for fulltext, the `%v%` form Magento echoes); None if not sent."""
    condition_type: str | None
    """The condition type exactly as sent; None if the client did not send one."""
    condition: Condition
    """The effective condition, one of EFFECTIVE_CONDITIONS."""
    operand: Operand
    """The bound value: typed by the field's kind for comparisons, a tuple for in/nin,
    the raw string for like/nlike/finset/nfinset/regexp, None for null/notnull."""


@dataclass(frozen=True, slots=True)
class FilterGroup:
    """Filters OR-ed together; groups are AND-ed."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class SortOrder:
    field: str | None
    """A searchable field name, or None when the client omitted it (the order is ignored)."""
    direction: str | None
    """'ASC' or 'DESC' (uppercased), or None when omitted (which means DESC)."""

    @property
    def descending(self) -> bool:
        return self.direction != "ASC"


@dataclass(frozen=True, slots=True)
class PageLimits:
    """Magento's Web API input limits (off by default)."""

    enabled: bool = False
    default_page_size: int = 20
    maximum_page_size: int = 300


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    filter_groups: tuple[FilterGroup, ...] = ()
    sort_orders: tuple[SortOrder, ...] | None = None
    """None when the client sent no sort orders (so none are echoed)."""
    page_size: int | None = None
    """None or 0: every matching row."""
    current_page: int | None = None
    """As requested (1-based); below 1 means 1."""

    def effective_sort(self) -> tuple[tuple[str, bool], ...]:
        """(field, descending) pairs in order; a later order on the same field replaces the
        direction of the earlier one but keeps its position, as Magento's collection does."""
        orders: dict[str, bool] = {}
        for order in self.sort_orders or ():
            if order.field is not None:
                orders[order.field] = order.descending
        return tuple(orders.items())

    def aliased(self, alias: str, field: str) -> SearchCriteria:
        """The same search with its filters and sort orders on `alias` applied to `field`, a
        field of the same kind (the API's `id` may be an operation's `operation_key`). The
        echo is the original's to make."""
        if alias == field:
            return self
        groups = tuple(
            FilterGroup(tuple(_aliased(flt, alias, field) for flt in group.filters))
            for group in self.filter_groups
        )
        sort_orders = self.sort_orders and tuple(
            replace(order, field=field) if order.field == alias else order
            for order in self.sort_orders
        )
        return replace(self, filter_groups=groups, sort_orders=sort_orders)

    def restricted_to(self, *filters: Filter) -> SearchCriteria:
        """The same search, matching only what each of `filters` matches too. The echo is
        the original's to make."""
        groups = tuple(FilterGroup((flt,)) for flt in filters)
        return replace(self, filter_groups=self.filter_groups + groups)

    def echo(self) -> dict[str, Any]:
        """The `search_criteria` object of the response (reference §3.6)."""
        echoed: dict[str, Any] = {
            "filter_groups": [
                {"filters": [_echo_filter(f) for f in group.filters]}
                for group in self.filter_groups
            ]
        }
        if self.sort_orders is not None:
            echoed["sort_orders"] = [
                {"field": order.field, "direction": order.direction} for order in self.sort_orders
            ]
        if self.page_size is not None:
            echoed["page_size"] = self.page_size
        if self.current_page is not None:
            echoed["current_page"] = self.current_page
        return echoed


def _aliased(flt: Filter, alias: str, field: str) -> Filter:
    return replace(flt, field=field) if flt.field == alias else flt


def _echo_filter(flt: Filter) -> dict[str, Any]:
    echoed: dict[str, Any] = {"field": flt.field, "value": flt.value}
    if flt.condition_type is not None:
        echoed["condition_type"] = flt.condition_type
    return echoed


# Parsing: the output of `querystring.parse_query_string` into a SearchCriteria.
#
# Keys match properties the way Magento's ServiceInputProcessor finds setters: underscores
# removed, compared case-insensitively (ASCII only, as PHP method names). Wherever an object
# or an array is expected, an empty string stands for an empty one, as a bare
# `?searchCriteria=` does; any other scalar there is a type error.

_CRITERIA_TYPE = "Magento\\Framework\\Api\\SearchCriteriaInterface"
_GROUP_TYPE = "Magento\\Framework\\Api\\Search\\FilterGroup"
_FILTER_TYPE = "Magento\\Framework\\Api\\Filter"
_SORT_ORDER_TYPE = "Magento\\Framework\\Api\\SortOrder"
_DATETIME_TYPE = "datetime (YYYY-MM-DD HH:MM:SS)"

MAX_REGEXP_LENGTH = 1000
# Values all `in` and `nin` filters of a search may list together: each is a bound parameter,
# and a statement holds at most 32,767 on PostgreSQL, 32,766 on SQLite.
MAX_LISTED_VALUES = 10_000
MAX_PAGE_SIZE = 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SPACES = " \t\n\r\f\v"

# Conditions that are another one under a different name (moreq as Magento documents it).
_ALIASES = {
    Condition.MOREQ: Condition.GTEQ,
    Condition.FROM: Condition.GTEQ,
    Condition.TO: Condition.LTEQ,
    Condition.SEQ: Condition.EQ,
    Condition.SNEQ: Condition.NEQ,
}
# Conditions whose operand is the sent string, whatever the field's kind.
_RAW_OPERAND = frozenset(
    {Condition.LIKE, Condition.NLIKE, Condition.FINSET, Condition.NFINSET, Condition.REGEXP}
)

_INTEGER = re.compile(r"([+-]?)([0-9]+)")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?"
    r"(?:[Zz]|([+-])([0-9]{2})(?::?([0-9]{2}))?)?)?"
)


def parse_search_criteria(
    query: dict[str, Any], limits: PageLimits = PageLimits()
) -> SearchCriteria:
    """The searchCriteria of a parsed query string; other parameters are ignored.

    Raises InputError (and nothing else) for the first problem found."""
    # Magento looks for the parameter's name, then its snake_case form.
    for name in ("searchCriteria", "search_criteria"):
        if name in query:
            return _search_criteria(_object(name, query[name], _CRITERIA_TYPE), limits)
    raise InputError.required("searchCriteria")


def _search_criteria(sent: dict[str, Any], limits: PageLimits) -> SearchCriteria:
    groups: tuple[FilterGroup, ...] = ()
    sort_orders: tuple[SortOrder, ...] | None = None
    page_size: int | None = None
    current_page: int | None = None
    properties = ("filterGroups", "sortOrders", "pageSize", "currentPage")
    # A property sent twice (`page_size` and `pageSize`): the later one wins, as in Magento.
    for prop, key, value in _properties(sent, properties):
        match prop:
            case "filterGroups":
                groups = tuple(
                    _filter_group(_object(name, item, _GROUP_TYPE))
                    for name, item in _array(key, value, _GROUP_TYPE)
                )
            case "sortOrders":
                sort_orders = tuple(
                    _sort_order(_object(name, item, _SORT_ORDER_TYPE))
                    for name, item in _array(key, value, _SORT_ORDER_TYPE)
                )
            case "pageSize":
                page_size = _page_size(key, value)
            case "currentPage":
                current_page = parse_integer(key, _scalar(key, value, "int"))
    _check_listed_values(groups)
    return SearchCriteria(
        filter_groups=groups,
        sort_orders=sort_orders,
        page_size=_limited_page_size(page_size, limits),
        current_page=current_page,
    )


def _check_listed_values(groups: tuple[FilterGroup, ...]) -> None:
    listed = sum(
        len(flt.operand)
        for group in groups
        for flt in group.filters
        if isinstance(flt.operand, tuple)
    )
    if listed > MAX_LISTED_VALUES:
        raise InputError(
            'The "in" and "nin" filters of a search list %count values; at most %max are allowed.',
            {"count": listed, "max": MAX_LISTED_VALUES},
        )


def _filter_group(sent: dict[str, Any]) -> FilterGroup:
    filters: tuple[Filter, ...] = ()
    for _prop, key, value in _properties(sent, ("filters",)):
        filters = tuple(
            _filter(_object(name, item, _FILTER_TYPE))
            for name, item in _array(key, value, _FILTER_TYPE)
        )
    return FilterGroup(filters=filters)


def _filter(sent: dict[str, Any]) -> Filter:
    strings = {
        prop: _scalar(key, value, "string")
        for prop, key, value in _properties(sent, ("field", "value", "conditionType"))
    }
    field = strings.get("field")
    if field is None:
        raise InputError.required("field")
    kind = _searchable(field)
    condition_type = strings.get("conditionType")
    value = strings.get("value")
    condition = _condition(condition_type)
    if condition is Condition.FULLTEXT and value is not None:
        # Magento rewrites the filter itself, so the echo shows the wrapped value too.
        value = f"%{value}%"
    effective, operand = _operand(field, kind, condition, value)
    return Filter(
        field=field,
        value=value,
        condition_type=condition_type,
        condition=effective,
        operand=operand,
    )


def _condition(condition_type: str | None) -> Condition:
    if not condition_type:
        return Condition.EQ
    try:
        return Condition(_ascii_lower(condition_type))
    except ValueError:
        raise InputError(
            'Condition type "%condition_type" is not supported. Use one of: %supported.',
            {
                "condition_type": condition_type,
                "supported": ", ".join(condition.value for condition in Condition),
            },
        ) from None


def _operand(
    field: str, kind: FieldKind, condition: Condition, value: str | None
) -> tuple[Condition, Operand]:
    """The effective condition and its bound value (fulltext arrives already wrapped)."""
    if condition in (Condition.NULL, Condition.NOTNULL):
        return condition, None
    if value is None:
        raise InputError.required("value")
    if condition is Condition.FULLTEXT:
        return Condition.LIKE, value
    if condition is Condition.SEQ and value == "":
        return Condition.NULL, None
    if condition is Condition.SNEQ and value == "":
        return Condition.NOTNULL, None
    condition = _ALIASES.get(condition, condition)
    if condition in (Condition.IN, Condition.NIN):
        # Spaces around elements are trimmed, unlike Magento, so "a, b" finds "b".
        elements = (element.strip(_SPACES) for element in value.split(","))
        return condition, tuple(_typed(field, kind, element) for element in elements)
    if condition is Condition.REGEXP:
        _check_regexp(field, value)
    if condition in _RAW_OPERAND:
        return condition, value
    return condition, _typed(field, kind, value)


def _typed(field: str, kind: FieldKind, text: str) -> Scalar:
    if kind is FieldKind.INTEGER:
        return parse_integer(field, text)
    if kind is FieldKind.DATETIME:
        return _datetime(field, text)
    return text


def parse_integer(name: str, text: str) -> int:
    """Optional sign and digits within signed 64 bits, surrounding spaces ignored."""
    match = _INTEGER.fullmatch(text.strip(_SPACES))
    if match:
        # Leading zeros dropped first: int() refuses very long digit strings.
        digits = match[2].lstrip("0") or "0"
        if len(digits) <= 19:
            number = int(match[1] + digits)
            if _INT64_MIN <= number <= _INT64_MAX:
                return number
    raise InputError.invalid_type(name, text, "int")


def _datetime(field: str, text: str) -> datetime:
    """ISO-like date or date and time; an offset is converted to naive UTC; whole seconds."""
    match = _DATETIME.fullmatch(text.strip(_SPACES))
    if match:
        year, month, day, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
        try:
            moment = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
            return moment - _utc_offset(sign, zone_hours, zone_minutes)
        except (ValueError, OverflowError):
            pass
    raise InputError.invalid_type(field, text, _DATETIME_TYPE)


def _utc_offset(sign: str | None, hours: str | None, minutes: str | None) -> timedelta:
    if sign is None or hours is None:
        return timedelta(0)
    if int(hours) > 23 or int(minutes or 0) > 59:
        raise ValueError("UTC offset out of range")
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return offset if sign == "+" else -offset


def _check_regexp(field: str, pattern: str) -> None:
    if len(pattern) > MAX_REGEXP_LENGTH:
        raise InputError(
            'The regular expression for "%field" is longer than %max characters.',
            {"field": field, "max": MAX_REGEXP_LENGTH},
        )
    try:
        regexps.check(pattern)
    except regexps.DialectError as error:
        raise InputError(
            'The regular expression "%pattern" for "%field" is not valid: %reason.',
            {"pattern": pattern, "field": field, "reason": str(error)},
        ) from None


def _sort_order(sent: dict[str, Any]) -> SortOrder:
    field: str | None = None
    direction: str | None = None
    for prop, key, value in _properties(sent, ("field", "direction")):
        text = _scalar(key, value, "string")
        if prop == "field":
            _searchable(text)
            field = text
        elif _ascii_lower(text) in ("asc", "desc"):
            direction = text.upper()
        else:
            raise InputError(
                "The sort order has to be specified as %1 for ascending order or %2 for "
                "descending order.",
                ["ASC", "DESC"],
            )
    return SortOrder(field=field, direction=direction)


def _page_size(key: str, value: Any) -> int:
    text = _scalar(key, value, "int")
    page_size = parse_integer(key, text)
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InputError(
            'Invalid value of "%value" provided for the %fieldName field. '
            "Use a number from %min to %max.",
            {"value": text, "fieldName": key, "min": 0, "max": MAX_PAGE_SIZE},
        )
    return page_size


def _limited_page_size(page_size: int | None, limits: PageLimits) -> int | None:
    """Magento's input limits: a default page size (echoed) when none is sent, and a maximum
    the client may ask. A page size of 0 still means every match, as in Magento
    (`Webapi/Validator/IOLimit/DefaultPageSizeSetter` only fills a missing one)."""
    if not limits.enabled:
        return page_size
    if page_size is None:
        # The server's own default is not held against the client's maximum.
        return limits.default_page_size
    if page_size > limits.maximum_page_size:
        raise InputError(
            "Maximum SearchCriteria pageSize is %max", {"max": limits.maximum_page_size}
        )
    return page_size


def _searchable(field: str) -> FieldKind:
    kind = SEARCHABLE_FIELDS.get(field)
    if kind is None:
        raise InputError(
            'Field "%field" is not a searchable field. Use one of: %searchable.',
            {"field": field, "searchable": ", ".join(SEARCHABLE_FIELDS)},
        )
    return kind


def _properties(
    sent: dict[str, Any], properties: tuple[str, ...]
) -> Iterator[tuple[str, str, Any]]:
    """(property, key as sent, value) for every key in order; an unknown key is a 400."""
    by_name = {prop.lower(): prop for prop in properties}
    for raw_key, value in sent.items():
        key = str(raw_key)
        prop = by_name.get(_ascii_lower(key.replace("_", "")))
        if prop is None:
            raise InputError.not_supported(key)
        yield prop, key, value


def _object(name: str, value: Any, type_name: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value == "":
        return {}
    raise InputError.invalid_type(name, _shown(value), type_name)


def _array(key: str, value: Any, item_type: str) -> Iterator[tuple[str, Any]]:
    """The items of an array sent with any keys, in the order sent, each named for errors."""
    for index, item in _object(key, value, f"{item_type}[]").items():
        yield f"{key}[{index}]", item


def _scalar(name: str, value: Any, expected: str) -> str:
    if isinstance(value, str):
        return value
    raise InputError.invalid_type(name, _shown(value), expected)


def _shown(value: Any) -> str:
    """A value as Magento names it in a type error: arrays by their type."""
    return "array" if isinstance(value, dict | list | tuple) else str(value)


def _ascii_lower(text: str) -> str:
    # Python's lower() maps some non-ASCII letters to ASCII ones (the Kelvin sign to "k");
    # PHP compares names and keywords byte for byte.
    return text.lower() if text.isascii() else text
