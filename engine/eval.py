"""Evaluate expressions of a checked program against a world of objects.

The same evaluator serves admission policies in the API server, defaults,
invariants and the rules of the fixed-point engine. It is total on checked
programs: `none` propagates through field access and arithmetic, ordering
against `none` is false; the errors left (division by zero, comparing text
with a number under `any`) are user errors that point at the expression.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from types import FunctionType
from typing import Any, Protocol

from . import ast as A
from .check import Program
from .errors import Diagnostic, KonvergeError
from .reads import reads_world, straight
from .values import (
    Unnamed, exact, exact_sum, format_duration, format_quantity, freeze, number_value, pattern, unit_value, value_key,
)


class World(Protocol):
    def scan(self, kind: str) -> Iterable[dict]:
        """Every object of a kind (by its declared name), in key order."""

    def now(self) -> int | Fraction:
        """The virtual clock, in seconds."""


class EvalError(KonvergeError):
    pass


def _fail(e, message: str, hint: str | None = None):
    raise EvalError(Diagnostic("E100", message, span=getattr(e, "span", None), hint=hint))


Env = dict[str, Any]


class Clock:
    """`now()` plus an offset, as seen while the engine looks for its next deadline.

    Arithmetic with numbers keeps it symbolic; comparing it with a number gives
    the truth at the current time and records the instant at which the answer
    would change, so the engine knows when to advance the virtual clock. Any
    other use turns it into a plain number (`materialize`).
    """

    __slots__ = ("ev", "now", "offset")

    def __init__(self, ev: "Evaluator", now, offset=0):
        self.ev, self.now, self.offset = ev, now, offset

    @property
    def value(self):
        return exact(self.now + self.offset)

    def __add__(self, other):
        if isinstance(other, int | Fraction):
            return Clock(self.ev, self.now, exact(self.offset + other))
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, Clock):
            return exact(self.offset - other.offset)
        if isinstance(other, int | Fraction):
            return Clock(self.ev, self.now, exact(self.offset - other))
        return NotImplemented

    def _flip(self, bound, strict: bool):
        # now + offset crosses `bound` at now = bound - offset.
        t = exact(bound - self.offset)
        self.ev.deadline(t + 1 if strict else t)

    def _cmp(self, other, op, strict):
        if isinstance(other, Clock):
            return op(self.offset, other.offset)
        if not isinstance(other, int | Fraction | float):
            return NotImplemented
        self._flip(other, strict)
        return op(self.value, other)

    def __lt__(self, other):
        return self._cmp(other, lambda a, b: a < b, False)

    def __le__(self, other):
        return self._cmp(other, lambda a, b: a <= b, True)

    def __gt__(self, other):
        return self._cmp(other, lambda a, b: a > b, True)

    def __ge__(self, other):
        return self._cmp(other, lambda a, b: a >= b, False)

    def __eq__(self, other):
        if isinstance(other, Clock):
            return self.offset == other.offset
        if isinstance(other, int | Fraction | float):
            self._flip(other, False)  # true from the instant it reaches `other`…
            self._flip(other, True)  # …and false again just after
            return self.value == other
        return False

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f"Clock(now={self.now}, offset={self.offset})"


def materialize(v):
    """A value with every `Clock` in it turned into the number it stands for: its maps and lists
    copied, and the leaves that cannot be a Clock taken as they are, without a call each."""
    t = type(v)
    if t in _FLAT:
        return v
    if t is Clock:
        return v.value
    if t is dict:
        return {k: x if type(x) in _FLAT else materialize(x) for k, x in v.items()}
    if t is list:
        return [x if type(x) in _FLAT else materialize(x) for x in v]
    return v


_FLAT = frozenset({str, int, bool, float, Fraction, type(None)})  # values that hold no Clock


class Evaluator:
    """Evaluates expressions against one program and one world."""

    TRIAL = 1000  # memoised calls of a def that decide whether it stays memoised (call)
    RETRY = 8000  # calls of a def found unused, each evaluated afresh, before it is tried again

    def __init__(self, program: Program, world: World):
        self.program = program
        self.world = world
        self._kind_names: dict[str, str] = {}
        # While not None, `now()` is symbolic and comparisons against it record
        # the future instants at which they would change here.
        self.deadlines: set | None = None
        self._asks: dict[tuple, tuple] = {}  # (source, conditions) by ids → what it asks (asks)
        self._asking: tuple = (_UNASKED,)  # the world, and what it answers (_asks_of)
        # A rule's id → the rule, its clauses and its actions compiled (fixpoint._code): kept here, as
        # the code they call is, for a rule is walked with the evaluator of the world it looks at
        # (faults swap them).
        self.plans: dict[int, tuple] = {}
        self._code: dict[int, Callable[[Env], Any]] = {}
        # def → [its body's code, a function of the arguments (None until first called); True where
        # it is memoised, [calls, hits] while that is tried out (call), or the calls left to
        # evaluate afresh, its entries found unused, before it is tried again; the def]: one slot, as
        # every call asks both, which the code that calls it holds (_bind)
        self._defs: dict[str, list] = {}
        self._straight: dict[str, bool] = {}  # def → evaluated at every call, never memoised
        self._nodes: list = []
        # A memo of `def` results (set by the engine): key(name, args), entries (key → (value,
        # reads)), world, enter() → outer, leave(outer, key, value, cacheable), and picks. Calls
        # whose evaluation looked at the clock are not kept.
        self.memo = None
        self.clock_used = False
        self.saw_clock = False  # `now()` was called since the engine last reset this
        # id(_Fold) → its parts compiled, and per entry asked its members' parts, their totals and
        # the value made of them (fold), kept where `folding` is set
        self._folds: dict[int, tuple] = {}
        self.folding = False

    def deadline(self, t) -> None:
        self.clock_used = True  # a comparison with the clock: its answer changes with time
        if self.deadlines is not None and t > self.world.now():
            self.deadlines.add(t)

    def now(self):
        self.clock_used = True
        now = self.world.now()
        if self.deadlines is None:
            return now
        self.saw_clock = True
        return Clock(self, now)

    def kind_name(self, ref: str) -> str:
        name = self._kind_names.get(ref)
        if name is None:
            info = self.program.kind(ref)
            name = info.name if info else ref
            self._kind_names[ref] = name
        return name

    def eval(self, e: A.Expr, env: Env):
        try:  # compiled at its first evaluation: every later one finds it, without a call to ask
            code = self._code[id(e)]
        except KeyError:
            code = self.compile(e)
        return code(env)

    def compile(self, e: A.Expr) -> Callable[[Env], Any]:
        """The function that evaluates `e` in an environment: built once per node (see _compile),
        so that evaluation does not dispatch on node types."""
        code = self._code.get(id(e))
        if code is None:
            code = self._code[id(e)] = _compile(self, e)
            self._nodes.append(e)  # kept alive, so that no other node takes its id
        return code

    # -- sources, shared by comprehensions, quantifiers, rules and policies

    def bindings(self, source: A.Source, env: Env, where: Iterable[A.Expr] = ()) -> Iterable[Any]:
        """The values a source ranges over. For a kind, a `where` conjunct the world can answer
        from an index (`v.f == x`, `selector <= v.labels`) narrows the candidates; the caller
        still applies the whole condition."""
        if isinstance(source, A.KindSource):
            return self.kind_bindings(self.asks(source, tuple(where)), env)
        return self.elements(source, env)

    def asks(self, source: A.KindSource, where: tuple[A.Expr, ...]) -> tuple:
        """What a kind source filtered by `where` asks of the world, worked out once: its kind's
        name; for each conjunct an index can answer (_index_probes), the index and the function
        that gives the value to ask it for; and the first of them again where it answers the
        only condition whole (candidates), else None. The entry holds the nodes, so that no
        other node takes their ids while it is kept."""
        key = (id(source), id(where[0])) if len(where) == 1 else (id(source), *map(id, where))
        found = self._asks.get(key)
        if found is None:
            builtin_len = "len" not in self.program.defs
            probes = [(mode, path, self.compile(other), conjunct) for cond in where
                      for mode, path, other, conjunct in _index_probes(source.var, cond, builtin_len)]
            exact = probes[0][:3] if len(where) == 1 and probes and probes[0][3] is where[0] else None
            found = self._asks[key] = (source, where, self.kind_name(source.kind), [p[:3] for p in probes], exact)
        return found

    def kind_bindings(self, asks: tuple, env: Env) -> Iterable[Any]:
        """The candidates of a kind source (bindings), given its asks."""
        _, _, kind, probes, _ = asks
        world = self.world
        _, lookup, size = self._asks_of(world)
        if lookup is not None and probes:
            # Of every conjunct an index can answer, the one with the fewest candidates (the first
            # of them, as a stable sort would put it): the planner's choice, made afresh for each
            # binding, its sizes asked only where there is a choice.
            best = least = None
            for mode, path, value_of in probes:
                value = self._ask(value_of, env)
                if value is _UNASKABLE:
                    continue
                if best is None:
                    best = (mode, path, value)
                elif size is not None:
                    if least is None:
                        least = size(kind, *best)
                    n = size(kind, mode, path, value)
                    if n < least:
                        best, least = (mode, path, value), n
            if best is not None:
                return lookup(kind, *best)
        return world.scan(kind)

    def _asks_of(self, world) -> tuple:
        """(`world`, what it answers beside scans: its lookup, and lookup_size for the planner),
        each None where it has none: asked of a world once, not at every binding (a test may
        swap the world)."""
        asking = self._asking
        if asking[0] is not world:
            asking = self._asking = (world, getattr(world, "lookup", None), getattr(world, "lookup_size", None))
        return asking

    def elements(self, source: A.ListSource, env: Env) -> Iterable[Any]:
        """The values a list source ranges over: a list's elements, a map's keys in order."""
        return _elements(self.eval(source.iterable, env))

    def _ask(self, value_of: Callable[[Env], Any], env: Env):
        """What to ask an index for; _UNASKABLE when the value side needs the conjuncts before it
        to hold (it fails on its own) or depends on the clock (a comparison must record when its
        answer changes): the source is then scanned and the whole condition tested."""
        try:
            value = value_of(env)
        except EvalError:
            return _UNASKABLE
        if type(value) is Clock:
            return _UNASKABLE
        return materialize(value) if self.saw_clock else value  # only then can a Clock hide inside

    def select(self, source: A.Source, where: A.Expr | None, order: tuple[A.OrderKey, ...], env: Env) -> list[Env]:
        """The environments a source yields, filtered and ordered."""
        out = list(self.filtered(source, where, env))
        if order:
            for key in reversed(order):
                value = self.compile(key.expr)
                out.sort(key=lambda en: _sort_key(value(en)), reverse=key.descending)
        return out

    def filtered(self, source: A.Source, where: A.Expr | None, env: Env) -> Iterator[Env]:
        """The environments a source yields that pass `where`, one at a time, in source order."""
        var = source.var
        values, where = self.candidates(source, where, env)
        if where is None:
            for value in values:
                inner = dict(env)
                inner[var] = value
                yield inner
            return
        test = self.compile(where)
        for value in values:
            inner = dict(env)
            inner[var] = value
            if test(inner) is True:
                yield inner

    def candidates(self, source: A.Source, where: A.Expr | None, env: Env) -> tuple[Iterable[Any], A.Expr | None]:
        """The values a source's variable may take, in source order, and the condition they must
        pass yet: `where`, or None where an index answered it exactly."""
        if not isinstance(source, A.KindSource):
            return self.elements(source, env), where
        return self.kind_candidates((id(source),) if where is None else (id(source), id(where)), source, where, env)

    def kind_candidates(self, key: tuple, source: A.KindSource, where: A.Expr | None,
                        env: Env) -> tuple[Iterable[Any], A.Expr | None]:
        """The candidates of a kind source, as `candidates` gives them, given the key asks() files
        its asks under: the code written out makes it once, not at every evaluation."""
        try:
            asks = self._asks[key]
        except KeyError:
            asks = self.asks(source, () if where is None else (where,))
        exact = asks[4]
        lookup = self._asks_of(self.world)[1]
        if exact is not None and lookup is not None:
            mode, path, value_of = exact
            wanted = self._ask(value_of, env)
            if wanted is not _UNASKABLE and _answerable(mode, wanted):
                # The whole condition is what the index answers, exactly (a "nonempty"
                # index only narrows: `len` is still applied, to fail where it fails).
                return lookup(asks[2], mode, path, wanted), where if mode == "nonempty" else None
        return self.kind_bindings(asks, env), where

    # -- expressions

    def arith(self, e: A.Binary, op: str, a, b):
        """`a op b` for + - * / %: none propagates, quantities stay exact, a Clock symbolic."""
        if a is None or b is None:
            return None
        ta, tb = type(a), type(b)
        if ta in _RATIONAL and tb in _RATIONAL and op != "%":
            return _exact_arith(e, op, a, b)
        if ta is float and tb in _RATIONAL or tb is float and ta in _RATIONAL:
            # What Python does with a float and an int or a Fraction, without Fraction asking
            # numbers.Rational first: the other made a float.
            a, b = float(a), float(b)
        if op == "+":
            if isinstance(a, dict) and isinstance(b, dict):
                return {**a, **b}
            if isinstance(a, list) and isinstance(b, list):
                return a + b
            if isinstance(a, str) or isinstance(b, str):
                if isinstance(a, str) and isinstance(b, str):
                    return a + b
                _fail(e, f"cannot add {_describe(a)} and {_describe(b)}", hint="convert with `str(…)`")
        if isinstance(a, Clock) or isinstance(b, Clock):
            if isinstance(a, Clock) and op in ("+", "-"):
                return a + b if op == "+" else a - b
            if isinstance(b, Clock) and op == "+":
                return b + a
            a, b = materialize(a), materialize(b)
        try:
            if op == "+":
                r = a + b
            elif op == "-":
                r = a - b
            elif op == "*":
                r = a * b
            elif op == "/":
                if type(a) is int and type(b) is int:
                    r = Fraction(a, b)
                elif isinstance(a, float) or isinstance(b, float):
                    r = a / b
                else:
                    r = Fraction(a) / Fraction(b)
            else:
                r = a % b
        except ZeroDivisionError:
            _fail(e, "division by zero")
        except TypeError:
            _fail(e, f"`{op}` is not defined for {_describe(a)} and {_describe(b)}")
        return exact(r) if isinstance(r, Fraction) else r

    def call_def(self, d: A.DefDecl, args: list):
        """The value of calling `d` with `args`, for a caller that holds the def, not its slot (a
        test, a tool): compiled code calls `call`."""
        return self.call(self.slot(d), args)

    def call(self, slot: list, args: list):
        """The value of calling the def of `slot` (Evaluator.slot) with `args`: the code that calls
        a def holds its slot, not asking `_defs` at every call."""
        body, memoised, d = slot
        if body is None:
            body = slot[0] = _compile_def(self, d)
        memo = self.memo
        if memo is None:
            return body(*args)
        if type(memoised) is int:  # its entries found unused: evaluated afresh for a while (True is a bool)
            slot[1] = memoised - 1 if memoised > 1 else [0, 0]
            return body(*args)
        key = memo.key(d.name, args)
        entry = memo.entries.get(key) if key is not None else None
        if memoised is not True:
            # A call in the def's trial. At its end, the def stays memoised only if one call in 8
            # found its entry, else it is evaluated afresh for RETRY calls, then tried again (a run
            # goes through phases: a def may find no entries at first and many later). Either way
            # the value is the body's on the arguments: a def whose entries go unused (one called
            # only where what it reads has just changed, as a pick's judging of a candidate is)
            # costs less evaluated afresh at each call. A call whose arguments no key names (a
            # list of values) counts as one that found no entry: a def mostly given such is
            # evaluated afresh after its trial, no key tried.
            memoised[0] += 1
            if entry is not None:
                memoised[1] += 1
            if memoised[0] >= self.TRIAL:
                slot[1] = True if memoised[1] * 8 >= memoised[0] else self.RETRY
        if key is None:
            return body(*args)
        if entry is not None:  # a hit: the caller reads what the call read
            if entry[1]:
                memo.world.scanned |= entry[1]
            return entry[0]
        outer_clock, self.clock_used = self.clock_used, False
        outer = memo.enter()
        value, cacheable = None, False
        try:
            value = body(*args)
            cacheable = not self.clock_used
        finally:
            memo.leave(outer, key, value, cacheable)
            self.clock_used = self.clock_used or outer_clock
        return value

    def fold_of(self, e: A.Call) -> "_Fold | None":
        """The fold a call is, or None: a def that sums its one list's elements and counts them
        (_combiner), given an unordered comprehension over a kind that an index narrows, whose
        element and other conditions read nothing but its variable and its objects' fields."""
        defs = self.program.defs
        d, c = defs.get(e.fn), e.args[0] if len(e.args) == 1 else None
        if d is None or type(c) is not A.Comprehension or not isinstance(c.source, A.KindSource) \
                or c.where is None or not _inline(c):
            return None
        items = _combiner(defs, d)
        var = c.source.var
        probes = _index_probes(var, c.where, "len" not in defs)
        if items is None or not probes or not _of(defs, c.element, var):
            return None
        answered = {id(p[3]) for p in probes}
        # An index's conjunct holds of a member by the value asked of it, which names the entry;
        # every other one by the member alone.
        if not all(reads_world(defs, x) is None if id(x) in answered else _of(defs, x, var)
                   for x in _conjuncts(c.where)):
            return None
        return _Fold(d, c, items)

    def fold(self, f: "_Fold", env: Env):
        """The value of a fold (fold_of) in `env`: the combiner's of the comprehension's list,
        from each member's part (its count and the values summed, or none where it fails the
        condition) kept from the last call that asked the same entries, so that a member
        joining, leaving or changing costs its own part, not the other members' (a node's pods'
        requests summed after every pod bound to it). A part is kept with the very object it
        was worked out of, and the cache replaces an object that changes, never alters it:
        one found is one unchanged. Its candidates are asked as the comprehension asks them,
        so the call reads what it would. Anything out of the way (a value asked that no key
        holds, a failure, a part not an exact number) is left to the comprehension and the
        combiner themselves, which fail as they fail. Parts are kept only where `folding` is
        set (the incremental engine's evaluator): the others (the naive engine's, the reference
        incremental runs are checked against; admission's, explain's, faults') get the written
        form. An entry whose members are all gone is dropped."""
        if not self.folding:
            return self._unfolded(f, env)
        try:
            found = self._folds[id(f)]
        except KeyError:
            c = f.comprehension
            asks = self.asks(c.source, (c.where,))
            found = self._folds[id(f)] = (
                asks, self.compile(c.where), None if c.element is None else self.compile(c.element),
                tuple((var, x if x is None or type(x) is str else self.compile(x)) for var, x in f.items), {})
        asks, cond, element, summed, entries = found
        probes = asks[3]
        if len(probes) == 1:
            mode, path, value_of = probes[0]
            v = self._ask(value_of, env)
            key = None if v is _UNASKABLE else _held(v)
            if key is None:
                return self._unfolded(f, env)
            # The candidates as Evaluator.candidates finds them, the value asked once.
            world, where = self.world, f.comprehension.where
            lookup = self._asks_of(world)[1]
            if lookup is not None:
                objs = lookup(asks[2], mode, path, v)
                if asks[4] is not None and mode != "nonempty" and _answerable(mode, v):
                    where = None
            else:
                objs = world.scan(asks[2])
        else:
            key = []
            for _, _, value_of in probes:
                v = self._ask(value_of, env)
                k = None if v is _UNASKABLE else _held(v)
                if k is None:
                    return self._unfolded(f, env)
                key.append(k)
            key = tuple(key)
            c = f.comprehension
            objs, where = self.candidates(c.source, c.where, env)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = [{}, [0] * len(summed), [1] * len(summed), f.value([0] * len(summed)), None]
        # The members by their ids, in order: those of the last call where they are the very objects
        # it was given (its parts hold them, so no other object has taken one of their ids), the
        # commonest, so its value stands, found in C, without a look at each member's part
        ids = list(map(id, objs))
        if ids == entry[4]:
            return entry[3]
        parts, sums, over = entry[0], entry[1], entry[2]
        fresh, kept = None, 0
        for obj, part in zip(objs, map(parts.get, ids)):
            if part is not None and part[0] is obj:
                kept += 1
            elif fresh is None:
                fresh = [obj]
            else:
                fresh.append(obj)
        if fresh is None and kept == len(parts):
            if not parts:  # no members, and none before
                del entries[key]
            else:
                entry[4] = ids
            return entry[3]
        var = f.comprehension.source.var
        made = []
        try:
            for obj in fresh or ():
                inner = dict(env)
                inner[var] = obj
                part = None
                if where is None or cond(inner) is True:
                    value = obj if element is None else element(inner)
                    part = []
                    for v, x in summed:
                        if v is None:
                            part.append(1)
                            continue
                        y = value if x is None else (value.get(x) if type(value) is dict else None) \
                            if type(x) is str else x({v: value})
                        t = type(y)
                        if t is int or t is Fraction:
                            part.append(y)
                        elif y is None:
                            part.append(0)  # as `sum` leaves it out
                        else:  # a float, whose sums depend on their order, or no number
                            return self._unfolded(f, env)
                made.append((obj, part))
        except Exception:  # the comprehension raises it again, or an earlier one, as it does
            return self._unfolded(f, env)
        # The parts of the members gone (a changed one's old version among them: a part holds its
        # object, whose id no other takes), then those of the members come.
        if kept < len(parts):
            there = set(ids)
            for i in [i for i in parts if i not in there]:
                _take(sums, over, parts.pop(i)[1], -1)
        for obj, part in made:
            parts[id(obj)] = (obj, part)
            _take(sums, over, part, 1)
        if not parts:
            del entries[key]
            return f.value([0] * len(summed))
        entry[3] = value = f.value([n if d == 1 else exact(Fraction(n, d)) for n, d in zip(sums, over)])
        entry[4] = ids
        return value

    def _unfolded(self, f: "_Fold", env: Env):
        """A fold's value as written: the combiner called on the comprehension's list."""
        return self.call(self.slot(f.combiner), [self.eval(f.comprehension, env)])

    def value_of(self, d: A.DefDecl, args: list):
        """A def's value on `args`, worked out afresh (unmemoised, unrecorded): for a def that reads
        nothing but its arguments (reads.straight)."""
        slot = self.slot(d)
        if slot[0] is None:
            slot[0] = _compile_def(self, d)
        return slot[0](*args)

    def straight(self, name: str) -> bool:
        found = self._straight.get(name)
        if found is None:
            found = self._straight[name] = straight(self.program.defs, name)
        return found

    def slot(self, d: A.DefDecl) -> list:
        """The slot of a def (`_defs`), its body compiled at its first call: the code that calls
        it is bound to it before, and a def may call itself."""
        found = self._defs.get(d.name)
        if found is None:
            found = self._defs[d.name] = [None, [0, 0], d]
        return found


