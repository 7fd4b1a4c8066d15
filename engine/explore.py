"""Explore: every firing order and fault placement of a small spec, with state hashing.

Where `verify` samples fault sequences and firing orders, `explore` walks the whole state
space that the engine's nondeterminism spans. A state is the stored objects (without the
engine's revisions) and the virtual clock. From a state:

- every rule instance that wants a write is a successor: its writes applied through the API
  server, as one engine step (the engine's fixed order would take only the first); writes
  the API server refuses are no move, as in the engine;
- where no instance wants a write the state is *at rest*: the clock may advance to the next
  deadline and, while the fault budget allows, each fault the program declares, aimed at
  each object of its kind (with small argument values), and each deletion of an object the
  spec declares, is a successor more: a scenario's `at T:` event at that T, which is where
  `reconcile` plays one.

States are deduplicated by (content hash, clock, faults used). The search is depth-first on
one store and one engine, moved between states by writing the difference, so that only the
rule instances a move touches are evaluated again; it fires a stubborn set of the enabled
instances rather than all (below), and runs once per fault budget, 0 up to `max_faults`, so
that a violation comes with the fewest faults it needs. What it checks, as `reconcile` does:

- converges: no cycle (a firing order that repeats a state forever), no timer still pending
  at the horizon (a crash loop);
- invariants: those declared `at rest` in every state at rest, the others in every state;
- incremental = naive: at every fixed point (at rest, no timer pending) the naive reference
  mode, started afresh there, does not move;
- orders agree: every fault-free fixed point keeps the same objects the spec declares.

It stops at `max_states` and says whether it exhausted the space. A violation comes back as
the path that reaches it; `counterexample` turns that into a scenario of its events and, when
the engine's fixed order does not take the same path, the firing path that `konverge
reconcile --follow FILE` takes. The engine's own faults (engine/faults.py: stale reads,
dropped events, partial writes, refused requests) are not explored: their effect lives in a
controller's private view and counters, outside the stored state that the search hashes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import attrs

from . import ast as A
from .api import APIServer, encode_object
from .check import Program, std_dir
from .errors import KonvergeError
from .fixpoint import (Engine, Result, _fingerprint, apply_event, apply_spec, key_text, object_key, reconcile,
                       spec_objects)
from .store import Delete, Put, open_store
from .values import format_duration

PROPERTIES = ("converges", "invariants", "invariants at rest", "incremental = naive", "orders agree")
DEFAULT_MAX_STATES = 10_000
DEFAULT_MAX_FAULTS = 1
SCENARIO_NAME = "exhaustive counterexample"


@attrs.frozen(slots=True)
class Step:
    """One move of a path: a rule instance fired, the clock advanced, or a scenario event."""

    kind: str  # "fire", "advance" or "event"
    clock: int | Fraction  # the virtual clock after the move
    instance: str | None = None
    event: A.FaultEvent | A.DeleteEvent | None = None

    def text(self) -> str:
        from .fmt import format_module

        if self.kind == "fire":
            return self.instance or ""
        if self.kind == "advance":
            return f"(the clock advances to {format_duration(self.clock)})"
        scenario = A.ScenarioDecl("x", (A.At(_time(self.clock), self.event),))
        return format_module(A.Module("<step>", (scenario,))).splitlines()[1].strip()


@attrs.frozen(slots=True)
class Violation:
    property: str
    message: str
    path: tuple[Step, ...]
    details: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # the invariants that do not hold
    objects: tuple[tuple, ...] = ()  # the keys of the objects one fails on
    loop: tuple[Step, ...] = ()  # for a cycle: the moves that come back to where it starts

    @property
    def steps(self) -> int:
        return sum(1 for s in self.path if s.kind == "fire")

    @property
    def clock(self):
        return self.path[-1].clock if self.path else 0

    @property
    def events(self) -> tuple[Step, ...]:
        return tuple(s for s in self.path if s.kind == "event")


@attrs.frozen(slots=True)
class Exploration:
    """What a search explored (each pass, one per fault budget, counted) and what it found."""

    states: int
    transitions: int
    fixed_points: int
    exhausted: bool  # every reachable state was explored (within the fault budget)
    elapsed: float
    checked: dict  # property → states it was checked on
    violation: Violation | None = None
    skipped_faults: tuple[str, ...] = ()
    ends: frozenset = frozenset()  # the fixed points reached, as (content hash, clock)
    fault_budget: int = 0  # the fault budget of the last pass (a cut search may not reach the faults)


# ---- one store and engine, moved between states -------------------------------------------


class _Space:
    """The store, API server and engine a search runs on. `enabled()` lists the instances that
    want a write in the current state, evaluating again only those a move touched."""

    def __init__(self, program: Program, horizon):
        self.program = program
        self.horizon = horizon
        self.store = open_store(clock=lambda: self.engine.cache.clock)
        self.api = APIServer(program, self.store, clock=lambda: self.engine.cache.clock)
        self.engine = Engine(program, self.api, horizon=horizon)
        apply_spec(program, self.api, self.engine)
        self.engine.start()
        self.engine.trace.clear()
        self.wanting: dict[str, tuple] = {}  # instance id → (instance, outcome) with writes
        self.deadline: dict[str, object] = {}  # instance id → its next deadline
        self.reads: dict[str, tuple] = {}  # instance id → (kinds it scanned, keys it is bound to)
        self.writes = 0

    @property
    def cache(self):
        return self.engine.cache

    def key(self):
        return (self.cache.state_hash, self.cache.clock)

    def refresh(self) -> None:
        clock = self.cache.clock
        for inst, outcome in self.engine.evaluate_dirty():
            keys = set(outcome.keys)
            if inst.primary_key is not None:
                keys.add(inst.primary_key)
            self.reads[inst.id] = (frozenset(read[1] for read in outcome.reads), frozenset(keys))
            if outcome.writes:
                self.wanting[inst.id] = (inst, outcome)
            else:
                self.wanting.pop(inst.id, None)
            later = [t for t in outcome.deadlines if t > clock]
            if later:
                self.deadline[inst.id] = min(later)
            else:
                self.deadline.pop(inst.id, None)

    def enabled(self) -> list[tuple]:
        """(instance, outcome) of every instance that wants a write, in the fixed firing order."""
        self.refresh()
        return sorted(self.wanting.values(), key=lambda io: io[0].priority)

    def next_deadline(self):
        clock = self.cache.clock
        return min((t for t in self.deadline.values() if t > clock), default=None)

    def _settle(self) -> list[tuple]:
        changes = self.engine.sync()
        self.engine.changed(changes)
        self.engine.trace.clear()
        self.writes += 1
        if self.writes % 2000 == 0:
            self.store.compact(self.store.revision)  # the history of states left behind
        return changes

    def fire(self, inst, outcome) -> list[tuple]:
        """Apply one instance's writes; the changes, as (key, before, after)."""
        self.engine.apply(inst, outcome.writes)
        changes = self._settle()
        self.engine.mark(self.engine.refresh(inst))
        return changes

    def event(self, event) -> list[tuple]:
        apply_event(self.program, self.api, self.engine, event)
        return self._settle()

    def undo(self, changes: list[tuple]) -> None:
        """Write back what `changes` replaced, bypassing admission: the state before them."""
        ops = []
        for key, before, _after in reversed(changes):
            info = self.program.kinds[key[0]]
            skey = self.api.key(info, key[1] or None, key[2])
            ops.append(Delete(skey) if before is None else Put(skey, encode_object(before)))
        if ops:
            self.store.txn([], ops)
            self._settle()

    def set_clock(self, t) -> None:
        """Move the clock; instances whose answer may differ at `t` are evaluated again."""
        before = self.cache.clock
        if t == before:
            return
        self.cache.clock = t
        engine = self.engine
        if t > before:
            due = [iid for iid, d in self.deadline.items() if d <= t]
        else:  # back in time: a comparison with now() that has flipped records no deadline
            due = list(engine.instances)
        for iid in due:
            if iid in engine.instances:
                engine.mark(engine.refresh(engine.instances[iid]))

    def objects(self) -> list[dict]:
        return self.cache.all()


