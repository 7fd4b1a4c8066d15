"""The fast object parser builds exactly the tree Lark builds, or declines.

Every promise is checked against the pure Lark path (`parse_text(…, fast=False)`):
equal trees, equal spans on every node, equal comments, and on broken input the
same diagnostics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine import ast as A
from engine import fastparse
from engine.errors import KonvergeError
from engine.lalr import _parser
from engine.fastparse import KEYWORDS
from engine.parse import parse_text

ROOT = Path(__file__).resolve().parent.parent


# ---- comparing the two paths -------------------------------------------------------


def assert_same(a, b, where="module"):
    """Equal trees, including every span (which `==` leaves out)."""
    assert type(a) is type(b), where
    if attrs.has(type(a)):
        for f in attrs.fields(type(a)):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def outcome(text: str, fast: bool):
    try:
        return parse_text(text, "t.konv", fast=fast)
    except KonvergeError as e:
        return e.diagnostics


def assert_paths_agree(text: str):
    fast, lark = outcome(text, True), outcome(text, False)
    assert_same(fast, lark)  # a Module (comments and spans included) or the diagnostics


def taken_without_lark(text: str) -> A.Module | None:
    """The fast path's module when every declaration is its own (Lark must not be asked)."""
    def refuse(rest):
        raise AssertionError(f"Lark was asked to parse {rest!r}")
    return fastparse.parse(text, "t.konv", refuse)


# ---- generated declarations ------------------------------------------------------------

blanks = st.sampled_from(["", " ", "  ", "\t", "\n", "\n  ", "\r\n", "\f", " # note\n", "# x\n  ", "\n\n"])
sep = st.sampled_from([" ", "  ", "\n", "\n    ", " # why\n  ", "\t"])  # never glues tokens
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
words = st.one_of(names, names, st.sampled_from(sorted(KEYWORDS)))
objnames = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True),
    st.text(max_size=6).map(json.dumps),
    st.sampled_from(["in", "web-", "_x", "10.0.0.1", "a/b"]),
)
quoted = st.one_of(
    st.text(max_size=8).map(json.dumps),
    st.text(max_size=8).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.sampled_from(['"\\q"', '"tab\there"', '"\\u12"', '"open', '"\\u00e9\\n"', '""']),
)
keys = st.one_of(names, names, names, words, st.text(max_size=6).map(json.dumps), quoted)
numbers = st.one_of(
    st.from_regex(r"[0-9]{1,5}(\.[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"[0-9]{1,5}(\.[0-9]{1,3})?", fullmatch=True),
    st.integers(38, 44).map(lambda n: "1" * n),
)
literal_scalars = st.one_of(
    numbers,
    st.builds(lambda n, u: n + u, numbers, st.sampled_from(["Ki", "Mi", "Gi", "m", "ms", "s", "h", "d", "E"])),
    st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
    st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,2}", fullmatch=True),
    st.text(max_size=8).map(json.dumps),
    st.sampled_from(["true", "false", "none", "-3", "- 2.5", "-250m", '"\\u00e9\\n"', '""']),
)
# Values the fast path must leave to Lark (expressions, odd tokens, bad escapes).
odd_scalars = st.one_of(
    quoted,
    st.builds(lambda n, u: n + u, numbers, st.sampled_from(["mi", "x", "Kib"])),
    st.from_regex(r"[0-9]{1,4}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,3}", fullmatch=True),
    st.sampled_from(["--1", "-x", "-\"s\"", "x", "a.b", "f(1)", "1 + 2", "[1 for x in y]", "1.2.3.4.5",
                     "not true", "if true then 1 else 2", "{}", "[]", "[,]", "1.", "0x10", "-[1]"]),
)
scalars = st.one_of(literal_scalars, literal_scalars, literal_scalars, literal_scalars, odd_scalars)


plain_names = names.filter(lambda w: w not in KEYWORDS)
clean_objnames = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True), st.text(max_size=6).map(json.dumps))
clean_keys = st.one_of(plain_names, plain_names, st.text(max_size=6).map(json.dumps))
clean_scalars = literal_scalars.filter(lambda v: len(v) < 40)