class _Fold:
    """A call that Evaluator.fold works out from its members' parts: its combiner (a
    def of one list), the comprehension it is given, for each value the combiner makes the
    variable and element it sums (None: the variable; a text: that field of it, as most are) or
    (None, None) where it counts the list, and the combiner's fields, or None where it makes one
    value alone."""

    __slots__ = ("combiner", "comprehension", "items", "keys")

    def __init__(self, combiner: A.DefDecl, comprehension: A.Comprehension, items: tuple):
        self.combiner, self.comprehension = combiner, comprehension
        self.keys = None if type(combiner.body) is not A.MapLit else tuple(i.key for i in combiner.body.items)
        self.items = items

    def value(self, totals: list):
        """The combiner's value, of the totals of its values."""
        return totals[0] if self.keys is None else dict(zip(self.keys, totals))


def _combiner(defs: dict, d: A.DefDecl) -> tuple | None:
    """What a def of one list makes of it, where it only counts it (`len(rs)`) and sums a value
    of each of its elements (`sum(r.cpu for r in rs)`), once or as the fields of a record: for
    each, the variable and the element summed, or (None, None) (_Fold.items); else None."""
    if len(d.params) != 1:
        return None
    param, body = d.params[0].name, d.body
    items = []
    for x in [i.value for i in body.items] if type(body) is A.MapLit else [body]:
        if type(x) is not A.Call or len(x.args) != 1 or x.fn in defs:
            return None
        a = x.args[0]
        if x.fn == "len" and type(a) is A.Name and a.id == param:
            items.append((None, None))
        elif (x.fn == "sum" and type(a) is A.Comprehension and type(a.source) is A.ListSource
              and type(a.source.iterable) is A.Name and a.source.iterable.id == param and a.where is None
              and not a.order and _of(defs, a.element, a.source.var)):
            e = a.element
            field = type(e) is A.Attr and type(e.obj) is A.Name and e.obj.id == a.source.var
            items.append((a.source.var, e.name if field else e))
        else:
            return None
    return tuple(items)


