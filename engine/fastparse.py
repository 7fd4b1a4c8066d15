"""Fast path of the parse stage: object declarations whose values are literals.

Specs are mostly objects (`pod web-17 in shop { … }`) and Lark's Python LALR
parser spends ~0.5 ms on each. This module recognises top-level
`object_decl`s whose values are literals (strings, numbers, quantities, IPs,
CIDRs, true/false/none, `-` numbers, and lists and maps of these) with a few
regular expressions and builds the same AST, spans included, that the Lark
path builds. Anything else — an expression, a keyword where Lark's contextual
lexer would see one, a number too long, a bad escape, a syntax error — makes
it decline that declaration, and Lark parses what is left.

Why splitting at column-1 words is safe: the declarations not taken here are
parsed by Lark in one text in which the taken ones are replaced by their
newlines, so positions stay right. If that parse succeeds, none of its
declarations straddles a taken one, and the token after a taken one lexes the
same way in both texts (checked below), then the whole file is the
concatenation of complete top-level items, which the LALR grammar parses one
way only: the merged result is the tree Lark would build. Otherwise the
caller parses the whole text with Lark, so diagnostics are Lark's, always.
"""

from __future__ import annotations

import gc
import json
import re
from typing import Callable

from . import ast as A
from .errors import KonvergeError, Span

MAX_NUMBER_DIGITS = 40  # as engine.parse; a longer number is Lark's E009 to report
MAX_DEPTH = 100  # nested lists/maps/blocks; deeper is declined (the prescan limit is 200)

# Every keyword of the grammar. After a value Lark's lexer state accepts all of
# them (LALR merges the expression-end states), so there a key spelt like one
# would lex as the keyword; elsewhere in an object they are plain names.
KEYWORDS = (
    "import", "cluster", "kind", "record", "in", "replace", "controller", "as", "batched", "rule",
    "for", "let", "where", "pick", "then", "else", "order", "by", "asc", "desc", "set",
    "create", "ensure", "delete", "def", "policy", "deny", "mutate", "when", "because", "fault",
    "scenario", "at", "update", "expect", "eventually", "always", "within", "invariant",
    "if", "forall", "exists", "or", "and", "not", "true", "false", "none", "rest",
)
# The keywords the top-level state accepts: the first word of the declaration
# after a taken one lexes the same after its `}` as after whatever precedes it.
TOP_LEVEL_KEYWORDS = (
    "import", "cluster", "kind", "record", "controller", "replace", "def", "policy", "fault",
    "scenario", "invariant",
)
_KEYWORDS, _TOP_LEVEL = frozenset(KEYWORDS), frozenset(TOP_LEVEL_KEYWORDS)  # to look words up in

# The grammar's terminals, verbatim (tests/test_fastparse.py checks them).
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
OBJNAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
NUMBER = r"[0-9]+(\.[0-9]+)?"
UNIT = r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|ms|m|k|M|G|T|P|E|s|h|d)(?![A-Za-z0-9_])"
IP = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9.\/])"
CIDR = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\/[0-9]{1,2}"
STRING = r'"([^"\\\n]|\\.)*"'


def _plain(pattern: str) -> str:
    """The pattern with its groups made non-capturing, so group numbers below stay fixed."""
    return re.sub(r"\((?!\?)", "(?:", pattern)


# One pass of findall per declaration: (blanks, token) pairs. Words are
# maximal runs of name, object-name and number characters, read by the state
# that meets them: as Lark's terminal for that state if it spans the whole
# word, else the declaration is declined. A word takes a following `:` along
# (`cpu:`), which saves a token per field. The last alternative catches any
# other character, so nothing is skipped unseen.
_TOKEN = re.compile(
    r'([ \t\f\r\n]*)([A-Za-z0-9_][-A-Za-z0-9_./]*(?:[ \t\f\r]*:)?|"[^"\\\n]*"|"(?:[^"\\\n]|\\.)*"'
    r'|[-{}\[\]:,]|#[^\n]*|[^ \t\f\r\n])')