def _fresh_engine(program: Program, objects: list[dict], clock, *, naive: bool, horizon) -> Engine:
    """An engine over a new store holding exactly `objects`, at `clock`."""
    holder: dict = {}
    store = open_store(clock=lambda: holder["engine"].cache.clock)
    api = APIServer(program, store, clock=lambda: holder["engine"].cache.clock)
    ops = [Put(api.key(program.kinds[o["kind"]], o.get("namespace"), o["name"]), encode_object(o)) for o in objects]
    if ops:
        store.txn([], ops)
    engine = holder["engine"] = Engine(program, api, naive=naive, horizon=horizon)
    engine.cache.clock = clock
    engine.start()
    return engine


# ---- the events a quiescent state may take --------------------------------------------------


def default_domains(program: Program, param: A.Param) -> list:
    """Small values for a fault parameter, by type: each is one more successor."""
    name = param.type.name if param.type is not None else None
    if name == "int":
        return [A.Number("0"), A.Number("1"), A.Number("2")]
    if name == "bool":
        return [A.Bool(False), A.Bool(True)]
    if name == "string":
        return [A.String("a")]
    if name == "quantity":
        return [A.Unit("500", "m"), A.Number("2")]
    if name == "map" and (not param.type.args or param.type.args[0].name == "string"):
        return [A.MapLit((A.MapItem("app", A.String("debug")),))]
    return []


Domains = Callable[[Program, A.FaultDecl, A.Param], list]


class _Events:
    """The scenario events a quiescent state may take: faults aimed at the objects of their kind
    in that state, and deletions of the objects the spec declares."""

    def __init__(self, program: Program, faults: list[str], deletions: bool, domains: Domains | None):
        self.program = program
        self.faults = []
        self.skipped = []
        for name in faults:
            fault = program.faults[name]
            kind = program.kind(fault.target.kind)
            values = [(p.name, (domains(program, fault, p) if domains else None) or default_domains(program, p))
                      for p in fault.params]
            if kind is None or any(not v for _, v in values):
                self.skipped.append(f"{name} (a parameter of a type the search does not enumerate)")
                continue
            names = [n for n, _ in values]
            args = [tuple(A.EventArg(n, v) for n, v in zip(names, combo))
                    for combo in itertools.product(*(v for _, v in values))]
            self.faults.append((name, kind, args))
        self.deletable: list[tuple[str, tuple]] = []
        if deletions:
            std = str(std_dir())
            self.deletable = sorted({(kind, object_key(kind, o.get("namespace"), o["name"]))
                                     for kind, o, d in spec_objects(program)
                                     if not str(Path(d.span.file).resolve()).startswith(std)})

    def at(self, cache) -> list:
        out = []
        for name, kind, args in self.faults:
            for obj in cache.scan(kind.name):
                ref = A.ObjRef(obj["name"], obj.get("namespace"))
                out.extend(A.FaultEvent(name, kind.name.lower(), ref, a) for a in args)
        for kind, key in self.deletable:
            if cache.get(key) is not None:
                out.append(A.DeleteEvent(kind.lower(), A.ObjRef(key[2], key[1] or None)))
        return out