def _of(defs: dict, e: A.Expr | None, var: str) -> bool:
    """Whether `e` is worked out of `var` alone: it names no other variable and reads nothing of
    the world (no kind, no clock), itself or through the defs it calls."""
    return e is None or all(n.id == var for n in A.walk(e) if type(n) is A.Name) and reads_world(defs, e) is None


def _take(sums: list, over: list, part: list | None, sign: int) -> None:
    """Add a member's part to a fold's totals, or take it out (`sign` -1): each total a numerator
    over a denominator (1 while the numbers are whole), so that adding a quantity costs a few
    operations on ints, not a Fraction made (its gcd), as values.exact_sum adds them."""
    if part is None:
        return
    for i, x in enumerate(part):
        if type(x) is int:
            sums[i] += sign * x * over[i]
            continue
        n, d, b = sums[i], over[i], x.denominator
        if b == d:
            n += sign * x.numerator
        else:
            common = math.lcm(d, b)
            n, d = n * (common // d) + sign * x.numerator * (common // b), common
        if n % d == 0:  # whole again: the denominator is let go, so that it stays small
            n, d = n // d, 1
        sums[i], over[i] = n, d


def _answerable(mode: str, wanted) -> bool:
    """Whether an index answers its conjunct for the value asked (Evaluator.candidates, fold): a
    "sub" one a non-empty map, an "in" one a list; the others any value."""
    return (mode != "sub" or type(wanted) is dict and bool(wanted)) and (mode != "in" or type(wanted) is list)


def _held(v):
    """A value asked of an index as part of a fold's key: a text as it is (most are: a name),
    else value_key's; None where it has none (a clock)."""
    if type(v) is str:
        return v
    try:
        return value_key(v)
    except Unnamed:
        return None


def _conjuncts(e: A.Expr) -> list[A.Expr]:
    if isinstance(e, A.Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _path(e: A.Expr, var: str) -> tuple[str, ...] | None:
    """`v.a.b` → ("a", "b") when it is a field path of the variable."""
    names = []
    while isinstance(e, A.Attr):
        names.append(e.name)
        e = e.obj
    if isinstance(e, A.Name) and e.id == var and names:
        return tuple(reversed(names))
    return None


def _mentions(e, var: str) -> bool:
    if isinstance(e, A.Name):
        return e.id == var
    if isinstance(e, tuple):
        return any(_mentions(x, var) for x in e)
    if hasattr(e, "__attrs_attrs__"):
        return any(_mentions(getattr(e, f.name), var) for f in e.__attrs_attrs__ if f.name != "span")
    return False


def _index_probes(var: str, cond: A.Expr, builtin_len: bool) -> list:
    """("eq", path, other, conjunct) for each `v.path == other`, then ("in", path, other,
    conjunct) for each `v.path in other` (the equality index, asked once per element of a
    list), then ("sub", path, other, conjunct) for each `other <= v.path`, then ("has", path,
    none, conjunct) for each `v.path != none` and ("nonempty", path, 0, conjunct) for each
    `len(v.path) > 0` (where `len` is the built-in, not a def of the spec's): the index to ask,
    what to ask it, and the conjunct it answers."""
    eq, among, sub, has = [], [], [], []
    for c in _conjuncts(cond):
        if not isinstance(c, A.Binary):
            continue
        if c.op in (">", "<"):
            size, zero = (c.left, c.right) if c.op == ">" else (c.right, c.left)
            if (builtin_len and isinstance(size, A.Call) and size.fn == "len" and len(size.args) == 1
                    and isinstance(zero, A.Number) and zero.text == "0"
                    and (path := _path(size.args[0], var)) is not None):
                has.append(("nonempty", path, zero, c))
        elif c.op == "!=":
            for mine, other in ((c.left, c.right), (c.right, c.left)):
                path = _path(mine, var)
                if path is not None and isinstance(other, A.NoneLit):
                    has.append(("has", path, other, c))
                    break
        elif c.op == "==":
            for mine, other in ((c.left, c.right), (c.right, c.left)):
                path = _path(mine, var)
                if path is not None and not _mentions(other, var):
                    eq.append(("eq", path, other, c))
                    break
        elif c.op == "in":
            path = _path(c.left, var)
            if path is not None and not _mentions(c.right, var):
                among.append(("in", path, c.right, c))
        elif c.op in ("<=", ">="):
            mine, other = (c.right, c.left) if c.op == "<=" else (c.left, c.right)
            path = _path(mine, var)
            if path is not None and not _mentions(other, var):
                sub.append(("sub", path, other, c))
    return eq + among + sub + has


def _describe(v) -> str:
    if isinstance(v, str):
        return f'the text "{v}"'
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, int | float | Fraction):
        return "a number"
    if isinstance(v, dict):
        return "a map"
    if isinstance(v, list):
        return "a list"
    return "none"


def _contains(container, item) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        if not isinstance(item, str):
            return False
        if "/" in container and "/" not in item:
            try:
                return ipaddress.ip_address(item) in ipaddress.ip_network(container, strict=False)
            except ValueError:
                pass
        return item in container
    return item in container


def _sort_key(v):
    """A total order over values: none first, then by type, then by value."""
    t = type(v)
    if t is str:  # the commonest (names), without the questions below
        return (3, v)
    if t is int or t is float or t is Fraction:
        return (2, v)
    v = materialize(v)
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (1, v)
    if isinstance(v, int | float | Fraction):
        return (2, v)
    if isinstance(v, str):
        return (3, v)
    return (4, repr(freeze(v)))


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

_UNASKABLE = object()  # a probe whose value cannot be asked of an index


def _first(values):
    return next(iter(values), None)


# Built-ins that need only a prefix of a comprehension: given its elements lazily.
_LAZY: dict[str, Callable[[Iterator], Any]] = {
    "first": _first,
    "any": lambda xs: any(x is True or isinstance(x, dict) for x in xs),
    "all": lambda xs: all(x is True for x in xs),
}

# ---- compiled code (Evaluator.compile) -------------------------------------------------
# An expression is compiled to one Python function of the environment: the nodes below it are
# written out as Python source (an attribute is `.get` of a dict, asked `type(v) is dict`: every map
# a value holds is a plain dict, decoded or made by the language; `and` Python's `and` on
# `is True`, a straight def's body in its caller), operands evaluated left to right (`in` its
# container first) and what has more to it (none, units, errors) left to the helpers below, so
# that a node costs no call of its own. So is an unordered comprehension over a list, and `first`,
# `any` or `all` over one: as Python's comprehension or generator, its variable a local, without an
# environment per element. The others, quantifiers and those over a kind, stay closures (they make
# environments of their own, or ask the world); the expressions they hold are compiled in turn.


def _constant(ev, e):
    if isinstance(e, A.Unit):
        return unit_value(e.number, e.suffix, ev.program.unit_types.get(id(e)) == "duration")
    return e.value if isinstance(e, A.String | A.Bool) else number_value(e.text) if isinstance(e, A.Number) \
        else None if isinstance(e, A.NoneLit) else e.text


_CONSTANTS = (A.Number, A.String, A.Bool, A.NoneLit, A.IPLit, A.CIDRLit, A.Unit)

_UNBOUND = object()  # a variable the environment does not bind: an error where it is used
_UNASKED = object()  # no world yet (Evaluator._asks_of)
# Nodes written out within one another, past which a subtree is a function of its own; with the
# inlined straight defs (at most reads.STRAIGHT_NODES more) within the 200 parentheses Python
# allows one expression. Should a body still pass them, _Source.generate cuts at every node.
_DEPTH = 20
_LITERALS = frozenset({str, int, bool, type(None)})  # constants written as Python literals


def _compile(ev, e) -> Callable[[Env], Any]:
    if isinstance(e, _CONSTANTS):  # most often a field of an object in a spec, evaluated once
        value = _constant(ev, e)
        return lambda env: value
    if isinstance(e, A.Comprehension) and not _inline(e):
        return _c_comprehension(ev, e)
    if isinstance(e, A.Quantifier):
        return _c_quantifier(ev, e)
    if isinstance(e, A.Call) and e.fn not in ev.program.defs:
        if _lazy(e) and not _inline(e.args[0]):
            return _c_lazy(ev, e)
        if e.fn not in _BUILTINS:
            return lambda env: _fail(e, f"unknown function `{e.fn}`")  # the checker lets none through
    # The generated code depends on the program alone, so its evaluators share it (a verify
    # run makes thousands): each binds it to globals of its own (itself, and the functions it
    # compiled for the comprehensions, quantifiers and deep subtrees within).
    made = ev.program.generated.get(id(e))
    if made is None or made[0] is not e:
        made = ev.program.generated[id(e)] = (e, *_Source(ev).generate(e))  # the node kept alive
    return _bind(ev, made)


def _compile_def(ev, d: A.DefDecl) -> Callable:
    """A def's body as a function of its arguments, in the order of its parameters: a call
    builds no environment unless the body hands one to a part compiled apart."""
    made = ev.program.generated.get(id(d))
    if made is None or made[0] is not d:
        params = tuple(p.name for p in d.params)
        made = ev.program.generated[id(d)] = (d, *_Source(ev).generate(d.body, params))
    return _bind(ev, made)


def _bind(ev, made: tuple) -> Callable:
    _, code, shared, compiled, called = made
    scope = {**shared, "ev": ev, "call": ev.call, "arith": ev.arith}
    for name, node in compiled.items():
        scope[name] = ev.compile(node)
    for name, d in called.items():
        scope[name] = ev.slot(d)
    later = shared.get("_slow")
    if later is not None:
        scope["_slow"] = _slow(ev, later, scope)
        scope["_fell"] = False
    return FunctionType(code, scope)


def _slow(ev, later: list, scope: dict) -> Callable:
    """The code of `later` ([expression, parameters, what _Source made of them as the language
    reads fields, once made]) that code reading fields as a map's entries falls back to
    (_Source.generate): made at its first call, for few are ever called, then put in that code's
    globals in place of this, with `_fell` set there: that code calls it first from then on."""
    def slow(*args):
        if later[2] is None:
            e, params = later[0], later[1]
            later[2] = (e, *_Source(ev, fast=False).generate(e, params))
        code = scope["_slow"] = _bind(ev, later[2])
        scope["_fell"] = True
        return code(*args)
    return slow


class _Source:
    """The Python source of one compiled function: the expression, the variables it takes from
    the environment (each a local, bound on entry), the values it refers to (its globals) and
    the subexpressions compiled apart (bound to each evaluator's functions)."""

    def __init__(self, ev: "Evaluator", cut: int = _DEPTH, fast: bool = True):
        self.ev = ev
        self.cut = cut  # the nesting past which a subtree is a function of its own
        self.scope = {"Fraction": Fraction, "_UNBOUND": _UNBOUND, "_unbound": _unbound, "_contains": _contains,
                      "_compare": _compare, "_negate": _negate, "_index": _index, "_builtin": _builtin,
                      "_elements": _elements, "materialize": materialize, "_coalesce": _coalesce}
        self.compiled: dict[str, A.Expr] = {}
        self.called: dict[str, A.DefDecl] = {}  # the defs it calls, each by the name of its slot (_bind)
        self.variables: dict[str, str] = {}  # the environment's variables used, each a local
        self.params: dict[str, str] | None = None  # the variables of a straight def written out here
        self.bound: dict[str, str] = {}  # the variables of the comprehensions written out around here, each a local
        # The locals that hold an object whatever the evaluation: the variables of comprehensions
        # over a kind (its candidates are the world's objects), and the parameters of a straight
        # def written out that are given one. A field of one is read without asking what it is.
        self.objects: set[str] = set()
        self.temps = 0
        self.given: tuple[str, ...] = ()  # a def's parameters, given as arguments: never unbound (generate)
        self.wants_env = False  # whether the code hands its environment to a part compiled apart
        self.fast = fast  # whether a field is read as a map's entry (generate)
        self.subscripted = False  # whether one was

    def generate(self, e: A.Expr, params: tuple[str, ...] | None = None) -> tuple:
        """The code of a function of `env` that evaluates `e`, the globals it needs but the
        evaluator's own, the subexpressions it calls compiled apart and the defs it calls, by the
        names it uses.
        With `params` (a def's parameters), a function of their values instead, in that order:
        the environment is only these (any other name is unbound), built where a part compiled
        apart is given it."""
        if params is None:
            body = self.expr(e, 0)
            lines = ["def code(env):"]
            for name, local in self.variables.items():
                lines += ["    try:", f"        {local} = env[{name!r}]", "    except KeyError:",
                          f"        {local} = _UNBOUND"]
        else:
            for name in params:
                self.variable(name)
            self.given = params
            body = self.expr(e, 0)
            lines = [f"def code({', '.join(self.variables[name] for name in params)}):"]
            lines += [f"    {local} = _UNBOUND" for name, local in self.variables.items() if name not in params]
            if self.wants_env:
                items = ", ".join(f"{name!r}: {self.variables[name]}" for name in params)
                lines.append(f"    env = {{{items}}}")
        if self.subscripted:
            # Each field read as a map's entry (`v["f"]`), not as the language reads it (`v.get("f")`
            # of a map, else none): a field is most often one of an object or a record, which holds
            # every field of its type (admission gives each its default or none). Where a value is
            # no map or lacks the field, the whole is evaluated again, from the start, by the code
            # written as the language reads (_slow): the first evaluation did what the second does
            # first, no more — each reads the same, calls the same defs with the same arguments and
            # fails at the same place — so the second's reads, calls and value are the whole's.
            # Once fallen back, the code goes to the slow code at once, ever after (`_fell`): the
            # calls made before the failure are made again, and defs nested in one another that
            # each fell back at every call would call the innermost twice per level of nesting.
            self.scope["_slow"] = [e, params, None]
            given = "env" if params is None else ", ".join(self.variables[name] for name in params)
            lines.insert(1, f"    if _fell:\n        return _slow({given})")
            lines += ["    try:", f"        return {body}", "    except (KeyError, TypeError):",
                      f"        return _slow({given})"]
        else:
            lines.append(f"    return {body}")
        try:
            with warnings.catch_warnings():  # `1 is True`, where a straight def's body is a constant, is meant
                warnings.simplefilter("ignore", SyntaxWarning)
                code = compile("\n".join(lines), f"<{e.span.file}:{e.span.line}>", "exec")  # named in profiles
        except (SyntaxError, RecursionError):  # nested deeper than Python takes: in smaller functions
            if self.cut == 1:
                raise
            return _Source(self.ev, cut=1, fast=self.fast).generate(e, params)
        exec(code, self.scope)
        return self.scope.pop("code").__code__, self.scope, self.compiled, self.called

    def apart(self, e: A.Expr) -> str:
        """A call of `e` compiled as a function of its own, in the environment here."""
        name = f"c{len(self.compiled)}"
        self.compiled[name] = e
        return f"{name}({self.env()})"

    def value(self, v) -> str:
        if type(v) in _LITERALS and not (type(v) is int and abs(v) >= 2**63):  # no number too long to print
            return repr(v)
        name = f"k{len(self.scope)}"
        self.scope[name] = v
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def env(self) -> str:
        """The environment of a function compiled on its own: in a straight def written out
        (where none is, as it loops nowhere), its parameters."""
        if self.params is None:
            self.wants_env = True
            if not self.bound:
                return "env"
            return "{**env, " + ", ".join(f"{name!r}: {local}" for name, local in self.bound.items()) + "}"
        return "{" + ", ".join(f"{name!r}: {local}" for name, local in self.params.items()) + "}"

    def variable(self, name: str) -> str:
        local = self.variables.get(name)
        if local is None:
            local = self.variables[name] = f"v{len(self.variables)}"
        return local

    def field(self, var: A.Name, name: str) -> str:
        """`var.name`: in a straight def written out, of the parameter's local; else of the
        variable's, an error when the environment does not bind it."""
        if self.params is not None:
            local = self.params.get(var.id)
            if local is None:
                return f"_unbound({self.value(var)})"
        else:
            local = self.bound.get(var.id)
            if local is None and var.id in self.given:
                local = self.variables[var.id]
        if self.fast:
            self.subscripted = True
            return f"{local or self.variable(var.id)}[{name!r}]"
        if local in self.objects:
            return f"{local}.get({name!r})"
        if local is not None:
            return f"({local}.get({name!r}) if type({local}) is dict else None)"
        v = self.variable(var.id)
        return (f"({v}.get({name!r}) if type({v}) is dict "
                f"else (None if {v} is not _UNBOUND else _unbound({self.value(var)})))")

    def expr(self, e: A.Expr, depth: int) -> str:
        """A Python expression, in parentheses or an atom, that evaluates `e` in `env`."""
        t = type(e)
        if t is A.Comprehension and depth <= self.cut and self.params is None and _inline(e):
            return self.comprehension(e, depth + 1)
        if depth > self.cut and (self.params is None or self.cut < _DEPTH) or t is A.Comprehension \
                or t is A.Quantifier:
            return self.apart(e)
        depth += 1
        if t in _CONSTANTS:
            return self.value(_constant(self.ev, e))
        if t is A.Name:
            if self.params is not None:
                return self.params.get(e.id) or f"_unbound({self.value(e)})"
            if e.id in self.bound:
                return self.bound[e.id]
            if e.id in self.given:
                return self.variables[e.id]
            v = self.variable(e.id)
            return f"({v} if {v} is not _UNBOUND else _unbound({self.value(e)}))"
        if t is A.Attr:
            if isinstance(e.obj, A.Name):  # `p.phase`, the commonest
                return self.field(e.obj, e.name)
            if self.fast:
                self.subscripted = True
                return f"{self.expr(e.obj, depth)}[{e.name!r}]"
            base = self.temp()
            return f"({base}.get({e.name!r}) if type(({base} := {self.expr(e.obj, depth)})) is dict else None)"
        if t is A.Binary:
            return self.binary(e, depth)
        if t is A.Unary:
            operand = self.expr(e.operand, depth)
            return f"({operand} is not True)" if e.op == "not" else f"_negate({operand})"
        if t is A.IfElse:
            cond, then, otherwise = (self.expr(x, depth) for x in (e.cond, e.then, e.otherwise))
            return f"({then} if {cond} is True else {otherwise})"
        if t is A.Call:
            return self.call(e, depth)
        if t is A.Index:
            return f"_index({self.expr(e.obj, depth)}, {self.expr(e.index, depth)})"
        if t is A.ListLit:
            return f"[{', '.join(self.expr(x, depth) for x in e.items)}]"
        if t is A.MapLit:
            return "{" + ", ".join(f"{item.key!r}: {self.expr(item.value, depth)}" for item in e.items) + "}"
        raise TypeError(f"cannot compile {t.__name__}")

    def comprehension(self, e: A.Comprehension, depth: int) -> str:
        """An unordered comprehension, written out as Python's: its variable a local, the elements
        that pass `where` first, then the element of each (so the same error comes first, as
        `select` gives them). Each list is held in a temporary, as Python takes no assignment
        within a comprehension's iterable."""
        items, local, cond, element = self.parts(e, depth)
        steps = [f"({items} := {self.elements(e, depth)})"]
        if isinstance(e.source, A.KindSource):  # the candidates, and the condition they must pass yet
            passed = f"[{local} for {local} in {items}[0] if {cond} is True]"
            steps.append(f"({items} := {items}[0] if {items}[1] is None else {passed})" if cond is not None
                         else f"({items} := {items}[0])")
        elif cond is not None:
            steps.append(f"({items} := [{local} for {local} in {items} if {cond} is True])")
        steps.append(f"list({items})" if element is None else f"[{element} for {local} in {items}]")
        return f"({', '.join(steps)})[{len(steps) - 1}]"

    def lazy(self, e: A.Call, depth: int) -> str:
        """`first`, `any` or `all` over an unordered comprehension, written out as a generator
        given to it: each element tested, then evaluated, until one decides."""
        c = e.args[0]
        items, local, cond, element = self.parts(c, depth + 1)
        value = element or local

        # As _LAZY's, its test written into the generator, not a generator of its own over it.
        def given(values: str, test: str) -> str:
            if e.fn == "first":
                return f"next(({value} for {local} in {values}{test}), None)"
            if e.fn == "all":
                return f"all(({value}) is True for {local} in {values}{test})"
            found = self.temp()
            return f"any((({found} := {value}) is True or type({found}) is dict) for {local} in {values}{test})"
        if not isinstance(c.source, A.KindSource):
            found = given(items, "" if cond is None else f" if {cond} is True")
        elif cond is None:
            found = given(f"{items}[0]", "")
        else:  # the candidates, and the condition they must pass yet
            unfiltered, filtered = given(f"{items}[0]", ""), given(f"{items}[0]", f" if {cond} is True")
            found = f"({unfiltered} if {items}[1] is None else {filtered})"
        # What it found, settled as _settled settles it, without the call: once it is found (the
        # search may have called `now()`)
        settled = self.temp()
        return (f"(({items} := {self.elements(c, depth + 1)}), ({settled} := {found}), "
                f"materialize({settled}) if ev.saw_clock else {settled})[2]")

    def elements(self, c: A.Comprehension, depth: int) -> str:
        """What a comprehension written out ranges over: a list's elements (a map's keys), or a
        kind's candidates with the condition they must pass yet (Evaluator.candidates)."""
        if isinstance(c.source, A.KindSource):
            key = (id(c.source),) if c.where is None else (id(c.source), id(c.where))
            return f"ev.kind_candidates({self.value(key)}, {self.value(c.source)}, {self.value(c.where)}, {self.env()})"
        items = self.temp()  # a list, the commonest, as it is: _elements asked only of the others
        iterable = self.expr(c.source.iterable, depth)
        return f"({items} if type(({items} := {iterable})) is list else _elements({items}))"

    def parts(self, c: A.Comprehension, depth: int) -> tuple:
        """The temporaries of a comprehension written out (its list, its variable), and its
        `where` and element (None where it has none) with its variable bound to the second."""
        items, local = self.temp(), self.temp()
        if isinstance(c.source, A.KindSource):
            self.objects.add(local)
        outer, self.bound = self.bound, {**self.bound, c.source.var: local}
        try:
            cond = None if c.where is None else self.expr(c.where, depth)
            element = None if c.element is None else self.expr(c.element, depth)
        finally:
            self.bound = outer
        return items, local, cond, element

    def binary(self, e: A.Binary, depth: int) -> str:
        op, left, right = e.op, self.expr(e.left, depth), self.expr(e.right, depth)
        if op == "and":
            return f"({left} is True and {right} is True)"
        if op == "or":
            return f"({left} is True or {right} is True)"
        if op in ("==", "!="):
            return f"({left} {op} {right})"
        if op in ("in", "not in"):
            # The container first, as written to the right; a list's or a map's membership as
            # _contains gives it, without its call
            c, x, kind = self.temp(), self.temp(), self.temp()
            found = (f"({x} in {c} if (({c} := {right}), ({x} := {left})) and "
                     f"(({kind} := type({c})) is list or {kind} is dict) else _contains({c}, {x}))")
            return found if op == "in" else f"(not {found})"
        node = self.value(e)
        a, b = self.temp(), self.temp()
        if op in _ORDER:
            kind = self.temp()
            # what _compare gives two ints, texts or floats, without its questions
            return (f"({a} {op} {b} if ({kind} := type(({a} := {left}))) is type(({b} := {right})) "
                    f"and ({kind} is int or {kind} is str or {kind} is float) else _compare({node}, {a}, {b}))")
        fallback = f"arith({node}, {op!r}, {a}, {b})"
        if op == "+":
            kind = self.temp()
            # what arith gives two ints, texts or floats, without its questions
            return (f"({a} + {b} if ({kind} := type(({a} := {left}))) is type(({b} := {right})) "
                    f"and ({kind} is int or {kind} is str or {kind} is float) else {fallback})")
        ints = f"type(({a} := {left})) is type(({b} := {right})) is int"  # both evaluated before any test
        if op in ("-", "*"):
            return f"({a} {op} {b} if {ints} else {fallback})"
        if op == "%":
            return f"({a} % {b} if {ints} and {b} else {fallback})"
        if op == "/":  # a Fraction where two ints leave a remainder, as arith gives it
            return f"(({a} // {b} if {a} % {b} == 0 else Fraction({a}, {b})) if {ints} and {b} else {fallback})"
        return fallback

    def call(self, e: A.Call, depth: int) -> str:
        ev, d = self.ev, self.ev.program.defs.get(e.fn)
        if d is None and _lazy(e) and _inline(e.args[0]) and self.params is None:
            return self.lazy(e, depth)
        if d is None and (e.fn not in _BUILTINS or _lazy(e)):
            return self.apart(e)
        if d is not None and self.params is None and (fold := ev.fold_of(e)) is not None:
            return f"ev.fold({self.value(fold)}, {self.env()})"
        args = [self.expr(a, depth) for a in e.args]
        if d is None:
            return self.builtin(e, args)
        if not ev.straight(d.name):
            slot = f"s{len(self.called)}"
            self.called[slot] = d
            return f"call({slot}, [{', '.join(args)}])"
        # Evaluated afresh at every call, as a memo key would cost more (engine.reads.straight):
        # its body written out here, its parameters locals given the arguments first. A straight
        # def has no comprehension, so its body writes none out (the `params is None` guards
        # above keep it so should that change).
        locals_ = [self.temp() for _ in args]
        self.objects.update(t for t, a in zip(locals_, args) if a in self.objects)
        outer, self.params = self.params, dict(zip((p.name for p in d.params), locals_))
        bound, self.bound = self.bound, {}  # the body names its parameters only
        try:
            body = self.expr(d.body, depth)
        finally:
            self.params, self.bound = outer, bound
        if not args:
            return body
        given = ", ".join(f"({t} := {a})" for t, a in zip(locals_, args))
        return f"({body} if ({given},) else None)"

    def builtin(self, e: A.Call, args: list[str]) -> str:
        """A call of a built-in, through _builtin (which settles its arguments and makes its
        failures the user's errors). The commonest that cannot fail are written out, so as not to
        cost the two calls: `now()`, `coalesce` (its arguments all evaluated, the first not none
        settled), `len` of a list, map or text (which settling would not change) and `str` of a
        text or a plain int."""
        if e.fn == "now" and not args:
            return "ev.now()"
        if e.fn == "coalesce":
            return f"_coalesce(ev, [{', '.join(args)}])"
        call = f"_builtin(ev, {self.value(e)}, {self.value(_BUILTINS[e.fn])}, [{{}}])"
        if e.fn == "len" and len(args) == 1:
            arg, kind = self.temp(), self.temp()
            return (f"(len({arg}) if ({kind} := type(({arg} := {args[0]}))) is list or {kind} is dict "
                    f"or {kind} is str else {call.format(arg)})")
        if e.fn == "str" and len(args) == 1:
            # Of a text (a name), the commonest, the text; of an int not written with a unit (a
            # port, a count) its digits: as _str gives them. Only of a 64-bit one: a longer one may
            # have more digits than Python prints, which _builtin makes the user's error.
            arg, kind = self.temp(), self.temp()
            digits = "" if isinstance(e.args[0], A.Unit) else \
                f"str({arg}) if {kind} is int and {-2**63} <= {arg} < {2**63} else "
            return f"({arg} if ({kind} := type(({arg} := {args[0]}))) is str else {digits}{call.format(arg)})"
        return call.format(", ".join(args))


def _coalesce(ev: "Evaluator", values: list):
    """`coalesce` as _builtin gives it, without its calls: the first value that is not none, settled."""
    for v in values:
        if v is not None:
            return _settled(ev, v)
    return None


def _lazy(e: A.Call) -> bool:
    return e.fn in _LAZY and len(e.args) == 1 and isinstance(e.args[0], A.Comprehension)


def _unbound(e: A.Name):
    _fail(e, f"`{e.id}` is not bound")


def _compare(e: A.Binary, a, b) -> bool:
    """`a op b` for < <= > >=: false against none; `<=` and `>=` of two maps are subset tests."""
    if a is None or b is None:
        return False
    op = e.op
    if isinstance(a, dict) and isinstance(b, dict) and op in ("<=", ">="):
        if op == ">=":
            a, b = b, a
        return all(k in b and b[k] == v for k, v in a.items())
    ta, tb = type(a), type(b)
    if (ta is Fraction or tb is Fraction) and ta in _RATIONAL and tb in _RATIONAL:
        a, b = a.numerator * b.denominator, b.numerator * a.denominator  # denominators are positive
    try:
        return _ORDER[op](a, b)
    except TypeError:
        _fail(e, f"cannot compare {_describe(a)} with {_describe(b)}")


_RATIONAL = frozenset({int, Fraction})  # exact numbers (not bool)
_INT = frozenset({int})
_NONE = type(None)


def _exact_arith(e: A.Binary, op: str, a, b) -> int | Fraction:
    """`a op b` for + - * / of ints and Fractions, as `exact` gives it: over numerators and
    denominators, where Python's Fraction asks numbers.Rational of an int first."""
    an, ad, bn, bd = a.numerator, a.denominator, b.numerator, b.denominator
    if op == "+":
        n, d = an * bd + bn * ad, ad * bd
    elif op == "-":
        n, d = an * bd - bn * ad, ad * bd
    elif op == "*":
        n, d = an * bn, ad * bd
    else:
        if bn == 0:
            _fail(e, "division by zero")
        n, d = an * bd, ad * bn
    return n // d if n % d == 0 else Fraction(n, d)


def _negate(v):
    return None if v is None else exact(-v) if isinstance(v, Fraction) else -v


def _index(base, i):
    if base is None or i is None:
        return None
    t = type(base)
    if t is dict:
        return base.get(i)
    if (t is list or t is str) and isinstance(i, int):
        return base[i] if -len(base) <= i < len(base) else None
    return None


def _builtin(ev: "Evaluator", e: A.Call, fn: Callable, values: list):
    if ev.saw_clock:  # only then can a symbolic Clock hide in an argument
        values = [materialize(v) for v in values]
    try:
        return fn(ev, e, values)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as err:  # `range(10**30)` overflows
        _fail(e, f"`{e.fn}` failed: {err}")


def _c_lazy(ev, e: A.Call):
    """first/any/all over an ordered comprehension (the others are written out: _Source.lazy):
    of its elements, all made and ordered, they stop at the one that decides them."""
    lazy, ordered = _LAZY[e.fn], ev.compile(e.args[0])

    def code(env):
        return _settled(ev, lazy(ordered(env)))
    return code


def _c_comprehension(ev, e: A.Comprehension):
    source, where, order, var, select = e.source, e.where, e.order, e.source.var, ev.select
    if e.element is None:
        return lambda env: [en[var] for en in select(source, where, order, env)]
    element = ev.compile(e.element)
    return lambda env: [element(en) for en in select(source, where, order, env)]


def _inline(e: A.Comprehension) -> bool:
    """Whether a comprehension is written out in the code of the expression around it
    (_Source.comprehension): an unordered one."""
    return not e.order


def _settled(ev, found):
    """A value with every Clock in it made a number (what a lazy built-in found, a `set`'s
    value): only where `now()` was symbolic since the engine last reset `saw_clock` can one
    hide in it, so most are given back as they are, not copied. Such a value may be the very list
    or map of a cached object or a memoised result: what it is written into must copy, never
    change it in place (values.assign copies along its path)."""
    return materialize(found) if ev.saw_clock else found


def _elements(it) -> Iterable[Any]:
    """What a list source ranges over, as Evaluator.elements gives it."""
    if it is None:
        return ()
    if isinstance(it, dict):
        return sorted(it)
    return it


def _c_quantifier(ev, e: A.Quantifier):
    source, where, filtered = e.source, e.where, ev.filtered
    body, forall = ev.compile(e.body), e.quantifier == "forall"

    def code(env):
        for inner in filtered(source, where, env):
            holds = body(inner) is True
            if forall and not holds:
                return False
            if not forall and holds:
                return True
        return forall
    return code


# ---- built-in functions ----------------------------------------------------------------


def _numbers(xs):
    return [x for x in (xs or []) if x is not None]


def _sum(ev, e, args):
    xs = args[0] or []
    types = set(map(type, xs))
    if types == _INT:
        return sum(xs)  # in C: byte counts, pod counts
    if _NONE in types:
        types.discard(_NONE)
        xs = [x for x in xs if x is not None]
    if types <= _RATIONAL:
        return exact_sum(xs)
    if any(isinstance(x, float) for x in xs):
        return sum(xs)
    return exact(sum(Fraction(x) for x in xs))


def _minmax(pick):
    def f(ev, e, args):
        xs = args[0] if len(args) == 1 else args
        xs = _numbers(xs)
        return pick(xs, key=_sort_key) if xs else None
    return f


def _str(ev, e, args):
    v = args[0]
    if type(v) is str:  # the commonest (a name), which none of the questions below is about
        return v
    arg = e.args[0]
    if type(v) is int and not isinstance(arg, A.Unit):  # a port, a count: no unit shows in the text
        return str(v)
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Fraction | int) and _static_unit(ev, arg) == "quantity":
        return format_quantity(v)
    if isinstance(v, Fraction | int) and _static_unit(ev, arg) == "duration":
        return format_duration(v)
    if isinstance(v, Fraction):
        return str(float(v))
    return str(v)


