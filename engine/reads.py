"""What an expression reads: the static analysis behind memo keys, admission ratcheting and
the engine's field wake-ups.

`Reads(program).fields(var, e)` is the set of fields of the object bound to `var` that `e`
reads — itself or through the defs it passes the object to — or None when `e` uses the
object whole (compares it, returns it, hands it to a built-in not followed below). `kinds(roots, kind_name)`
is the same of the objects of each kind a rule ranges over, followed also out of the defs
that return them (`for q in pods_on(n)`, `len(active(rs))`). `pure(e)` says whether `e`
reads nothing but its variables: no kind (`for pod p`, `count(node n)`), no clock, no
earlier state, through any def it calls. An expression that is pure and reads only fields
F of `var` gives the same value for any two objects equal in F. `straight(defs, name)` says
whether a def is pure, small and free of loops: cheaper to evaluate at each call than to
memoise.

`Reads(program, derive=True)` answers `fields` and `kinds` for the engine's wake-ups: there a
call of a *derivable* def (`derivable`: a straight def of one object, whose value holds none)
on a followed object reads of it the one field `derived(def)` (`terminal()`), not the fields
the def reads, as a guard that reads the phase only through `terminal(p)` reads of the pod only
whether it is terminal. The engine counts that field changed only where the def's value on the
two versions differs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import ast as A

if TYPE_CHECKING:  # the checker itself asks `reads_world`
    from .check import Program

# The built-ins that read nothing but their arguments. Any other (now, before, one added
# later) counts as reading the world.
PURE_BUILTINS = frozenset({
    "count", "sum", "min", "max", "any", "all", "len", "str", "int", "float", "abs", "ceil", "floor", "round",
    "log", "millis", "seconds", "keys", "values", "get", "put", "without", "only", "coalesce", "has_duplicates", "distinct",
    "sorted", "first", "range", "flatten", "pow", "type_of", "join", "split", "contains", "startswith", "lower",
    "matches", "hash", "cidr_contains", "cidr_size", "cidr_subnet", "cidr_host", "ip_index", "is_ip",
})


# The built-ins whose work does not grow with the values given them: none walks a list or a
# map (`sum`, `hash`, `join`, …) or makes a list as long as a number says (`range`). So are
# `min` and `max` given their values one by one (`min(1.0, x)`), not as a list.
FLAT_BUILTINS = frozenset({
    "len", "count", "str", "int", "float", "abs", "ceil", "floor", "round", "log", "millis", "seconds", "get",
    "coalesce", "first", "type_of", "startswith", "lower", "cidr_contains", "cidr_size", "cidr_subnet",
    "cidr_host", "ip_index", "is_ip",
})

# The syntax nodes (a def's body and those of the defs it calls) of the largest straight def.
STRAIGHT_NODES = 40


# What a value carries of the objects followed: one of them (or none), or a list of them.
OBJECT, LIST = "object", "list"


class Reads:
    """The fields read of objects, followed where they flow: from a variable or a kind's query
    into comprehensions (`for q in pods_on(n)`), through the defs that take or return them, into
    `len`, `count`, `any`, `all`, `first`, an index, a comparison with none. Each followed value is tagged with
    where its objects come from (a kind as written, a def's parameter, a variable); a use the
    analysis does not follow (a comparison, a record or list built of them, a built-in not named
    above, a loop over one object's keys) reads the objects of its tags whole."""

    def __init__(self, program: Program, derive: bool = False):
        self.program = program
        self.derive = derive  # calls of derivable defs read `derived(def)` of their argument
        self._derivable: dict[str, bool] = {}
        # (def, what each argument carries: OBJECT, LIST or None) → the fields read of each
        # parameter, those read of each kind it ranges over, and what its value carries
        self._summaries: dict[tuple, tuple] = {}
        self._pure: dict[int, tuple] = {}  # id(expression) → (it, whether it is pure)
        # def → whether its body reads more than its arguments: kept, so that the many policies and
        # guards that call the same defs walk each body once (reads_world)
        self._impure_defs: dict[str, bool] = {}

    def fields(self, var: str, e) -> frozenset | None:
        """The fields `e` reads of the object bound to `var`, or None where it uses it whole
        (its value is the object, or holds it)."""
        tag = ("var", var)
        out: dict = {}
        _whole(self._flow(e, {var: (frozenset({tag}), OBJECT)}, out), out)
        return out.get(tag, frozenset())

    def params(self, name: str) -> tuple:
        """For each parameter of a def, the fields it reads of it, or None (as `fields`: a def
        that returns the object uses it whole)."""
        d = self.program.defs[name]
        found, _, value = self._summary(name, (OBJECT,) * len(d.params))
        returned = value[0] if value is not None else ()
        return tuple(None if ("param", i) in returned else f for i, f in enumerate(found))

    def kinds(self, roots, kind_name) -> dict[str, frozenset | None]:
        """For each kind (named by `kind_name` of it as written) that `roots` (a rule's clauses,
        actions and pick) range over, themselves or through the defs they call, the fields they
        may read of its objects, those a def returns too, or None where they may use one whole."""
        out: dict = {}
        _whole(self._flow(roots, {}, out), out)
        found: dict = {}
        for tag, fields in out.items():
            if tag[0] == "kind":
                _note(found, kind_name(tag[1]), fields)
        return found

    def _summary(self, name: str, shapes: tuple) -> tuple:
        """What calling a def with arguments carrying `shapes` reads: the fields of each
        parameter (or None), the fields of each kind it ranges over (by tag), and what its value
        carries, its tags those of kinds or ("param", i)."""
        key = (name, shapes)
        found = self._summaries.get(key)
        if found is None:
            d = self.program.defs[name]
            # defs are not recursive (the checker refuses it); a guard
            self._summaries[key] = ((None,) * len(d.params), {}, None)
            out: dict = {}
            env = {p.name: (frozenset({("param", i)}), s) for i, (p, s) in enumerate(zip(d.params, shapes))
                   if s is not None}
            value = self._flow(d.body, env, out)
            found = self._summaries[key] = (
                tuple(out.get(("param", i), frozenset()) for i in range(len(d.params))),
                {tag: f for tag, f in out.items() if tag[0] == "kind"}, value)
        return found

    def _flow(self, e, env: dict, out: dict):
        """Note in `out` what `e` reads of the objects `env` follows (variable → (tags, shape)),
        and those of the kinds it ranges over; what its value carries of them: (tags, OBJECT or
        LIST), or None."""
        if isinstance(e, A.Name):
            return env.get(e.id)
        if isinstance(e, A.Attr):
            _read(self._flow(e.obj, env, out), e.name, out)
            return None
        if isinstance(e, A.Call):
            return self._call(e, env, out) if e.fn in self.program.defs else self._builtin(e, env, out)
        if isinstance(e, A.Comprehension):
            inner = self._bind(e.source, env, out)
            self._use((e.where, *(k.expr for k in e.order)), inner, out)
            element = inner[e.source.var] if e.element is None else self._flow(e.element, inner, out)
            if element is not None and element[1] is OBJECT:
                return element[0], LIST
            _whole(element, out)  # a list of lists
            return None
        if isinstance(e, A.Quantifier):
            self._use((e.where, e.body), self._bind(e.source, env, out), out)
            return None
        if isinstance(e, A.Index):
            found = self._flow(e.obj, env, out)
            self._use(e.index, env, out)
            if found is not None and found[1] is LIST:
                return found[0], OBJECT
            _whole(found, out)  # a map's entry
            return None
        if isinstance(e, A.Binary):
            left, right = self._flow(e.left, env, out), self._flow(e.right, env, out)
            if e.op in ("==", "!=") and (isinstance(e.left, A.NoneLit) or isinstance(e.right, A.NoneLit)):
                return None  # none or not: nothing of an object's content
            if e.op == "+" and LIST in (left and left[1], right and right[1]):
                return _join(left, right, out)  # lists joined
            _whole(left, out)
            _whole(right, out)
            return None
        if isinstance(e, A.IfElse):
            self._use(e.cond, env, out)
            return _join(self._flow(e.then, env, out), self._flow(e.otherwise, env, out), out)
        if isinstance(e, tuple | list):
            self._block(e, env, out)
            return None
        if isinstance(e, A.KindSource):
            out[("kind", e.kind)] = None  # ranged over where it is not followed: used whole
            return None
        if isinstance(e, A.Pick):
            inner = self._bind(e.source, env, out)
            self._use((e.where, *(k.expr for k in e.order)), inner, out)
            self._block(e.then, inner, out)
            self._block(e.otherwise, env, out)
            return None
        if isinstance(e, A.SetAction):
            _read(env.get(e.path[0]), e.path[1], out)  # a `set` writes only while the value differs
            self._use(e.value, env, out)
            return None
        if hasattr(e, "__attrs_attrs__"):  # any other node uses what it holds whole
            self._use(tuple(getattr(e, f.name) for f in e.__attrs_attrs__ if f.name != "span"), env, out)
        return None

    def _use(self, items: tuple, env: dict, out: dict) -> None:
        """Each of `items` (expressions, or None), its value used whole."""
        self._block(items if isinstance(items, tuple) else (items,), env, out)

    def _block(self, items, env: dict, out: dict) -> dict:
        """Clauses, actions and expressions in turn, each value used whole, a `for` or a `let`
        binding its variable for those after it; the variables bound at the end."""
        for x in items:
            if isinstance(x, A.ForClause):
                env = self._bind(x.source, env, out)
            elif isinstance(x, A.LetClause):
                env = {**env, x.name: self._flow(x.value, env, out)}
            elif isinstance(x, tuple | list):
                env = self._block(x, env, out)
            else:
                _whole(self._flow(x, env, out), out)
        return env

    def _bind(self, source, env: dict, out: dict) -> dict:
        """`env` with the variable of `source` bound: to the objects of a kind, or to the elements
        of a list, followed where the list is."""
        if isinstance(source, A.KindSource):
            _note(out, ("kind", source.kind), frozenset())  # ranged over, if no field is read
            return {**env, source.var: (frozenset({("kind", source.kind)}), OBJECT)}
        found = self._flow(source.iterable, env, out)
        if found is not None and found[1] is not LIST:
            _whole(found, out)  # an object's keys
            found = None
        return {**env, source.var: found and (found[0], OBJECT)}

    def derivable(self, name: str) -> bool:
        """Whether a def's value on an object is a function of some of that object's fields alone,
        cheap to work out again and holding nothing of it: one parameter, read by its fields (not
        whole), straight (it reads no kind, no clock), and its value is not the object nor a list
        of it (a caller could read those further)."""
        found = self._derivable.get(name)
        if found is None:
            d = self.program.defs[name]
            if len(d.params) == 1 and straight(self.program.defs, name):
                params, _, value = self._summary(name, (OBJECT,))
                found = params[0] is not None and value is None
            else:
                found = False
            self._derivable[name] = found
        return found

    def _call(self, e: A.Call, env: dict, out: dict):
        args = [self._flow(a, env, out) for a in e.args]
        if self.derive and len(args) == 1 and args[0] is not None and args[0][1] is OBJECT and self.derivable(e.fn):
            for tag in args[0][0]:
                _note(out, tag, frozenset((derived(e.fn),)))
            return None
        params, kinds, value = self._summary(e.fn, tuple(a and a[1] for a in args))
        for n, a in enumerate(args):
            if n >= len(params) or params[n] is None:
                _whole(a, out)
            elif a is not None:
                for tag in a[0]:
                    _note(out, tag, params[n])
        for tag, f in kinds.items():
            _note(out, tag, f)
        if value is None:
            return None
        tags = frozenset().union(*(args[tag[1]][0] if tag[0] == "param" else (tag,) for tag in value[0]))
        return tags, value[1]

    def _builtin(self, e: A.Call, env: dict, out: dict):
        args = [self._flow(a, env, out) for a in e.args]
        if len(args) == 1 and args[0] is not None and args[0][1] is LIST:
            if e.fn in ("len", "count", "any", "all"):
                return None  # how many, or whether any: an object counts whatever it holds
            if e.fn == "first":
                return args[0][0], OBJECT
        for a in args:
            _whole(a, out)
        return None

    def pure(self, e) -> bool:
        """Whether `e` reads nothing but its variables, found once per expression (a pick asks
        it of a guard at every walk)."""
        found = self._pure.get(id(e))
        if found is None or found[0] is not e:
            found = self._pure[id(e)] = (e, reads_world(self.program.defs, e, self._impure_defs) is None)
        return found[1]


def derived(name: str) -> str:
    """The field a derivable def's call reads of its argument in a `derive` analysis: no field
    of an object is named so."""
    return name + "()"


def _note(out: dict, tag, fields) -> None:
    """Add `fields` (None: whole) to what is read of the objects of `tag`."""
    known = out.get(tag, frozenset())
    out[tag] = None if known is None or fields is None else known | fields


def _read(value, field: str, out: dict) -> None:
    """The field `field` of what `value` carries: read of an object, whole of a list's."""
    if value is not None:
        if value[1] is OBJECT:
            for tag in value[0]:
                _note(out, tag, frozenset((field,)))
        else:
            _whole(value, out)


def _whole(value, out: dict) -> None:
    if value is not None:
        for tag in value[0]:
            out[tag] = None


def _join(a, b, out: dict):
    """What a value that is either `a` or `b` carries: two lists joined by `+`, or the two
    branches of an `if`."""
    if a is None or b is None:
        return a or b
    if a[1] is b[1]:
        return a[0] | b[0], a[1]
    _whole(a, out)
    _whole(b, out)
    return None


def reads_world(defs: dict, e, impure: dict[str, bool] | None = None):
    """The first node under `e` that reads more than its variables — a kind (`for pod p`,
    `count(node n)`), the clock, an earlier state — or the call of a def that does; None.
    `impure` keeps each def's answer (def → whether it reads more), so that a def is walked
    once: pass one dict to several calls only for a checked program, whose defs are not
    recursive (a def being walked counts as pure until its answer is known)."""
    known = {} if impure is None else impure
    for n in A.walk(e):
        if isinstance(n, A.KindSource) or _reads_more(defs, n):
            return n
        if isinstance(n, A.Call) and n.fn in defs:
            answer = known.get(n.fn)
            if answer is None:
                known[n.fn] = False
                answer = known[n.fn] = reads_world(defs, defs[n.fn].body, known) is not None
            if answer:
                return n
    return None


def kinds_read(defs: dict, roots) -> set[str] | None:
    """The kinds (as written) whose objects `roots` read, through the defs they call; None where
    they read more than those and their variables (the clock, an earlier state)."""
    kinds = set()
    for n in reached(defs, roots):
        if isinstance(n, A.KindSource):
            kinds.add(n.kind)
        elif _reads_more(defs, n):
            return None
    return kinds


def _reads_more(defs: dict, n) -> bool:
    """Whether `n` calls what reads more than its arguments: a built-in that is not pure."""
    return isinstance(n, A.Call) and n.fn not in defs and n.fn not in PURE_BUILTINS


def reached(defs: dict, roots):
    """Every syntax node under `roots` and in the bodies of the defs they call, each def once."""
    pending, seen = [roots], set()
    while pending:
        for n in A.walk(pending.pop()):
            yield n
            if isinstance(n, A.Call) and n.fn in defs and n.fn not in seen:
                seen.add(n.fn)
                pending.append(defs[n.fn].body)


def straight(defs: dict, name: str) -> bool:
    """Whether a call of the def `name` costs less to evaluate than to name in a memo key: it
    reads no kind, loops nowhere (no comprehension or quantifier, no built-in but FLAT_BUILTINS,
    so no clock and no earlier state either), divides nothing (exact division makes a Fraction)
    and has at most STRAIGHT_NODES syntax nodes, counting the defs it calls at each call.

    The evaluator evaluates such a call at each call, unmemoised. That gives what a memo hit
    would: the value is the body's on these arguments, and the call reads nothing of the world
    (so a hit would add no read to the caller's). A symbolic clock can reach it only inside an
    argument, which a memo key never names: such a call was evaluated afresh already, its
    comparisons recording their deadlines as they do now."""
    return _straight_size(defs, name, ()) <= STRAIGHT_NODES


def _straight_size(defs: dict, name: str, visiting: tuple) -> float:
    """The syntax nodes of a straight def, or infinity when it is not one."""
    if name in visiting:
        return math.inf  # recursive (the checker refuses it): never inlined
    size = 0
    for n in A.walk(defs[name].body):
        size += 1
        if isinstance(n, A.KindSource | A.Comprehension | A.Quantifier | A.ListSource):
            return math.inf
        if isinstance(n, A.Binary) and n.op == "/":
            return math.inf  # exact division makes a Fraction: dearer than a key
        if isinstance(n, A.Call):
            if n.fn in defs:
                size += _straight_size(defs, n.fn, (*visiting, name))
            elif n.fn not in FLAT_BUILTINS and not (n.fn in ("min", "max") and len(n.args) > 1):
                return math.inf  # a walk of a value, or the clock, an earlier state, an unknown function
        if size > STRAIGHT_NODES:
            return math.inf
    return size
