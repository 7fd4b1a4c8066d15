"""Fmt: AST → canonical Konverge text.

`format_text(text, path)` parses and prints; `format_module(module)` prints a
parsed or built module. The output parses back to an equal AST
(`parse(fmt(m)) == m`) and formatting it again changes nothing
(`fmt(fmt(x)) == fmt(x)`).

Layout
------
* Two-space indentation; lines aim at 100 columns.
* One blank line between top-level declarations, except that consecutive
  `import`s stay together, and one blank line between the rules of a
  controller. Other blank lines go, except one after a leading comment.
* Kind and record fields, controller rules, policy denies and mutations, fault
  actions and scenario items go one per line, always. A mutation is
  `mutate KIND v when COND`, then each `set` on its own line two spaces in.
* An object, and each entry block inside one (`labels { … }`,
  `container nginx { … }`, the body of `create`/`ensure` and of a scenario's
  `create`/`update`), prints on one line - `node worker-1 { cpu: 4  memory: 8Gi }`,
  two spaces between entries - exactly when every entry is a `key: value`
  field, the block holds no comment, and the line fits in 100 columns.
  Otherwise `{`, one entry per line, `}`. An empty block is `{}`.
* An invariant prints on one line when it fits; otherwise its expression
  goes on its own line inside the braces.
* A rule is `rule NAME`, then each clause and action on its own line two
  spaces in. A pick puts `where`, `order by`, `then` and `else` on their own
  lines two spaces in from `pick`; a `then`/`else` with a single action keeps
  it on its line (`then set p.node = n.name`), several actions (or a comment
  before the only one) go on the lines below, two spaces further in.
* Expressions carry the fewest parentheses that parse back to the same tree.
  A list, map, comprehension or call argument list that would cross column
  100 breaks with one item per line (lists and maps then end in a trailing
  comma); a too-long `and`/`or` chain breaks before each operator and a
  too-long `if` (with its else-if chain) before each `then` and `else`, two
  spaces in; a too-long `def` breaks after its `=` unless its body ends in a
  bracket. Outer constructs break before inner ones; nothing else breaks.
* Strings are JSON-escaped. Keys that are not plain names (or are keywords)
  and object names that are not Kubernetes-style names are written as strings.

Comments
--------
* An own-line comment goes before the next statement-level node (declaration,
  field, entry, rule, clause, pick, action, scenario item, deny, mutation)
  that starts after it, at that node's indentation, followed by a blank line
  if one followed it in the source (a file's opening comment, say). After the
  last node of a `{ … }` block it goes before the closing `}`; after the last
  declaration it stays at the end of the file, after one blank line.
* A trailing comment (code before it on its line) belongs to the statement
  that ends on that line - the outermost one if several do - and is printed
  two spaces after that statement's last line.
* A comment anywhere else (inside a multi-line expression, after a block's
  opening brace) moves before the next statement inside the same node, or
  before the statement that holds it.
* A block that holds a comment (other than its own trailing one) is never
  printed on one line, so a comment cannot swallow a closing bracket.
"""

from __future__ import annotations

import json
import re

import attrs

from . import ast as A
from .fastparse import KEYWORDS
from .parse import parse_text

__all__ = ["WIDTH", "format_module", "format_text"]

WIDTH = 100

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OBJNAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_KEYWORDS = frozenset(KEYWORDS)


def format_text(text: str, path: str = "<input>") -> str:
    """Parse `text` and return its canonical form. Raises KonvergeError on a syntax error."""
    return format_module(parse_text(text, path))


def format_module(module: A.Module) -> str:
    """The canonical text of `module`, with its comments put back."""
    notes = _attach_comments(module)
    out: list[str] = []
    previous = None
    for decl in module.decls:
        if previous is not None and not (isinstance(previous, A.Import) and isinstance(decl, A.Import)):
            out.append("")
        _stmt(out, decl, 0, notes)
        previous = decl
    tail = notes.dangling.get(id(module), ())
    if tail:
        if out:
            out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n" if out else ""


# ---- documents: a small Wadler-style pretty printer --------------------------------
#
# A document is a str (text), ("cat", parts), ("nest", doc) (two more spaces of
# indentation after a line break), ("line", flat_text) (a break, or flat_text
# when its group fits), ("if", broken, flat) or ("group", doc) (all of its
# lines break, or none do).

_LINE = ("line", " ")
_SOFT = ("line", "")


def _cat(*parts):
    return ("cat", parts)