def _static_unit(ev, arg) -> str | None:
    """The unit a value was written in, where the text shows it (a literal)."""
    if isinstance(arg, A.Unit):
        return ev.program.unit_types.get(id(arg))
    return None


def _int(ev, e, args):
    v = args[0]
    if v is None:
        return None
    if isinstance(v, str):
        text = v.strip()
        return int(text) if text.lstrip("+-").isdigit() and text.isascii() else None
    return math.ceil(v) if isinstance(v, Fraction) else int(v)


def _type_of(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float | Fraction):
        return "float"
    if isinstance(v, str):
        return "string"
    return "map" if isinstance(v, dict) else "list"


def _hash(ev, e, args):
    data = repr(freeze(args[0])).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


@functools.lru_cache(maxsize=4096, typed=True)
def _network(c):
    return ipaddress.ip_network(c, strict=False)


def _cidr_subnet(ev, e, args):
    return _subnet(*args)


@functools.lru_cache(maxsize=65536, typed=True)  # pure, and called for every block of a pool while one is sought
def _subnet(cidr, prefix, index):
    net = _network(cidr)
    size = 2 ** (net.max_prefixlen - prefix)
    first = int(net.network_address) + index * size
    sub = ipaddress.ip_network(f"{ipaddress.ip_address(first)}/{prefix}")
    if not sub.subnet_of(net):
        return None
    return str(sub)


