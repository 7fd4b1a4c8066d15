"""Explore: every firing order and fault placement of a small spec, with state hashing.

Where `verify` samples fault sequences and firing orders, `explore` walks the whole state
space that the engine's nondeterminism spans. A state is the stored objects (without the
engine's revisions), the virtual clock, and what the engine's faults leave in the engine
(below). From a state:

- every rule instance that wants a write is a successor: its writes applied through the API
  server, as one engine step (the engine's fixed order would take only the first); writes
  the API server refuses are no move, as in the engine;
- while the fault budget allows, each such firing struck by an engine fault is a successor
  more (engine/faults.py; `_Strikes` says which and why): a crash part-way (`partial`: every
  proper prefix of its writes lands, then the controller restarts — it keeps nothing but the
  store, so the store is the whole truth), a refused first request (`reject`: the instance
  backs off on the virtual clock; only where something reads the clock, as elsewhere it reaches
  no objects that some firing order does not), a controller's view that loses what the firing writes (`drop`) or lags behind it
  and what follows for a few steps (`stale`);
- where no instance wants a write (a view behind having caught up first, as the engine's
  relist does) the state is *at rest*: the clock may advance to the next deadline (a timer's or
  a back-off's) and, while the fault budget allows, each fault the program declares, aimed at
  each object of its kind (with small argument values), each deletion of an object the spec
  declares, and a view that will miss or lag behind what a later event writes, is a successor
  more: a scenario's `at T:` event at that T, which is where `reconcile` plays one;
- given a user's scenario, its events come at their times, each where the run is at rest at
  that time (as `reconcile` plays them), with the search's faults on top, and its expects are
  checked (`always` in every state, `eventually` at every fixed point, `within T` along the path).

States are deduplicated by (content hash, clock, faults used, what the engine's faults leave,
the scenario's events played, its `within` expects met). What the engine's faults leave is the
engine's own: each controller's view behind (its objects but their versions, the events it
holds back, its window and how long since it lost one), the faults armed, the back-offs and
the instances it passes over (by what they want, but the versions). The search is depth-first
on one store and one engine, moved between states by writing the difference (and putting back
what the faults leave), so that only the rule instances a move touches are evaluated again; it
fires a stubborn set of the enabled instances rather than all (below; not while a view is behind
or a fault is armed), and runs once per fault budget, 0 up to `max_faults`, so that a violation
comes with the fewest faults it needs. What it checks, as `reconcile` does:

- converges: no cycle (a firing order that repeats a state forever), no timer still pending
  at the horizon (a crash loop);
- invariants: those declared `at rest` in every state at rest, the others in every state;
- expectations: the user's scenario's, if one is given;
- incremental = naive: at every fixed point (at rest, no timer pending) the naive reference
  mode, started afresh there, does not move;
- orders agree: every fault-free fixed point keeps the same objects the spec declares.

It stops at `max_states` and says whether it exhausted the space. A violation comes back as
the path that reaches it; `counterexample` turns that into a scenario of its events and, when
the engine's fixed order does not take the same path, the firing path that `konverge
reconcile --follow FILE` takes. An engine fault that strikes a firing is a scenario event at
the last state at rest before it where nothing in between would take it instead; else (in the
run from the spec's objects, before any state at rest) the firing path arms it, on a line of
its own just before that firing.

Not explored: a `drop` of more than one event, a `reject` of more than one request (each
refusal is a fault of the budget), a `stale` window other than 5 steps or a lag beyond 2.
While a view is behind, each firing is a step of its window, one that writes nothing (a
Conflict on what it saw) included, as in the engine.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import attrs

from . import ast as A
from .api import APIServer, encode_object
from .check import ENGINE_FAULT_KIND, ENGINE_FAULTS, Program, std_dir
from .errors import KonvergeError
from .fixpoint import (Engine, Result, _fingerprint, _History, apply_event, apply_spec, constant, key_text, object_key,
                       reconcile, step_culprits,
                       spec_objects)
from .eval import _conjuncts
from .reads import reached
from .store import Delete, Put, open_store
from .values import format_duration

PROPERTIES = ("converges", "invariants", "invariants at rest", "expectations", "incremental = naive", "orders agree")
DEFAULT_MAX_STATES = 10_000
DEFAULT_MAX_FAULTS = 1
SCENARIO_NAME = "exhaustive counterexample"
# The values the search gives the engine faults' parameters (check.ENGINE_FAULTS gives their ranges):
# a crash (`partial`) after every proper prefix of the firing it strikes, so `writes` is not here.
ENGINE_ARGS = {"lag": (1, 2), "steps": (5,), "events": (1,), "requests": (1,)}


@attrs.frozen(slots=True)
class Step:
    """One move of a path: a rule instance fired (with an engine fault armed just before it, if
    `fault`), the clock advanced, or a scenario event."""

    kind: str  # "fire", "advance" or "event"
    clock: int | Fraction  # the virtual clock after the move
    instance: str | None = None
    event: A.Event | None = None
    fault: A.FaultEvent | None = None  # for a firing: the engine fault that strikes it
    writes: int = 0  # for a firing: the writes it wanted

    def text(self) -> str:
        if self.kind == "fire":
            return f"{self.instance} (`{event_text(self.fault)}` strikes it)" if self.fault else self.instance or ""
        if self.kind == "advance":
            return f"(the clock advances to {format_duration(self.clock)})"
        return _at_text(_time(self.clock), self.event)


def _at_text(time: A.Number | A.Unit, event: A.Event) -> str:
    from .fmt import format_module

    scenario = A.ScenarioDecl("x", (A.At(time, event),))
    return format_module(A.Module("<step>", (scenario,))).splitlines()[1].strip()


def event_text(event: A.Event) -> str:
    """A scenario event as it is written after `at T:`."""
    return _at_text(A.Unit("0", "s"), event).split(": ", 1)[1]


@attrs.frozen(slots=True)
class Violation:
    property: str
    message: str
    path: tuple[Step, ...]
    details: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # the invariants that do not hold (for an expect: its position)
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

    @property
    def struck(self) -> tuple[Step, ...]:
        """The firings an engine fault strikes in the middle of a run (where no scenario event comes)."""
        return tuple(s for s in (*self.path, *self.loop) if s.fault is not None)


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
    engine_faults: tuple[str, ...] = ()  # the engine's faults explored


# ---- one store and engine, moved between states -------------------------------------------


class _Space:
    """The store, API server and engine a search runs on. `enabled()` lists the instances that
    want a write in the current state, evaluating again only those a move touched. The engine's
    faults (engine/faults.py) live in the engine, as in a run; `snapshot()` copies out what they
    leave behind between moves and `restore()` puts it back."""

    def __init__(self, program: Program, horizon):
        self.program = program
        self.horizon = horizon
        self.store = open_store(clock=lambda: self.engine.cache.clock)
        self.api = APIServer(program, self.store, clock=lambda: self.engine.cache.clock)
        self.engine = Engine(program, self.api, horizon=horizon)
        # A firing's footprint is the kinds it read; a pick's verdicts, kept between evaluations,
        # would hide theirs behind one token (engine/picks.py).
        self.engine.memo.picks = None
        self.engine.field_wakeups = False  # it keeps outcomes that want writes (see Engine.wake)
        apply_spec(program, self.api, self.engine)
        self.engine.start()
        self.engine.trace.clear()
        self.wanting: dict[str, tuple] = {}  # instance id → (instance, outcome) with writes
        self.deadline: dict[str, object] = {}  # instance id → its next deadline
        self.reads: dict[str, tuple] = {}  # instance id → (kinds it scanned, keys it is bound to)
        self.writes = 0
        # The engine passes over an instance it refused (engine.refused) while it wants the same
        # writes, resourceVersions and all; moved back to a state, the store gives the same objects
        # new versions, so each is kept here by what it wants but the versions (`_print`) too.
        self.prints: dict[str, str] = {}

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
        """(instance, outcome) of every instance that wants a write, in the fixed firing order, but
        those waiting out a back-off or refused while a controller's view was behind: as the engine,
        they are passed over while they want the same writes."""
        self.refresh()
        refused = self.engine.refused
        return sorted((io for io in self.wanting.values()
                       if not refused or refused.get(io[0].id) != _fingerprint(io[1].writes)),
                      key=lambda io: io[0].priority)

    def next_deadline(self):
        clock = self.cache.clock
        faults = self.engine.faults
        backoffs = [d for d, _ in faults.deadlines()] if faults is not None else []
        return min((t for t in (*self.deadline.values(), *backoffs) if t > clock), default=None)

    def _settle(self) -> list[tuple]:
        changes = self.engine.sync()
        self.engine.changed(changes)
        self.engine.trace.clear()
        self.writes += 1
        if self.writes % 2000 == 0:
            self.store.compact(self.store.revision)  # the history of states left behind
        return changes

    def fire(self, inst, outcome, fault: A.FaultEvent | None = None) -> list[tuple]:
        """Apply one instance's writes, with `fault` (an engine fault) armed just before, as
        `Engine.run` fires it; the changes, as (key, before, after)."""
        e = self.engine
        if fault is not None:
            from .faults import engine_faults

            engine_faults(e).arm(fault)
        e.steps += 1
        was = e.refused.get(inst.id)
        applied = e.apply(inst, outcome.writes)
        if e.faults is None or not e.faults.interrupted(inst, outcome.writes):
            if applied:
                e.refused.pop(inst.id, None)
            elif e.faults is not None and e.faults.views:
                # While a controller's view is behind, a firing that writes nothing (a Conflict on
                # what it saw) is a step of the run, and passed over after, as the engine does.
                e.refused[inst.id] = _fingerprint(outcome.writes)
        if e.refused.get(inst.id) not in (None, was):
            self.prints[inst.id] = _print(outcome.writes)
        changes = self._settle()
        e.mark(e.refresh(inst))
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

    # -- the engine's faults: what they leave between moves

    def tick(self) -> None:
        """What the engine does before each step: close the stale windows and relists due, end the
        back-offs whose deadline has come."""
        if self.engine.faults is not None:
            self.engine.faults.tick()

    def settle(self) -> bool:
        """The engine is idle: every controller's view behind catches up. Whether one did."""
        return self.engine.faults is not None and self.engine.faults.settle()

    def backing_off(self) -> bool:
        return self.engine.faults is not None and bool(self.engine.faults.backoffs)

    def quiet(self) -> bool:
        """Whether the engine's faults leave nothing: no view behind, nothing armed or backing off."""
        return self.fault_key() is None

    def reducible(self) -> bool:
        """Whether what each instance depends on is what its rule's text says: not while a view is
        behind (its controller's instances read it, and every write changes it) nor while a fault is
        armed (whichever instance of its controller fires first takes it). An instance backing off,
        or passed over, waits only for the clock (at rest) or for what it wants to change."""
        f = self.engine.faults
        return f is None or not (f.views or f.crash_after or f.refusing or f.dropping)

    def fault_key(self):
        """What the engine's faults leave, as part of the state: None when nothing."""
        e = self.engine
        f = e.faults
        parts = [tuple(sorted((iid, self.prints.get(iid)) for iid in e.refused))]
        if f is not None:
            parts += [tuple(sorted(f.crash_after.items())), tuple(sorted(f.refusing.items())),
                      tuple(sorted(f.dropping.items())),
                      tuple(sorted((iid, d, e.refused.get(iid) == fp) for iid, (d, fp) in f.backoffs.items())),
                      tuple(sorted(f.failures.items())),
                      tuple((c, v.cache.state_hash, tuple((k, None if o is None else _content(o)) for k, o in v.held),
                             v.lag, v.until - e.steps if v.lag else None,
                             None if v.lost_at is None else e.steps - v.lost_at)
                            for c, v in sorted(f.views.items()))]
        return tuple(parts) if any(parts) else None

    def snapshot(self):
        """A copy of what the engine's faults leave (None when nothing), for `restore`."""
        e = self.engine
        f = e.faults
        if f is None or self.quiet():
            return None if not e.refused else (e.steps, self._refused(), None)
        return (e.steps, self._refused(),
                (dict(f.crash_after), dict(f.refusing), dict(f.dropping), dict(f.backoffs), dict(f.failures),
                 [(c, v.cache.all(), tuple(v.held), v.lag, v.until, v.lost_at) for c, v in sorted(f.views.items())]))

    def restore(self, snap) -> None:
        e = self.engine
        f = e.faults
        if snap is None and f is None and not e.refused:
            return
        behind = set(f.views) if f is not None else set()
        e.refused.clear()
        refused: dict = {}
        if snap is None or snap[2] is None:
            e.faults = None
            if snap is not None:
                e.steps, refused = snap[0], snap[1]
        else:
            from .faults import _View, engine_faults

            e.steps, refused = snap[0], snap[1]
            f = engine_faults(e)
            crash_after, refusing, dropping, backoffs, failures, views = snap[2]
            f.crash_after, f.refusing, f.dropping = dict(crash_after), dict(refusing), dict(dropping)
            f.backoffs, f.failures = dict(backoffs), dict(failures)
            f._crashed = f._failed = None
            f.views = {}
            for controller, objects, held, lag, until, lost_at in views:
                view = f.views[controller] = _View(e, controller)
                view.relist(_Listing([self._current(o) for o in objects]))
                view.held = deque((key, self._current(o)) for key, o in held)
                view.lag, view.until, view.lost_at = lag, until, lost_at
                behind.add(controller)
        for inst in list(e.instances.values()):
            if inst.controller in behind:
                e.mark(e.refresh(inst))
        if refused:
            # In the store's versions of now: an instance that wants what it was refused is
            # passed over again (and so is a back-off's retry of it).
            self.refresh()
            for iid, (fp, printed) in refused.items():
                now = self.wanting.get(iid)
                if now is not None and _print(now[1].writes) == printed:
                    current = _fingerprint(now[1].writes)
                    if e.faults is not None and iid in e.faults.backoffs and e.faults.backoffs[iid][1] == fp:
                        e.faults.backoffs[iid] = (e.faults.backoffs[iid][0], current)
                    fp = current
                e.refused[iid] = fp
                self.prints[iid] = printed

    def _refused(self) -> dict:
        return {iid: (fp, self.prints.get(iid)) for iid, fp in self.engine.refused.items()}

    def _current(self, obj: dict | None) -> dict | None:
        """The store's object of now, if `obj` is a version of the same content (moved back to a
        state, the store gives the same objects new versions)."""
        if obj is None:
            return None
        now = self.cache.get(object_key(obj["kind"], obj.get("namespace"), obj["name"]))
        return now if now is not None and now is not obj and _content(now) == _content(obj) else obj


