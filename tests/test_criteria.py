"""searchCriteria parsing: Magento's rules, our deliberate differences, and the echo."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkops.criteria import (
    EFFECTIVE_CONDITIONS,
    Condition,
    Filter,
    PageLimits,
    SearchCriteria,
    SortOrder,
    parse_search_criteria,
)
from bulkops.errors import InputError
from bulkops.querystring import parse_query_string
from bulkops.searchable import SEARCHABLE_FIELDS, FieldKind
from tests.fuzzing import CONDITIONS, FIELDS, KEYS, ODD_VALUES, SEARCH_QUERY_STRINGS, SPELLINGS
from tests.seeds import ROUTE_STYLE, SERVICE_STYLE, seed_request, seed_response_text

FILTER = "searchCriteria[filter_groups][0][filters][0]"
INT64_MAX = 2**63 - 1
NO_LIMITS = PageLimits()
API = "Magento\\Framework\\Api\\"


def parse(query: str | bytes, limits: PageLimits = NO_LIMITS) -> SearchCriteria:
    return parse_search_criteria(parse_query_string(query), limits)


def error_of(query: str, limits: PageLimits = NO_LIMITS) -> InputError:
    with pytest.raises(InputError) as raised:
        parse(query, limits)
    return raised.value


def only_filter(query: str) -> Filter:
    (group,) = parse(query).filter_groups
    (flt,) = group.filters
    return flt


def filter_query(field: str, value: str | None = None, condition: str | None = None) -> str:
    parts = [f"{FILTER}[field]={quote(field, safe='')}"]
    if value is not None:
        parts.append(f"{FILTER}[value]={quote(value, safe='')}")
    if condition is not None:
        parts.append(f"{FILTER}[condition_type]={quote(condition, safe='')}")
    return "&".join(parts)


def type_error(name: str, value: str, expected: str) -> str:
    return (
        f'Error occurred during "{name}" processing. The "{value}" value\'s type is invalid. '
        f'The "{expected}" type was expected. Verify and try again.'
    )


# The seed request -------------------------------------------------------------------------


@pytest.mark.parametrize("page", [ROUTE_STYLE, SERVICE_STYLE])
def test_seed_request_echoes_the_seed_search_criteria(page: Any) -> None:
    query = seed_request(page).partition("?")[2]
    expected = json.loads(seed_response_text(page))["search_criteria"]
    criteria = parse(query)
    assert criteria.echo() == expected
    (group,) = criteria.filter_groups
    assert group.filters == (
        Filter(field="status", value="3", condition_type="eq", condition=Condition.EQ, operand=3),
    )


def test_seed_request_percent_encoded_parses_the_same() -> None:
    query = seed_request().partition("?")[2]
    encoded = query.replace("[", "%5B").replace("]", "%5D")
    assert "[" not in encoded
    assert parse(encoded) == parse(query)


# Where the criteria are ------------------------------------------------------------------


def test_missing_search_criteria_is_magentos_required_error() -> None:
    error = error_of("fields=items&search=1")
    assert error.body() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "searchCriteria"},
    }


@pytest.mark.parametrize("query", ["searchCriteria", "searchCriteria=", "search_criteria="])
def test_bare_search_criteria_is_an_empty_criteria(query: str) -> None:
    criteria = parse(query)
    assert criteria == SearchCriteria()
    assert criteria.echo() == {"filter_groups": []}


def test_non_empty_scalar_search_criteria_is_a_type_error() -> None:
    assert error_of("searchCriteria=all").message == type_error(
        "searchCriteria", "all", "Magento\\Framework\\Api\\SearchCriteriaInterface"
    )


def test_snake_case_top_level_parameter_is_accepted() -> None:
    assert parse("search_criteria[pageSize]=5").page_size == 5


def test_camel_case_top_level_parameter_wins_over_snake_case() -> None:
    criteria = parse("search_criteria[pageSize]=5&searchCriteria[pageSize]=7")
    assert criteria.page_size == 7


@pytest.mark.parametrize("name", ["SearchCriteria", "searchcriteria", "search-criteria"])
def test_other_spellings_of_the_top_level_parameter_are_not_it(name: str) -> None:
    assert error_of(f"{name}[pageSize]=5").parameters == {"fieldName": "searchCriteria"}


def test_other_top_level_parameters_are_ignored() -> None:
    criteria = parse("fields=items[id]&searchCriteria[currentPage]=2&x[y][z]=1")
    assert criteria == SearchCriteria(current_page=2)


# Keys ------------------------------------------------------------------------------------


def _spelled(filter_groups: str, filters: str, condition_type: str, sort_orders: str) -> str:
    base = f"searchCriteria[{filter_groups}][0][{filters}][0]"
    return (
        f"{base}[field]=status&{base}[value]=3&{base}[{condition_type}]=gt"
        f"&searchCriteria[{sort_orders}][0][field]=id"
    )


@pytest.mark.parametrize(
    "keys",
    [
        ("filterGroups", "filters", "conditionType", "sortOrders"),
        ("FilterGroups", "Filters", "ConditionType", "SortOrders"),
        ("filtergroups", "FILTERS", "CONDITION_TYPE", "sort__orders"),
        ("_filter_groups_", "filters", "condition_Type", "SORT_ORDERS"),
    ],
)
def test_keys_match_properties_like_magentos_setter_lookup(keys: tuple[str, str, str, str]) -> None:
    expected = parse(_spelled("filter_groups", "filters", "condition_type", "sort_orders"))
    assert parse(_spelled(*keys)) == expected
    assert expected.filter_groups[0].filters[0].condition is Condition.GT


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("searchCriteria[foo]=1", "foo"),
        ("searchCriteria[filter-groups][0][filters][0][field]=id", "filter-groups"),
        ("searchCriteria[0]=1", "0"),
        ("searchCriteria[filter_groups][0][Filter]=1", "Filter"),
        (f"{FILTER}[field]=id&{FILTER}[values]=1", "values"),
        (f"{FILTER}[conditionTypes]=eq", "conditionTypes"),
        ("searchCriteria[sortOrders][0][order]=ASC", "order"),
        ("searchCriteria[pageSize]=1&searchCriteria[page]=2", "page"),
    ],
)
def test_unknown_keys_are_not_supported_with_the_key_as_sent(query: str, key: str) -> None:
    error = error_of(query)
    assert error.message == '"%fieldName" is not supported. Correct the field name and try again.'
    assert error.parameters == {"fieldName": key}


def test_a_property_sent_twice_takes_the_later_value() -> None:
    assert parse("searchCriteria[page_size]=5&searchCriteria[pageSize]=9").page_size == 9
    assert parse("searchCriteria[pageSize]=9&searchCriteria[page_size]=5").page_size == 5


# Arrays with any keys ----------------------------------------------------------------------


def test_indexes_with_gaps_and_any_order_are_taken_in_the_order_sent() -> None:
    query = (
        "searchCriteria[filter_groups][7][filters][3][field]=status"
        "&searchCriteria[filter_groups][7][filters][3][value]=3"
        "&searchCriteria[filter_groups][2][filters][x][field]=bulk_uuid"
        "&searchCriteria[filter_groups][2][filters][x][value]=u"
        "&searchCriteria[filter_groups][7][filters][1][field]=status"
        "&searchCriteria[filter_groups][7][filters][1][value]=2"
        "&searchCriteria[sort_orders][9][field]=id&searchCriteria[sort_orders][4][field]=status"
    )
    assert parse(query).echo() == {
        "filter_groups": [
            {"filters": [{"field": "status", "value": "3"}, {"field": "status", "value": "2"}]},
            {"filters": [{"field": "bulk_uuid", "value": "u"}]},
        ],
        "sort_orders": [
            {"field": "id", "direction": None},
            {"field": "status", "direction": None},
        ],
    }


def test_auto_indexed_filters_land_in_separate_filters() -> None:
    # PHP gives every `[]` its own element, as old Swagger clients found out.
    error = error_of(
        "searchCriteria[filter_groups][0][filters][][field]=status"
        "&searchCriteria[filter_groups][0][filters][][value]=3"
    )
    # The first filter has a field and no value.
    assert error.parameters == {"fieldName": "value"}


@pytest.mark.parametrize(
    ("query", "name", "shown", "expected"),
    [
        ("searchCriteria[filter_groups]=x", "filter_groups", "x", API + "Search\\FilterGroup[]"),
        (
            "searchCriteria[filter_groups][0]=x",
            "filter_groups[0]",
            "x",
            API + "Search\\FilterGroup",
        ),
        ("searchCriteria[filterGroups][g][filters]=x", "filters", "x", API + "Filter[]"),
        ("searchCriteria[filterGroups][g][filters][f]=x", "filters[f]", "x", API + "Filter"),
        ("searchCriteria[sortOrders]=x", "sortOrders", "x", API + "SortOrder[]"),
        ("searchCriteria[sortOrders][1]=x", "sortOrders[1]", "x", API + "SortOrder"),
        (f"{FILTER}[field][]=id", "field", "array", "string"),
        (f"{FILTER}[field]=id&{FILTER}[value][]=1&{FILTER}[value][]=2", "value", "array", "string"),
        (f"{FILTER}[field]=id&{FILTER}[conditionType][a]=in", "conditionType", "array", "string"),
        ("searchCriteria[sortOrders][0][field][x]=id", "field", "array", "string"),
        ("searchCriteria[sortOrders][0][direction][]=ASC", "direction", "array", "string"),
        ("searchCriteria[pageSize][]=1", "pageSize", "array", "int"),
        ("searchCriteria[current_page][x]=1", "current_page", "array", "int"),
    ],
)
def test_a_scalar_for_an_array_or_an_array_for_a_scalar_is_a_type_error(
    query: str, name: str, shown: str, expected: str
) -> None:
    error = error_of(query)
    assert error.message == type_error(name, shown, expected)
    assert error.parameters is None


def test_an_empty_string_stands_for_an_empty_array_or_object() -> None:
    assert parse("searchCriteria[filter_groups]=").echo() == {"filter_groups": []}
    assert parse("searchCriteria[sort_orders]=").echo() == {"filter_groups": [], "sort_orders": []}
    criteria = parse("searchCriteria[filter_groups][0]=&searchCriteria[filter_groups][1][filters]=")
    assert criteria.echo() == {"filter_groups": [{"filters": []}, {"filters": []}]}
    assert parse("searchCriteria[sort_orders][0]=").sort_orders == (SortOrder(None, None),)
    assert error_of("searchCriteria[filter_groups][0][filters][0]=").parameters == {
        "fieldName": "field"
    }


# Filters ---------------------------------------------------------------------------------


def test_filter_field_is_required() -> None:
    error = error_of(f"{FILTER}[value]=3")
    assert error.body() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "field"},
    }


@pytest.mark.parametrize("field", ["entity_id", "", "Status", "uuid", "bulk.status", "id "])
def test_unknown_filter_field_names_the_searchable_fields(field: str) -> None:
    error = error_of(filter_query(field, "1"))
    assert error.message == 'Field "%field" is not a searchable field. Use one of: %searchable.'
    assert error.parameters == {"field": field, "searchable": ", ".join(SEARCHABLE_FIELDS)}


@pytest.mark.parametrize("field", list(SEARCHABLE_FIELDS))
def test_every_searchable_field_can_be_filtered_on(field: str) -> None:
    value = (
        "2024-01-01, 2024-01-02 03:04" if SEARCHABLE_FIELDS[field] is FieldKind.DATETIME else "1, 2"
    )
    flt = only_filter(filter_query(field, value, "in"))
    assert (flt.field, flt.condition) == (field, Condition.IN)
    assert isinstance(flt.operand, tuple) and len(flt.operand) == 2


@pytest.mark.parametrize("condition_type", [None, ""])
def test_missing_or_empty_condition_type_means_eq_and_echoes_as_sent(
    condition_type: str | None,
) -> None:
    flt = only_filter(filter_query("status", "3", condition_type))
    assert (flt.condition, flt.operand, flt.condition_type) == (Condition.EQ, 3, condition_type)
    echoed = {"field": "status", "value": "3"}
    if condition_type is not None:
        echoed["condition_type"] = condition_type
    assert parse(filter_query("status", "3", condition_type)).echo()["filter_groups"] == [
        {"filters": [echoed]}
    ]


def test_condition_type_matches_case_insensitively_and_echoes_as_sent() -> None:
    flt = only_filter(filter_query("status", "3", "GtEq"))
    assert (flt.condition, flt.condition_type) == (Condition.GTEQ, "GtEq")


# "li\u212ae": Python lowercases the Kelvin sign to "k", PHP compares ASCII only.
@pytest.mark.parametrize(
    "condition_type", ["equals", "ntoa", "is", " eq", "eq ", "n\u0131n", "li\u212ae"]
)
def test_unknown_condition_type_names_the_supported_ones(condition_type: str) -> None:
    error = error_of(filter_query("status", "3", condition_type))
    assert error.message == (
        'Condition type "%condition_type" is not supported. Use one of: %supported.'
    )
    assert error.parameters == {
        "condition_type": condition_type,
        "supported": ", ".join(condition.value for condition in Condition),
    }


@pytest.mark.parametrize(
    ("condition_type", "effective", "operand"),
    [
        ("eq", Condition.EQ, 5),
        ("neq", Condition.NEQ, 5),
        ("gt", Condition.GT, 5),
        ("lt", Condition.LT, 5),
        ("gteq", Condition.GTEQ, 5),
        ("lteq", Condition.LTEQ, 5),
        ("moreq", Condition.GTEQ, 5),
        ("from", Condition.GTEQ, 5),
        ("to", Condition.LTEQ, 5),
        ("seq", Condition.EQ, 5),
        ("sneq", Condition.NEQ, 5),
        ("like", Condition.LIKE, " 5"),
        ("nlike", Condition.NLIKE, " 5"),
        ("finset", Condition.FINSET, " 5"),
        ("nfinset", Condition.NFINSET, " 5"),
        ("regexp", Condition.REGEXP, " 5"),
        ("in", Condition.IN, (5,)),
        ("nin", Condition.NIN, (5,)),
        ("fulltext", Condition.LIKE, "% 5%"),
    ],
)
def test_effective_condition_and_operand_on_an_integer_field(
    condition_type: str, effective: Condition, operand: object
) -> None:
    flt = only_filter(filter_query("status", " 5", condition_type))
    assert (flt.condition, flt.operand) == (effective, operand)
    assert flt.condition in EFFECTIVE_CONDITIONS


def test_fulltext_echoes_the_wrapped_value_like_magento() -> None:
    criteria = parse(filter_query("result_message", "already exists", "fulltext"))
    assert criteria.echo()["filter_groups"][0]["filters"][0] == {
        "field": "result_message",
        "value": "%already exists%",
        "condition_type": "fulltext",
    }
    assert criteria.filter_groups[0].filters[0].operand == "%already exists%"


@pytest.mark.parametrize(("condition_type", "effective"), [("seq", "null"), ("sneq", "notnull")])
def test_seq_and_sneq_with_an_empty_value_test_for_null(
    condition_type: str, effective: str
) -> None:
    flt = only_filter(filter_query("error_code", "", condition_type))
    assert (flt.condition, flt.operand, flt.value) == (Condition(effective), None, "")


@pytest.mark.parametrize("condition_type", ["null", "notnull", "NULL"])
@pytest.mark.parametrize("value", [None, "", "anything"])
def test_null_and_notnull_ignore_the_value(condition_type: str, value: str | None) -> None:
    flt = only_filter(filter_query("error_code", value, condition_type))
    assert (flt.condition, flt.operand, flt.value) == (
        Condition(condition_type.lower()),
        None,
        value,
    )


@pytest.mark.parametrize(
    "condition_type", [c.value for c in Condition if c not in (Condition.NULL, Condition.NOTNULL)]
)
def test_every_other_condition_requires_a_value(condition_type: str) -> None:
    assert error_of(filter_query("status", None, condition_type)).parameters == {
        "fieldName": "value"
    }


def test_a_missing_value_with_the_default_condition_is_required_too() -> None:
    assert error_of(filter_query("status")).parameters == {"fieldName": "value"}


def test_in_splits_on_commas_and_trims_each_element() -> None:
    assert only_filter(filter_query("status", " 1 ,2,\t3 ", "in")).operand == (1, 2, 3)
    text = only_filter(filter_query("bulk_uuid", "a, b ,c d", "nin"))
    assert (text.condition, text.operand, text.value) == (
        Condition.NIN,
        ("a", "b", "c d"),
        "a, b ,c d",
    )
    assert only_filter(filter_query("bulk_uuid", "", "in")).operand == ("",)


def test_in_elements_are_typed_by_the_field() -> None:
    flt = only_filter(filter_query("start_time", "2024-01-02, 2024-01-03 04:05:06", "in"))
    assert flt.operand == (datetime(2024, 1, 2), datetime(2024, 1, 3, 4, 5, 6))
    error = error_of(filter_query("status", "1,x,3", "in"))
    assert error.message == type_error("status", "x", "int")
    assert error_of(filter_query("status", "1,,3", "in")).message == type_error("status", "", "int")


def test_text_fields_keep_the_value_as_sent() -> None:
    flt = only_filter(filter_query("topic_name", " Async.V1 ", "eq"))
    assert flt.operand == " Async.V1 "


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("42", 42),
        (" 42\t", 42),
        ("+7", 7),
        ("-0", 0),
        ("-12", -12),
        ("007", 7),
        ("0" * 5000 + "9", 9),
        (str(INT64_MAX), INT64_MAX),
        (str(-(2**63)), -(2**63)),
    ],
)
def test_integer_values(text: str, number: int) -> None:
    flt = only_filter(filter_query("id", text, "gt"))
    assert flt.operand == number
    assert type(flt.operand) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "4.2",
        "1e3",
        "0x10",
        "1_000",
        "+-1",
        "1 2",
        "\u0661\u0662",
        "\uff11",
        "true",
        str(INT64_MAX + 1),
        str(-(2**63) - 1),
        "9" * 5000,
    ],
)
def test_invalid_integer_values_are_type_errors_naming_the_field(text: str) -> None:
    error = error_of(filter_query("status", text))
    assert error.message == type_error("status", text, "int")


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-02-29", datetime(2024, 2, 29)),
        ("2024-02-29 13:14", datetime(2024, 2, 29, 13, 14)),
        ("2024-02-29 13:14:15", datetime(2024, 2, 29, 13, 14, 15)),
        (" 2024-02-29T13:14:15.999999 ", datetime(2024, 2, 29, 13, 14, 15)),
        ("2024-02-29T13:14:15Z", datetime(2024, 2, 29, 13, 14, 15)),
        ("2024-02-29t13:14:15.5z", datetime(2024, 2, 29, 13, 14, 15)),
        ("2024-02-29T13:14:15+02:00", datetime(2024, 2, 29, 11, 14, 15)),
        ("2024-02-29 01:00-0130", datetime(2024, 2, 29, 2, 30)),
        ("2024-03-01T01:00:00+05", datetime(2024, 2, 29, 20, 0)),
        ("9999-12-31 23:59:59", datetime(9999, 12, 31, 23, 59, 59)),
    ],
)
def test_datetime_values_become_naive_utc_whole_seconds(text: str, moment: datetime) -> None:
    flt = only_filter(filter_query("start_time", text, "lteq"))
    assert flt.operand == moment
    assert isinstance(flt.operand, datetime) and flt.operand.tzinfo is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-02-30",
        "2023-02-29 00:00",
        "2024-1-2",
        "2024-01-02 24:00",
        "2024-01-02 10",
        "2024-01-02 10:00:00.1234567",
        "2024-01-02Z",
        "2024-01-02 10:00+24:00",
        "2024-01-02 10:00+01:60",
        # An unencoded "+" arrives as a space.
        "2024-01-02 10:00:00 02:00",
        "0001-01-01 00:30+01:00",
        "9999-12-31 23:30-01:00",
        "1704067200",
        "yesterday",
        "\u0662024-01-02",
    ],
)
def test_invalid_datetime_values_are_type_errors(text: str) -> None:
    error = error_of(filter_query("updated_at", text, "gt"))
    assert error.message == type_error("updated_at", text, "datetime (YYYY-MM-DD HH:MM:SS)")


@pytest.mark.parametrize(
    "condition_type", ["like", "nlike", "finset", "nfinset", "regexp", "fulltext"]
)
def test_string_conditions_do_not_type_the_value(condition_type: str) -> None:
    flt = only_filter(filter_query("start_time", "2024-%", condition_type))
    assert isinstance(flt.operand, str) and "2024-" in flt.operand


@pytest.mark.parametrize("pattern", ["(", "[a-", "a**", "(?P<x>a)(?P<x>b)", "(" * 499 + ")" * 499])
def test_invalid_regexp_is_an_input_error_naming_the_pattern(pattern: str) -> None:
    error = error_of(filter_query("topic_name", pattern, "regexp"))
    assert error.message == 'The regular expression "%pattern" for "%field" is not valid: %reason.'
    assert isinstance(error.parameters, dict)
    assert error.parameters["pattern"] == pattern
    assert error.parameters["field"] == "topic_name"
    assert error.parameters["reason"]


def test_regexp_length_is_limited() -> None:
    assert only_filter(filter_query("topic_name", "a" * 1000, "regexp")).operand == "a" * 1000
    error = error_of(filter_query("topic_name", "a" * 1001, "regexp"))
    assert error.parameters == {"field": "topic_name", "max": 1000}


def test_valid_regexp_is_kept_raw() -> None:
    flt = only_filter(filter_query("topic_name", r"^async\.V1\.(customers|products)", "REGEXP"))
    assert (flt.condition, flt.operand) == (Condition.REGEXP, r"^async\.V1\.(customers|products)")


# Sort orders -----------------------------------------------------------------------------


def test_sort_orders_uppercase_the_direction_and_keep_a_missing_one_as_none() -> None:
    criteria = parse(
        "searchCriteria[sortOrders][0][field]=status&searchCriteria[sortOrders][0][direction]=asc"
        "&searchCriteria[sortOrders][1][field]=id&searchCriteria[sortOrders][1][direction]=Desc"
        "&searchCriteria[sortOrders][2][field]=start_time"
    )
    assert criteria.sort_orders == (
        SortOrder("status", "ASC"),
        SortOrder("id", "DESC"),
        SortOrder("start_time", None),
    )
    assert criteria.effective_sort() == (("status", False), ("id", True), ("start_time", True))


def test_a_sort_order_without_field_is_echoed_but_ignored() -> None:
    criteria = parse("searchCriteria[sortOrders][0][direction]=ASC")
    assert criteria.echo()["sort_orders"] == [{"field": None, "direction": "ASC"}]
    assert criteria.effective_sort() == ()


def test_sort_order_on_an_unknown_field_is_the_searchable_field_error() -> None:
    error = error_of("searchCriteria[sortOrders][0][field]=created_at")
    assert error.parameters == {"field": "created_at", "searchable": ", ".join(SEARCHABLE_FIELDS)}


@pytest.mark.parametrize("direction", ["", "up", "ascending", "ASC ", "\u017fort", "de\u017fc"])
def test_invalid_sort_direction_is_magentos_error(direction: str) -> None:
    error = error_of(
        f"searchCriteria[sortOrders][0][field]=id&searchCriteria[sortOrders][0][direction]={quote(direction)}"
    )
    assert error.body() == {
        "message": "The sort order has to be specified as %1 for ascending order or %2 for "
        "descending order.",
        "parameters": ["ASC", "DESC"],
    }


# Paging ----------------------------------------------------------------------------------


def test_page_size_and_current_page_are_integers() -> None:
    criteria = parse("searchCriteria[pageSize]=%2B20&searchCriteria[current_page]= -3 ")
    assert (criteria.page_size, criteria.current_page) == (20, -3)


@pytest.mark.parametrize("key", ["pageSize", "page_size", "currentPage", "current_page"])
@pytest.mark.parametrize("value", ["abc", "", "1.5", "1e2", str(INT64_MAX + 1)])
def test_non_integer_paging_values_are_magentos_type_error(key: str, value: str) -> None:
    assert error_of(f"searchCriteria[{key}]={value}").message == type_error(key, value, "int")


def test_pagesize_type_error_is_magentos_exact_sentence() -> None:
    assert error_of("searchCriteria[pageSize]=abc").body() == {
        "message": 'Error occurred during "pageSize" processing. The "abc" value\'s type is '
        'invalid. The "int" type was expected. Verify and try again.'
    }


@pytest.mark.parametrize("value", ["-1", "2147483648", str(INT64_MAX)])
def test_page_size_out_of_range_is_an_input_error(value: str) -> None:
    error = error_of(f"searchCriteria[page_size]={value}")
    assert error.parameters == {
        "value": value,
        "fieldName": "page_size",
        "min": 0,
        "max": 2**31 - 1,
    }


def test_page_size_bounds_are_accepted() -> None:
    assert parse("searchCriteria[pageSize]=0").page_size == 0
    assert parse("searchCriteria[pageSize]=2147483647").page_size == 2**31 - 1


def test_current_page_is_kept_as_sent() -> None:
    assert parse(f"searchCriteria[currentPage]={INT64_MAX}").current_page == INT64_MAX
    assert parse("searchCriteria[currentPage]=0").echo() == {
        "filter_groups": [],
        "current_page": 0,
    }


LIMITS = PageLimits(enabled=True, default_page_size=20, maximum_page_size=300)


def test_limits_inject_the_default_page_size_which_is_echoed() -> None:
    assert parse("searchCriteria=", LIMITS).echo() == {"filter_groups": [], "page_size": 20}


def test_limits_leave_a_page_size_of_0_alone() -> None:
    """Every match, as Magento: `DefaultPageSizeSetter` only fills a missing page size."""
    assert parse("searchCriteria[pageSize]=0", LIMITS).echo() == {
        "filter_groups": [],
        "page_size": 0,
    }


def test_the_default_page_size_is_not_held_against_the_maximum() -> None:
    limits = PageLimits(enabled=True, default_page_size=500, maximum_page_size=300)
    assert parse("searchCriteria=", limits).page_size == 500


def test_limits_reject_a_page_size_above_the_maximum() -> None:
    assert parse("searchCriteria[pageSize]=300", LIMITS).page_size == 300
    assert error_of("searchCriteria[pageSize]=301", LIMITS).body() == {
        "message": "Maximum SearchCriteria pageSize is %max",
        "parameters": {"max": 300},
    }


def test_without_limits_no_page_size_is_injected_or_capped() -> None:
    assert parse("searchCriteria=").page_size is None
    assert parse("searchCriteria[pageSize]=100000").page_size == 100000


# The echo, end to end ----------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12)
# Array keys as clients may send them: gaps, any order, not even numbers.
_INDEXES = st.lists(
    st.sampled_from(["0", "1", "2", "3", "7", "10", "999", "00", "a", "g1"]),
    unique=True,
    max_size=3,
)


@st.composite
def _filter_values(draw: st.DrawFn, kind: FieldKind) -> tuple[str | None, str | None]:
    """(condition_type or None, value or None) valid for a field of this kind."""
    condition = draw(
        st.sampled_from([None, "", "eq", "NEQ", "gt", "moreq", "to", "like", "in", "nin", "null"])
        | st.sampled_from(["notnull", "seq", "sneq", "fulltext", "finset", "regexp", "From"])
    )
    if condition in ("null", "notnull"):
        return condition, draw(st.none() | _TEXT)
    if condition in ("like", "fulltext", "finset"):
        return condition, draw(_TEXT)
    if condition == "regexp":
        return condition, re.escape(draw(_TEXT))
    if condition in ("seq", "sneq") and draw(st.booleans()):
        return condition, ""
    if kind is FieldKind.INTEGER:
        scalar = st.integers(-(2**63), INT64_MAX).map(str)
    elif kind is FieldKind.DATETIME:
        scalar = st.datetimes(datetime(1000, 1, 1)).map(lambda moment: moment.isoformat(" "))
    else:
        scalar = _TEXT.filter(lambda text: "," not in text)
    if condition in ("in", "nin"):
        return condition, ", ".join(draw(st.lists(scalar, min_size=1, max_size=3)))
    return condition, draw(scalar)


@st.composite
def _sent_criteria(draw: st.DrawFn) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Query pairs of a valid searchCriteria, and the echo Magento would give for them."""
    pairs: list[tuple[str, str]] = []
    echo: dict[str, Any] = {"filter_groups": []}

    def key(name: str) -> str:
        return draw(st.sampled_from(SPELLINGS[name]))

    # One spelling per property: two spellings of one property are two keys, the later winning.
    base = draw(st.sampled_from(["searchCriteria", "search_criteria"]))
    groups = f"{base}[{key('filter_groups')}]"
    for group_index in draw(_INDEXES):
        group = f"{groups}[{group_index}][{key('filters')}]"
        filters = []
        for filter_index in draw(_INDEXES):
            field = draw(st.sampled_from(list(SEARCHABLE_FIELDS)))
            condition, value = draw(_filter_values(SEARCHABLE_FIELDS[field]))
            sent = [("field", field), ("value", value), ("condition_type", condition)]
            for name, text in draw(st.permutations(sent)):
                if text is not None:
                    pairs.append((f"{group}[{filter_index}][{key(name)}]", text))
            echoed = {"field": field, "value": f"%{value}%" if condition == "fulltext" else value}
            if condition is not None:
                echoed["condition_type"] = condition
            filters.append(echoed)
        if not filters:
            pairs.append((group, ""))
        echo["filter_groups"].append({"filters": filters})
    if draw(st.booleans()):
        echo["sort_orders"] = []
        orders = f"{base}[{key('sort_orders')}]"
        for order_index in draw(_INDEXES):
            field = draw(st.sampled_from([None, *SEARCHABLE_FIELDS]))
            direction = draw(st.sampled_from([None, "asc", "DESC", "Asc", "desc"]))
            if field is None and direction is None:
                pairs.append((f"{orders}[{order_index}]", ""))
            if field is not None:
                pairs.append((f"{orders}[{order_index}][{key('field')}]", field))
            if direction is not None:
                pairs.append((f"{orders}[{order_index}][{key('direction')}]", direction))
            echo["sort_orders"].append(
                {"field": field, "direction": direction and direction.upper()}
            )
        if not echo["sort_orders"]:
            pairs.append((orders, ""))
    for name, top in (("page_size", 2**31 - 1), ("current_page", INT64_MAX)):
        number = draw(st.none() | st.integers(0 if name == "page_size" else -9, top))
        if number is not None:
            text = draw(st.sampled_from([str(number), f" {number} ", f"{number:+}"]))
            pairs.append((f"{base}[{key(name)}]", text))
            echo[name] = number
    if not pairs:
        pairs.append((base, ""))
    return pairs, echo


