"""The formatter's promises: its output parses back to the same tree, formatting
is idempotent, comments survive, and the layout matches the golden files.

Regenerate the golden files after a deliberate layout change with
`KONVERGE_UPDATE_GOLDEN=1 python -m pytest tests/test_fmt.py` and review the diff.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ast as A
from engine.errors import KonvergeError
from engine.fmt import WIDTH, format_module, format_text
from engine.parse import parse_text
from tests.strategies import exprs, modules

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "fmt"
GOLDEN_INPUTS = sorted(GOLDEN.glob("*.konv"))

# Generated modules are large; the health check would complain about their size.
big_inputs = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def comment_texts():
    # No control or line-separator characters: a comment runs to the end of its line.
    body = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
    return body.map(lambda s: "# " + s)


def comment_multiset(module: A.Module) -> Counter:
    return Counter(c.text for c in module.comments)


# ---- properties over generated trees ---------------------------------------------------------


@big_inputs
@given(modules)
def test_formatted_module_parses_back_to_the_same_tree(module):
    assert parse_text(format_module(module), module.path) == module


@big_inputs
@given(modules)
def test_formatting_generated_modules_is_idempotent(module):
    text = format_module(module)
    assert format_text(text, module.path) == text


@given(exprs)
def test_formatted_expression_parses_back_to_the_same_tree(expr):
    module = A.Module("<expr>", (A.InvariantDecl("e", expr),))
    assert parse_text(format_module(module), "<expr>") == module


@big_inputs
@given(modules, st.data())
def test_comments_inserted_anywhere_survive_formatting(module, data):
    lines = []
    for line in format_module(module).split("\n"):
        if data.draw(st.booleans(), label="own-line comment here"):
            lines.append(data.draw(st.sampled_from(["", "  ", "      "])) + data.draw(comment_texts()))
        if line.strip() and data.draw(st.booleans(), label="trailing comment here"):
            line += data.draw(st.sampled_from([" ", "    "])) + data.draw(comment_texts())
        lines.append(line)
    commented = "\n".join(lines)
    before = parse_text(commented, module.path)

    formatted = format_text(commented, module.path)
    after = parse_text(formatted, module.path)

    assert after == module
    assert comment_multiset(after) == comment_multiset(before)
    assert format_text(formatted, module.path) == formatted


# ---- golden files ------------------------------------------------------------------------------


def test_there_are_golden_files_for_each_area():
    names = {p.stem for p in GOLDEN_INPUTS}
    assert {"objects", "kinds", "controller_pick", "policies", "scenario", "comments", "long_expressions"} <= names


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_golden_output(source: Path):
    expected_path = source.with_suffix(".expected")
    actual = format_text(source.read_text(), str(source))
    if os.environ.get("KONVERGE_UPDATE_GOLDEN"):
        expected_path.write_text(actual)
    assert actual == expected_path.read_text()
    assert format_text(actual, str(source)) == actual


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_golden_output_keeps_every_comment_and_the_tree(source: Path):
    original = parse_text(source.read_text(), str(source))
    formatted = parse_text(format_text(source.read_text(), str(source)), str(source))
    assert formatted == original
    assert comment_multiset(formatted) == comment_multiset(original)


def test_all_constructs_file_formats_stably():
    path = ROOT / "tests" / "data" / "all_constructs.konv"
    text = path.read_text()
    once = format_text(text, str(path))
    assert parse_text(once, str(path)) == parse_text(text, str(path))
    assert comment_multiset(parse_text(once, str(path))) == comment_multiset(parse_text(text, str(path)))
    assert format_text(once, str(path)) == once


def test_every_spec_and_rule_file_formats_stably():
    files = sorted((ROOT / "specs").rglob("*.konv")) + sorted((ROOT / "rules").rglob("*.konv"))
    if not files:
        pytest.skip("no .konv files in specs/ or rules/ yet")
    for path in files:
        text = path.read_text()
        once = format_text(text, str(path))
        assert parse_text(once, str(path)) == parse_text(text, str(path)), path
        assert format_text(once, str(path)) == once, path


# ---- examples ----------------------------------------------------------------------------------


def fmt_expr(expr) -> str:
    text = format_module(A.Module("<expr>", (A.InvariantDecl("e", expr),)))
    prefix, suffix = 'invariant "e" { ', " }\n"
    assert text.startswith(prefix) and text.endswith(suffix), text
    return text[len(prefix):-len(suffix)]


a, b, c = A.Name("a"), A.Name("b"), A.Name("c")


@pytest.mark.parametrize("expr, text", [
    (A.Binary("-", a, A.Binary("-", b, c)), "a - (b - c)"),
    (A.Binary("-", A.Binary("-", a, b), c), "a - b - c"),
    (A.Binary("*", A.Binary("+", a, b), c), "(a + b) * c"),
    (A.Binary("+", a, A.Binary("*", b, c)), "a + b * c"),
    (A.Binary("==", A.Binary("==", a, b), c), "(a == b) == c"),
    (A.Binary("<", a, A.Binary("in", b, c)), "a < (b in c)"),
    (A.Binary("not in", a, b), "a not in b"),
    (A.Unary("not", A.Binary("==", a, b)), "not a == b"),
    (A.Binary("==", A.Unary("not", a), b), "(not a) == b"),
    (A.Unary("not", A.Binary("and", a, b)), "not (a and b)"),
    (A.Binary("and", A.Binary("or", a, b), c), "(a or b) and c"),
    (A.Binary("or", a, A.Binary("and", b, c)), "a or b and c"),
    (A.Unary("-", A.Binary("+", a, b)), "-(a + b)"),
    (A.Attr(A.Unary("-", a), "x"), "(-a).x"),
    (A.Unary("-", A.Attr(a, "x")), "-a.x"),
    (A.Attr(A.IPLit("10.0.0.1"), "x"), "(10.0.0.1).x"),
    (A.Index(A.CIDRLit("10.96.0.0/12"), A.Number("0")), "10.96.0.0/12[0]"),
    (A.Binary("+", A.IfElse(a, b, c), a), "(if a then b else c) + a"),
    (A.IfElse(a, A.IfElse(b, c, a), A.Binary("or", b, c)), "if a then if b then c else a else b or c"),
    (A.Binary("and", A.Quantifier("forall", A.KindSource("node", "n"), None, a), b),
     "(forall node n: a) and b"),
    (A.Call("count", (A.Comprehension(None, A.KindSource("pod", "p"), a),)), "count(pod p where a)"),
    (A.Call("f", (A.Comprehension(a, A.ListSource("x", b)), c)), "f([a for x in b], c)"),
    (A.MapLit((A.MapItem("in", a), A.MapItem("a b", b), A.MapItem("ok", c))), '{"in": a, "a b": b, ok: c}'),
    (A.String('tab\tquote"é'), '"tab\\tquote\\"é"'),
    (A.Unit("1.5", "Gi"), "1.5Gi"),
])
def test_expressions_get_the_fewest_parentheses_that_keep_their_meaning(expr, text):
    assert fmt_expr(expr) == text
    assert parse_text(f'invariant "e" {{ {text} }}', "<t>").decls[0].cond == expr


def test_names_that_are_not_kubernetes_names_are_quoted():
    module = A.Module("<t>", (A.ObjectDecl("node", "Worker 1", "kube system", (A.FieldEntry("for", a),)),))
    assert format_module(module) == 'node "Worker 1" in "kube system" { "for": a }\n'


def test_object_with_only_fields_fits_on_one_line():
    assert format_text("node w {\n  cpu: 4\n  memory: 8Gi\n}\n") == "node w { cpu: 4  memory: 8Gi }\n"


def test_object_with_a_nested_block_goes_one_entry_per_line():
    assert format_text("node w { cpu: 4 labels { a: 1 } }") == "node w {\n  cpu: 4\n  labels { a: 1 }\n}\n"


def test_object_too_wide_for_one_line_goes_one_entry_per_line():
    entries = "  ".join(f"field{i}: {i}" for i in range(12))
    out = format_text(f"node w {{ {entries} }}")
    assert out.count("\n") == 14
    assert all(len(line) <= WIDTH for line in out.splitlines())


def test_a_comment_inside_an_object_keeps_it_multi_line():
    assert format_text("node w { cpu: 4  # four\n}") == "node w {\n  cpu: 4  # four\n}\n"


def test_a_trailing_comment_on_a_one_line_object_stays_after_it():
    assert format_text("node w {\n cpu: 4 }  # small") == "node w { cpu: 4 }  # small\n"


def test_a_comment_inside_a_multi_line_expression_moves_before_its_statement():
    text = "node w {\n  xs: [1,  # one\n    2]\n}\n"
    assert format_text(text) == "node w {\n  # one\n  xs: [1, 2]\n}\n"


def test_comments_after_the_last_declaration_stay_at_the_end():
    assert format_text("import \"a\"\n# the end\n") == 'import "a"\n\n# the end\n'


def test_a_comment_only_file_keeps_its_comments():
    assert format_text("# just\n\n# notes\n") == "# just\n# notes\n"


def test_empty_file_formats_to_nothing():
    assert format_text("") == ""


def test_consecutive_imports_stay_together_and_declarations_are_separated():
    text = 'import "a"\nimport "b"\nnode x {}\nnode y {}\n'
    assert format_text(text) == 'import "a"\nimport "b"\n\nnode x {}\n\nnode y {}\n'


def test_long_lists_break_one_item_per_line_with_a_trailing_comma():
    items = ", ".join(f'"item-number-{i}"' for i in range(10))
    out = format_text(f"def xs() = [{items}]")
    assert out.splitlines()[0] == "def xs() = ["
    assert out.splitlines()[1] == '  "item-number-0",'
    assert out.splitlines()[-2] == '  "item-number-9",'
    assert out.splitlines()[-1] == "]"


def test_formatting_text_with_a_syntax_error_raises_a_konverge_error():
    with pytest.raises(KonvergeError):
        format_text("node w { cpu: }", "bad.konv")
