"""The Lark half of the parser: the LALR parser of grammar/konverge.lark and the builder of
the AST from its trees.

Kept apart from engine.parse, which imports it only where a file needs the grammar: the
fast path (engine/fastparse.py) reads specs of literal objects, and the standard control
plane comes from the parse cache, so most commands never import Lark (a tenth of a small
reconcile's time).
"""

from __future__ import annotations

import functools
import json
import re

import lark
import lark.parsers.lalr_analysis
from lark import Token, Transformer, v_args

from . import ast as A
from .errors import Diagnostic, Span
from .fastparse import KEYWORDS
from .parse import MAX_NUMBER_DIGITS, _BadToken, grammar_text


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