# A word in a value position, in the order of Lark's lexer there: CIDR.4, IP.3,
# UNIT.2, then NUMBER and NAME.
_LITERAL = re.compile("|".join(f"({_plain(p)})" for p in (CIDR, IP, UNIT, NUMBER, NAME)))
_OBJNAME = re.compile(OBJNAME)
_WORD = re.compile(NAME)
_DECL_START = re.compile(r"^[A-Za-z_]", re.M)  # as engine.parse

_UNIT_LETTERS = "KMGTPEimkshd"


class _Decline(Exception):
    """Not a literal object declaration (or not a valid one): leave it to Lark."""


def parse(text: str, path: str, parse_rest: Callable[[str], A.Module]) -> A.Module | None:
    """The module of `text`, or None when the fast path does not apply.

    `parse_rest` parses the text left over (Lark's path); when it raises, the
    caller must parse the whole text itself, so None is returned.
    """
    starts = [m.start() for m in _DECL_START.finditer(text)]
    if not starts:
        return None
    starts.append(len(text))
    # The tree is acyclic, so the cycle collector has nothing to find while it
    # grows; left on, its passes over the growing heap take half of the time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, starts, path, parse_rest)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, starts: list[int], path: str, parse_rest) -> A.Module | None:
    taken, comments, rest = _take(text, starts, path)
    if not taken:
        return None
    rest_text = "".join(rest)
    if rest_text.strip():
        try:
            module = parse_rest(rest_text)
        except KonvergeError:  # the whole text goes to Lark, for Lark's diagnostics
            return None
        decls = _merge(module.decls, taken)
        if decls is None:
            return None
        comments = sorted([*module.comments, *comments], key=lambda c: c.line)
    else:
        decls = taken
    first, last = decls[0].span, decls[-1].span
    span = Span(path, first.line, first.col, last.end_line, last.end_col)
    return A.Module(path, tuple(decls), comments=tuple(comments), span=span)


def _take(text: str, starts: list[int], path: str):
    """The object declarations taken, their comments, and the pieces of the text left to Lark."""
    taken: list[A.ObjectDecl] = []
    comments: list[A.Comment] = []
    rest: list[str] = []
    rest_from = 0
    line = text.count("\n", 0, starts[0]) + 1
    for i in range(len(starts) - 1):
        begin, end = starts[i], starts[i + 1]
        newlines = text.count("\n", begin, end)
        try:
            decl, found = _object(text, begin, end, path, line)
        except _Decline:
            line += newlines
            continue
        if end < len(text):
            word = _WORD.match(text, end).group()
            if word in _KEYWORDS and word not in _TOP_LEVEL:
                line += newlines
                continue
        taken.append(decl)
        comments.extend(found)
        rest.append(text[rest_from:begin])
        rest.append("\n" * newlines)
        rest_from = end
        line += newlines
    rest.append(text[rest_from:])
    return taken, comments, rest


def _merge(parsed, taken):
    """Both lists in source order, or None when a parsed declaration encloses a taken one."""
    decls = sorted([*parsed, *taken], key=lambda d: (d.span.line, d.span.col))
    for a, b in zip(decls, decls[1:]):
        if (a.span.end_line, a.span.end_col) > (b.span.line, b.span.col):
            return None
    return decls


def _string(token: str) -> str:
    if len(token) < 2 or token[-1] != '"':
        raise _Decline  # an unclosed quote
    if token.isprintable() and "\\" not in token:
        return token[1:-1]
    try:
        return json.loads(token)
    except ValueError:
        raise _Decline from None


# Parser states.
_HEAD_NAME, _HEAD_AFTER, _HEAD_NS, _HEAD_BRACE = 0, 1, 2, 3
_KEY, _AFTER_KEY, _VALUE, _ITEM_BRACE = 4, 5, 6, 7
_MAP_KEY, _MAP_COLON, _AFTER_ELEM, _DONE = 8, 9, 10, 11
# Stack frames: [what, key, item name, children, line, col].
_OBJ, _BLOCK, _ITEM, _LIST, _MAP, _FIELD, _MAP_ITEM, _NEG = range(8)