def _content(obj: dict) -> str:
    """An object's content but its versions."""
    import hashlib
    import json

    from .values import encode

    rest = {k: v for k, v in obj.items() if k not in ("resourceVersion", "createdRevision")}
    return hashlib.blake2b(json.dumps(encode(rest), sort_keys=True).encode(), digest_size=8).hexdigest()


def _print(writes: list) -> str:
    """The fingerprint of writes but the resourceVersions they carry."""
    return _fingerprint([(verb, kind, {k: v for k, v in payload.items() if k not in ("resourceVersion", "createdRevision")}
                          if isinstance(payload, dict) else payload, None) for verb, kind, payload, _ in writes])


@attrs.frozen(slots=True)
class _Listing:
    """Objects as a view relists them (`_View.relist` takes what has `all()`)."""

    objects: list

    def all(self) -> list:
        return self.objects


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


class _Strikes:
    """The engine's faults (engine/faults.py) as the search places them. A scenario can arm one only
    at rest, but a controller crashes, or has a request refused, in the middle of a run as well:
    so the search arms one just before any firing it may strike, which the firing path replays.

    - `partial`: the firing lands a proper prefix of its writes (one write at least: with none it
      changes nothing stored — the controller restarts, and its state is all in the store);
    - `reject`: the firing's first request is refused (500), and the instance backs off on the
      virtual clock — explored only where something reads the clock (a rule, def, policy, fault
      or invariant calling now(), or an `expect … within`): elsewhere a back-off only holds the
      instance back until the rest of the run is at rest, an order the search tries anyway, and
      moves a clock that nothing reads, so it reaches no objects that some order does not;
    - `drop` (events=1) and `stale` (lag 1 or 2, for 5 steps), aimed at each controller that may
      read a kind the firing writes: its view loses, or lags behind, what the firing writes and
      what comes after. At rest they are scenario events too, where a later event may be what the
      view misses (when the budget leaves room for one, or the user's scenario has one to come)."""

    def __init__(self, program: Program, names: list[str], clock: bool, named: bool = True):
        self.names = [n for n in names if n != "reject" or clock]
        self.skipped = [] if clock or "reject" not in names or not named else [
            "reject (nothing reads the clock: a refused request only holds its firing back, which "
            "another firing order gives, and moves a clock that nothing reads)"]
        self.reads: dict[str, frozenset] = {}  # controller → kinds its rules may read ("*": any)
        for cname, controller in program.controllers.items():
            kinds: set = set()
            for rule in controller.rules:
                fp = _footprint(program, rule, {}, frozenset())
                kinds |= fp.reads | ({fp.primary} if fp.primary else set())
            self.reads[cname] = frozenset(kinds)

    def _args(self, name: str) -> list[tuple]:
        params = [(p, ENGINE_ARGS[p]) for p, _, _, _ in ENGINE_FAULTS[name].params]
        return [tuple(A.EventArg(p, A.Number(str(v))) for (p, _), v in zip(params, combo))
                for combo in itertools.product(*(values for _, values in params))]

    def _event(self, name: str, controller: str, args: tuple) -> A.FaultEvent:
        return A.FaultEvent(name, ENGINE_FAULT_KIND, A.ObjRef(controller), args)

    def strikes(self, inst, outcome) -> list[A.FaultEvent]:
        """The engine faults that may strike this firing."""
        out = []
        n = len(outcome.writes)
        if "partial" in self.names:
            out += [self._event("partial", inst.controller, (A.EventArg("writes", A.Number(str(k))),))
                    for k in range(1, n)]
        if "reject" in self.names:
            out += [self._event("reject", inst.controller, a) for a in self._args("reject")]
        written = {w[1] for w in outcome.writes}
        for name in ("drop", "stale"):
            if name in self.names:
                out += [self._event(name, c, a) for c, kinds in sorted(self.reads.items())
                        if "*" in kinds or kinds & written for a in self._args(name)]
        return out

    def at_rest(self) -> list[A.FaultEvent]:
        """The engine faults a scenario event may arm at rest: a view that misses what comes next."""
        return [self._event(name, c, a) for name in ("drop", "stale") if name in self.names
                for c in sorted(self.reads) for a in self._args(name)]


