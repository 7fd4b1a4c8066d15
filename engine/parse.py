"""Parse: Konverge text → AST.

Reads a file defensively (a directory, binary data, invalid UTF-8 and absurd
nesting are diagnostics, not tracebacks), parses it with the LALR grammar in
grammar/konverge.lark (engine/lalr.py, imported where a file needs it), and
builds the frozen AST of `engine.ast` with a span on every node. A syntax
error does not stop the parse: the declaration that holds it is blanked out
and the rest of the file is parsed again, so one run reports every broken
declaration.
"""

from __future__ import annotations

import re
import importlib.util
from pathlib import Path

import attrs

from . import ast as A
from . import fastparse
from .fastparse import TOP_LEVEL_KEYWORDS
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
    import lark  # here: the fast path and the parse cache spare most commands its import (engine/lalr.py)

    from .lalr import _Builder

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
    from .lalr import _parser

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
    import lark

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
    from .lalr import _parser

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
    import lark

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
