"""kubectl's label selectors: `get KIND -l 'app=web,tier in (a,b),!legacy'`.

apimachinery's labels.Parse, token for token: its lexer (`=`, `==`, `!=`, `!`, `(`, `)`, `,`,
`>`, `<`, the keywords `in` and `notin`, and identifiers between them), its recursive descent
and its error messages, and Requirement.Matches. A comma is AND; the requirements come back
sorted by key, as Parse sorts them. Keys are checked as qualified names and values as label
values, as NewRequirement checks them (IsQualifiedName and IsValidLabelValue worded as in
validation.go before apimachinery's `content` package: "must be no more than 63 characters", "a
qualified name"). kubectl trims the `-l` argument first (`kubectl_selector`) and the API server
refuses a bad one.
"""

from __future__ import annotations

import re

import attrs

_SPECIAL = frozenset("=!(),><")
_WHITESPACE = " \t\r\n"
_TOKENS = {")": "ClosedPar", ",": "Comma", "!": "DoesNotExist", "==": "DoubleEquals", "=": "Equals",
           ">": "GreaterThan", "in": "In", "<": "LessThan", "!=": "NotEquals", "notin": "NotIn", "(": "OpenPar"}
_OPERATORS = {"In": "in", "NotIn": "notin", "Equals": "=", "DoubleEquals": "==", "NotEquals": "!=",
              "GreaterThan": "gt", "LessThan": "lt"}
_BINARY = "in, notin, =, ==, !=, gt, lt"  # apimachinery's binaryOperators, joined as its message joins them

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_SUBDOMAIN_FORMAT = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
# unicode.IsSpace, which strings.TrimSpace trims (Python's strip() would also take \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
# The selector's grammar, for a hint.
GRAMMAR = "KEY=VALUE, KEY==VALUE, KEY!=VALUE, KEY in (V1,V2), KEY notin (V1), KEY, !KEY, KEY>N, KEY<N, joined by commas"
_NAME_FORMAT = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
                "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_VALUE_FORMAT = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                 "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


class SelectorError(ValueError):
    """A selector kubectl would refuse; the message is apimachinery's."""


@attrs.frozen(slots=True)
class Requirement:
    key: str
    operator: str  # in, notin, =, ==, !=, gt, lt, exists, !
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        """Requirement.Matches: NotIn and != hold of an object without the key, as does !key."""
        has = self.key in labels
        if self.operator in ("in", "=", "=="):
            return has and labels[self.key] in self.values
        if self.operator in ("notin", "!="):
            return not has or labels[self.key] not in self.values
        if self.operator == "exists":
            return has
        if self.operator == "!":
            return not has
        value, bound = _int64(labels.get(self.key)), _int64(self.values[0])
        if value is None or bound is None:
            return False
        return value > bound if self.operator == "gt" else value < bound


def matches(selector: tuple[Requirement, ...], labels: dict | None) -> bool:
    """Whether every requirement holds of these labels (an empty selector selects everything)."""
    return all(r.matches(labels or {}) for r in selector)


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """labels.Parse: the requirements, sorted by key. Raises SelectorError with its message."""
    return tuple(sorted(_Parser(_lex(text)).parse(), key=lambda r: r.key))


def _lex(s: str) -> list[tuple[str, str]]:
    items, pos, n = [], 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append(("End", ""))
            return items
        if s[pos] in _SPECIAL:
            # The longest operator that is one: `!=`, `==`, else the one symbol. Every special symbol
            # is an operator by itself, so Go's ErrorToken ("error expected: keyword found") never comes.
            op = s[pos:pos + 2] if s[pos:pos + 2] in _TOKENS else s[pos]
            items.append((_TOKENS[op], op))
            pos += len(op)
            continue
        start = pos
        while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
            pos += 1
        word = s[start:pos]
        items.append((_TOKENS[word], word) if word in _TOKENS else ("Identifier", word))


