"""Query strings parsed with PHP's `parse_str` semantics, and the limits that protect the server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from bulkops.errors import InputError
from bulkops.querystring import MAX_DEPTH, MAX_PAIRS, parse_query_string
from tests.fuzzing import QUERY_BYTES


def test_flat_pairs_split_on_ampersand_and_the_first_equals_sign() -> None:
    assert parse_query_string("a=1&b=x=y&c&&d=") == {"a": "1", "b": "x=y", "c": "", "d": ""}


def test_bytes_and_text_give_the_same_result() -> None:
    assert (
        parse_query_string(b"a[b]=%C3%A9") == parse_query_string("a[b]=%C3%A9") == {"a": {"b": "é"}}
    )


def test_percent_decoding_and_plus_as_space_in_names_and_values() -> None:
    assert parse_query_string("a+b%20c=1+2%2B3&%61=%26%3D") == {"a_b_c": "1 2+3", "a": "&="}


def test_malformed_percent_escapes_are_kept_literally() -> None:
    assert parse_query_string("a=%zz%4&b=%") == {"a": "%zz%4", "b": "%"}


def test_invalid_utf8_is_replaced() -> None:
    assert parse_query_string(b"a=%FF%FEok&b=\xff") == {"a": "\ufffd\ufffdok", "b": "\ufffd"}


def test_text_with_lone_surrogates_does_not_break_decoding() -> None:
    assert parse_query_string("a=\ud800") == {"a": "\ufffd\ufffd\ufffd"}


def test_nested_names_build_nested_dicts() -> None:
    assert parse_query_string("a[b][0][c]=v&a[b][0][d]=w&a[e]=x") == {
        "a": {"b": {"0": {"c": "v", "d": "w"}}, "e": "x"}
    }


def test_percent_encoded_brackets_equal_literal_ones() -> None:
    literal = "searchCriteria[filter_groups][0][filters][0][field]=status"
    encoded = "searchCriteria%5Bfilter_groups%5D%5B0%5D%5Bfilters%5D%5B0%5D%5Bfield%5D=status"
    assert parse_query_string(encoded) == parse_query_string(literal)
    lowercase_escapes = encoded.replace("%5B", "%5b").replace("%5D", "%5d")
    assert parse_query_string(lowercase_escapes) == parse_query_string(literal)


def test_keys_are_strings_in_insertion_order_and_not_normalised() -> None:
    parsed = parse_query_string("a[2]=x&a[01]=y&a[1]=z&a[2]=w")
    assert parsed == {"a": {"2": "w", "01": "y", "1": "z"}}
    assert list(parsed["a"]) == ["2", "01", "1"]


def test_append_uses_the_next_integer_key_like_php() -> None:
    parsed = parse_query_string("a[]=0&a[5]=5&a[]=6&a[x]=x&a[-9]=m&a[07]=s&a[]=7")
    assert parsed == {"a": {"0": "0", "5": "5", "6": "6", "x": "x", "-9": "m", "07": "s", "7": "7"}}


def test_negative_keys_do_not_move_the_next_index() -> None:
    assert parse_query_string("a[-3]=x&a[]=y") == {"a": {"-3": "x", "0": "y"}}


def test_append_past_the_largest_64_bit_key_is_dropped() -> None:
    parsed = parse_query_string("a[9223372036854775807]=x&a[]=y&a[][b]=z&c[]=ok")
    assert parsed == {"a": {"9223372036854775807": "x"}, "c": {"0": "ok"}}


def test_keys_beyond_64_bits_are_plain_strings() -> None:
    assert parse_query_string("a[9223372036854775808]=x&a[]=y") == {
        "a": {"9223372036854775808": "x", "0": "y"}
    }


def test_nested_appends_each_create_a_new_element() -> None:
    assert parse_query_string("f[][field]=status&f[][value]=3") == {
        "f": {"0": {"field": "status"}, "1": {"value": "3"}}
    }


def test_a_later_assignment_wins_and_keeps_the_first_position() -> None:
    parsed = parse_query_string("a=1&b=2&a=3")
    assert parsed == {"a": "3", "b": "2"}
    assert list(parsed) == ["a", "b"]


def test_nested_value_replaces_a_scalar_and_a_scalar_replaces_a_nested_value() -> None:
    assert parse_query_string("a=1&a[x]=2&b[x]=1&b=2") == {"a": {"x": "2"}, "b": "2"}
    assert parse_query_string("a[x]=1&a[x][y]=2") == {"a": {"x": {"y": "2"}}}


def test_empty_base_names_are_skipped() -> None:
    assert parse_query_string("=1&[a]=2&%20=3&ok=4") == {"ok": "4"}


def test_base_name_drops_leading_spaces_and_turns_dots_and_spaces_into_underscores() -> None:
    assert parse_query_string("%20%20a.b%20c[d.e%20f]=1") == {"a_b_c": {"d.e f": "1"}}


def test_a_key_may_contain_an_opening_bracket() -> None:
    assert parse_query_string("a[b[c]=1") == {"a": {"b[c": "1"}}


def test_text_after_a_closing_bracket_is_ignored() -> None:
    assert parse_query_string("a[b]c[d]=1&e[f]]=2") == {"a": {"b": "1"}, "e": {"f": "2"}}


def test_one_space_inside_brackets_appends_but_other_keys_keep_spaces() -> None:
    assert parse_query_string("a[ ]=1&a[ ]=2&a[ x]=3&a[  ]=4") == {
        "a": {"0": "1", "1": "2", " x": "3", "  ": "4"}
    }


def test_unclosed_first_bracket_makes_the_name_literal() -> None:
    assert parse_query_string("a[b.c d[e=1") == {"a_b_c_d_e": "1"}


def test_unclosed_later_bracket_ends_the_name() -> None:
    assert parse_query_string("a[x][b=1") == {"a": {"x": "1"}}


def test_more_than_the_maximum_number_of_pairs_is_an_input_error() -> None:
    assert len(parse_query_string("&".join(f"a{i}=1" for i in range(MAX_PAIRS)))) == MAX_PAIRS
    with pytest.raises(InputError) as raised:
        parse_query_string("&".join(f"a{i}=1" for i in range(MAX_PAIRS + 1)))
    assert raised.value.parameters == {"max": MAX_PAIRS}
    assert "%max" in raised.value.message


def test_empty_pairs_do_not_count_towards_the_limit() -> None:
    assert parse_query_string("&" * 5000 + "a=1") == {"a": "1"}


def test_nesting_up_to_the_maximum_depth_is_accepted() -> None:
    expected: object = "v"
    for _ in range(MAX_DEPTH):
        expected = {"k": expected}
    assert parse_query_string("a" + "[k]" * MAX_DEPTH + "=v") == {"a": expected}


@pytest.mark.parametrize("tail", ["[k]=v", "[]=v", "[k=v"])
def test_nesting_deeper_than_the_maximum_is_an_input_error(tail: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_query_string("a" + "[k]" * MAX_DEPTH + tail)
    assert raised.value.parameters == {"name": "a", "max": MAX_DEPTH}


@pytest.mark.parametrize("query", ["a=x%00y", "a%00b=1", "a[%00]=1", b"a=\x00"])
def test_nul_characters_are_an_input_error(query: str | bytes) -> None:
    with pytest.raises(InputError) as raised:
        parse_query_string(query)
    assert "NUL" in raised.value.message
    assert isinstance(raised.value.parameters, dict)
    assert "\0" not in raised.value.parameters["name"]


@settings(max_examples=1500, deadline=None)
@given(QUERY_BYTES)
def test_arbitrary_bytes_raise_nothing_but_input_errors(raw: bytes) -> None:
    try:
        parsed = parse_query_string(raw)
    except InputError:
        return
    _assert_only_str_keys_and_leaves(parsed)


def _assert_only_str_keys_and_leaves(node: dict[str, object]) -> None:
    for key, value in node.items():
        assert isinstance(key, str) and key
        if isinstance(value, dict):
            _assert_only_str_keys_and_leaves(value)
        else:
            assert isinstance(value, str)