def _group(*parts):
    return ("group", ("cat", parts))


def _nest(*parts):
    return ("nest", ("cat", parts))


def _join(docs, sep):
    parts = []
    for i, d in enumerate(docs):
        if i:
            parts.append(sep)
        parts.append(d)
    return ("cat", tuple(parts))


def _render(doc, indent: int, column: int, width: int | None = WIDTH) -> str:
    """Lay `doc` out starting at `column`; breaks indent to `indent`. No width: all flat."""
    out = []
    col = column
    stack = [(indent, False, doc)]
    while stack:
        ind, flat, d = stack.pop()
        if type(d) is str:
            out.append(d)
            col += len(d)
            continue
        tag = d[0]
        if tag == "cat":
            stack.extend((ind, flat, p) for p in reversed(d[1]))
        elif tag == "nest":
            stack.append((ind + 2, flat, d[1]))
        elif tag == "line":
            if flat:
                out.append(d[1])
                col += len(d[1])
            else:
                out.append("\n" + " " * ind)
                col = ind
        elif tag == "if":
            stack.append((ind, flat, d[2] if flat else d[1]))
        else:
            fits = flat or width is None or _fits(width - col, d[1], stack)
            stack.append((ind, fits, d[1]))
    return "".join(out)


def _fits(room: int, doc, rest) -> bool:
    """Does `doc`, flat, plus what follows it up to the next line break fit in `room`?"""
    todo = [(True, doc)]
    i = len(rest)
    while room >= 0:
        if not todo:
            if i == 0:
                return True
            i -= 1
            todo.append(rest[i][1:])
            continue
        flat, d = todo.pop()
        if type(d) is str:
            room -= len(d)
            continue
        tag = d[0]
        if tag == "cat":
            todo.extend((flat, p) for p in reversed(d[1]))
        elif tag == "line":
            if not flat:
                return True
            room -= len(d[1])
        elif tag == "if":
            todo.append((flat, d[2] if flat else d[1]))
        else:
            todo.append((flat, d[1]))
    return False


def _flat(doc) -> str:
    return _render(doc, 0, 0, width=None)


def _lines(doc, indent: int, lead: str = "") -> list[str]:
    """`doc` laid out as lines at `indent`, its first line starting with `lead`."""
    pad = " " * indent
    return (pad + lead + _render(doc, indent, indent + len(lead))).split("\n")


# ---- names and literals -----------------------------------------------------------------


def _key(key: str) -> str:
    """A map or entry key: a bare name where the grammar reads it back as one."""
    if _NAME.fullmatch(key) and key not in _KEYWORDS:
        return key
    return _string(key)


def _objname(name: str) -> str:
    return name if _OBJNAME.fullmatch(name) else _string(name)


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _objref(ref: A.ObjRef) -> str:
    if ref.namespace is None:
        return _objname(ref.name)
    return f"{_objname(ref.namespace)}/{_objname(ref.name)}"


def _type(t: A.TypeRef) -> str:
    args = f"<{', '.join(_type(a) for a in t.args)}>" if t.args else ""
    return t.name + args + ("?" if t.optional else "")


def _param(p: A.Param) -> str:
    return p.name if p.type is None else f"{p.name}: {_type(p.type)}"


def _time(t: A.Number | A.Unit) -> str:
    return t.text if isinstance(t, A.Number) else t.number + t.suffix


# ---- expressions --------------------------------------------------------------------------