def settling_faults(program: Program, names: list[str], horizon) -> list[str]:
    """The faults to explore by default: all but those without parameters that, applied alone to
    their first target at the fault-free fixed point, leave timers pending at the horizon (a
    crash loop): by design they never converge, so the default set leaves them out, as `verify`
    does."""
    baseline = reconcile(program, horizon=horizon)
    out = []
    for name in names:
        fault = program.faults[name]
        kind = program.kind(fault.target.kind)
        aims = [o for o in baseline.objects if kind is not None and o["kind"] == kind.name]
        if fault.params or not aims:
            out.append(name)
            continue
        event = A.FaultEvent(name, kind.name.lower(), A.ObjRef(aims[0]["name"], aims[0].get("namespace")))
        r = reconcile(program, scenario=A.ScenarioDecl(SCENARIO_NAME, (A.At(A.Number("0"), event),)),
                      horizon=horizon)
        if r.reason != "horizon":
            out.append(name)
    return out


# ---- partial-order reduction ----------------------------------------------------------------
#
# Firing independent instances in either order reaches the same state, so exploring every
# interleaving of them multiplies the states for nothing. From each state the search fires only
# a *stubborn set* (Valmari): enabled instances T such that no instance outside T can, by any
# sequence of moves, change what a member of T reads, and no member of T changes what an instance
# outside T may read. Firing only T keeps every quiescent state (so every fixed point, clock
# advance and fault placement) and every cycle of the full graph reachable.
#
# What an instance reads now is what the engine recorded when it last evaluated it; what it may
# read or write later comes from its rule's text: the kinds its clauses and the defs they call
# scan, the admission policies and role bindings its writes pass, and the objects its actions
# write — its own object (bound by the first `for`), or any object of a kind.


@attrs.frozen(slots=True)
class _RuleFootprint:
    primary: str | None  # the kind the first `for` ranges over: one instance per object
    reads: frozenset  # kinds it may scan, besides its own object ("*": any)
    writes: frozenset  # (kind, own object only) it may write ("*": any kind)
    creates: frozenset  # kinds it may create or ensure


def _kinds_scanned(program: Program, nodes, out: set) -> None:
    """Kinds the AST nodes may scan, through the defs they call."""
    stack, seen = list(nodes), set()
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
            continue
        if not attrs.has(type(n)) or isinstance(n, A.Span):
            continue
        if isinstance(n, A.KindSource):
            info = program.kind(n.kind)
            out.add(info.name if info is not None else "*")
        elif isinstance(n, A.Call) and n.fn in program.defs and n.fn not in seen:
            seen.add(n.fn)
            stack.append(program.defs[n.fn].body)
        stack.extend(getattr(n, f.name) for f in attrs.fields(type(n)))


def _footprint(program: Program, rule: A.Rule, admission: dict, rbac: frozenset) -> _RuleFootprint:
    first = rule.clauses[0] if rule.clauses else None
    primary_var = None
    primary = None
    if isinstance(first, A.ForClause) and isinstance(first.source, A.KindSource):
        info = program.kind(first.source.kind)
        primary, primary_var = (info.name if info else "*"), first.source.var
    kinds_of = {}  # rule variables bound to objects of a kind
    for c in rule.clauses:
        if isinstance(c, A.ForClause) and isinstance(c.source, A.KindSource):
            info = program.kind(c.source.kind)
            kinds_of[c.source.var] = info.name if info else "*"
    actions = list(rule.actions)
    if rule.pick is not None:
        info = program.kind(rule.pick.source.kind)
        kinds_of.setdefault(rule.pick.source.var, info.name if info else "*")
        actions += [*rule.pick.then, *rule.pick.otherwise]
    reads: set = set()
    rest = [c.source.iterable if isinstance(c, A.ForClause) and isinstance(c.source, A.ListSource)
            else c for c in rule.clauses[1 if primary is not None else 0:]]
    _kinds_scanned(program, [rest, rule.actions, rule.pick], reads)
    writes, creates = set(), set()
    for a in actions:
        if isinstance(a, A.CreateAction):
            info = program.kind(a.kind)
            kind = info.name if info else "*"
            creates.add(kind)
            writes.add((kind, False))  # an ensure also deletes what it ensured before
        else:
            var = a.path[0] if isinstance(a, A.SetAction) else (
                a.target.id if isinstance(a.target, A.Name) else None)
            if var is not None and var == primary_var:
                writes.add((primary, True))
            else:
                writes.add((kinds_of.get(var, "*"), False))
    written = {k for k, _ in writes}
    reads |= {k for k, own in writes if not own} | creates
    for k in written:
        reads |= admission.get(k, set()) if k != "*" else {"*"}
    if written:
        reads |= rbac
    return _RuleFootprint(primary, frozenset(reads), frozenset(writes), frozenset(creates))