def _cidr_host(ev, e, args):
    return _host(*args)


@functools.lru_cache(maxsize=65536, typed=True)
def _host(cidr, index):
    net = _network(cidr)
    if not 0 <= index < net.num_addresses:
        return None
    return str(net.network_address + index)


def _ip_index(ev, e, args):
    if args[1] is None:
        return None
    net, ip = _network(args[0]), _address(args[1])
    return int(ip) - int(net.network_address) if ip in net else None


@functools.lru_cache(maxsize=65536, typed=True)
def _address(a):
    return ipaddress.ip_address(a)


def _is_ip(ev, e, args):
    """Whether the text is an address, by the test the API server gives a field of type `ip`, so
    that a policy can judge a field that holds an address or a word (a Service's "None")."""
    a = args[0]
    if type(a) is not str:
        return False
    try:
        _address(a)
    except ValueError:
        return False
    return True


def _matches(ev, e, args):
    """Whether the whole text matches the pattern; none, no text, matches nothing."""
    s, p = args
    if type(p) is not str:
        _fail(e, f"`matches` needs a pattern, but this is {_describe(p)}")
    try:
        compiled = pattern(p)
    except re.error as err:
        _fail(e, f"`{p}` is not a regular expression: {err.msg}")
    return type(s) is str and compiled.fullmatch(s) is not None


