"""The evaluator's compiled code: what it gives, and the errors it raises, as the language says."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.check import check_modules
from engine.errors import KonvergeError
from engine.eval import _BUILTINS, EvalError, Evaluator, _builtin, _compare, _contains, _sum
from engine.values import exact
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


def test_a_range_too_long_for_a_list_is_an_evaluation_error_not_a_crash():
    message, line, col = _error("def r(n: int) -> int = len(range(n))", "r", {"n": 10**30})
    assert message.startswith("`range` failed: ") and (line, col) == (1, 28)


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
    code, _, apart, _ = _Source(Evaluator(prog, None), cut=10**6).generate(prog.defs["deep"].body)
    assert apart  # not one expression: Python refuses 200 nested parentheses


def test_a_def_called_gives_its_arguments_to_its_body_and_to_the_parts_compiled_apart():
    # A def's body is a function of its arguments; a quantifier, an ordered comprehension and
    # code nested past what Python compiles as one expression are compiled apart, given an
    # environment of the arguments.
    depth = 150
    text = ("def some(xs: list<int>, k: int) = any(x > k for x in xs)\n"
            "def every(xs: list<int>, k: int) = all(x > k for x in xs)\n"
            "def top(xs: list<int>, k: int) = [x + k for x in xs order by x desc]\n"
            "def deep(a: int, b: int) -> int = " + "(a + " * depth + "b" + ")" * depth)
    prog = _program(text)
    ev = Evaluator(prog, None)
    assert [ev.call_def(prog.defs[name], [[1, 3, 2], 1]) for name in ("some", "every", "top")] == \
        [True, False, [4, 3, 2]]
    assert ev.call_def(prog.defs["deep"], [2, 5]) == 2 * depth + 5


def test_fields_of_an_object_a_kind_gives_and_of_a_value_that_may_be_none_are_read_alike():
    # A comprehension over a kind binds the world's objects, whose fields the code reads as they
    # are; a straight def given one reads them so too, and given none (or a number) gives none.
    class World:
        def scan(self, kind):
            return [{"kind": "Thing", "name": "a", "size": 1}, {"kind": "Thing", "name": "b", "size": 2}]

    prog = _program(
        "kind Thing { size: int }\n"
        "def size_of(t: Thing) -> int? = t.size\n"
        "def sizes(k: int) -> list<any> = [[t.name, size_of(t)] for thing t where t.size > k]\n"
        "def big(k: int) -> any = first(size_of(t) for thing t where size_of(t) > k)\n"
        "def none_size(x: Thing?) -> int? = size_of(x)\n")
    ev = Evaluator(prog, World())
    assert ev.call_def(prog.defs["sizes"], [0]) == [["a", 1], ["b", 2]]
    assert ev.call_def(prog.defs["big"], [1]) == 2
    assert ev.call_def(prog.defs["none_size"], [None]) is None
    assert ev.call_def(prog.defs["none_size"], [{"size": 3}]) == 3


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


_NUMBERS = st.one_of(
    st.integers(-10**6, 10**6),
    st.fractions(-10**6, 10**6, max_denominator=1000),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@given(a=_NUMBERS, b=_NUMBERS, op=st.sampled_from(["+", "-", "*", "/"]))
def test_arithmetic_on_numbers_gives_what_python_gives_exactly(a, b, op):
    # ints and quantities (Fractions) stay exact, whole results ints; a float makes the other a float
    text = f"def f(a: float, b: float) -> float = a {op} b"
    if b == 0 and op == "/":
        assert _error(text, "f", {"a": a, "b": b}) == ("division by zero", 1, 38)
        return
    python = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
              "/": lambda: Fraction(a, b) if type(a) is int is type(b) else a / b}[op]()
    if isinstance(python, Fraction) and python.denominator == 1:
        python = python.numerator
    given_ = _evaluate(text, "f", {"a": a, "b": b})
    assert type(given_) is type(python) and (given_.hex() == python.hex() if type(python) is float else given_ == python)


@given(a=_NUMBERS, b=_NUMBERS, op=st.sampled_from(["<", "<=", ">", ">="]))
def test_numbers_compare_as_python_compares_them(a, b, op):
    python = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    assert _evaluate(f"def f(a: float, b: float) = a {op} b", "f", {"a": a, "b": b}) is python


def test_a_comprehension_over_a_list_a_map_or_none_gives_its_elements_in_order():
    text = "def f(m: any) -> list<any> = [x for x in m where x != 2]"
    assert _evaluate(text, "f", {"m": [3, 2, 1]}) == [3, 1]
    assert _evaluate(text, "f", {"m": {"b": 1, "a": 2}}) == ["a", "b"]  # a map's keys, sorted
    assert _evaluate(text, "f", {"m": None}) == []
    assert _evaluate("def g(m: list<int>) -> list<int> = [x * 2 for x in m]", "g", {"m": [1, 2]}) == [2, 4]


def test_comprehensions_over_lists_nest_each_with_its_own_variable():
    text = ("def f(xs: list<int>, ys: list<int>) -> list<any> = "
            "[[x * 10 + y for y in ys where y != x] for x in xs where any(x == y for y in ys)]")
    assert _evaluate(text, "f", {"xs": [1, 2, 3], "ys": [2, 3]}) == [[23], [32]]
    siblings = "def g(xs: list<int>) -> list<int> = [x for x in xs where x > 1] + [x * 2 for x in xs]"
    assert _evaluate(siblings, "g", {"xs": [1, 2]}) == [2, 2, 4]


def test_a_comprehension_element_deeper_than_python_allows_sees_its_variable():
    depth = 150  # cut into functions of their own, each given the comprehension's variable
    text = "def deep(xs: list<int>) -> list<int> = [" + "(x + " * depth + "1" + ")" * depth + " for x in xs]"
    assert _evaluate(text, "deep", {"xs": [0, 2]}) == [1, 2 * depth + 1]


def test_first_any_and_all_over_a_list_stop_at_the_element_that_decides_them():
    # an element is tested by `where`, then evaluated, before the next is looked at
    env = {"xs": [2, 1, 0]}
    assert _evaluate("def f(xs: list<int>) = any(10 / x > 5 for x in xs)", "f", env) is True
    assert _evaluate("def f(xs: list<int>) = all(10 / x > 6 for x in xs)", "f", env) is False
    assert _evaluate("def f(xs: list<int>) -> any = first(10 / x for x in xs where x < 2)", "f", env) == 10
    assert _error("def f(xs: list<int>) = any(10 / x > 20 for x in xs)", "f", env)[0] == "division by zero"


def test_any_over_a_list_counts_true_and_maps_and_all_only_true():
    # what the built-ins give a list, written out over a comprehension's elements
    env = {"xs": [None, 1, "a", [], {}]}
    assert _evaluate("def f(xs: list<any>) = any(x for x in xs)", "f", env) is True
    assert _evaluate("def f(xs: list<any>) = any(x for x in xs where x != {})", "f", env) is False
    assert _evaluate("def f(xs: list<any>) = all(x for x in xs where x == {})", "f", env) is False
    assert _evaluate("def f(xs: list<any>) = all(x == x for x in xs)", "f", env) is True
    assert _evaluate("def f(xs: list<any>) -> any = first(x for x in xs where x != none)", "f", env) == 1
    assert _evaluate("def f(xs: list<any>) -> any = first(x for x in xs where x == 2)", "f", env) is None


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
    st.fractions(-3, 3, max_denominator=4), st.sampled_from(["", "a", "b", "ab"]),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 1), max_size=2),
    st.lists(st.integers(0, 1), max_size=2),
)


@given(a=_VALUES, b=_VALUES, op=st.sampled_from(["<", "<=", ">", ">="]))
def test_an_ordering_gives_what_compare_gives_for_any_two_values(a, b, op):
    # the compiled code decides two ints, texts or floats itself and leaves the rest to _compare
    text = f"def f(a: any, b: any) = a {op} b"
    prog = _program(text)
    try:
        want = _compare(prog.defs["f"].body, a, b)
    except EvalError as e:
        assert _error(text, "f", {"a": a, "b": b})[0] == e.diagnostics[0].message
        return
    assert _evaluate(text, "f", {"a": a, "b": b}) is want


@given(xs=st.lists(st.integers(-5, 5), max_size=8), k=st.integers(-3, 3))
def test_comprehensions_over_a_list_give_what_python_gives(xs, k):
    env = {"xs": xs, "k": k}
    program = (
        "def each(xs: list<int>, k: int) -> list<int> = [x * k for x in xs where x > k]\n"
        "def kept(xs: list<int>, k: int) -> list<int> = [x for x in xs where x != k]\n"
        "def pairs(xs: list<int>, k: int) -> list<int> = [sum(y for y in xs where y < x) for x in xs]\n"
        "def some(xs: list<int>, k: int) = any(x == k for x in xs)\n"
        "def every(xs: list<int>, k: int) = all(x >= k for x in xs where x != 0)\n"
        "def found(xs: list<int>, k: int) -> any = first(x * 2 for x in xs where x < k)\n"
    )
    python = {
        "each": [x * k for x in xs if x > k],
        "kept": [x for x in xs if x != k],
        "pairs": [sum(y for y in xs if y < x) for x in xs],
        "some": any(x == k for x in xs),
        "every": all(x >= k for x in xs if x != 0),
        "found": next((x * 2 for x in xs if x < k), None),
    }
    for name, want in python.items():
        assert _evaluate(program, name, env) == want


def test_a_comprehension_over_a_list_judges_every_element_before_it_makes_one():
    # as for a kind or an ordered one: the `where`'s error comes first, whichever element fails
    text = "def f(xs: list<int>) -> list<float> = [1 / (x - 1) for x in xs where 10 / x > 0]"
    assert _error(text, "f", {"xs": [1, 0]}) == ("division by zero", 1, text.index("10 / x") + 1)


class _At100:
    """A world at 100 s, of no objects."""

    def now(self):
        return 100

    def scan(self, kind):
        return []


def test_a_clock_first_finds_in_a_list_is_a_number_where_deadlines_are_recorded():
    # The symbolic clock (recording the instants a comparison would change at) must not leak out
    # of `first`: what it found is compared as a number, and 102 s >= 105 s waits for nothing.
    prog = _program("def f(xs: list<int>) = first(now() + 1s * x for x in xs where x > 0) >= 105s")
    ev = Evaluator(prog, _At100())
    ev.deadlines = set()
    assert ev.eval(prog.defs["f"].body, {"xs": [0, 2, 3]}) is False
    assert ev.deadlines == set()


_summands = st.lists(st.none() | st.integers() | st.builds(Fraction, st.integers(), st.sampled_from([1, 2, 10, 1000]))
                     | st.floats(allow_nan=False, allow_infinity=False), max_size=8)


@given(_summands)
def test_sum_skips_none_and_adds_exactly_unless_a_float_is_among_its_numbers(xs):
    # `sum` takes a list of only ints on a shortcut (Python's sum): it gives what adding every
    # number other than none exactly, or as floats where one is a float, gives.
    numbers = [exact(x) if isinstance(x, Fraction) else x for x in xs if x is not None]
    total = _sum(None, None, [[exact(x) if isinstance(x, Fraction) else x for x in xs]])
    if any(isinstance(x, float) for x in numbers):
        expected = sum(numbers)
    else:
        expected = exact(sum(Fraction(x) for x in numbers))
    assert total == expected and type(total) is type(expected)


def test_log_is_the_natural_logarithm_of_an_int_a_float_or_a_quantity():
    assert _evaluate("def f(a: int) -> float = log(a)", "f", {"a": 1}) == 0.0
    assert _evaluate("def f(a: float) -> float = log(a)", "f", {"a": 2.0}) == pytest.approx(0.6931471805599453)
    # A quantity is exact: a huge one is taken apart rather than overflowing a float first.
    huge = Fraction(10**400, 3)
    assert _evaluate("def f(a: quantity) -> float = log(a)", "f", {"a": huge}) == pytest.approx(400 * 2.302585092994046 - 1.0986122886681098)


@pytest.mark.parametrize("value, shown", [(0, "0"), (-2, "-2"), (-0.5, "-0.5"), (Fraction(-3, 2), "-3/2")])
def test_log_of_zero_or_less_is_an_error_that_names_the_value(value, shown):
    text = "def f(a: any) -> float = log(a)"
    with pytest.raises(EvalError) as e:
        _evaluate(text, "f", {"a": value})
    (d,) = e.value.diagnostics
    assert (d.message, d.span.line, d.span.col) == (f"`log` of {shown}: the logarithm is defined for positive numbers only", 1, 26)
    assert d.hint == "guard it, as in `if x > 0 then log(x) else 0.0`"


@pytest.mark.parametrize("arg", ['"a"', "[1]", "true", "{}"])
def test_the_checker_refuses_log_of_anything_but_a_number(arg):
    with pytest.raises(KonvergeError) as e:
        _program(f"def f() -> float = log({arg})")
    (d,) = e.value.diagnostics
    assert d.code == "E035" and d.message.startswith("`log` needs a number, but this is a ")


def test_log_of_a_value_the_checker_could_not_type_is_refused_in_the_language_words():
    assert _error("def f(a: any) -> float = log(a)", "f", {"a": True}) == ("`log` needs a number, but this is a bool", 1, 26)
    assert _error("def f(a: any) -> float = log(a)", "f", {"a": "x"}) == ('`log` needs a number, but this is the text "x"', 1, 26)


@pytest.mark.parametrize(("text", "expected"), [
    ("10.96.0.1", True), ("2001:db8::ffff", True), ("None", False), ("", False), ("10.96.0.300", False),
    ("10.96.0.0/12", False), (None, False),
])
def test_is_ip_tells_an_address_from_any_other_text(text, expected):
    # as the API server judges a field of type `ip`, so that a policy can judge a Service's clusterIP
    assert _evaluate("def f(s: string?) -> bool = is_ip(s)", "f", {"s": text}) is expected


def test_only_keeps_the_entries_whose_key_is_listed():
    # `only(m, ks)`: a map filtered by key, which no comprehension can build (the language has
    # none for maps); disruption.konv keeps a budget's disruptedPods of the pods still there.
    text = "def f(m: map<int>, ks: list<string>) -> map<int> = only(m, ks)"
    assert _evaluate(text, "f", {"m": {"a": 1, "b": 2, "c": 3}, "ks": ["c", "a", "z"]}) == {"a": 1, "c": 3}
    assert _evaluate(text, "f", {"m": {"a": 1}, "ks": []}) == {}
    assert _evaluate(text, "f", {"m": None, "ks": ["a"]}) == {}


@pytest.mark.parametrize("keys", ['"ab"', "5", "{}"])
def test_the_checker_refuses_only_of_anything_but_a_list_of_keys(keys):
    # a string would be read a character at a time: only(m, "ab") kept the keys "a" and "b"
    with pytest.raises(KonvergeError) as e:
        _program(f"def f(m: map<int>) -> map<int> = only(m, {keys})")
    (d,) = e.value.diagnostics
    assert d.code == "E035" and d.message.startswith("`only` needs a list of keys, but this is a ")


@given(a=_VALUES, b=_VALUES)
@example(a=10**5000, b=None)  # more digits than Python prints: the user's error, as _builtin makes it
@example(a=-(10**5000), b=None)
@example(a=2**63, b=None)
@example(a=-(2**63), b=None)
def test_len_coalesce_and_str_written_out_give_what_the_built_ins_give(a, b):
    # Written into the code without _builtin's calls, they give its values and its errors.
    prog = _program("def n(a: any) -> any = len(a)\ndef c(a: any, b: any) -> any = coalesce(a, b)\n"
                    "def s(a: any) -> any = str(a)")
    ev = Evaluator(prog, None)
    for name, args in (("n", [a]), ("c", [a, b]), ("s", [a])):
        call = prog.defs[name].body
        try:
            expected = _builtin(ev, call, _BUILTINS[call.fn], args)
        except EvalError as e:
            with pytest.raises(EvalError) as got:
                ev.eval(call, dict(zip("ab", args)))
            assert got.value.diagnostics == e.diagnostics
        else:
            assert ev.eval(call, dict(zip("ab", args))) == expected


@given(a=_VALUES, b=st.one_of(_VALUES, st.sampled_from(["10.0.0.0/8", "10.1.2.3", "a/b"])))
def test_membership_written_out_is_what_contains_gives(a, b):
    # A list's or a map's membership is written into the code; the rest is left to _contains.
    prog = _program("def i(a: any, b: any) -> any = a in b\ndef o(a: any, b: any) -> any = a not in b")
    ev = Evaluator(prog, None)
    try:
        expected = _contains(b, a)
    except TypeError:  # a list or a map looked for in a map: as Python says it
        for name in "io":
            with pytest.raises(TypeError):
                ev.eval(prog.defs[name].body, {"a": a, "b": b})
    else:
        assert ev.eval(prog.defs["i"].body, {"a": a, "b": b}) is expected
        assert ev.eval(prog.defs["o"].body, {"a": a, "b": b}) is (not expected)


def test_coalesce_and_len_of_the_clock_where_deadlines_are_recorded_see_a_number():
    # As _builtin settles its arguments: `coalesce` gives the clock's number, not the symbolic
    # clock, so comparing it records no deadline; `len` counts a list that holds one.
    prog = _program("def c(x: int?) = coalesce(x, now()) >= 105s\ndef n(x: any) = len([now()]) + len(x)")
    ev = Evaluator(prog, _At100())
    ev.deadlines = set()
    assert ev.eval(prog.defs["c"].body, {"x": None}) is False
    assert ev.deadlines == set()
    assert ev.eval(prog.defs["n"].body, {"x": "ab"}) == 3


@given(text=st.text(alphabet="ab-._A9\n é", max_size=8),
       pattern=st.sampled_from(["[a-z0-9]([-a-z0-9]*[a-z0-9])?", "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
                                "[0-9]+%", "a*", "\\w+", ".*b"]))
def test_matches_is_a_match_of_the_whole_text_with_ascii_classes(text, pattern):
    import re

    got = _evaluate("def f(s: string, p: string) = matches(s, p)", "f", {"s": text, "p": pattern})
    assert got is (re.fullmatch(pattern, text, re.ASCII) is not None)


def test_matches_of_none_is_false_and_a_bad_pattern_made_at_run_time_is_an_error():
    text = 'def f(s: string?, p: string) = matches(s, p + "")'
    assert _evaluate(text, "f", {"s": None, "p": "a*"}) is False
    assert _error(text, "f", {"s": "x", "p": "[a"}) == \
        ("`[a` is not a regular expression: unterminated character set", 1, 32)


def test_str_writes_a_number_as_its_text_shows_it_a_quantity_or_a_duration_in_its_unit():
    text = ("def n(a: int) -> string = str(a)\ndef f(a: bool) -> string = str(a)\n"
            "def q() -> string = str(2Gi)\ndef d() -> string = str(90s)\ndef c() -> string = str(250m)")
    assert [_evaluate(text, "n", {"a": a}) for a in (80, -3, 0)] == ["80", "-3", "0"]
    assert [_evaluate(text, "f", {"a": a}) for a in (True, False)] == ["true", "false"]
    assert [_evaluate(text, name, {}) for name in ("q", "d", "c")] == ["2Gi", "90s", "250m"]


_SHAPES = [{"size": 3, "owner": {"kind": "Set"}}, {"size": 3, "owner": None}, {"size": 3, "owner": {}}, {"size": 3},
           {}, None, "text", [1], 7]


def _field_read(value, path: tuple[str, ...]):
    """A field path read as the language reads it: none past a value that is no map or lacks the field."""
    for name in path:
        value = value.get(name) if type(value) is dict else None
    return value


def test_a_field_read_as_a_maps_entry_first_gives_the_languages_value_where_a_value_lacks_it():
    # Each field is read as a map's entry first (_Source.generate); a value that is no map, or a map
    # without the field, has the whole evaluated again, as the language reads fields.
    text = """