def _reads_clock(program: Program, scenario: A.ScenarioDecl | None) -> bool:
    """Whether anything the search runs or checks may read the virtual clock."""
    if scenario is not None and any(isinstance(i, A.Expect) and i.within is not None for i in scenario.items):
        return True
    roots = [list(program.controllers.values()), list(program.defs.values()), list(program.policies),
             list(program.faults.values()), list(program.invariants),
             [i for i in (scenario.items if scenario else ()) if isinstance(i, A.Expect)]]
    return any(isinstance(n, A.Call) and n.fn == "now" for n in A.walk(roots))


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
    for n in reached(program.defs, list(nodes)):
        if isinstance(n, A.KindSource):
            info = program.kind(n.kind)
            out.add(info.name if info is not None else "*")


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
            for c in policy.clauses:  # a mutation's reads decide what is written
                info = program.kind(c.source.kind)
                read = [c.cond, c.sets] if isinstance(c, A.Mutate) else [c.cond]
                _kinds_scanned(program, read, admission.setdefault(info.name if info else "*", set()))
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
    moves: list  # what is left to try: ("fire", id, engine fault or None) / ("event", event) /
    #              ("scenario",): the user's scenario's next event / ("advance", t)
    step: Step | None  # the move that led here
    undo: list  # its changes to the store
    faults: int
    clock: object  # the virtual clock here
    scene: int = 0  # the user's scenario's events played
    met: frozenset = frozenset()  # the user's scenario's `expect … within` that held on the way here
    snap: object = None  # what the engine's faults leave here, as the moves from here start from it
    moved: bool = False  # a rule instance fired from here changed something