def _only(ev, e, args):
    keep = set(args[1] or ())  # once, not once per entry
    return {k: v for k, v in (args[0] or {}).items() if k in keep}


def _round(ev, e, args):
    v = args[0]
    if v is None:
        return None
    f = Fraction(v)
    return math.floor(f + Fraction(1, 2)) if f >= 0 else -math.floor(-f + Fraction(1, 2))


def _log(ev, e, args):
    v = args[0]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | Fraction):
        _fail(e, f"`log` needs a number, but this is {_describe(v)}")
    if v <= 0:
        _fail(e, f"`log` of {_number(v)}: the logarithm is defined for positive numbers only",
              hint="guard it, as in `if x > 0 then log(x) else 0.0`")
    if isinstance(v, Fraction):  # a quantity: apart, so that neither half overflows a float
        return math.log(v.numerator) - math.log(v.denominator)
    return math.log(v)


def _number(v) -> str:
    return str(v) if not isinstance(v, Fraction) or v.denominator != 1 else str(v.numerator)


def _seconds(ev, e, args):
    return None if args[0] is None else float(args[0])


def _millis(ev, e, args):
    return None if args[0] is None else math.ceil(Fraction(args[0]) * 1000)


def _before(ev, e, args):
    """The object as it was before the latest step, from a world that keeps the versions the step
    replaced (engine.fixpoint._History, for the invariants of a step); the checker allows
    `before` nowhere else."""
    obj = args[0]
    if not isinstance(obj, dict) or "kind" not in obj:
        return None
    look_back = getattr(ev.world, "before", None)
    if look_back is None:
        _fail(e, "`before` has no step to look back on here",
              hint="it belongs in an invariant checked after every step")
    return look_back(obj)


