"""Runtime values and their JSON form (engine.values)."""

from __future__ import annotations

import json
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from engine.values import SORTED_JSON, encode, exact, exact_sum, json_default, one_pass

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.builds(
    Fraction, st.integers(), st.integers(min_value=1))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                       max_leaves=12)


@given(_values)
def test_sorted_json_is_json_dumps_of_the_encoded_value_with_sorted_keys(v):
    assert SORTED_JSON(v) == json.dumps(encode(v), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Count(int):
    pass


_ASCII = json.JSONEncoder(separators=(",", ":"), default=json_default)
_ASCII_TEXT = one_pass(_ASCII)


@given(_values | st.integers().map(_Count))
def test_one_pass_encodes_as_its_encoder_does_scalars_taken_apart_too(v):
    assert _ASCII_TEXT(v) == _ASCII.encode(v)


_exact_numbers = st.lists(st.integers() | st.builds(Fraction, st.integers(), st.sampled_from([1, 2, 4, 10, 1000, 7])) |
                          st.builds(Fraction, st.integers(), st.integers(min_value=1)), max_size=8)


@given(_exact_numbers)
def test_an_exact_sum_is_the_sum_of_fractions_as_exact_gives_it(xs):
    xs = [exact(x) for x in xs]  # as values are: an int where whole
    total, expected = exact_sum(xs), exact(sum(Fraction(x) for x in xs))
    assert total == expected and type(total) is type(expected)