def explore(program: Program, *, faults: list[str] | None = None, deletions: bool = True,
            max_faults: int = DEFAULT_MAX_FAULTS, max_states: int = DEFAULT_MAX_STATES,
            horizon=None, domains: Domains | None = None, reduce: bool = True,
            progress: Callable[[int, int, int], None] | None = None,
            scenario: A.ScenarioDecl | None = None) -> Exploration:
    """Every firing order and fault placement from the spec's objects, up to `max_faults` faults a
    path and `max_states` states; the first violation found, with the path to it. `faults` names the
    program's faults and the engine's to place (default: all, but the program's that never settle
    alone); `scenario`, if given, is played on every path — its events at their times, its expects
    checked — with the search's faults on top."""
    # A fault's effect should settle within verify's horizon; a timer beyond it (a crash loop's
    # next restart) is reported as not converging, as `verify` does.
    from .verify import HORIZON, check_fault_names

    started = time.monotonic()
    horizon = HORIZON if horizon is None else horizon
    check_fault_names(faults, sorted({*program.faults, *ENGINE_FAULTS}))
    names = sorted(program.faults) if faults is None else [f for f in dict.fromkeys(faults) if f in program.faults]
    engine_names = sorted(ENGINE_FAULTS) if faults is None else [f for f in dict.fromkeys(faults)
                                                                  if f in ENGINE_FAULTS]
    skipped = []
    if faults is None:
        settling = settling_faults(program, names, horizon)
        skipped = [f"{n} (alone it never settles: timers pending at the horizon; name it in --faults to "
                   f"include it)" for n in names if n not in settling]
        names = settling
    events = _Events(program, names, deletions, domains)
    strikes = _Strikes(program, engine_names, _reads_clock(program, scenario), named=faults is not None)
    # Fewest faults first: a violation that needs no fault is reported without one, and one that
    # needs a fault is found before any path with two. Each pass explores the space again.
    states = transitions = fixed_points = 0
    checked: dict = {p: 0 for p in PROPERTIES}
    ends: set = set()
    for budget in range(max_faults + 1):
        done = (states, transitions, fixed_points)
        tick = (lambda s, t, f: progress(done[0] + s, done[1] + t, done[2] + f)) if progress else None
        search = _Search(program, events, strikes, scenario, budget, max_states - states, horizon, tick, reduce)
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
    if not (scenario and any(isinstance(i, A.Expect) for i in scenario.items)):
        del checked["expectations"]
    return Exploration(states=states, transitions=transitions, fixed_points=fixed_points,
                       exhausted=violation is None and not search.truncated, elapsed=time.monotonic() - started,
                       checked=checked, violation=violation,
                       skipped_faults=tuple(skipped + events.skipped + strikes.skipped),
                       ends=frozenset(ends), fault_budget=budget, engine_faults=tuple(strikes.names))