class _Parser:
    def __init__(self, items: list[tuple[str, str]]):
        self.items, self.pos = items, 0

    def look(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        return ("Identifier", lit) if values and tok in ("In", "NotIn") else (tok, lit)

    def take(self, values: bool = True) -> tuple[str, str]:
        got = self.look(values)
        self.pos += 1
        return got

    def parse(self) -> list[Requirement]:
        requirements = []
        while True:
            tok, lit = self.look()
            if tok in ("Identifier", "DoesNotExist"):
                try:
                    requirements.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                tok, lit = self.take()
                if tok == "End":
                    return requirements
                if tok != "Comma":
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
                tok, lit = self.look()
                if tok not in ("Identifier", "DoesNotExist"):
                    raise SelectorError(f"found '{lit}', expected: identifier after ','")
            elif tok == "End":
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator = None
        tok, key = self.take()
        if tok == "DoesNotExist":
            operator = "!"
            tok, key = self.take()
        if tok != "Identifier":
            raise SelectorError(f"found '{key}', expected: identifier")
        _check_key(key)
        if operator == "!" or self.look()[0] in ("End", "Comma"):
            return Requirement(key, operator or "exists")
        tok, lit = self.take(values=False)
        if tok not in _OPERATORS:
            raise SelectorError(f"found '{lit}', expected: {_BINARY}")
        operator = _OPERATORS[tok]
        values = self.value_set() if operator in ("in", "notin") else self.exact_value()
        return _requirement(key, operator, sorted(values))

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok != "OpenPar":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.look()
        if tok == "ClosedPar":  # `()`: the empty value
            self.take()
            return {""}
        if tok not in ("Identifier", "Comma"):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != "ClosedPar":
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == "Identifier":
                values.add(lit)
                tok, lit = self.look()
                if tok == "ClosedPar":
                    return values
                if tok != "Comma":
                    raise SelectorError(f"found '{lit}', expected: ',' or ')'")
            elif tok == "Comma":  # between values, or around an empty one: `(,a)`, `(a,,b)`, `(a,)`
                if not values:
                    values.add("")
                if self.look()[0] == "ClosedPar":
                    values.add("")
                    return values
                if self.look()[0] == "Comma":
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.look()[0] in ("End", "Comma"):
            return {""}
        tok, lit = self.take()
        if tok != "Identifier":
            raise SelectorError(f"found '{lit}', expected: identifier")
        return {lit}


def _check_key(key: str) -> None:
    """validateLabelKey: IsQualifiedName's problems, joined by "; ", as a field.Invalid error at
    the parser's field path, which is nil for `-l` (hence Go's `<nil>: `)."""
    problems = []
    parts = key.split("/")
    if len(parts) > 2:
        problems.append("a qualified name " + _NAME_FORMAT + " with an optional DNS subdomain prefix and '/' "
                        "(e.g. 'example.com/MyName')")
    else:
        name = parts[-1]
        if len(parts) == 2:  # the prefix's problems come first, each of IsDNS1123Subdomain's
            prefix = parts[0]
            if not prefix:
                problems.append("prefix part must be non-empty")
            else:
                if _go_len(prefix) > 253:
                    problems.append("prefix part must be no more than 253 characters")
                if not _SUBDOMAIN.fullmatch(prefix):
                    problems.append("prefix part " + _SUBDOMAIN_FORMAT)
        if not name:
            problems.append("name part must be non-empty")
        elif _go_len(name) > 63:
            problems.append("name part must be no more than 63 characters")
        if not _NAME.fullmatch(name):  # checked apart from the length, as IsQualifiedName does
            problems.append("name part " + _NAME_FORMAT)
    if problems:
        raise SelectorError(f"<nil>: Invalid value: {go_quote(key)}: " + "; ".join(problems))


def _requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """NewRequirement's checks of the values, in its order: an integer for gt and lt (as Go's
    strconv.ParseInt reads one), then each value as a label value (IsValidLabelValue)."""
    problems = []
    if operator in ("gt", "lt"):
        problems += [f"values[{i}]: Invalid value: {go_quote(v)}: for 'Gt', 'Lt' operators, the value must be an "
                     "integer" for i, v in enumerate(values) if _int64(v) is None]
    for i, v in enumerate(values):
        why = (["must be no more than 63 characters"] if _go_len(v) > 63 else []) + \
              ([_VALUE_FORMAT] if v and not _NAME.fullmatch(v) else [])
        if why:
            problems.append(f"values[{i}][{key}]: Invalid value: {go_quote(v)}: " + "; ".join(why))
    problems = list(dict.fromkeys(problems))  # an aggregate error says each message once
    if problems:
        raise SelectorError(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")
    return Requirement(key, operator, tuple(values))


def _int64(text: str | None) -> int | None:
    """strconv.ParseInt(text, 10, 64): ASCII digits after an optional sign, within int64; else None
    (Python's int() would also take `1_000`, blanks and other scripts' digits, and any size)."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if -2**63 <= value < 2**63 else None


def _go_len(text: str) -> int:
    """Go's len(): bytes, not characters (a byte the shell passed that is not UTF-8 is one byte)."""
    return sum(1 if 0xDC80 <= ord(ch) <= 0xDCFF else len(ch.encode("utf-8", "surrogatepass")) for ch in text)


def go_quote(text: str) -> str:
    """Go's %q (strconv.Quote): in double quotes, `"` and `\\` escaped, and every character Go
    does not print as itself — control characters, blanks other than the space, a byte that is
    not UTF-8 — as its escape (`\\n`, `\\x1b`, `\\u00a0`)."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8, as Python's surrogateescape keeps it
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch.isprintable():  # Python's printable is Go's IsPrint: letters, marks, numbers, punctuation, symbols, ' '
            out.append(ch)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "".join(out) + '"'


def kubectl_selector(text: str | None) -> str:
    """The selector kubectl sends for `-l TEXT`: trimmed as Go's strings.TrimSpace trims, and
    none at all ("") when nothing is left (LabelSelectorParam)."""
    return (text or "").strip(_GO_SPACE)


__all__ = ["GRAMMAR", "Requirement", "SelectorError", "go_quote", "kubectl_selector", "matches", "parse_selector"]