class _Reduction:
    """Stubborn sets over rule instances: which enabled instances a state needs to fire."""

    def __init__(self, space: _Space):
        self.space = space
        program = space.program
        engine = space.engine
        admission: dict[str, set] = {}
        for policy in program.policies:
            for deny in policy.denies:
                info = program.kind(deny.source.kind)
                _kinds_scanned(program, [deny.cond], admission.setdefault(info.name if info else "*", set()))
        from .api import RBAC_KINDS

        rbac = frozenset(k for k in RBAC_KINDS if k in program.kinds) if space.api.rbac_enabled else frozenset()
        self.rules: dict[str, tuple] = {}  # rule id → (controller, rule, footprint)
        self.writers: dict[str, list] = {}  # kind → [(rule id, own object only)]
        self.readers: dict[str, list] = {}  # kind → rule ids that may scan it
        self.creators: dict[str, list] = {}  # kind → rule ids that may create it
        self.by_primary: dict[str, list] = {}  # kind → rule ids with an instance per object of it
        self._writers_of: dict[str, list] = {}
        self._readers_of: dict[str, list] = {}
        for cname, _, rule in engine.rules:
            rid = f"{cname}/{rule.name}"
            fp = _footprint(program, rule, admission, rbac)
            self.rules[rid] = (cname, rule, fp)
            for kind, own in fp.writes:
                self.writers.setdefault(kind, []).append((rid, own))
            for kind in fp.reads:
                self.readers.setdefault(kind, []).append(rid)
            for kind in fp.creates:
                self.creators.setdefault(kind, []).append(rid)
            if fp.primary is not None:
                self.by_primary.setdefault(fp.primary, []).append(rid)
        # What the API server reads when an instance's writes pass admission and authorization.
        every_policy = frozenset().union(*admission.values())
        self.extra_reads = {rid: frozenset().union(*(every_policy if k == "*" else admission.get(k, ())
                                                     for k, _ in fp.writes), rbac if fp.writes else ())
                            for rid, (_, _, fp) in self.rules.items()}

    def choose(self, enabled: list, visible: Callable) -> list:
        """The enabled instances of the smallest stubborn set found, in firing order. A set that
        fires an instance `visible` to an invariant checked after every step must hold every
        enabled instance, so that no state the invariant should see is skipped."""
        if len(enabled) < 2:
            return enabled
        state = _Instances(self)
        wanting = {inst.id: (inst, outcome) for inst, outcome in enabled}
        shown = {inst.id for inst, outcome in enabled if visible(outcome)}
        best = None
        for inst, _ in enabled:
            members = self.closure(inst.id, wanting, state, limit=len(best) if best else len(enabled))
            if members is not None and not (members & shown) and (best is None or len(members) < len(best)):
                best = members
                if len(best) == 1:
                    break
        if best is None:
            return enabled
        return [io for io in enabled if io[0].id in best]

    def closure(self, seed: str, wanting: dict, state: "_Instances", limit: int) -> set | None:
        """The enabled members of the stubborn set grown from `seed`; None once they reach `limit`.
        Most of what joins is a rule with all its instances, present and to come: those are
        taken whole, once."""
        members: set = set()
        whole: set = set()  # rules taken with every instance
        enabled: set = set()
        work = [seed]

        def take(rid: str) -> None:
            if rid not in whole:
                whole.add(rid)
                work.extend(state.ids(rid))
                if self.rules[rid][2].primary is not None:
                    work.append(("new", rid))

        while work:
            m = work.pop()
            if m in members:
                continue
            members.add(m)
            if isinstance(m, tuple):  # a rule's instances for objects that do not exist yet
                kind = self.rules[m[1]][2].primary
                for rid in self.creators.get(kind, []) + self.creators.get("*", []):
                    take(rid)
                continue
            if m in wanting:
                enabled.add(m)
                if len(enabled) >= limit:
                    return None
            rid = state.rule_of(m)
            if rid is None:
                return None  # an instance the footprints do not know: give up reducing
            kinds, keys = self.space.reads.get(m, (frozenset("*"), frozenset()))
            kinds = kinds | self.extra_reads[rid]
            keys = keys | state.owned(m)
            # Whatever may write what m reads joins: then nothing outside changes m.
            for kind in kinds | {k[0] for k in keys}:
                for wrid, own in self.writers_of(kind):
                    if wrid in whole:
                        continue
                    if own and kind not in kinds and "*" not in kinds:
                        work.extend(state.owning(wrid, keys))
                    else:
                        take(wrid)
            if m in wanting:
                # Whatever may read what m writes joins: then m changes nothing outside.
                written = {_written_key(w) for w in wanting[m][1].writes}
                for kind in {k[0] for k in written}:
                    for rrid in self.readers_of(kind):
                        take(rrid)
                    for orid in self.by_primary.get(kind, ()):
                        if orid not in whole:
                            work.extend(state.owning(orid, written))
        return enabled

    def writers_of(self, kind: str) -> list:
        found = self._writers_of.get(kind)
        if found is None:
            found = self._writers_of[kind] = ([w for ws in self.writers.values() for w in ws] if kind == "*" else
                                              self.writers.get(kind, []) + self.writers.get("*", []))
        return found

    def readers_of(self, kind: str) -> list:
        found = self._readers_of.get(kind)
        if found is None:
            found = self._readers_of[kind] = self.readers.get(kind, []) + self.readers.get("*", [])
        return found


