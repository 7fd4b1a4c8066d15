"""What an expression reads: the static analysis behind memo keys and admission ratcheting.

`Reads(program).fields(var, e)` is the set of fields of the object bound to `var` that `e`
reads — itself or through the defs it passes the object to — or None when `e` uses the
object whole (compares it, returns it, hands it to a built-in). `pure(e)` says whether `e`
reads nothing but its variables: no kind (`for pod p`, `count(node n)`), no clock, no
earlier state, through any def it calls. An expression that is pure and reads only fields
F of `var` gives the same value for any two objects equal in F. `straight(defs, name)` says
whether a def is pure, small and free of loops: cheaper to evaluate at each call than to
memoise.
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
    "millis", "seconds", "keys", "values", "get", "put", "without", "coalesce", "has_duplicates", "distinct",
    "sorted", "first", "range", "flatten", "pow", "type_of", "join", "split", "contains", "startswith", "lower",
    "hash", "cidr_contains", "cidr_size", "cidr_subnet", "cidr_host", "ip_index",
})


# The built-ins whose work does not grow with the values given them: none walks a list or a
# map (`sum`, `hash`, `join`, …) or makes a list as long as a number says (`range`). So are
# `min` and `max` given their values one by one (`min(1.0, x)`), not as a list.
FLAT_BUILTINS = frozenset({
    "len", "count", "str", "int", "float", "abs", "ceil", "floor", "round", "millis", "seconds", "get",
    "coalesce", "first", "type_of", "startswith", "lower", "cidr_contains", "cidr_size", "cidr_subnet",
    "cidr_host", "ip_index",
})

# The syntax nodes (a def's body and those of the defs it calls) of the largest straight def.
STRAIGHT_NODES = 40


class Reads:
    def __init__(self, program: Program):
        self.program = program
        self._params: dict[str, tuple] = {}  # def → per parameter, the fields it reads or None
        self._pure: dict[int, tuple] = {}  # id(expression) → (it, whether it is pure)

    def fields(self, var: str, e) -> frozenset | None:
        out: set = set()
        return frozenset(out) if self._fields(var, e, out) else None

    def params(self, name: str) -> tuple:
        """For each parameter of a def, the fields it reads of it, or None."""
        found = self._params.get(name)
        if found is None:
            d = self.program.defs[name]
            self._params[name] = (None,) * len(d.params)  # defs are not recursive (the checker refuses it); a guard
            found = self._params[name] = tuple(self.fields(p.name, d.body) for p in d.params)
        return found

    def _fields(self, var: str, e, out: set) -> bool:
        if isinstance(e, A.Name):
            return e.id != var
        if isinstance(e, A.Attr) and isinstance(e.obj, A.Name) and e.obj.id == var:
            out.add(e.name)
            return True
        if getattr(e, "var", None) == var:
            return False  # rebound: not followed
        if isinstance(e, A.Call) and e.fn in self.program.defs:
            callee = self.params(e.fn)
            for j, a in enumerate(e.args):
                if isinstance(a, A.Name) and a.id == var:
                    if j >= len(callee) or callee[j] is None:
                        return False
                    out |= callee[j]
                elif not self._fields(var, a, out):
                    return False
            return True
        if isinstance(e, tuple):
            return all(self._fields(var, x, out) for x in e)
        if hasattr(e, "__attrs_attrs__"):
            return all(self._fields(var, getattr(e, f.name), out) for f in e.__attrs_attrs__ if f.name != "span")
        return True

    def pure(self, e) -> bool:
        """Whether `e` reads nothing but its variables, found once per expression (a pick asks
        it of a guard at every walk)."""
        found = self._pure.get(id(e))
        if found is None or found[0] is not e:
            found = self._pure[id(e)] = (e, reads_world(self.program.defs, e) is None)
        return found[1]


def reads_world(defs: dict, e, _seen: set | None = None):
    """The first node under `e` that reads more than its variables — a kind (`for pod p`,
    `count(node n)`), the clock, an earlier state — or the call of a def that does; None."""
    seen = set() if _seen is None else _seen  # defs found pure (each walked once, recursive ones too)
    for n in A.walk(e):
        if isinstance(n, A.KindSource) or _reads_more(defs, n):
            return n
        if isinstance(n, A.Call) and n.fn in defs and n.fn not in seen:
            seen.add(n.fn)
            if reads_world(defs, defs[n.fn].body, seen) is not None:
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