class _Search:
    def __init__(self, program: Program, events: _Events, strikes: _Strikes, scenario: A.ScenarioDecl | None,
                 max_faults: int, max_states: int, horizon, progress, reduce: bool = True):
        self.program = program
        self.events = events
        self.strikes = strikes
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
        # The user's scenario: its events in time order (as `reconcile` plays them), its expects.
        items = scenario.items if scenario is not None else ()
        self.timeline = sorted(((constant(program, i.time), i.event) for i in items if isinstance(i, A.At)),
                               key=lambda te: te[0])
        expects = [i for i in items if isinstance(i, A.Expect)]
        self.always = [e for e in expects if e.mode == "always"]
        self.within = [(n, e, constant(program, e.within)) for n, e in enumerate(expects)
                       if e.mode != "always" and e.within is not None]
        self.eventually = [e for e in expects if e.mode != "always" and e.within is None]
        self.steady_kinds: set = set()
        _kinds_scanned(program, [inv.cond for inv in self.steady] + [e.cond for e in self.always], self.steady_kinds)
        from .eval import Evaluator

        self.ev = Evaluator(program, self.space.cache)
        # The invariants of a step (`before`), on what each move created or changed. A firing the
        # reduction may reorder writes an object the same whichever goes first, so an invariant
        # that reads only its own object and `before` of it needs no visible firings; one that
        # reads other kinds too makes visible the firings that write those and its own kind.
        self.stepwise = list(program.transitions)
        for q in (q for inv in self.stepwise for q in _conjuncts(inv.cond)):
            others: set = set()
            _kinds_scanned(program, [q.where, q.body], others)
            if others:
                own = program.kind(q.source.kind)
                self.steady_kinds |= others | {own.name if own is not None else "*"}
        self.history = _History(self.space.cache)
        self.step_ev = Evaluator(program, self.history)

    def key(self, faults: int, scene: int, met: frozenset) -> tuple:
        return (*self.space.key(), faults, self.space.fault_key(), scene, met)

    def run(self) -> Violation | None:
        space = self.space
        stack: list[_Frame] = []
        on_stack: dict[tuple, int] = {}
        entered = self.enter(0, 0, self.met(frozenset()), None, [], stack, on_stack)
        if entered is not None:
            return entered
        while stack:
            frame = stack[-1]
            if not frame.moves:
                self.leave(stack, on_stack)
                continue
            move = frame.moves.pop()
            faults, scene = frame.faults, frame.scene
            if move[0] == "fire":
                space.refresh()
                found = space.wanting.get(move[1])
                if found is None:
                    continue  # cannot happen: the same state wants the same writes
                changes = space.fire(*found, move[2])
                step = Step("fire", space.cache.clock, move[1], fault=move[2], writes=len(found[1].writes))
                if move[2] is not None:
                    faults += 1
                    if not changes and move[2].fault in ("drop", "stale"):
                        self.back(changes, frame)  # nothing written: nothing for a view to miss
                        continue
            elif move[0] == "event":
                changes = space.event(move[1])
                step, faults = Step("event", space.cache.clock, event=move[1]), faults + 1
            elif move[0] == "scenario":
                at, event = self.timeline[scene]
                space.set_clock(max(at, space.cache.clock))
                changes = space.event(event)
                step, scene = Step("event", space.cache.clock, event=event), scene + 1
            else:
                space.set_clock(move[1])
                changes, step = [], Step("advance", move[1])
            space.tick()
            if self.stepwise and changes:  # about the move, so checked even where it meets a state seen
                found = self.step_invariants(changes, stack, step)
                if found is not None:
                    return found
            met = self.met(frame.met)
            key = self.key(faults, scene, met)
            if key == frame.key:
                # Nothing changed, not even what the engine's faults leave: no move.
                self.back(changes, frame)
                if move[0] == "fire" and move[2] is None:
                    # The API server refused every write: not tried again in this state with the
                    # same writes (nor with a fault). A state where nothing else moves is at rest.
                    self.refused.add((frame.key, move[1], _print(found[1].writes)))
                    frame.moves = [m for m in frame.moves if m[0] != "fire" or m[1] != move[1]]
                    if not frame.moved and not any(m[0] == "fire" for m in frame.moves):
                        found = self.expand(frame, stack)
                        if found is not None:
                            return found
                continue
            if move[0] == "fire":
                frame.moved = True
            self.transitions += 1
            if key in on_stack:
                return self.cycle(stack, on_stack[key], step)
            if key in self.seen:
                self.back(changes, frame)
                continue
            if len(self.seen) >= self.max_states:
                self.truncated = True
                return None
            found = self.enter(faults, scene, met, step, changes, stack, on_stack, key)
            if found is not None:
                return found
        return None

    def back(self, changes: list, frame: _Frame) -> None:
        """Back to the state of `frame` from a move that led out of it."""
        space = self.space
        space.undo(changes)
        space.set_clock(frame.clock)
        space.restore(frame.snap)

    def leave(self, stack: list, on_stack: dict) -> None:
        frame = stack.pop()
        del on_stack[frame.key]
        if stack:
            self.back(frame.undo, stack[-1])

    def path(self, stack: list, last: Step | None = None) -> tuple[Step, ...]:
        steps = [f.step for f in stack if f.step is not None]
        return tuple(steps + ([last] if last is not None else []))

    def met(self, met: frozenset) -> frozenset:
        """The `expect … within T` that hold here or held on the way, at T or before."""
        clock = self.space.cache.clock
        new = {n for n, e, t in self.within if n not in met and clock <= t and self.ev.eval(e.cond, {}) is True}
        return met | new if new else met

    def enter(self, faults: int, scene: int, met: frozenset, step: Step | None, changes: list, stack: list,
              on_stack: dict, key: tuple | None = None) -> Violation | None:
        """Enter the current state: check it, and push what it may do next."""
        space = self.space
        key = key or self.key(faults, scene, met)
        self.seen.add(key)
        if self.progress is not None and len(self.seen) % 100 == 0:
            self.progress(len(self.seen), self.transitions, self.fixed_points)
        frame = _Frame(key, [], step, changes, faults, space.cache.clock, scene, met)
        stack.append(frame)
        on_stack[key] = len(stack) - 1
        found = self.invariants(self.steady, stack)
        if found is None and self.always:
            self.checked["expectations"] += 1
            found = next((self.expectation(e, "always", stack) for e in self.always
                          if self.ev.eval(e.cond, {}) is not True), None)
        if found is not None:
            return found
        return self.expand(frame, stack)

    def wanted(self, frame: _Frame) -> list:
        space = self.space
        return [io for io in space.enabled() if (frame.key, io[0].id, _print(io[1].writes)) not in self.refused]

    def expand(self, frame: _Frame, stack: list) -> Violation | None:
        """Push what the current state may do next; at rest, check it first."""
        space = self.space
        faults = frame.faults
        enabled = self.wanted(frame)
        if not enabled and space.settle():  # controllers' views behind catch up before the engine rests
            space.tick()
            enabled = self.wanted(frame)
        if enabled:
            if self.reduction is not None and space.reducible():
                enabled = self.reduction.choose(enabled, self.visible)
            # Popped from the end: the fixed order's own choice is tried first, each firing whole
            # before any firing an engine fault strikes.
            moves = [("fire", inst.id, None) for inst, _ in enabled]
            if faults < self.max_faults:
                moves += [("fire", inst.id, f) for inst, outcome in enabled for f in self.strikes.strikes(inst, outcome)]
            frame.moves = moves[::-1]
            frame.snap = space.snapshot()
            return None
        if not space.backing_off():  # not while a refused request waits to be retried: work is pending
            found = self.invariants(self.resting, stack)
            if found is not None:
                return found
            self.checked["invariants at rest"] += 1
        deadline = space.next_deadline()
        pending = self.timeline[frame.scene][0] if frame.scene < len(self.timeline) else None
        moves: list = []
        if pending is not None and (deadline is None or deadline > pending):
            moves.append(("scenario",))
        elif deadline is not None:
            if deadline > self.horizon and pending is None:
                return Violation("converges", f"not converged: a timer is still pending at the horizon "
                                              f"({format_duration(self.horizon)}), due at "
                                              f"{format_duration(deadline)}", self.path(stack),
                                 tuple(f"pending: {iid}" for iid, d in sorted(space.deadline.items())
                                       if d == deadline))
            moves.append(("advance", deadline))
        else:
            found = self.fixed_point(stack, frame)
            if found is not None:
                return found
        if faults < self.max_faults:
            events = self.events.at(space.cache)
            if faults + 2 <= self.max_faults or pending is not None:
                events += self.strikes.at_rest()  # a view that misses what a later event writes
            moves.extend(("event", e) for e in reversed(events))
        frame.moves = moves
        frame.snap = space.snapshot()
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

    def step_invariants(self, changes: list, stack: list, step: Step) -> Violation | None:
        self.history.note(changes)  # emptied after every check, below
        changed = [key for key, _, after in changes if after is not None]
        try:
            for inv in self.stepwise:
                bad = step_culprits(self.step_ev, inv, changed)
                if bad:
                    return Violation("invariants", f'invariant "{inv.name}" does not hold (after a step)',
                                     self.path(stack, step), tuple(f"fails on {key_text(k)}" for k in bad), (inv.name,),
                                     tuple(bad))
            return None
        finally:
            self.history.previous = {}

    def expectation(self, item: A.Expect, how: str, stack: list) -> Violation:
        """An expect of the user's scenario that does not hold, in the words `reconcile` uses."""
        clock = format_duration(self.space.cache.clock)
        what = {"always": f"always does not hold at {clock}",
                "within": f"eventually does not hold within {format_duration(constant(self.program, item.within))}"
                if item.within is not None else "",
                "end": "eventually does not hold at the end"}[how]
        return Violation("expectations", f"expect {what} ({item.span})", self.path(stack), names=(str(item.span),))

    def fixed_point(self, stack: list, frame: _Frame) -> Violation | None:
        """Check a state where a run ends: nothing wants a write, no timer is pending and every
        event of the user's scenario has come."""
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
        if self.within or self.eventually:
            self.checked["expectations"] += 1
            for n, item, _ in self.within:
                if n not in frame.met:
                    return self.expectation(item, "within", stack)
            for item in self.eventually:
                if self.ev.eval(item.cond, {}) is not True:
                    return self.expectation(item, "end", stack)
        if frame.faults == 0:
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
    not take the same path to it, the firing path that `konverge reconcile --follow FILE` takes —
    with the engine faults that strike a firing in the middle of a run, which only the path can arm."""

    violation: Violation
    scenario: A.ScenarioDecl
    follow: tuple = ()  # instance ids and engine faults; empty when the scenario alone replays it
    result: Result | None = attrs.field(default=None, eq=False)  # the replay, if it reports the same violation

    @property
    def replayed(self) -> bool:
        return self.result is not None


def counterexample(program: Program, violation: Violation, scenario: A.ScenarioDecl | None = None) -> Counterexample:
    """Replay the violation with `reconcile`: first the scenario alone in the fixed order, then along
    the firing path; the first that reports the same violation. `scenario`: the user's scenario the
    search played, whose expects the counterexample keeps."""
    expects = tuple(i for i in (scenario.items if scenario is not None else ()) if isinstance(i, A.Expect))
    tries = []
    for v in dict.fromkeys((hoisted(violation), violation)):  # engine faults as scenario events where they can be
        path = tuple(firing_path(v))
        orders = [path] if v.property in ("orders agree", "incremental = naive") or v.struck else [(), path]
        tries += [(v, follow) for follow in orders]
    for v, follow in tries:
        # In process the times are plain numbers of seconds: a Unit reads by how the checker typed it.
        timed = A.ScenarioDecl(SCENARIO_NAME, (*(A.At(A.Number(_decimal(s.clock)), s.event) for s in v.events),
                                               *expects))
        result = _replay(program, v, timed, follow)
        if result is not None:
            return Counterexample(v, scenario_of(v, expects=expects), follow, result)
    v, follow = tries[-1]
    return Counterexample(v, scenario_of(v, expects=expects), follow)


def hoisted(violation: Violation) -> Violation:
    """The violation's path with each engine fault that strikes a firing moved, where it can be, to a
    scenario event: at the last state at rest before that firing (events come at rest), when nothing
    between would take the fault for itself — a firing of the controller with more writes than a
    `partial` lets land, any request of the controller for a `reject`, any write or step for a
    `drop` or `stale` (whose view would miss or hold it)."""
    path = list(violation.path)
    for j in reversed(range(len(path))):  # from the end: a step moved in goes before those still to look at
        struck = path[j]
        if struck.fault is None:
            continue
        rest = next((i for i in range(j - 1, -1, -1) if path[i].kind in ("event", "advance")), None)
        if rest is None:
            continue  # in the run from the spec's objects, before any state at rest
        fault, controller = struck.fault, struck.fault.ref.name
        between = path[rest + 1:j]
        if any(s.fault is not None for s in between):
            continue
        if fault.fault == "partial":
            lands = constant_int(fault, "writes")
            clear = not any(s.instance.split("/")[0] == controller and s.writes > lands for s in between)
        elif fault.fault == "reject":
            clear = not any(s.instance.split("/")[0] == controller for s in between)
        else:
            clear = not between and path[rest].kind == "advance"
        if clear:
            at = path[rest - 1].clock if rest > 0 else 0
            path[j] = attrs.evolve(struck, fault=None)
            path.insert(rest, Step("event", at, event=fault))
    if path == list(violation.path):
        return violation
    return attrs.evolve(violation, path=tuple(path))


def constant_int(event: A.FaultEvent, name: str) -> int:
    """An engine fault's integer argument, as the search writes it (a plain number)."""
    return next(int(a.value.text) for a in event.args if a.name == name)


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
    elif violation.property == "expectations":
        same = any(v.startswith("expect ") and v.endswith(f"({name})") for v in result.violations
                   for name in violation.names)
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
    struck = [s for s in v.struck if any(f is s.fault for f in cx.follow)]
    if struck:
        lines += ["# An engine fault strikes a firing in the middle of a run, where no scenario event comes (they",
                  "# come at rest): the --follow file arms it just before that firing:",
                  *(f"#   {s.text()}" for s in struck)]
    elif cx.follow:
        lines += ["# The engine's fixed firing order does not take this path: the violation depends on the order",
                  "# in which rule instances fire, so the replay follows the firing path in the --follow file."]
    lines += ["# Replay:" if cx.replayed else "# Replay (in process it did not report the same violation):",
              f"#   konverge reconcile {run}{follow}"]
    return "\n".join(lines) + "\n\n" + body