def _written_key(write: tuple) -> tuple:
    verb, kind, payload, _ = write
    if isinstance(payload, dict):
        return object_key(kind, payload.get("namespace"), payload["name"])
    return payload


class _Instances:
    """The rule instances of one state, computed as the closure asks for them."""

    def __init__(self, reduction: _Reduction):
        self.reduction = reduction
        self.cache = reduction.space.cache
        self.by_rule: dict[str, list] = {}
        self.rule_by_id: dict[str, str] = {}

    def _instances(self, rid: str) -> list:
        found = self.by_rule.get(rid)
        if found is None:
            cname, rule, fp = self.reduction.rules[rid]
            if fp.primary is None:
                found = [(rid, None)]
            else:
                found = [(f"{rid}[{key_text(k)}]", k)
                         for k in (object_key(fp.primary, o.get("namespace"), o["name"])
                                   for o in self.cache.scan(fp.primary))]
                ids = {i for i, _ in found}
                found += [(owner, None) for owner in self.cache.owned
                          if owner.startswith(rid + "[") and owner not in ids]
            self.by_rule[rid] = found
            for iid, _ in found:
                self.rule_by_id[iid] = rid
        return found

    def ids(self, rid: str) -> list:
        return [iid for iid, _ in self._instances(rid)]

    def owning(self, rid: str, keys) -> list:
        """The rule's instances whose own object is one of `keys`."""
        return [iid for iid, k in self._instances(rid) if k in keys]

    def owned(self, iid: str) -> frozenset:
        return frozenset(self.cache.owned.get(iid, ()))

    def rule_of(self, iid: str) -> str | None:
        rid = self.rule_by_id.get(iid)
        if rid is None:
            rid = iid.split("[", 1)[0]
            if rid not in self.reduction.rules:
                return None
            self._instances(rid)
            self.rule_by_id.setdefault(iid, rid)
        return rid


# ---- the search -----------------------------------------------------------------------------


@attrs.define(slots=True)
class _Frame:
    key: tuple
    moves: list  # what is left to try: ("fire", id) / ("event", event) / ("advance", t)
    step: Step | None  # the move that led here
    undo: list | None  # its changes, or ("clock", before) for an advance
    faults: int
    moved: bool = False  # a rule instance fired from here changed something


def explore(program: Program, *, faults: list[str] | None = None, deletions: bool = True,
            max_faults: int = DEFAULT_MAX_FAULTS, max_states: int = DEFAULT_MAX_STATES,
            horizon=None, domains: Domains | None = None, reduce: bool = True,
            progress: Callable[[int, int, int], None] | None = None) -> Exploration:
    """Every firing order and fault placement from the spec's objects, up to `max_faults` events a
    path and `max_states` states; the first violation found, with the path to it."""
    # A fault's effect should settle within verify's horizon; a timer beyond it (a crash loop's
    # next restart) is reported as not converging, as `verify` does.
    from .verify import HORIZON, check_fault_names

    started = time.monotonic()
    horizon = HORIZON if horizon is None else horizon
    check_fault_names(faults, sorted(program.faults), " (the exhaustive search takes the program's faults, not the "
                                                      "engine's)")
    names = sorted(program.faults) if faults is None else list(dict.fromkeys(faults))
    skipped = []
    if faults is None:
        settling = settling_faults(program, names, horizon)
        skipped = [f"{n} (alone it never settles: timers pending at the horizon; name it in --faults to "
                   f"include it)" for n in names if n not in settling]
        names = settling
    events = _Events(program, names, deletions, domains)
    # Fewest faults first: a violation that needs no fault is reported without one, and one that
    # needs a fault is found before any path with two. Each pass explores the space again.
    states = transitions = fixed_points = 0
    checked: dict = {p: 0 for p in PROPERTIES}
    ends: set = set()
    for budget in range(max_faults + 1):
        done = (states, transitions, fixed_points)
        tick = (lambda s, t, f: progress(done[0] + s, done[1] + t, done[2] + f)) if progress else None
        search = _Search(program, events, budget, max_states - states, horizon, tick, reduce)
        violation = search.run()
        for prop in ("converges", "invariants"):
            search.checked[prop] = len(search.seen) if violation is None or violation.property != prop else 0
        states, transitions = states + len(search.seen), transitions + search.transitions
        fixed_points += search.fixed_points
        for prop, n in search.checked.items():
            checked[prop] += n
        ends |= search.ends
        if violation is not None or search.truncated:
            break
    return Exploration(states=states, transitions=transitions, fixed_points=fixed_points,
                       exhausted=violation is None and not search.truncated, elapsed=time.monotonic() - started,
                       checked=checked, violation=violation, skipped_faults=tuple(skipped + events.skipped),
                       ends=frozenset(ends), fault_budget=budget)


