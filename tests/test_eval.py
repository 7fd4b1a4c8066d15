"""The evaluator's compiled code: what it gives, and the errors it raises, as the language says."""

from __future__ import annotations

import pytest

from engine.check import check_modules
from engine.eval import EvalError, Evaluator
from engine.parse import parse_text


def _program(text: str):
    return check_modules([parse_text(text, "t.konv")])


def _evaluate(text: str, name: str, env: dict):
    prog = _program(text)
    return Evaluator(prog, None).eval(prog.defs[name].body, env)


def _error(text: str, name: str, env: dict):
    with pytest.raises(EvalError) as e:
        _evaluate(text, name, env)
    (d,) = e.value.diagnostics
    return d.message, d.span.line, d.span.col


def test_an_expression_nested_deeper_than_python_allows_one_is_evaluated():
    depth = 150  # written out as one Python expression, it would pass the 200 parentheses allowed
    text = "def deep(a: int) -> int = " + "(a + " * depth + "1" + ")" * depth
    assert _evaluate(text, "deep", {"a": 2}) == 2 * depth + 1
    choice = "def chain(a: int) -> int = " + "".join(f"if a == {i} then {i * i} else " for i in range(depth)) + "0"
    assert _evaluate(choice, "chain", {"a": 149}) == 149 * 149


def test_an_unbound_variable_is_an_error_only_where_it_is_evaluated():
    text = "kind Item { size: int = 0 }\ndef f(a: bool, i: Item) = a or i.size > 1\ndef g(a: bool, i: Item) = a or i == none"
    for name in ("f", "g"):
        assert _evaluate(text, name, {"a": True}) is True
        assert _error(text, name, {"a": False}) == ("`i` is not bound", 2 + (name == "g"), 32)


def test_a_container_is_evaluated_before_the_item_looked_for_in_it():
    text = "def f(a: int) = str(10 % a) in [str(10 / a)]"
    assert _evaluate(text, "f", {"a": 3}) is False
    assert _error(text, "f", {"a": 0}) == ("division by zero", 1, 37)  # `10 / a`, not `10 % a`


def test_a_straight_def_written_into_its_caller_gives_its_value_and_its_errors():
    text = "def half(n: int) = 10 / n\ndef twice(n: int) -> int = n * 2\ndef f(a: int) = twice(a) + half(a - 2)"
    assert _evaluate(text, "f", {"a": 4}) == 13
    assert _error(text, "f", {"a": 2}) == ("division by zero", 1, 20)  # in `half`, given 0
