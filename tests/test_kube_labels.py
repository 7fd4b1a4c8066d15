"""kubectl's label selectors (`get -l`): apimachinery's grammar, its matching and its errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.kube.labels import Requirement, SelectorError, go_quote, kubectl_selector, matches, parse_selector
from engine.kube.tables import selector_text

LABELS = {"app": "web", "tier": "api", "gen": "3"}


@pytest.mark.parametrize("text, selects", [
    ("app=web", True), ("app==web", True), ("app!=web", False), ("app!=db", True), ("team!=a", True),
    ("tier in (api,db)", True), ("tier in (db)", False), ("tier notin (db)", True), ("team notin (a)", True),
    ("app", True), ("team", False), ("!team", True), ("!app", False),
    ("app=web,tier=api", True), ("app=web,tier=db", False),  # a comma is AND
    ("app = web , tier in ( api )", True),  # blanks between tokens
    ("gen>2", True), ("gen<3", False), ("app>1", False),  # gt, lt: integers only
    ("", True), ("team=", False), ("team in ()", False), ("in in (in)", False),  # `in` is a key or a value there
])
def test_selectors_select_as_kubectl_does(text, selects):
    assert matches(parse_selector(text), LABELS) is selects


def test_requirements_come_sorted_by_key_with_their_values_sorted():
    assert parse_selector("z in (b,a),a,!m") == (
        Requirement("a", "exists"), Requirement("m", "!"), Requirement("z", "in", ("a", "b")))


@pytest.mark.parametrize("text, message", [
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("component not in (x)", "unable to parse requirement: found 'not', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b,,c", "found ',', expected: identifier after ','"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value "
            "must be an integer"),
    ("-a=b", 'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of alphanumeric '
             "characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
    ("app:monolith", 'unable to parse requirement: <nil>: Invalid value: "app:monolith": name part must consist'),
    ("a=b.", 'unable to parse requirement: values[0][a]: Invalid value: "b.": a valid label must be an empty '
             "string or consist of alphanumeric characters"),
])
def test_a_bad_selector_is_refused_with_apimachinerys_message(text, message):
    with pytest.raises(SelectorError) as e:
        parse_selector(text)
    assert str(e.value).startswith(message)


NAME_FORMAT = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
               "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
               "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
PREFIX_FORMAT = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                 "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
VALUE_FORMAT = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
                "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
KEY_ERROR = "unable to parse requirement: <nil>: Invalid value: "


@pytest.mark.parametrize("text, message", [
    # IsQualifiedName: the prefix's problems first, then the name's length and its pattern apart
    ("a/=b", KEY_ERROR + '"a/": name part must be non-empty; name part ' + NAME_FORMAT),
    ("Foo_/-a", KEY_ERROR + '"Foo_/-a": prefix part ' + PREFIX_FORMAT + "; name part " + NAME_FORMAT),
    ("/a", KEY_ERROR + '"/a": prefix part must be non-empty'),
    ("p" * 254 + "/a", KEY_ERROR + f'"{"p" * 254}/a": prefix part must be no more than 253 characters'),
    ("k" * 64 + ".", KEY_ERROR + f'"{"k" * 64}.": name part must be no more than 63 characters; name part '
     + NAME_FORMAT),
    # IsValidLabelValue: the length and the pattern both
    ("a=" + "v" * 64 + "-", 'unable to parse requirement: values[0][a]: Invalid value: "' + "v" * 64 + '-": must be '
     "no more than 63 characters; " + VALUE_FORMAT),
    # Go's %q: a control character escaped, not printed raw
    ("a=x\x1b[2J", 'unable to parse requirement: values[0][a]: Invalid value: "x\\x1b[2J": ' + VALUE_FORMAT),
    ("a\tb=c", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),  # a tab: a blank
    # strconv.ParseInt(…, 10, 64): int64 only
    ("gen<99999999999999999999", "unable to parse requirement: values[0]: Invalid value: "
     "\"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer"),
    ("gen>1_000", "unable to parse requirement: values[0]: Invalid value: \"1_000\": for 'Gt', 'Lt' operators, the "
     "value must be an integer"),
])
def test_a_bad_key_or_value_gets_apimachinerys_message_word_for_word(text, message):
    with pytest.raises(SelectorError) as e:
        parse_selector(text)
    assert str(e.value) == message


@pytest.mark.parametrize("label, selector, selects", [
    ("6", "gen>5", True), ("+6", "gen>5", True), ("-6", "gen<5", True), ("9223372036854775807", "gen>5", True),
    ("1_000", "gen>5", False), ("99999999999999999999", "gen>5", False), ("9223372036854775808", "gen>5", False),
    (" 6", "gen>5", False), ("٦", "gen>5", False),  # Python's int() would read these; Go's ParseInt does not
    ("-9223372036854775808", "gen<0", True), ("-9223372036854775809", "gen<0", False),
])
def test_gt_and_lt_read_a_label_as_gos_parseint_does(label, selector, selects):
    assert matches(parse_selector(selector), {"gen": label}) is selects


def test_a_bound_outside_int64_is_refused():
    with pytest.raises(SelectorError, match="must be an integer"):
        parse_selector("gen>9223372036854775808")
    assert parse_selector("gen>9223372036854775807") == (Requirement("gen", "gt", ("9223372036854775807",)),)
    with pytest.raises(SelectorError, match="a valid label must be"):  # a bound is a label value: no sign
        parse_selector("gen<-5")


def test_go_quote_escapes_as_gos_percent_q():
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\x1b\n\t\x7f\xa0é\U0001F600\u200b") == '"\\x1b\\n\\t\\x7f\\u00a0é\U0001F600\\u200b"'
    assert go_quote("\udcff") == '"\\xff"'  # a byte that is not UTF-8, as the shell passed it


@pytest.mark.parametrize("text, sent", [("", ""), (None, ""), ("  ", ""), ("\v\u3000app=web\n", "app=web"),
                                        ("\x1capp", "\x1capp")])  # \x1c: Python's strip() would take it
def test_kubectl_trims_the_selector_as_go_trims_space(text, sent):
    assert kubectl_selector(text) == sent


KEYS = st.sampled_from(["app", "tier", "example.com/team", "a_b.c-d"])
VALUES = st.lists(st.sampled_from(["web", "api", "x-1", "A.b_c", ""]), min_size=1, max_size=3, unique=True)


@given(st.lists(st.tuples(KEYS, st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]), VALUES), max_size=4),
       st.dictionaries(KEYS, st.sampled_from(["web", "api", "x-1", ""]), max_size=4))
def test_a_selector_printed_as_kubectl_prints_it_parses_back_to_the_same_requirements(parts, labels):
    ops = {"=": "In", "!=": "NotIn", "in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}
    expressions = [{"key": k, "operator": ops[op], "values": vs if op in ("in", "notin") else vs[:1]}
                   for k, op, vs in parts if op not in ("exists", "!")]
    expressions += [{"key": k, "operator": ops[op]} for k, op, _ in parts if op in ("exists", "!")]
    text = selector_text(None, expressions)
    parsed = parse_selector("" if text == "<none>" else text)
    # the requirements the expressions are, in the order of their keys (Python's sort and Go's keep
    # equal keys' order differently, but ours is stable and the text lists them so)
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    expected = [Requirement(e["key"], operators[e["operator"]], tuple(sorted(set(e.get("values", [])))))
                for e in expressions]
    assert parsed == tuple(sorted(expected, key=lambda r: r.key))
    # the same requirements, so the same objects: Kubernetes' LabelSelector semantics
    def holds(e):
        has, values = e["key"] in labels, e.get("values", [])
        return {"In": has and labels.get(e["key"]) in values, "NotIn": not has or labels[e["key"]] not in values,
                "Exists": has, "DoesNotExist": not has}[e["operator"]]
    assert matches(parsed, labels) is all(holds(e) for e in expressions)