class _Search:
    def __init__(self, program: Program, events: _Events, max_faults: int, max_states: int, horizon, progress,
                 reduce: bool = True):
        self.program = program
        self.events = events
        self.max_faults = max_faults
        self.max_states = max_states
        self.horizon = horizon
        self.progress = progress
        self.space = _Space(program, horizon)
        self.reduction = _Reduction(self.space) if reduce else None
        self.seen: set[tuple] = set()
        self.transitions = 0
        self.fixed_points = 0
        self.ends: set[tuple] = set()
        self.refused: set[tuple] = set()  # (state, instance id, fingerprint of its writes) the API server refused
        self.truncated = False
        self.checked = {p: 0 for p in PROPERTIES}
        self.declared = {object_key(k, o.get("namespace"), o["name"]) for k, o, _ in spec_objects(program)}
        self.agreed: frozenset | None = None  # the declared objects every fault-free fixed point keeps
        self.steady = [inv for inv in program.invariants if not inv.at_rest]
        self.resting = [inv for inv in program.invariants if inv.at_rest]
        self.steady_kinds: set = set()
        _kinds_scanned(program, [inv.cond for inv in self.steady], self.steady_kinds)
        from .eval import Evaluator

        self.ev = Evaluator(program, self.space.cache)

    def run(self) -> Violation | None:
        space = self.space
        stack: list[_Frame] = []
        on_stack: dict[tuple, int] = {}
        entered = self.enter(0, None, None, stack, on_stack)
        if entered is not None:
            return entered
        while stack:
            frame = stack[-1]
            if not frame.moves:
                self.leave(stack, on_stack)
                continue
            move = frame.moves.pop()
            if move[0] == "fire":
                space.refresh()
                found = space.wanting.get(move[1])
                if found is None:
                    continue  # cannot happen: the same state wants the same writes
                changes = space.fire(*found)
                if not changes:
                    # The API server refused every write: not a move, and not tried again in this
                    # state with the same writes. A state where nothing else moves is at rest.
                    self.refused.add((frame.key, move[1], _fingerprint(found[1].writes)))
                    if not frame.moved and not any(m[0] == "fire" for m in frame.moves):
                        found = self.expand(frame, stack)
                        if found is not None:
                            return found
                    continue
                frame.moved = True
                step, undo, faults = Step("fire", space.cache.clock, move[1]), changes, frame.faults
            elif move[0] == "event":
                changes = space.event(move[1])
                if not changes:
                    continue
                step, undo, faults = Step("event", space.cache.clock, event=move[1]), changes, frame.faults + 1
            else:
                before = space.cache.clock
                space.set_clock(move[1])
                step, undo, faults = Step("advance", move[1]), ("clock", before), frame.faults
            self.transitions += 1
            key = (*space.key(), faults)
            if key in on_stack:
                return self.cycle(stack, on_stack[key], step)
            if key in self.seen:
                self.back(step, undo)
                continue
            if len(self.seen) >= self.max_states:
                self.truncated = True
                return None
            found = self.enter(faults, step, undo, stack, on_stack)
            if found is not None:
                return found
        return None

    def back(self, step: Step, undo) -> None:
        if step.kind == "advance":
            self.space.set_clock(undo[1])
        else:
            self.space.undo(undo)

    def leave(self, stack: list, on_stack: dict) -> None:
        frame = stack.pop()
        del on_stack[frame.key]
        if frame.step is not None:
            self.back(frame.step, frame.undo)

    def path(self, stack: list, last: Step | None = None) -> tuple[Step, ...]:
        steps = [f.step for f in stack if f.step is not None]
        return tuple(steps + ([last] if last is not None else []))

    def enter(self, faults: int, step: Step | None, undo, stack: list, on_stack: dict) -> Violation | None:
        """Enter the current state: check it, and push what it may do next."""
        space = self.space
        key = (*space.key(), faults)
        self.seen.add(key)
        if self.progress is not None and len(self.seen) % 100 == 0:
            self.progress(len(self.seen), self.transitions, self.fixed_points)
        frame = _Frame(key, [], step, undo, faults)
        stack.append(frame)
        on_stack[key] = len(stack) - 1
        found = self.invariants(self.steady, stack)
        if found is not None:
            return found
        return self.expand(frame, stack)

    def expand(self, frame: _Frame, stack: list) -> Violation | None:
        """Push what the current state may do next; at rest, check it first."""
        space = self.space
        faults = frame.faults
        enabled = [io for io in space.enabled()
                   if (frame.key, io[0].id, _fingerprint(io[1].writes)) not in self.refused]
        if enabled:
            if self.reduction is not None:
                enabled = self.reduction.choose(enabled, self.visible)
            # Popped from the end: the fixed order's own choice is tried first.
            frame.moves = [("fire", inst.id) for inst, _ in reversed(enabled)]
            return None
        found = self.invariants(self.resting, stack)
        if found is not None:
            return found
        self.checked["invariants at rest"] += 1
        deadline = space.next_deadline()
        if deadline is not None and deadline > self.horizon:
            return Violation("converges", f"not converged: a timer is still pending at the horizon "
                                          f"({format_duration(self.horizon)}), due at {format_duration(deadline)}",
                             self.path(stack), tuple(f"pending: {iid}" for iid, d in sorted(space.deadline.items())
                                                     if d == deadline))
        moves: list = []
        if deadline is not None:
            moves.append(("advance", deadline))
        else:
            found = self.fixed_point(stack, faults)
            if found is not None:
                return found
        if faults < self.max_faults:
            moves.extend(("event", e) for e in reversed(self.events.at(space.cache)))
        frame.moves = moves
        return None

    def visible(self, outcome) -> bool:
        """Whether firing an instance may change what an invariant checked after every step reads."""
        return any(w[1] in self.steady_kinds or "*" in self.steady_kinds for w in outcome.writes)

    def invariants(self, invariants: list, stack: list) -> Violation | None:
        broken = [inv for inv in invariants if self.ev.eval(inv.cond, {}) is not True]
        if not broken:
            return None
        where = "at rest" if broken[0].at_rest else "after a step"
        from .verify import culprits as failing

        culprits = failing(self.ev, self.space.cache, broken[0])
        return Violation("invariants", "; ".join(f'invariant "{inv.name}" does not hold' for inv in broken)
                         + f" ({where})", self.path(stack), tuple(f"fails on {key_text(k)}" for k in culprits),
                         tuple(inv.name for inv in broken), tuple(culprits))

    def fixed_point(self, stack: list, faults: int) -> Violation | None:
        """Check a state where a run ends: nothing wants a write and no timer is pending."""
        space = self.space
        self.fixed_points += 1
        self.ends.add(space.key())
        naive = _fresh_engine(self.program, space.objects(), space.cache.clock, naive=True, horizon=self.horizon)
        reason = naive.run()
        if reason or naive.cache.state_hash != space.cache.state_hash or naive.cache.clock != space.cache.clock:
            what = ", ".join(sorted(set(naive.fired))[:3]) or "the clock"
            return Violation("incremental = naive", f"the naive reference mode does not agree that this is a "
                                                    f"fixed point: from here it moves on ({what})", self.path(stack))
        self.checked["incremental = naive"] += 1
        if faults == 0:
            present = frozenset(k for k in self.declared if space.cache.get(k) is not None)
            if self.agreed is None:
                self.agreed = present
            elif present != self.agreed:
                return Violation("orders agree", "two firing orders reach fixed points that keep different "
                                                 "declared objects",
                                 self.path(stack), tuple(f"{key_text(k)} is {'gone' if k not in present else 'kept'}"
                                                         f" here, not in the first fixed point found"
                                                         for k in sorted(self.agreed ^ present)))
            self.checked["orders agree"] += 1
        return None

    def cycle(self, stack: list, start: int, last: Step) -> Violation:
        """A move back to a state on the current path: a firing order that never ends."""
        loop = tuple([f.step for f in stack[start + 1:]] + [last])
        instances = sorted({s.instance for s in loop if s.kind == "fire"})
        return Violation("converges", f"not converged: a firing order repeats a state (a cycle of {len(loop)} steps)",
                         self.path(stack, last), ("cycle through rule instances:", *(f"  {i}" for i in instances)),
                         loop=loop)