def _object(text: str, begin: int, end: int, path: str, line: int):
    """Parse text[begin:end] as one object declaration with literal values.

    Returns (ObjectDecl, comments) or raises _Decline.
    """
    S = Span
    tokens = _TOKEN.findall(text, begin, end)
    kind = tokens[0][1]
    if not kind.isidentifier() or kind in _KEYWORDS:
        raise _Decline
    comments: list[A.Comment] = []
    decl = None
    name = namespace = key = None
    key_is_name = after_value = False
    key_line = key_col = 0
    stack: list[list] = []
    state = _HEAD_NAME
    token_line = decl_line = line
    col = 1 + len(kind)
    for ws, tok in tokens[1:]:
        if ws:
            if "\n" in ws:
                line += ws.count("\n")
                col = len(ws) - ws.rfind("\n")
            else:
                col += len(ws)
        c = tok[0]
        start = col
        col += len(tok)
        if c == "#":
            comments.append(A.Comment(tok.rstrip(), line, line == token_line))
            continue
        token_line = line
        v = None
        if state == _VALUE:  # after `:`, `-`, `[` or `,`
            if c == '"':
                v = A.String(_string(tok), span=S(path, line, start, line, col))
            elif tok.isdigit():
                if len(tok) > MAX_NUMBER_DIGITS:
                    raise _Decline
                v = A.Number(tok, span=S(path, line, start, line, col))
            elif c == "-" or c == "[" or c == "{":
                if len(stack) >= MAX_DEPTH:
                    raise _Decline
                if c == "-":
                    stack.append([_NEG, None, None, None, line, start])
                elif c == "[":
                    stack.append([_LIST, None, None, [], line, start])
                else:
                    stack.append([_MAP, None, None, [], line, start])
                    state = _MAP_KEY
                continue
            elif c == "]" and stack[-1][0] == _LIST:  # `[]` or a trailing comma
                what, fkey, item, children, fline, fcol = stack.pop()
                v = A.ListLit(tuple(children), span=S(path, fline, fcol, line, col))
            else:
                v = _literal(tok, S(path, line, start, line, col))
        elif state == _KEY:
            if tok[-1] == ":" and c != '"':  # `key:` in one token
                key = tok[:-1].rstrip(" \t\f\r")
                if not key.isidentifier() or (after_value and key in _KEYWORDS):
                    raise _Decline
                stack.append([_FIELD, key, None, None, line, start])
                state = _VALUE
                continue
            if tok.isidentifier():
                if after_value and tok in _KEYWORDS:
                    raise _Decline
                key, key_is_name = tok, True
            elif c == '"':
                key, key_is_name = _string(tok), False
            elif c == "}":
                what, fkey, item, children, fline, fcol = stack.pop()
                span = S(path, fline, fcol, line, col)
                if what == _OBJ:
                    decl = A.ObjectDecl(kind, name, namespace, tuple(children), span=span)
                    state = _DONE
                elif what == _BLOCK:
                    stack[-1][3].append(A.BlockEntry(fkey, tuple(children), span=span))
                else:
                    stack[-1][3].append(A.ItemEntry(fkey, item, tuple(children), span=span))
                after_value = False
                continue
            else:
                raise _Decline
            key_line, key_col = line, start
            state = _AFTER_KEY
            continue
        elif state == _AFTER_KEY:
            if c == ":":
                stack.append([_FIELD, key, None, None, key_line, key_col])
                state = _VALUE
                continue
            if len(stack) >= MAX_DEPTH:
                raise _Decline
            if c == "{":
                stack.append([_BLOCK, key, None, [], key_line, key_col])
                state = _KEY
                after_value = False
                continue
            if not key_is_name:
                raise _Decline  # a quoted key takes only `:` or `{`
            stack.append([_ITEM, key, _objname(tok), [], key_line, key_col])
            state = _ITEM_BRACE
            continue
        elif state == _AFTER_ELEM:
            what = stack[-1][0]
            if c == ",":
                state = _VALUE if what == _LIST else _MAP_KEY
                continue
            if (c == "]" and what == _LIST) or (c == "}" and what == _MAP):
                what, fkey, item, children, fline, fcol = stack.pop()
                node = A.ListLit if what == _LIST else A.MapLit
                v = node(tuple(children), span=S(path, fline, fcol, line, col))
            else:
                raise _Decline
        elif state == _MAP_KEY:  # after `{` or `,`: a key or `}`
            if c == "}":
                what, fkey, item, children, fline, fcol = stack.pop()
                v = A.MapLit(tuple(children), span=S(path, fline, fcol, line, col))
            else:
                if tok[-1] == ":" and c != '"':  # `key:` in one token
                    key = tok[:-1].rstrip(" \t\f\r")
                    if not key.isidentifier():
                        raise _Decline
                    stack.append([_MAP_ITEM, key, None, None, line, start])
                    state = _VALUE
                    continue
                if tok.isidentifier():
                    key = tok
                elif c == '"':
                    key = _string(tok)
                else:
                    raise _Decline
                key_line, key_col = line, start
                state = _MAP_COLON
                continue
        elif state == _MAP_COLON:
            if c != ":":
                raise _Decline
            stack.append([_MAP_ITEM, key, None, None, key_line, key_col])
            state = _VALUE
            continue
        elif state == _ITEM_BRACE or state == _HEAD_BRACE:
            if c != "{":
                raise _Decline
            if state == _HEAD_BRACE:
                stack.append([_OBJ, kind, name, [], decl_line, 1])
            state = _KEY
            after_value = False
            continue
        elif state == _HEAD_NAME:
            name = _objname(tok)
            state = _HEAD_AFTER
            continue
        elif state == _HEAD_AFTER:
            if tok == "in":
                state = _HEAD_NS
            elif c == "{":
                stack.append([_OBJ, kind, name, [], decl_line, 1])
                state = _KEY
            else:
                raise _Decline
            continue
        elif state == _HEAD_NS:
            namespace = _objname(tok)
            state = _HEAD_BRACE
            continue
        elif state == _DONE:
            raise _Decline  # more than one declaration: leave the line to Lark
        if v is None:
            continue
        # A value is complete: it belongs to whatever waits on top of the stack.
        while True:
            top = stack[-1]
            what = top[0]
            if what == _FIELD:
                stack.pop()
                stack[-1][3].append(A.FieldEntry(top[1], v, span=S(
                    path, top[4], top[5], v.span.end_line, v.span.end_col)))
                state = _KEY
                after_value = True
                break
            if what == _LIST:
                top[3].append(v)
                state = _AFTER_ELEM
                break
            if what == _MAP_ITEM:
                stack.pop()
                stack[-1][3].append(A.MapItem(top[1], v, span=S(
                    path, top[4], top[5], v.span.end_line, v.span.end_col)))
                state = _AFTER_ELEM
                break
            # `-` takes a number or a quantity only; anything else is Lark's.
            stack.pop()
            if v.__class__ is not A.Number and v.__class__ is not A.Unit:
                raise _Decline
            v = A.Unary("-", v, span=S(path, top[4], top[5], v.span.end_line, v.span.end_col))
    if decl is None:
        raise _Decline
    return decl, comments


