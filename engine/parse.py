"""Parse: Konverge text → AST.

Reads a file defensively (a directory, binary data, invalid UTF-8 and absurd
nesting are diagnostics, not tracebacks), parses it with the LALR grammar in
grammar/konverge.lark, and builds the frozen AST of `engine.ast` with a span
on every node. A syntax error does not stop the parse: the declaration that
holds it is blanked out and the rest of the file is parsed again, so one run
reports every broken declaration.
"""

from __future__ import annotations

import functools
import json
import re
import importlib.util
from pathlib import Path

import attrs
import lark
import lark.parsers.lalr_analysis
from lark import Token, Transformer, v_args

from . import ast as A
from . import fastparse
from .fastparse import KEYWORDS, TOP_LEVEL_KEYWORDS
from .errors import Diagnostic, KonvergeError, Span

MAX_NESTING = 200  # brackets, and levels of a parse tree
MAX_LINE = 65536
MAX_NUMBER_DIGITS = 40
MAX_ERRORS = 50

def grammar_text() -> str:
    try:
        spec = importlib.util.find_spec("engine.grammar")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0])
    else:  # a source checkout, not installed
        folder = Path(__file__).resolve().parent.parent / "grammar"
    return (folder / "konverge.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    parser = lark.Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )
    keyword_types = {t.name for t in parser.terminals
                     if t.pattern.type == "str" and t.pattern.value in KEYWORDS}
    parser.parser.lexer = _KeywordsInContext(parser.parser.lexer, keyword_types)
    return parser


class _KeywordsInContext:
    """Make a word a keyword only where the parser can really take that keyword.

    Lark's contextual lexer asks the LALR table which terminals a state accepts,
    but merged LALR states accept look-aheads that a reduction would then
    refuse: after `x: 1` in an object, `at` (which may follow an expression in
    a scenario) would lex as a keyword and break `at: 2`. Where a name would
    fit too, this runs the reductions on a copy of the state stack and keeps
    the keyword only if it would be shifted.
    """

    def __init__(self, inner, keyword_types: set[str]):
        self.inner = inner
        self.keyword_types = keyword_types

    def lex(self, lexer_state, parser_state):
        states = parser_state.parse_conf.states
        for token in self.inner.lex(lexer_state, parser_state):
            if token.type in self.keyword_types:
                actions = states[parser_state.position]
                for plain in ("NAME", "OBJNAME"):
                    if plain in actions and not _would_shift(parser_state, token.type):
                        token = Token.new_borrow_pos(plain, str(token), token)
                        break
            yield token


def _would_shift(parser_state, token_type: str) -> bool:
    states = parser_state.parse_conf.states
    stack = list(parser_state.state_stack)
    while True:
        action = states[stack[-1]].get(token_type)
        if action is None:
            return False
        kind, arg = action
        if kind is lark.parsers.lalr_analysis.Shift:
            return True
        size = len(arg.expansion)
        if size:
            del stack[-size:]
        goto = states[stack[-1]].get(arg.origin.name)
        if goto is None:
            return False
        stack.append(goto[1])


# ---- reading ------------------------------------------------------------------


def read_source(path: str | Path) -> str:
    """The text of a source file, or a KonvergeError saying why it cannot be read."""
    name = str(path)
    p = Path(path)
    if p.is_dir():
        raise KonvergeError(Diagnostic(
            "E001", "this is a directory, not a Konverge file", file=name,
            hint="name the .konv files inside it, e.g. `dir/*.konv`"))
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise KonvergeError(Diagnostic("E001", "no such file", file=name,
                                       hint="check the path"))
    except OSError as e:
        raise KonvergeError(Diagnostic("E001", f"cannot read this file: {e.strerror}", file=name))
    return decode_source(data, name)


def decode_source(data: bytes, name: str) -> str:
    nul = data.find(b"\0")
    if nul >= 0:
        raise KonvergeError(Diagnostic(
            "E002", "this file holds binary data (a NUL byte), not Konverge text",
            span=_span_at_offset(data, nul, name),
            hint="Konverge files are UTF-8 text"))
    try:
        # A byte-order mark, as some editors begin UTF-8 with, is not part of the text.
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise KonvergeError(Diagnostic(
            "E002", f"invalid UTF-8 (byte 0x{data[e.start]:02x})",
            span=_span_at_offset(data, e.start, name),
            hint="save the file as UTF-8"))


def _span_at_offset(data: bytes, offset: int, name: str) -> Span:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return Span(name, line, col, line, col + 1)


# ---- parsing ----------------------------------------------------------------------


def parse_file(path: str | Path) -> A.Module:
    return parse_text(read_source(path), str(path))


def parse_text(text: str, path: str = "<input>", *, fast: bool = True) -> A.Module:
    """Parse a whole file. Raises KonvergeError with every syntax error found.

    `fast=False` forces the pure Lark path (the fast path must agree with it).
    """
    diagnostics = _prescan(text, path)
    if diagnostics:
        raise KonvergeError(diagnostics)
    # ---- fast-path hook (engine/fastparse.py): literal object declarations ----
    if fast:
        module = fastparse.parse(text, path, lambda rest: parse_text(rest, path, fast=False))
        if module is not None:
            return module
    # ---- end of fast-path hook ----
    comments: list[A.Comment] = []
    work = text
    while True:
        comments.clear()
        try:
            tree = _parse_collecting(work, comments)
            module = _Builder(path).transform(tree)
            break
        except _TooDeep as e:
            diagnostics.append(Diagnostic(
                "E004", f"this expression nests more than {MAX_NESTING} levels deep",
                span=Span(path, e.meta.line, e.meta.column, e.meta.line, e.meta.column + 1),
                hint="split it with `let` or a `def`"))
            break
        except (lark.UnexpectedInput, _BadToken) as e:
            diag = _syntax_diagnostic(e, work, path)
            diagnostics.append(diag)
            if len(diagnostics) >= MAX_ERRORS:
                break
            blanked = _blank_declaration(work, _error_offset(e, work))
            if blanked is None:
                break
            work = blanked
        except lark.exceptions.VisitError as e:
            if isinstance(e.orig_exc, _BadToken):
                err = e.orig_exc
                diagnostics.append(err.diagnostic)
                blanked = _blank_declaration(work, err.offset)
                if blanked is None or len(diagnostics) >= MAX_ERRORS:
                    break
                work = blanked
            else:
                raise
    if diagnostics:
        raise KonvergeError(diagnostics)
    return attrs.evolve(module, comments=tuple(comments))


def _parse_collecting(text: str, comments: list[A.Comment]):
    tree = _parser().parse(text)
    _check_depth(tree)
    comments.extend(_comments(text))
    return tree


class _TooDeep(Exception):
    def __init__(self, meta):
        super().__init__("too deep")
        self.meta = meta


def _check_depth(tree) -> None:
    """Refuse a tree deeper than MAX_NESTING before any recursive pass walks it."""
    stack = [(tree, 1)]
    while stack:
        t, depth = stack.pop()
        if depth > MAX_NESTING:
            raise _TooDeep(t.meta)
        for c in t.children:
            if isinstance(c, lark.Tree):
                stack.append((c, depth + 1))


_COMMENT_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def _comments(text: str) -> list[A.Comment]:
    """Every `#` comment outside a string, with its line and whether code precedes it."""
    out = []
    if "#" not in text:
        return out
    for m in _COMMENT_RE.finditer(text):
        if m.group().startswith("#"):
            start = m.start()
            line_start = text.rfind("\n", 0, start) + 1
            trailing = text[line_start:start].strip() != ""
            out.append(A.Comment(m.group().rstrip(), text.count("\n", 0, start) + 1, trailing))
    return out


def _prescan(text: str, path: str) -> list[Diagnostic]:
    """Reject lines too long and nesting too deep to be real, before any pass could choke on them."""
    if len(text) > MAX_LINE:
        for number, line in enumerate(text.split("\n"), 1):
            if len(line) > MAX_LINE:
                return [Diagnostic(
                    "E013", f"this line is {len(line)} characters long; at most {MAX_LINE} are allowed",
                    span=Span(path, number, MAX_LINE + 1, number, MAX_LINE + 2),
                    hint="break it over several lines")]
    depth = 0
    deepest_at = -1
    opens = "([{"
    closes = ")]}"
    scan = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[()\[\]{}]')
    for m in scan.finditer(text):
        ch = m.group()
        if ch in opens:
            depth += 1
            if depth > MAX_NESTING:
                deepest_at = m.start()
                break
        elif ch in closes:
            depth = max(0, depth - 1)
    if deepest_at >= 0:
        line = text.count("\n", 0, deepest_at) + 1
        col = deepest_at - (text.rfind("\n", 0, deepest_at) + 1) + 1
        return [Diagnostic(
            "E004", f"brackets nest more than {MAX_NESTING} deep",
            span=Span(path, line, col, line, col + 1),
            hint="split the expression with `let` or a `def`")]
    return []


class _BadToken(Exception):
    """A token that lexes but cannot be a value (a number too long, a bad escape)."""

    def __init__(self, diagnostic: Diagnostic, offset: int):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.offset = offset


def _error_offset(e, text: str) -> int:
    if isinstance(e, _BadToken):
        return e.offset
    pos = getattr(e, "pos_in_stream", None)
    if pos is None:
        token = getattr(e, "token", None)
        pos = getattr(token, "start_pos", None)
    return len(text) if pos is None else pos


_DECL_START = re.compile(r"^[A-Za-z_]", re.M)


def _blank_declaration(text: str, offset: int) -> str | None:
    """Blank the top-level declaration around `offset` (keeping newlines, so
    positions stay right); None when nothing after it is left to parse."""
    starts = [m.start() for m in _DECL_START.finditer(text)]
    begin = 0
    end = len(text)
    for s in starts:
        if s <= offset:
            begin = s
        elif s > offset:
            end = s
            break
    if end >= len(text) and not text[offset:].strip():
        return None
    if end >= len(text):
        return None
    blank = re.sub(r"[^\n]", " ", text[begin:end])
    return text[:begin] + blank + text[end:]


# ---- error messages ------------------------------------------------------------------

_TERMINAL_WORDS = {
    "NAME": "a name",
    "OBJNAME": "an object name",
    "NUMBER": "a number",
    "UNIT": "a quantity or duration",
    "IP": "an IP address",
    "CIDR": "a CIDR",
    "STRING": "a string",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
    "$END": "the end of the file",
}


def _terminal_word(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for t in _parser().terminals:
        if t.name == name:
            if t.pattern.type == "str":
                return f"`{t.pattern.value}`"
            return name.lower()
    return name.lower()


def _describe_expected(expected) -> str:
    expected = set(expected)
    if {"NUMBER", "STRING", "NAME"} <= expected:
        # Everything that can start an expression: say so rather than list it.
        return "an expression"
    words = sorted({_terminal_word(x) for x in expected})
    # Keep the list readable: the structural tokens first, then the rest.
    if len(words) > 8:
        words = words[:8] + ["…"]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(token) -> str:
    if token.type == "$END":
        return "end of file"
    v = str(token)
    if len(v) > 30:
        v = v[:27] + "..."
    return f"`{v}`"


def _syntax_diagnostic(e, text: str, path: str) -> Diagnostic:
    if isinstance(e, _BadToken):
        return e.diagnostic
    if isinstance(e, lark.UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(path, e.line, e.column, e.line, e.column + 1)
        hint = None
        if ch == "'":
            hint = 'strings use double quotes: "…"'
        elif ch == '"':
            return Diagnostic("E005", "this string is not closed before the end of the line", span=span,
                              hint='add the closing `"`')
        return Diagnostic("E003", f"unexpected character `{ch}`", span=span, hint=hint)
    if isinstance(e, lark.UnexpectedEOF) or (isinstance(e, lark.UnexpectedToken) and e.token.type == "$END"):
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        opener = _unclosed_bracket(text, path)
        hint = f"the `{opener[0]}` at {opener[1].line}:{opener[1].col} is never closed" if opener else None
        expected = getattr(e, "expected", None) or ()
        msg = "unexpected end of file"
        if expected:
            msg += f"; expected {_describe_expected(expected)}"
        return Diagnostic("E006", msg, span=Span(path, line, col, line, col + 1), hint=hint)
    token = e.token
    span = Span(path, token.line, token.column, token.end_line or token.line,
                token.end_column or token.column + len(str(token)))
    expected = e.expected if hasattr(e, "expected") else set()
    hint = _keyword_hint(token, expected, text, e)
    return Diagnostic("E007", f"unexpected {_token_text(token)}; expected {_describe_expected(expected)}",
                      span=span, hint=hint)


def _keyword_hint(token, expected, text: str, e) -> str | None:
    """Did the user misspell a keyword — here or at the start of this declaration?"""
    from .names import closest

    before = text[max(0, (getattr(token, "start_pos", None) or 0) - 40):getattr(token, "start_pos", None) or 0]
    quantifier = re.search(r"\bnot\s+(exists|forall)\s*$", before)
    if quantifier:
        return f"a quantifier after `not` needs parentheses: `not ({quantifier.group(1)} …)`"
    keywords = [_terminal_word(x).strip("`") for x in expected]
    keywords = [k for k in keywords if k.isidentifier()]
    if token.type in ("NAME", "OBJNAME"):
        guess = closest(str(token), keywords)
        if guess:
            return f"did you mean `{guess}`?"
    # A misspelt top-level keyword reads as an object declaration of an unknown kind.
    pos = getattr(token, "start_pos", None) or 0
    decl_starts = [m.start() for m in _DECL_START.finditer(text, 0, pos + 1)]
    if decl_starts:
        head = re.match(r"[A-Za-z_]\w*", text[decl_starts[-1]:])
        if head and head.group() not in TOP_LEVEL_KEYWORDS:
            guess = closest(head.group(), TOP_LEVEL_KEYWORDS)
            if guess:
                return f"`{head.group()}` at the start of this declaration: did you mean `{guess}`?"
    return None


def _unclosed_bracket(text: str, path: str):
    scan = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[()\[\]{}]')
    stack = []
    for m in scan.finditer(text):
        ch = m.group()
        if ch in "([{":
            stack.append(m.start())
        elif ch in ")]}" and stack:
            stack.pop()
    if not stack:
        return None
    at = stack[-1]
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return text[at], Span(path, line, col, line, col + 1)


# ---- tree → AST -----------------------------------------------------------------------


def _bad(token: Token, path: str, code: str, message: str, hint: str | None = None):
    span = Span(path, token.line, token.column, token.end_line, token.end_column)
    return _BadToken(Diagnostic(code, message, span=span, hint=hint), token.start_pos)


@v_args(meta=True)
class _Builder(Transformer):
    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.file = path

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return A.NO_SPAN
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, token: Token) -> Span:
        return Span(self.file, token.line, token.column, token.end_line, token.end_column)

    def _string(self, token: Token) -> str:
        try:
            return json.loads(token)
        except ValueError:
            raise _bad(token, self.file, "E008", "invalid escape in this string",
                       hint='use \\" \\\\ \\n \\t or \\uXXXX')

    def _number_text(self, token: Token) -> str:
        digits = re.match(r"[0-9.]+", token).group()
        if len(digits) > MAX_NUMBER_DIGITS:
            raise _bad(token, self.file, "E009",
                       f"this number has {len(digits)} digits; at most {MAX_NUMBER_DIGITS} are allowed",
                       hint="numbers beyond 64-bit range cannot be stored")
        return digits

    def _objname(self, v) -> str:
        return self._string(v) if v.type == "STRING" else str(v)

    def _key(self, v) -> str:
        return self._string(v) if v.type == "STRING" else str(v)

    # module
    def start(self, meta, items):
        return A.Module(self.file, tuple(items), span=self._span(meta))

    def import_decl(self, meta, c):
        return A.Import(self._string(c[0]), span=self._span(meta))

    # schemas
    def kind_decl(self, meta, c):
        cluster = isinstance(c[0], Token) and c[0].type == "CLUSTER"
        if cluster or c[0] is None:
            c = c[1:]
        return A.KindDecl(str(c[0]), tuple(c[1:]), cluster=cluster, span=self._span(meta))

    def record_decl(self, meta, c):
        return A.RecordDecl(str(c[0]), tuple(c[1:]), span=self._span(meta))

    def field_decl(self, meta, c):
        return A.FieldDecl(str(c[0]), c[1], c[2], span=self._span(meta))

    def type(self, meta, c):
        name, args, opt = c
        return A.TypeRef(str(name), tuple(args or ()), opt is not None, span=self._span(meta))

    def type_args(self, meta, c):
        return list(c)

    # objects
    def object_decl(self, meta, c):
        kind, name, ns, *entries = c
        return A.ObjectDecl(str(kind), self._objname(name), None if ns is None else self._objname(ns),
                            tuple(entries), span=self._span(meta))

    def field_entry(self, meta, c):
        return A.FieldEntry(self._key(c[0]), c[1], span=self._span(meta))

    def block_entry(self, meta, c):
        return A.BlockEntry(self._key(c[0]), tuple(c[1:]), span=self._span(meta))

    def item_entry(self, meta, c):
        return A.ItemEntry(str(c[0]), self._objname(c[1]), tuple(c[2:]), span=self._span(meta))

    # controllers
    def controller_decl(self, meta, c):
        replace, name, account, *rules = c
        return A.ControllerDecl(str(name), tuple(rules), replace=replace is not None,
                                account=None if account is None else str(account), span=self._span(meta))

    def rule_decl(self, meta, c):
        batched, name, *rest = c
        clauses = tuple(x for x in rest if isinstance(x, (A.ForClause, A.LetClause, A.WhereClause)))
        actions = tuple(x for x in rest if isinstance(x, (A.SetAction, A.CreateAction, A.DeleteAction)))
        pick = next((x for x in rest if isinstance(x, A.Pick)), None)
        return A.Rule(str(name), clauses, actions, pick, batched=batched is not None, span=self._span(meta))

    def for_clause(self, meta, c):
        return A.ForClause(c[0], span=self._span(meta))

    def let_clause(self, meta, c):
        return A.LetClause(str(c[0]), c[1], span=self._span(meta))

    def where_clause(self, meta, c):
        return A.WhereClause(c[0], span=self._span(meta))

    def pick(self, meta, c):
        source, where, order, then, otherwise = c
        return A.Pick(source, where, tuple(order or ()), tuple(then), tuple(otherwise or ()),
                      span=self._span(meta))

    def actions(self, meta, c):
        return list(c)

    def order(self, meta, c):
        return list(c)

    def order_key(self, meta, c):
        return A.OrderKey(c[0], c[1] is not None and c[1].type == "DESC", span=self._span(meta))

    def kind_source(self, meta, c):
        return A.KindSource(str(c[0]), str(c[1]), span=self._span(meta))

    def list_source(self, meta, c):
        return A.ListSource(str(c[0]), c[1], span=self._span(meta))

    def set_action(self, meta, c):
        return A.SetAction(c[0], c[1], span=self._span(meta))

    def path(self, meta, c):
        return tuple(str(x) for x in c)

    def create_action(self, meta, c):
        return A.CreateAction(str(c[0]), c[1], tuple(c[2:]), ensure=False, span=self._span(meta))

    def ensure_action(self, meta, c):
        return A.CreateAction(str(c[0]), c[1], tuple(c[2:]), ensure=True, span=self._span(meta))

    def delete_action(self, meta, c):
        return A.DeleteAction(c[0], span=self._span(meta))

    def def_decl(self, meta, c):
        name, *rest = c
        body = rest[-1]
        returns = rest[-2]
        params = tuple(p for p in rest[:-2] if p is not None)
        return A.DefDecl(str(name), params, returns, body, span=self._span(meta))

    def param(self, meta, c):
        return A.Param(str(c[0]), c[1], span=self._span(meta))

    # admission, faults, scenarios
    def policy_decl(self, meta, c):
        return A.PolicyDecl(self._string(c[0]), tuple(c[1:]), span=self._span(meta))

    def deny(self, meta, c):
        source, cond, because, reason = c
        if reason is None:
            return A.Deny(source, cond, because, span=self._span(meta))
        return A.Deny(source, cond, because, str(reason), reason_span=self._tspan(reason), span=self._span(meta))

    def mutate(self, meta, c):
        return A.Mutate(c[0], c[1], tuple(c[2:]), span=self._span(meta))

    def fault_decl(self, meta, c):
        name, target, *rest = c
        params = tuple(x for x in rest if isinstance(x, A.Param))
        actions = tuple(x for x in rest if not isinstance(x, A.Param))
        return A.FaultDecl(str(name), target, params, actions, span=self._span(meta))

    def scenario_decl(self, meta, c):
        return A.ScenarioDecl(self._string(c[0]), tuple(c[1:]), span=self._span(meta))

    def at(self, meta, c):
        return A.At(self._time(c[0]), c[1], span=self._span(meta))

    def _time(self, token):
        if token.type == "UNIT":
            return self._unit_token(token)
        return A.Number(self._number_text(token), span=self._tspan(token))

    def _unit_token(self, token):
        text = self._number_text(token)
        return A.Unit(text, str(token)[len(text):], span=self._tspan(token))

    def fault_event(self, meta, c):
        fault, kind, ref, *args = c
        return A.FaultEvent(str(fault), str(kind), ref, tuple(args), span=self._span(meta))

    def event_arg(self, meta, c):
        return A.EventArg(str(c[0]), c[1], span=self._span(meta))

    def create_event(self, meta, c):
        kind, name, ns, *entries = c
        return A.CreateEvent(str(kind), self._objname(name), None if ns is None else self._objname(ns),
                             tuple(entries), span=self._span(meta))

    def update_event(self, meta, c):
        return A.UpdateEvent(str(c[0]), c[1], tuple(c[2:]), span=self._span(meta))

    def delete_event(self, meta, c):
        return A.DeleteEvent(str(c[0]), c[1], span=self._span(meta))

    def objref(self, meta, c):
        first, second = c
        if second is None:
            return A.ObjRef(self._objname(first), None, span=self._span(meta))
        return A.ObjRef(self._objname(second), self._objname(first), span=self._span(meta))

    def expect(self, meta, c):
        mode, cond, within = c
        return A.Expect(str(mode), cond, None if within is None else self._time(within), span=self._span(meta))

    def invariant_decl(self, meta, c):
        name, rest, cond = c
        return A.InvariantDecl(self._string(name), cond, at_rest=rest is not None, span=self._span(meta))

    # expressions
    def if_expr(self, meta, c):
        return A.IfElse(c[0], c[1], c[2], span=self._span(meta))

    def quantifier(self, meta, c):
        q, source, where, body = c
        return A.Quantifier(str(q), source, where, body, span=self._span(meta))

    def or_op(self, meta, c):
        return A.Binary("or", c[0], c[1], span=self._span(meta))

    def and_op(self, meta, c):
        return A.Binary("and", c[0], c[1], span=self._span(meta))

    def not_op(self, meta, c):
        return A.Unary("not", c[0], span=self._span(meta))

    def compare(self, meta, c):
        return A.Binary(c[1], c[0], c[2], span=self._span(meta))

    def comp_op(self, meta, c):
        return " ".join(str(t) for t in c)

    def binary(self, meta, c):
        return A.Binary(str(c[1]), c[0], c[2], span=self._span(meta))

    def neg(self, meta, c):
        return A.Unary("-", c[0], span=self._span(meta))

    def attr(self, meta, c):
        return A.Attr(c[0], str(c[1]), span=self._span(meta))

    def index(self, meta, c):
        return A.Index(c[0], c[1], span=self._span(meta))

    def number(self, meta, c):
        return A.Number(self._number_text(c[0]), span=self._span(meta))

    def unit(self, meta, c):
        return self._unit_token(c[0])

    def ip(self, meta, c):
        return A.IPLit(str(c[0]), span=self._span(meta))

    def cidr(self, meta, c):
        return A.CIDRLit(str(c[0]), span=self._span(meta))

    def string(self, meta, c):
        return A.String(self._string(c[0]), span=self._span(meta))

    def true(self, meta, c):
        return A.Bool(True, span=self._span(meta))

    def false(self, meta, c):
        return A.Bool(False, span=self._span(meta))

    def none(self, meta, c):
        return A.NoneLit(span=self._span(meta))

    def name(self, meta, c):
        return A.Name(str(c[0]), span=self._span(meta))

    def call(self, meta, c):
        fn, *args = c
        return A.Call(str(fn), tuple(a for a in args if a is not None), span=self._span(meta))

    def call_gen(self, meta, c):
        return A.Call(str(c[0]), (c[1],), span=self._span(meta))

    def call_query(self, meta, c):
        fn, source, where = c
        comp = A.Comprehension(None, source, where, (), span=self._span(meta))
        return A.Call(str(fn), (comp,), span=self._span(meta))

    def generator(self, meta, c):
        element, source, where, order = c
        return A.Comprehension(element, source, where, tuple(order or ()), span=self._span(meta))

    def list(self, meta, c):
        return A.ListLit(tuple(x for x in c if x is not None), span=self._span(meta))

    def comprehension(self, meta, c):
        return c[0]

    def map(self, meta, c):
        return A.MapLit(tuple(x for x in c if x is not None), span=self._span(meta))

    def map_item(self, meta, c):
        return A.MapItem(self._key(c[0]), c[1], span=self._span(meta))