# ---- counterexamples ------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Counterexample:
    """A violation made replayable: its events as a scenario and, when the engine's fixed order does
    not take the same path to it, the firing path that `konverge reconcile --follow FILE` takes."""

    violation: Violation
    scenario: A.ScenarioDecl
    follow: tuple[str, ...] = ()  # empty when the scenario alone, in the fixed order, replays it
    result: Result | None = attrs.field(default=None, eq=False)  # the replay, if it reports the same violation

    @property
    def replayed(self) -> bool:
        return self.result is not None


def counterexample(program: Program, violation: Violation) -> Counterexample:
    """Replay the violation with `reconcile`: first the scenario alone in the fixed order, then along
    the firing path; the first that reports the same violation."""
    scenario = scenario_of(violation)
    # In process the times are plain numbers of seconds: a Unit reads by how the checker typed it.
    timed = A.ScenarioDecl(scenario.name, tuple(A.At(A.Number(_decimal(s.clock)), s.event) for s in violation.events))
    path = tuple(firing_path(violation))
    tries = [path] if violation.property in ("orders agree", "incremental = naive") else [(), path]
    for follow in tries:
        result = _replay(program, violation, timed, follow)
        if result is not None:
            return Counterexample(violation, scenario, follow, result)
    return Counterexample(violation, scenario, path)


def _replay(program: Program, violation: Violation, scenario: A.ScenarioDecl, follow: tuple) -> Result | None:
    """The reconcile of the scenario along the path, if it reports the same violation."""
    from .verify import content

    try:
        result = reconcile(program, scenario=scenario, follow=follow)
    except KonvergeError:
        return None  # the path cannot be followed
    if violation.property == "converges":
        same = not result.converged
    elif violation.property == "invariants":
        same = any(v.startswith(f'invariant "{name}" ') for v in result.violations for name in violation.names)
    elif violation.property == "incremental = naive":
        naive = reconcile(program, scenario=scenario, follow=follow, naive=True)
        same = content(naive.objects) != content(result.objects)
    else:
        fixed = reconcile(program, scenario=scenario)
        declared = {object_key(k, o.get("namespace"), o["name"]) for k, o, _ in spec_objects(program)}
        same = {k for k in content(result.objects) if k in declared} != {k for k in content(fixed.objects)
                                                                          if k in declared}
    return result if same else None


def _decimal(t) -> str:
    return str(t) if not isinstance(t, Fraction) or t.denominator == 1 else str(float(t))