def _collections(inner, keys):
    items = st.lists(st.tuples(inner, sep), max_size=3)
    lists = st.builds(
        lambda xs, trailing, b: "[" + b + ",".join(x + s for x, s in xs)
        + ("," if trailing and xs else "") + "]", items, st.booleans(), blanks)
    pairs = st.lists(st.tuples(keys, inner, sep), max_size=3)
    maps = st.builds(
        lambda ps, trailing, b: "{" + b + ",".join(f"{k}:{s}{v}" for k, v, s in ps)
        + ("," if trailing and ps else "") + "}", pairs, st.booleans(), blanks)
    return st.one_of(lists, maps)


def _entries(inner, keys, values, item_keys, objnames):
    field = st.builds(lambda k, b1, b2, v: f"{k}{b1}:{b2}{v}", keys, blanks, blanks, values)
    block = st.builds(lambda k, b, es: f"{k}{b}{{{es}}}", keys, blanks, inner)
    item = st.builds(lambda k, n, b, es: f"{k} {n}{b}{{{es}}}", item_keys, objnames, blanks, inner)
    entry = st.one_of(field, field, block, item)
    return st.lists(st.tuples(sep, entry), max_size=4).map(lambda es: "".join(s + e for s, e in es) + " ")


def _object_parts(kinds, keys_, item_keys, objnames_, scalars_):
    values_ = st.recursive(scalars_, lambda inner: _collections(inner, keys_), max_leaves=6)
    entries = st.recursive(st.just(" "), lambda inner: _entries(inner, keys_, values_, item_keys, objnames_),
                           max_leaves=8)
    return kinds, objnames_, entries


_ANY_PARTS = _object_parts(st.one_of(*[names] * 8, st.sampled_from(sorted(KEYWORDS))), keys, words,
                           objnames, scalars)
_CLEAN_PARTS = _object_parts(plain_names, clean_keys, plain_names, clean_objnames, clean_scalars)


@st.composite
def object_decls(draw, clean=False):
    """Object declarations; `clean` ones have literal values only and must be taken."""
    kinds, objnames_, entries = _CLEAN_PARTS if clean else _ANY_PARTS
    head = f"{draw(kinds)}{draw(sep)}{draw(objnames_)}"
    if draw(st.booleans()):
        head += f"{draw(sep)}in{draw(sep)}{draw(objnames_)}"
    return f"{head}{draw(blanks)}{{{draw(entries)}}}{draw(st.sampled_from(['', ' # done', '  ']))}"


OTHER_DECLS = [
    "kind Pod { cpu: quantity  labels: map<string> = {} }",
    "cluster kind Node {\n  cpu: quantity\n}",
    'import "std"',
    "def double(x) = x * 2",
    "def f() = 3",
    "controller c {\n  rule r\n    for pod p\n    set p.ready = true\n}",
    'invariant "i" { 1 < 2 }',
    "pod computed { cpu: 1 + 2 }",
]