def _objname(tok: str) -> str:
    if tok[0] == '"':
        return _string(tok)
    if _OBJNAME.fullmatch(tok) is None:
        raise _Decline
    return tok


def _literal(tok: str, span: Span):
    """A word in a value position: the literal Lark's lexer reads, if it spans the word."""
    if tok.isdigit():
        if len(tok) > MAX_NUMBER_DIGITS:
            raise _Decline
        return A.Number(tok, span=span)
    if tok.isidentifier():
        if tok == "true" or tok == "false":
            return A.Bool(tok == "true", span=span)
        if tok == "none":
            return A.NoneLit(span=span)
        raise _Decline  # a name is an expression
    m = _LITERAL.match(tok)
    if m is None or m.end() != len(tok):
        raise _Decline
    g = m.lastindex
    if g == 3:
        number = tok.rstrip(_UNIT_LETTERS)
        if len(number) > MAX_NUMBER_DIGITS:
            raise _Decline
        return A.Unit(number, tok[len(number):], span=span)
    if g == 4:
        if len(tok) > MAX_NUMBER_DIGITS:
            raise _Decline
        return A.Number(tok, span=span)
    if g == 2:
        return A.IPLit(tok, span=span)
    if g == 1:
        return A.CIDRLit(tok, span=span)
    raise _Decline