def path_text(cx: Counterexample) -> str:
    """The firing path as a file for `konverge reconcile --follow`: one rule instance id a line, or an
    engine fault (as a scenario writes it after `at T:`), armed just before the firing that follows."""
    lines = ["# The firing path `konverge verify --exhaustive` found: rule instances in the order they fire,",
             "# one a line (the scenario's events come in between, at their virtual times); a line such as",
             "# `partial controller C writes = 1` arms that engine fault just before the next firing."]
    return "\n".join([*lines, *(f if isinstance(f, str) else event_text(f) for f in cx.follow)]) + "\n"


def read_path(path: str) -> list:
    """The firing path of a --follow file, as `path_text` writes it: instance ids, and the engine
    faults (A.FaultEvent) to arm on the way."""
    from .errors import Diagnostic

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KonvergeError(Diagnostic("E001", f"cannot read the firing path: {getattr(e, 'strerror', None) or e}",
                                       file=path)) from None
    out: list = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append(line.strip() if " " not in line.strip() else _path_fault(path, n, line))
    return out


def _path_fault(path: str, n: int, line: str) -> A.FaultEvent:
    """An engine fault on line `n` of a firing path, parsed where it stands (so a diagnostic points at it)."""
    from .errors import Diagnostic
    from .parse import parse_text

    hint = (f"a line of a firing path is a rule instance id, or an engine fault aimed at a controller "
            f"({', '.join(sorted(ENGINE_FAULTS))}), such as `partial controller NAME writes = 1`")
    # The event keeps its line and column: `at 0s:` goes on the line before (a first line has none).
    lead = "\n" * (n - 2) + 'scenario "path" { at 0s:\n' if n >= 2 else 'scenario "path" { at 0s: '
    try:
        module = parse_text(lead + line + "\n}\n", path)
        event = module.decls[0].items[0].event
    except (KonvergeError, IndexError, AttributeError):
        event = None
    if not isinstance(event, A.FaultEvent) or event.kind != ENGINE_FAULT_KIND or event.fault not in ENGINE_FAULTS:
        raise KonvergeError(Diagnostic("E071", f"line {n} of the firing path is neither a rule instance nor an engine "
                                               f"fault: `{line.strip()}`", file=path, hint=hint))
    return event