def _encode(pairs: list[tuple[str, str]], brackets_encoded: bool) -> str:
    def name(text: str) -> str:
        return text.replace("[", "%5B").replace("]", "%5D") if brackets_encoded else text

    return "&".join(f"{name(key)}={quote(value, safe='')}" for key, value in pairs)


@settings(max_examples=400, deadline=None)
@given(_sent_criteria(), st.booleans())
def test_the_echo_is_what_was_sent_reindexed(
    sent: tuple[list[tuple[str, str]], dict[str, Any]], brackets_encoded: bool
) -> None:
    pairs, expected = sent
    criteria = parse(_encode(pairs, brackets_encoded))
    assert criteria.echo() == expected
    # Key order matters to clients that compare the echo with what they sent.
    assert list(orjson.loads(orjson.dumps(criteria.echo()))) == list(expected)


# Fuzzing: only InputError escapes, and what is accepted is sound ---------------------------


def _assert_sound(criteria: SearchCriteria) -> None:
    for group in criteria.filter_groups:
        for flt in group.filters:
            assert flt.field in SEARCHABLE_FIELDS
            assert flt.condition in EFFECTIVE_CONDITIONS
            _assert_operand_typed(flt)
    for order in criteria.sort_orders or ():
        assert order.field is None or order.field in SEARCHABLE_FIELDS
        assert order.direction in (None, "ASC", "DESC")
    assert criteria.page_size is None or 0 <= criteria.page_size < 2**31
    orjson.dumps(criteria.echo())