_BUILTINS: dict[str, Callable] = {
    "count": lambda ev, e, a: len(a[0] or []),
    "sum": _sum,
    "min": _minmax(min),
    "max": _minmax(max),
    "any": lambda ev, e, a: any(x is True or isinstance(x, dict) for x in (a[0] or [])),
    "all": lambda ev, e, a: all(x is True for x in (a[0] or [])),
    "len": lambda ev, e, a: len(a[0] or []),
    "str": _str,
    "int": _int,
    "float": lambda ev, e, a: None if a[0] is None else float(a[0]),
    "abs": lambda ev, e, a: None if a[0] is None else abs(a[0]),
    "ceil": lambda ev, e, a: None if a[0] is None else math.ceil(a[0]),
    "floor": lambda ev, e, a: None if a[0] is None else math.floor(a[0]),
    "round": _round,
    "log": _log,
    "millis": _millis,
    "seconds": _seconds,
    "keys": lambda ev, e, a: sorted(a[0] or {}),
    "values": lambda ev, e, a: [a[0][k] for k in sorted(a[0] or {})],
    "get": lambda ev, e, a: (a[0] or {}).get(a[1], a[2]),
    "put": lambda ev, e, a: {**(a[0] or {}), a[1]: a[2]},
    "without": lambda ev, e, a: {k: v for k, v in (a[0] or {}).items() if k != a[1]},
    "only": _only,
    "coalesce": lambda ev, e, a: next((x for x in a if x is not None), None),
    "has_duplicates": lambda ev, e, a: len({freeze(x) for x in (a[0] or [])}) < len(a[0] or []),
    "distinct": lambda ev, e, a: list({freeze(x): x for x in reversed(a[0] or [])}.values())[::-1],
    "sorted": lambda ev, e, a: sorted(a[0] or [], key=_sort_key),
    "first": lambda ev, e, a: (a[0] or [None])[0],
    "range": lambda ev, e, a: list(range(max(0, int(a[0] or 0)))),
    "flatten": lambda ev, e, a: [x for inner in (a[0] or []) for x in (inner or [])],
    "pow": lambda ev, e, a: None if a[0] is None or a[1] is None else exact(Fraction(a[0]) ** a[1])
    if isinstance(a[1], int) else float(a[0]) ** float(a[1]),
    "type_of": lambda ev, e, a: _type_of(a[0]),
    "join": lambda ev, e, a: (a[1] or "").join(str(x) for x in (a[0] or [])),
    "split": lambda ev, e, a: [] if not a[0] else a[0].split(a[1]),
    "contains": lambda ev, e, a: a[0] is not None and a[1] is not None and a[1] in a[0],
    "startswith": lambda ev, e, a: a[0] is not None and a[1] is not None and a[0].startswith(a[1]),
    "lower": lambda ev, e, a: None if a[0] is None else a[0].lower(),
    "matches": _matches,
    "hash": _hash,
    "now": lambda ev, e, a: ev.now(),
    "before": _before,
    "cidr_contains": lambda ev, e, a: a[1] is not None and _address(a[1]) in _network(a[0]),
    "cidr_size": lambda ev, e, a: _network(a[0]).num_addresses,
    "cidr_subnet": _cidr_subnet,
    "cidr_host": _cidr_host,
    "ip_index": _ip_index,
    "is_ip": _is_ip,
}