record Owner { kind: string }
kind Item { size: int = 0
  owner: Owner? }
def size(i: Item) -> int? = i.size
def owner_kind(i: Item) -> string? = i.owner.kind
def both(i: Item, j: Item) -> list<string?> = [str(i.size), j.owner.kind, str(len([x.size for x in [i, j]]))]
"""
    for i in _SHAPES:
        assert _evaluate(text, "size", {"i": i}) == _field_read(i, ("size",))
        assert _evaluate(text, "owner_kind", {"i": i}) == _field_read(i, ("owner", "kind"))
        for j in _SHAPES:
            got = _evaluate(text, "both", {"i": i, "j": j})
            assert got[1] == _field_read(j, ("owner", "kind")), (i, j)
    message, line, _ = _error(text, "owner_kind", {})
    assert message == "`i` is not bound" and line == 6



def test_defs_nested_in_one_another_that_fall_back_call_the_innermost_once_a_level_then_once(monkeypatch):
    # Falling back evaluates the whole again, the calls made before the failure too: a def falls
    # back once, then goes to the code that reads fields as the language does at once, so that a
    # chain of defs, each of which falls back after calling the next, is not 2^depth calls.
    text = "def d0(i: map, m: map, k: string) -> int? = m[k] + (if i.x == none then 0 else 1)\n" + "".join(
        f"def d{j}(i: map, m: map, k: string) -> int = len([d{j - 1}(i, m, k) for y in [1]])"
        " + (if i.x == none then 0 else 1)\n" for j in range(1, 12))
    import engine.eval as E

    reads = []
    index = E._index
    monkeypatch.setattr(E, "_index", lambda base, i: reads.append(i) or index(base, i))
    prog = _program(text)
    ev = Evaluator(prog, None)
    env = {"i": {}, "m": {"a": 1}, "k": "a"}
    assert ev.eval(prog.defs["d11"].body, env) == 1
    assert len(reads) <= 12  # the innermost read once a level at most, not 2^11 times
    reads.clear()
    assert ev.eval(prog.defs["d11"].body, env) == 1
    assert len(reads) == 1