@st.composite
def files(draw):
    """Object declarations mixed with others, one per column-1 line, sometimes broken."""
    parts = draw(st.lists(st.one_of(object_decls(), object_decls(clean=True), st.sampled_from(OTHER_DECLS)),
                          min_size=1, max_size=5))
    text = draw(st.sampled_from(["", "# header\n", "\n", "  "])) + "\n".join(parts) + "\n"
    if draw(st.integers(0, 4)) == 0:  # break it: cut the text short or insert a stray token
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", "}", "{", ":", "in ", "\n}\n", "$", "pod x {"])) \
            + (text[at:] if draw(st.booleans()) else "")
    return text


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(object_decls())
def test_one_object_declaration_parses_as_lark_parses_it(text):
    assert_paths_agree(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(object_decls(clean=True), st.sampled_from(["", "\n", "\n# after\n"]))
def test_literal_object_declarations_are_taken_by_the_fast_path(text, tail):
    # A word at column 1 starts a declaration; an entry there is rightly left to Lark.
    assume(not re.search(r"\n[A-Za-z_]", text))
    text += tail
    module = taken_without_lark(text)
    assert module is not None
    assert_same(module, parse_text(text, "t.konv", fast=False))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_files_mixing_objects_and_other_declarations_parse_as_lark_parses_them(text):
    assert_paths_agree(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.data())
def test_syntax_errors_give_lark_diagnostics(text, data):
    at = data.draw(st.integers(0, len(text)))
    broken = text[:at] + data.draw(st.sampled_from(["{", "}", ":", "]", '"', "'", "@", "9" * 45])) + text[at:]
    assert_paths_agree(broken)


# ---- examples -------------------------------------------------------------------------------

SPEC = '''\
# a small cluster
cluster kind Node { cpu: quantity  memory: quantity  labels: map<string> = {} }
node worker-1 { cpu: 4  memory: 8Gi  labels { zone: "a" } }   # the first
pod web-17 in shop {
  labels { app: "web" tier: "3" }
  node: "worker-17"
  container nginx { image: "nginx:1.27"  cpu: 250m  memory: 128Mi }
  restartPolicy: "Always"
  ports: [80, 443,]
  offsets: [-3, - 2.5, -250m]
  selector: {app: "web", "app.kubernetes.io/name": "web"}
  cidr: 10.0.0.0/8  ip: 10.0.0.1  up: true  down: false  owner: none
}
controller scheduler {
  rule bind
    for pod p
    where p.node == none
    set p.node = "worker-1"
}
service web in shop { selector { app: "web" } ports: [80] }
'''


def test_a_mixed_spec_parses_as_lark_parses_it():
    assert_paths_agree(SPEC)


def test_the_all_constructs_file_parses_as_lark_parses_it():
    assert_paths_agree((ROOT / "tests" / "data" / "all_constructs.konv").read_text())


@pytest.mark.parametrize("path", sorted([*ROOT.glob("specs/**/*.konv"), *ROOT.glob("rules/**/*.konv")]),
                         ids=str)
def test_shipped_specs_and_rules_parse_as_lark_parses_them(path):
    assert_paths_agree(path.read_text())


def test_literal_objects_never_reach_lark():
    text = 'node a { cpu: 4 }\n# between\npod b in c {\n  container x { cpu: 1 }  # why\n}\n'
    module = taken_without_lark(text)
    assert module is not None
    assert_same(module, parse_text(text, "t.konv", fast=False))


def test_an_object_with_an_expression_is_left_to_lark():
    assert taken_without_lark("pod a { cpu: 1 + 2 }\n") is None
    assert_paths_agree("pod a { cpu: 1 + 2 }\npod b { cpu: 3 }\n")


def test_an_entry_at_column_one_inside_an_object_stays_inside_it():
    # `container b { }` starts at column 1 and is a whole object by itself, but
    # here it is an entry of `pod a`.
    assert_paths_agree("pod a {\ncontainer b { }\ncontainer c { }\n}\n")


def test_a_keyword_key_after_a_value_is_left_to_lark():
    # After a value Lark's lexer reads `order` as the keyword, so this is a syntax error.
    assert_paths_agree("pod a { x: 1 order: 2 }\n")
    # At the first entry it is a plain name.
    assert_paths_agree("pod a { order: 2 in: 3 }\n")


def test_a_declaration_starting_with_a_keyword_after_an_object_gives_lark_diagnostics():
    assert_paths_agree("def f() = 3\npod a { x: 1 }\nin b { }\n")


def test_too_long_numbers_and_bad_escapes_give_lark_diagnostics():
    assert_paths_agree("pod a { x: " + "9" * 41 + " }\n")
    assert_paths_agree('pod a { x: "\\q" }\n')
    assert_paths_agree('pod a { "\\q": 1 }\n')


def test_comments_and_spans_survive_the_merge():
    text = "# one\nkind K { a: int }\npod a {  # two\n  x: 1\n}\ndef f() = 1  # three\n"
    fast = parse_text(text, "t.konv")
    assert [c.text for c in fast.comments] == ["# one", "# two", "# three"]
    assert_same(fast, parse_text(text, "t.konv", fast=False))


# ---- the fast path's copy of the grammar ------------------------------------------------


def test_the_fast_path_uses_the_grammars_terminals():
    # Lark keeps `\n` in a pattern as a real newline.
    patterns = {t.name: t.pattern.value.replace("\n", "\\n") for t in _parser().terminals}
    for name in ("NAME", "OBJNAME", "NUMBER", "UNIT", "IP", "CIDR", "STRING"):
        assert getattr(fastparse, name) == patterns[name], name


def test_the_fast_path_knows_every_keyword():
    words = {t.pattern.value for t in _parser().terminals
             if t.pattern.type == "str" and t.pattern.value.isidentifier()}
    assert words == set(fastparse.KEYWORDS) == set(KEYWORDS)