# Loosest first: if/forall/exists 0, or 1, and 2, not 3, comparisons 4, + - 5,
# * / % 6, unary minus 7, postfix 8, atoms 9.
_BINARY_PREC = {
    "or": 1, "and": 2,
    "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4, "not in": 4,
    "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}
_COMPARISON = 4


def _prec(e) -> int:
    if isinstance(e, (A.IfElse, A.Quantifier)):
        return 0
    if isinstance(e, A.Binary):
        return _BINARY_PREC[e.op]
    if isinstance(e, A.Unary):
        return 3 if e.op == "not" else 7
    if isinstance(e, (A.Attr, A.Index)):
        return 8
    return 9


def _expr(e, at_least: int = 0):
    """The document of `e`, parenthesised if it binds looser than `at_least`."""
    d = _expr_doc(e)
    return _cat("(", d, ")") if _prec(e) < at_least else d


def _expr_doc(e):
    match e:
        case A.Number(text=text) | A.IPLit(text=text) | A.CIDRLit(text=text):
            return text
        case A.Unit():
            return e.number + e.suffix
        case A.String():
            return _string(e.value)
        case A.Bool():
            return "true" if e.value else "false"
        case A.NoneLit():
            return "none"
        case A.Name():
            return e.id
        case A.Attr():
            # `10.0.0.1.x` would lex as a broken IP.
            obj = _cat("(", _expr(e.obj), ")") if isinstance(e.obj, A.IPLit) else _expr(e.obj, 8)
            return _cat(obj, ".", e.name)
        case A.Index():
            return _cat(_expr(e.obj, 8), "[", _expr(e.index), "]")
        case A.Call():
            if len(e.args) == 1 and isinstance(e.args[0], A.Comprehension):
                return _cat(e.fn, _generator(e.args[0], "(", ")"))
            if not e.args:
                return e.fn + "()"
            return _cat(e.fn, _bracketed("(", [_expr(a) for a in e.args], ")", trailing_comma=False))
        case A.Comprehension():
            if e.element is None:
                raise ValueError("a query `kind var where …` can only be the sole argument of a call")
            return _generator(e, "[", "]")
        case A.ListLit():
            if not e.items:
                return "[]"
            return _bracketed("[", [_expr(x) for x in e.items], "]")
        case A.MapLit():
            if not e.items:
                return "{}"
            return _bracketed("{", [_cat(_key(i.key), ": ", _expr(i.value)) for i in e.items], "}")
        case A.Unary():
            if e.op == "not":
                return _cat("not ", _expr(e.operand, 3))
            return _cat("-", _expr(e.operand, 7))
        case A.Binary(op="and" | "or"):
            # `a and b and c` breaks before each operator when it is too long.
            op, p, rest = e.op, _BINARY_PREC[e.op], []
            while isinstance(e, A.Binary) and e.op == op:
                rest.append(_cat(_LINE, op, " ", _expr(e.right, p + 1)))
                e = e.left
            return _group(_expr(e, p), _nest(*reversed(rest)))
        case A.Binary():
            p = _BINARY_PREC[e.op]
            if p == _COMPARISON:  # non-associative: both sides are sums
                left, right = p + 1, p + 1
            else:
                left, right = p, p + 1
            return _cat(_expr(e.left, left), f" {e.op} ", _expr(e.right, right))
        case A.IfElse():
            # An else-if chain breaks as one: each `then` and `else` on its own line.
            parts = ["if ", _expr(e.cond)]
            while True:
                parts += [_LINE, "then ", _expr(e.then), _LINE, "else "]
                if not isinstance(e.otherwise, A.IfElse):
                    break
                e = e.otherwise
                parts += ["if ", _expr(e.cond)]
            return _group(parts[0], parts[1], _nest(*parts[2:], _expr(e.otherwise)))
        case A.Quantifier():
            where = () if e.where is None else (" where ", _expr(e.where))
            return _cat(e.quantifier, " ", _source(e.source), *where, ": ", _expr(e.body))
    raise TypeError(f"not an expression: {e!r}")


def _bracketed(open_: str, items, close: str, trailing_comma: bool = True):
    comma = (("if", ",", ""),) if trailing_comma else ()
    return _group(open_, _nest(_SOFT, _join(items, _cat(",", _LINE)), *comma), _SOFT, close)


def _generator(c: A.Comprehension, open_: str, close: str):
    if c.element is None:
        if c.order or not isinstance(c.source, A.KindSource):
            raise ValueError("a query `kind var where …` has a kind source and no `order by`")
        parts = [_source(c.source)]
    else:
        parts = [_expr(c.element), _LINE, "for ", _source(c.source)]
    if c.where is not None:
        parts += [_LINE, "where ", _expr(c.where)]
    if c.order:
        parts += [_LINE, "order by ", _order(c.order)]
    return _group(open_, _nest(_SOFT, *parts), _SOFT, close)


def _source(s):
    if isinstance(s, A.KindSource):
        return f"{s.kind} {s.var}"
    return _cat(s.var, " in ", _expr(s.iterable))


def _order(keys):
    return _join([_cat(_expr(k.expr), " desc") if k.descending else _expr(k.expr) for k in keys], ", ")


# ---- comments -------------------------------------------------------------------------------


@attrs.frozen
class _Notes:
    """Comments keyed by the id() of the statement they are printed with."""

    leading: dict[int, list[A.Comment]] = attrs.field(factory=dict)
    trailing: dict[int, str] = attrs.field(factory=dict)
    dangling: dict[int, list[str]] = attrs.field(factory=dict)  # before a block's `}`


def _children(n) -> tuple[tuple, bool]:
    """The statement-level nodes inside `n`, and whether they sit in a `{ … }` of `n`'s."""
    match n:
        case A.Module():
            return n.decls, True
        case A.KindDecl() | A.RecordDecl():
            return n.fields, True
        case A.ObjectDecl() | A.BlockEntry() | A.ItemEntry() | A.CreateAction():
            return n.entries, True
        case A.ControllerDecl():
            return n.rules, True
        case A.Rule():
            return n.clauses + n.actions + ((n.pick,) if n.pick is not None else ()), False
        case A.Pick():
            return n.then + n.otherwise, False
        case A.PolicyDecl():
            return n.clauses, True
        case A.Mutate():
            return n.sets, False
        case A.FaultDecl():
            return n.actions, True
        case A.ScenarioDecl():
            return n.items, True
        case A.At() if isinstance(n.event, (A.CreateEvent, A.UpdateEvent)):
            return n.event.entries, True
    return (), False


def _attach_comments(module: A.Module) -> _Notes:
    notes = _Notes()
    if not module.comments:
        return notes
    # For each line, the statement a trailing comment there belongs to: the one
    # ending furthest right, the outermost of those.
    ends: dict[int, tuple[tuple[int, int], object]] = {}
    stack = [(module, 0)]
    while stack:
        n, depth = stack.pop()
        for c in _children(n)[0]:
            rank = (c.span.end_col, -depth)
            best = ends.get(c.span.end_line)
            if best is None or rank > best[0]:
                ends[c.span.end_line] = (rank, c)
            stack.append((c, depth + 1))
    for comment in module.comments:
        line = comment.line
        if comment.trailing and line in ends:
            owner = ends[line][1]
            if id(owner) not in notes.trailing:
                notes.trailing[id(owner)] = comment.text
                continue
        n = module
        while True:
            kids, braced = _children(n)
            inner = next((c for c in kids if c.span.line <= line < c.span.end_line), None)
            if inner is not None:
                n = inner
                continue
            after = next((c for c in kids if c.span.line > line), None)
            if after is not None:
                notes.leading.setdefault(id(after), []).append(comment)
            elif braced:
                notes.dangling.setdefault(id(n), []).append(comment.text)
            else:
                notes.leading.setdefault(id(n), []).append(comment)
            break
    return notes


def _holds_comment(n, notes: _Notes) -> bool:
    """Does any comment print inside `n` (its own leading and trailing ones aside)?"""
    if not (notes.leading or notes.trailing or notes.dangling):
        return False
    if id(n) in notes.dangling:
        return True
    return any(
        id(c) in notes.leading or id(c) in notes.trailing or _holds_comment(c, notes)
        for c in _children(n)[0]
    )


# ---- statements ------------------------------------------------------------------------------


def _stmt(out: list[str], n, indent: int, notes: _Notes, lead: str = "") -> None:
    """Append statement `n` at `indent`, with its comments; `lead` starts its first line."""
    pad = " " * indent
    leading = notes.leading.get(id(n), ())
    for i, c in enumerate(leading):
        out.append(pad + c.text)
        # A blank line after a comment (a file's header, say) is kept.
        following = leading[i + 1].line if i + 1 < len(leading) else n.span.line
        if c.line + 1 < following <= n.span.line:
            out.append("")
    body: list[str] = []
    _STATEMENTS[type(n)](body, n, indent, notes, lead)
    trailing = notes.trailing.get(id(n))
    if trailing:
        body[-1] += "  " + trailing
    out.extend(body)


def _braced(out, n, head, kids, indent, notes, lead="", one_line=True, blank_between=False):
    """`head { kids }`: on one line when allowed and it fits, else one kid per line."""
    pad = " " * indent
    dangling = notes.dangling.get(id(n), ())
    if not kids and not dangling:
        out.extend(_lines(_cat(head, " {}"), indent, lead))
        return
    if one_line and all(isinstance(k, A.FieldEntry) for k in kids) and not _holds_comment(n, notes):
        text = _flat(_cat(lead, head, " { ", _join([_field_entry_doc(k) for k in kids], "  "), " }"))
        if indent + len(text) <= WIDTH:
            out.append(pad + text)
            return
    out.extend(_lines(_cat(head, " {"), indent, lead))
    for i, k in enumerate(kids):
        if blank_between and i:
            out.append("")
        _stmt(out, k, indent + 2, notes)
    out.extend(pad + "  " + c for c in dangling)
    out.append(pad + "}")


def _field_entry_doc(e: A.FieldEntry):
    return _cat(_key(e.key), ": ", _expr(e.value))


def _import(out, n: A.Import, indent, notes, lead):
    out.append(" " * indent + lead + "import " + _string(n.path))


def _kind(out, n: A.KindDecl, indent, notes, lead):
    head = ("cluster kind " if n.cluster else "kind ") + n.name
    _braced(out, n, head, n.fields, indent, notes, lead, one_line=False)


def _record(out, n: A.RecordDecl, indent, notes, lead):
    _braced(out, n, "record " + n.name, n.fields, indent, notes, lead, one_line=False)


def _field_decl(out, n: A.FieldDecl, indent, notes, lead):
    default = () if n.default is None else (" = ", _expr(n.default))
    out.extend(_lines(_cat(n.name, ": ", _type(n.type), *default), indent, lead))


def _object(out, n: A.ObjectDecl, indent, notes, lead):
    head = f"{n.kind} {_objname(n.name)}" + ("" if n.namespace is None else f" in {_objname(n.namespace)}")
    _braced(out, n, head, n.entries, indent, notes, lead)


def _field_entry(out, n: A.FieldEntry, indent, notes, lead):
    out.extend(_lines(_field_entry_doc(n), indent, lead))


def _block_entry(out, n: A.BlockEntry, indent, notes, lead):
    _braced(out, n, _key(n.key), n.entries, indent, notes, lead)


def _item_entry(out, n: A.ItemEntry, indent, notes, lead):
    if not _NAME.fullmatch(n.key):
        raise ValueError(f"an item entry's key must be a name, not {n.key!r}")
    _braced(out, n, f"{n.key} {_objname(n.name)}", n.entries, indent, notes, lead)


def _controller(out, n: A.ControllerDecl, indent, notes, lead):
    head = ("replace " if n.replace else "") + "controller " + n.name
    if n.account is not None:
        head += " as " + n.account
    _braced(out, n, head, n.rules, indent, notes, lead, one_line=False, blank_between=True)


def _rule(out, n: A.Rule, indent, notes, lead):
    out.append(" " * indent + lead + ("batched " if n.batched else "") + "rule " + n.name)
    for c in n.clauses + n.actions:
        _stmt(out, c, indent + 2, notes)
    if n.pick is not None:
        _stmt(out, n.pick, indent + 2, notes)


def _for(out, n: A.ForClause, indent, notes, lead):
    out.extend(_lines(_cat("for ", _source(n.source)), indent, lead))


def _let(out, n: A.LetClause, indent, notes, lead):
    out.extend(_lines(_cat("let ", n.name, " = ", _expr(n.value)), indent, lead))


def _where(out, n: A.WhereClause, indent, notes, lead):
    out.extend(_lines(_cat("where ", _expr(n.cond)), indent, lead))


def _pick(out, n: A.Pick, indent, notes, lead):
    out.append(" " * indent + lead + "pick " + _source(n.source))
    if n.where is not None:
        out.extend(_lines(_cat("where ", _expr(n.where)), indent + 2))
    if n.order:
        out.extend(_lines(_cat("order by ", _order(n.order)), indent + 2))
    _branch(out, "then", n.then, indent + 2, notes)
    if n.otherwise:
        _branch(out, "else", n.otherwise, indent + 2, notes)


def _branch(out, word: str, actions, indent, notes):
    if len(actions) == 1 and id(actions[0]) not in notes.leading:
        _stmt(out, actions[0], indent, notes, lead=word + " ")
        return
    out.append(" " * indent + word)
    for a in actions:
        _stmt(out, a, indent + 2, notes)


def _set(out, n: A.SetAction, indent, notes, lead):
    out.extend(_lines(_cat("set ", ".".join(n.path), " = ", _expr(n.value)), indent, lead))


def _create(out, n: A.CreateAction, indent, notes, lead):
    head = _cat("ensure " if n.ensure else "create ", n.kind, " ", _expr(n.name))
    _braced(out, n, head, n.entries, indent, notes, lead)


def _delete(out, n: A.DeleteAction, indent, notes, lead):
    out.extend(_lines(_cat("delete ", _expr(n.target)), indent, lead))


def _def(out, n: A.DefDecl, indent, notes, lead):
    returns = "" if n.returns is None else " -> " + _type(n.returns)
    head = f"def {n.name}({', '.join(_param(p) for p in n.params)}){returns} ="
    if isinstance(n.body, (A.ListLit, A.MapLit, A.Comprehension, A.Call)):
        doc = _cat(head, " ", _expr(n.body))  # the brackets break instead
    else:
        doc = _group(head, _nest(_LINE, _expr(n.body)))
    out.extend(_lines(doc, indent, lead))


def _policy(out, n: A.PolicyDecl, indent, notes, lead):
    _braced(out, n, "policy " + _string(n.message), n.clauses, indent, notes, lead, one_line=False)


def _deny(out, n: A.Deny, indent, notes, lead):
    because = () if n.because is None else (" because ", _expr(n.because))
    reason = () if n.reason is None else (" as " + n.reason,)
    doc = _cat("deny ", _source(n.source), " when ", _expr(n.cond), *because, *reason)
    out.extend(_lines(doc, indent, lead))


def _mutate(out, n: A.Mutate, indent, notes, lead):
    out.extend(_lines(_cat("mutate ", _source(n.source), " when ", _expr(n.cond)), indent, lead))
    for a in n.sets:
        _stmt(out, a, indent + 2, notes)


def _fault(out, n: A.FaultDecl, indent, notes, lead):
    params = "".join(", " + _param(p) for p in n.params)
    head = f"fault {n.name}({_source(n.target)}{params})"
    _braced(out, n, head, n.actions, indent, notes, lead, one_line=False)


def _scenario(out, n: A.ScenarioDecl, indent, notes, lead):
    _braced(out, n, "scenario " + _string(n.name), n.items, indent, notes, lead, one_line=False)


def _at(out, n: A.At, indent, notes, lead):
    lead = f"{lead}at {_time(n.time)}: "
    ev = n.event
    match ev:
        case A.FaultEvent():
            args = [_cat(" ", a.name, " = ", _expr(a.value)) for a in ev.args]
            out.extend(_lines(_cat(f"{ev.fault} {ev.kind} {_objref(ev.ref)}", *args), indent, lead))
        case A.CreateEvent():
            head = f"create {ev.kind} {_objname(ev.name)}"
            if ev.namespace is not None:
                head += f" in {_objname(ev.namespace)}"
            _braced(out, n, head, ev.entries, indent, notes, lead)
        case A.UpdateEvent():
            _braced(out, n, f"update {ev.kind} {_objref(ev.ref)}", ev.entries, indent, notes, lead)
        case A.DeleteEvent():
            out.append(" " * indent + lead + f"delete {ev.kind} {_objref(ev.ref)}")


def _expect(out, n: A.Expect, indent, notes, lead):
    within = () if n.within is None else (" within " + _time(n.within),)
    out.extend(_lines(_cat("expect ", n.mode, " ", _expr(n.cond), *within), indent, lead))


def _invariant(out, n: A.InvariantDecl, indent, notes, lead):
    head = f"{lead}invariant {_string(n.name)}{' at rest' if n.at_rest else ''} {{"
    one = _flat(_cat(head, " ", _expr(n.cond), " }"))
    pad = " " * indent
    if indent + len(one) <= WIDTH:
        out.append(pad + one)
        return
    out.append(pad + head)
    out.extend(_lines(_expr(n.cond), indent + 2))
    out.append(pad + "}")


_STATEMENTS = {
    A.Import: _import,
    A.KindDecl: _kind,
    A.RecordDecl: _record,
    A.FieldDecl: _field_decl,
    A.ObjectDecl: _object,
    A.FieldEntry: _field_entry,
    A.BlockEntry: _block_entry,
    A.ItemEntry: _item_entry,
    A.ControllerDecl: _controller,
    A.Rule: _rule,
    A.ForClause: _for,
    A.LetClause: _let,
    A.WhereClause: _where,
    A.Pick: _pick,
    A.SetAction: _set,
    A.CreateAction: _create,
    A.DeleteAction: _delete,
    A.DefDecl: _def,
    A.PolicyDecl: _policy,
    A.Deny: _deny,
    A.Mutate: _mutate,
    A.FaultDecl: _fault,
    A.ScenarioDecl: _scenario,
    A.At: _at,
    A.Expect: _expect,
    A.InvariantDecl: _invariant,
}
