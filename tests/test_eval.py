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
    text = "def rem(n: int) -> int = 10 % n\ndef twice(n: int) -> int = n * 2\ndef f(a: int) = twice(a) + rem(a - 2)"
    assert _evaluate(text, "f", {"a": 5}) == 11
    assert _error(text, "f", {"a": 2}) == ("division by zero", 1, 26)  # in `rem`, given 0


def test_a_straight_def_whose_body_is_a_constant_compiles_without_a_warning():
    import warnings

    text = "def yes() -> any = 1\ndef f(a: bool) = not yes() and a or yes() == 1"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")  # Python's "`is` with a literal" would be said on stderr
        assert _evaluate(text, "f", {"a": True}) is True
    assert said == []


def test_code_nested_deeper_than_python_compiles_is_cut_into_smaller_functions():
    from engine.eval import _Source

    depth = 150
    prog = _program("def deep(a: int) -> int = " + "(a + " * depth + "1" + ")" * depth)
    code, _, apart = _Source(Evaluator(prog, None), cut=10**6).generate(prog.defs["deep"].body)
    assert apart  # not one expression: Python refuses 200 nested parentheses


def test_evaluators_of_one_program_share_its_code_each_with_its_own_world():
    class World:
        def __init__(self, t):
            self.t = t

        def now(self):
            return self.t

    prog = _program("def f(xs: list<int>) = [now() for x in xs]")
    body = prog.defs["f"].body
    first, second = Evaluator(prog, World(5)), Evaluator(prog, World(7))
    assert (first.eval(body, {"xs": [1]}), second.eval(body, {"xs": [1]})) == ([5], [7])