_STRING_CONDITIONS = {
    Condition.LIKE,
    Condition.NLIKE,
    Condition.FINSET,
    Condition.NFINSET,
    Condition.REGEXP,
}


def _assert_operand_typed(flt: Filter) -> None:
    expected_type = {FieldKind.INTEGER: int, FieldKind.DATETIME: datetime, FieldKind.TEXT: str}
    if flt.condition in (Condition.NULL, Condition.NOTNULL):
        assert flt.operand is None
    elif flt.condition in _STRING_CONDITIONS:
        assert isinstance(flt.operand, str)
    else:
        operands = flt.operand if flt.condition in (Condition.IN, Condition.NIN) else (flt.operand,)
        assert isinstance(operands, tuple) and operands
        for operand in operands:
            assert type(operand) is expected_type[SEARCHABLE_FIELDS[flt.field]]


@settings(max_examples=900, deadline=None)
@given(SEARCH_QUERY_STRINGS)
def test_any_query_string_gives_sound_criteria_or_an_input_error(query: str) -> None:
    try:
        criteria = parse(query)
    except InputError as error:
        # The body must be serialisable: it is what the client receives.
        orjson.dumps(error.body())
        return
    _assert_sound(criteria)


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | FIELDS | CONDITIONS | ODD_VALUES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["searchCriteria", "search_criteria", "x"]), _JSON_LIKE))
def test_any_decoded_structure_gives_sound_criteria_or_an_input_error(
    query: dict[str, Any],
) -> None:
    try:
        criteria = parse_search_criteria(query)
    except InputError:
        return
    _assert_sound(criteria)