def _time(t) -> A.Number | A.Unit:
    if isinstance(t, Fraction) and t.denominator != 1:
        ms = t * 1000
        return A.Unit(str(int(ms)) if ms.denominator == 1 else str(float(t)), "ms" if ms.denominator == 1 else "s")
    return A.Unit(str(int(t)), "s")


def scenario_of(violation: Violation, name: str = SCENARIO_NAME, expects: tuple = ()) -> A.ScenarioDecl:
    """The path's events as a scenario: each at the virtual time it happened (and `expects`, the
    user's scenario's, after them)."""
    return A.ScenarioDecl(name, (*(A.At(_time(s.clock), s.event) for s in violation.events), *expects))


def firing_path(violation: Violation) -> list:
    """The instances fired along the path, each after the engine fault that strikes it if one does;
    for a cycle, around it once more, so that the engine sees a state come back after a step (it does
    not count the state a run starts from)."""
    out: list = []
    for s in (*violation.path, *violation.loop):
        if s.kind == "fire":
            out += [s.fault, s.instance] if s.fault is not None else [s.instance]
    return out


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
            *([["expectations", f"{c['expectations']:,} states and fixed points: the scenario's expects"]]
              if "expectations" in c else []),
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
             + ("events: " + "; ".join(s.text() for s in v.events) if v.events else
                ("no event" if v.struck else "no fault"))]
    lines += [f"  engine fault: {s.text()}" for s in v.struck]
    lines += [f"  {d}" for d in v.details]
    if cx.follow:
        fired = sum(1 for f in cx.follow if isinstance(f, str))
        armed = [f for f in cx.follow if not isinstance(f, str)]
        lines.append(("  an engine fault strikes in the middle of a run, where no scenario event comes: "
                      if armed else "  the engine's fixed firing order does not reach it: ")
                     + f"the replay follows a firing path of {_n(fired, 'rule instance')}"
                     + (f" that arms {_n(len(armed), 'engine fault')} on the way" if armed else ""))
    if cx.result is not None and v.objects:
        from .verify import explain_lines

        lines += [f"  {line}" if line else "" for line in explain_lines(program, cx.result, v.objects[0])]
    if not cx.replayed:
        lines.append("  note: replaying it with reconcile did not report the same violation; this is a bug in "
                     "konverge, please report it")
    lines.append(f"replay: {replay}")
    return "\n".join(lines) + "\n"