def counterexample_text(cx: Counterexample, spec: str, module: A.Module | None = None,
                        path_file: str | None = None, options: str = "") -> str:
    """The counterexample as a file: a scenario that `konverge reconcile SPEC --scenario FILE`
    replays; or, given `module` (the spec cut down to the scope where it fails), that spec with
    the scenario in it, which `konverge reconcile FILE --scenario NAME` replays."""
    from .fmt import format_module

    v = cx.violation
    body = format_module(A.Module("<counterexample>", (*(module.decls if module is not None else ()), cx.scenario)))
    run = f'THIS_FILE --scenario "{cx.scenario.name}"' if module is not None else f"{spec} --scenario THIS_FILE"
    follow = (f" --follow {path_file or 'PATH_FILE'}" if cx.follow else "") + options
    lines = [f'# Found by `konverge verify --exhaustive`: the property "{v.property}" fails.',
             f"#   {v.message}",
             f"#   after {v.steps} step(s), at virtual clock {format_duration(v.clock)}"]
    if module is not None:
        lines.append(f"# This is {spec} cut down to the scope where it fails, with the scenario at the end.")
    if cx.follow:
        lines += ["# The engine's fixed firing order does not take this path: the violation depends on the order",
                  "# in which rule instances fire, so the replay follows the firing path in the --follow file."]
    lines += ["# Replay:" if cx.replayed else "# Replay (in process it did not report the same violation):",
              f"#   konverge reconcile {run}{follow}"]
    return "\n".join(lines) + "\n\n" + body


def path_text(cx: Counterexample) -> str:
    """The firing path as a file for `konverge reconcile --follow`: one rule instance id a line."""
    lines = ["# The firing path `konverge verify --exhaustive` found: rule instances in the order they fire,",
             "# one a line (the scenario's events come in between, at their virtual times)."]
    return "\n".join([*lines, *cx.follow]) + "\n"


def read_path(path: str) -> list[str]:
    """The instance ids of a --follow file, as `path_text` writes it."""
    from .errors import Diagnostic

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KonvergeError(Diagnostic("E001", f"cannot read the firing path: {getattr(e, 'strerror', None) or e}",
                                       file=path)) from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _time(t) -> A.Number | A.Unit:
    if isinstance(t, Fraction) and t.denominator != 1:
        ms = t * 1000
        return A.Unit(str(int(ms)) if ms.denominator == 1 else str(float(t)), "ms" if ms.denominator == 1 else "s")
    return A.Unit(str(int(t)), "s")


def scenario_of(violation: Violation, name: str = SCENARIO_NAME) -> A.ScenarioDecl:
    """The path's events as a scenario: each at the virtual time it happened."""
    return A.ScenarioDecl(name, tuple(A.At(_time(s.clock), s.event) for s in violation.events))


def firing_path(violation: Violation) -> list[str]:
    """The instances fired along the path; for a cycle, around it once more, so that the engine
    sees a state come back after a step (it does not count the state a run starts from)."""
    return [s.instance for s in (*violation.path, *violation.loop) if s.kind == "fire"]


# ---- what the command prints ----------------------------------------------------------------


def table_text(columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, force_terminal=False, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def properties_table(x: Exploration) -> str:
    """Each property and what it was checked on."""
    c = x.checked
    rows = [["converges", f"{c.get('converges', 0):,} states: no cycle, no timer left at the horizon"],
            ["invariants", f"{c.get('invariants', 0):,} states after every step, "
                           f"{c.get('invariants at rest', 0):,} at rest"],
            ["incremental = naive", f"{c.get('incremental = naive', 0):,} fixed points"],
            ["orders agree", f"{c.get('orders agree', 0):,} fault-free fixed points keep the same declared objects"]]
    return table_text([("PROPERTY", "left"), ("CHECKED ON", "left")], rows)


def space_text(x: Exploration, max_states: int) -> str:
    """How much of the space was explored."""
    size = f"{_n(x.states, 'state')}, {_n(x.transitions, 'transition')}, {_n(x.fixed_points, 'fixed point')}"
    if x.exhausted:
        return f"exhausted: {size} in {x.elapsed:.1f}s"
    if x.violation is not None:
        return f"stopped at the first violation: {size} in {x.elapsed:.1f}s"
    return (f"not exhausted: stopped at {max_states:,} states (--max-states) in the pass with at most "
            f"{_n(x.fault_budget, 'fault')} a path; {size} in {x.elapsed:.1f}s")


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def failure_text(program: Program, cx: Counterexample, replay: str) -> str:
    """The violation, where, the explain chain of the object it fails on, and how to replay it."""
    v = cx.violation
    lines = [f"property violated: {v.property}", f"  {v.message}",
             f"  at step {v.steps}, virtual clock {format_duration(v.clock)}; "
             + ("events: " + "; ".join(s.text() for s in v.events) if v.events else "no fault")]
    lines += [f"  {d}" for d in v.details]
    if cx.follow:
        lines.append(f"  the engine's fixed firing order does not reach it: the replay follows a firing path of "
                     f"{_n(len(cx.follow), 'rule instance')}")
    if cx.result is not None and v.objects:
        from .verify import explain_lines

        lines += [f"  {line}" if line else "" for line in explain_lines(program, cx.result, v.objects[0])]
    if not cx.replayed:
        lines.append("  note: replaying it with reconcile did not report the same violation; this is a bug in "
                     "konverge, please report it")
    lines.append(f"replay: {replay}")
    return "\n".join(lines) + "\n"
