"""Magento's JSON (`php_json`): the C encoder, taken for most items, only where it writes
what the general encoder, PHP's rules written out, writes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bulkops.services.php_json import _encode, php_json

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Keys that make PHP lists ("0", "1", ...) beside any others.
KEYS = st.sampled_from(["0", "1", "2"]) | st.text(max_size=5)
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10.5, 2.0, 1e20, 1e-05, 0.1, -0.0, 1000000000000000.5])
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS, children, max_size=4)
        | st.lists(children, max_size=4).map(lambda items: {str(n): v for n, v in enumerate(items)})
    ),
    max_leaves=12,
)


def general(value: Any) -> str:
    return "".join(_encode(value)).replace("/", "\\/")


@given(VALUES)
def test_every_value_is_written_as_the_general_encoder_writes_it(value: Any) -> None:
    assert php_json(value) == general(value)


def test_objects_keyed_0_1_2_and_empty_ones_are_lists() -> None:
    assert php_json({"a": {"0": "x", "1": 1.0}, "b": {}, "c": {"1": 2}}) == (
        '{"a":["x",1],"b":[],"c":{"1":2}}'
    )
