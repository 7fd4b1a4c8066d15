"""Verify: drive a program through generated faults and check what it promises.

Hypothesis generates a fault sequence — `at T: FAULT KIND NAME args…` events drawn
from the faults the program declares, aimed at objects of the fault's kind (those
the spec declares and those its fault-free fixed point holds), the faults of the
engine aimed at its controllers (`stale controller scheduler lag=3 steps=5`, see
engine/faults.py), and deletions of the spec's objects — as an `ast.ScenarioDecl`,
exactly what `reconcile --scenario` plays. Each example enables a random subset of
the fault kinds (swarm testing: a sequence of a few kinds digs deeper than a mix of
all), and hypothesis is steered (`target`) towards examples that take many steps to
settle after their last fault. Every example is reconciled and every property checked:

- converges: a fixed point within the step budget, no cycle, no timer past the horizon;
- invariants: each invariant after every step, or, declared `at rest`, wherever the
  engine has nothing left to do; one that calls `before` after every step, on the
  objects the step changed (engine.fixpoint._Properties);
- expectations: the `expect`s of the scenario given with `scenario=` hold;
- idempotent: reconciling the same store again, at the same clock, writes nothing;
- eventually stable: after the last event a fixed point is reached with every engine
  fault healed (no controller's cache behind, no retry pending), and it stays: every
  rule instance evaluated afresh, the clock run on to the horizon, writes nothing;
- incremental = naive: the reference mode reaches the same objects — on a sample of
  the examples (NAIVE_EVERY), as it costs several times the incremental run and can
  differ only through a missed wake-up, which `idempotent` looks for on every example;
- orders agree: a random firing order (`order="random"`, one of ORDER_SEEDS seeds)
  converges too, with the same verdict on every invariant and expectation and the
  same declared objects left; with `strict_orders`, to the same objects field by
  field. (Not strict by default: in the standard control plane which pod lands on
  which node, and so its IP and what a node failure takes down, depends on the
  order of binding.)

Speed: the spec is converged once per firing mode up to its first event (`Run.advance(0)`)
and every example plays its events on a copy of that run (`Run.fork`), which takes the
same steps to the same bytes as a whole reconcile, so a counterexample replays exactly.

A failure is shrunk by hypothesis and written out as a scenario file that
`konverge reconcile SPEC --scenario FILE` replays. With an example database (a
directory, by default `.konverge-verify/` beside the spec), a failure found once is
tried first the next time.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import attrs
from hypothesis import HealthCheck, Phase, example, given, seed as hseed, settings, target
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from . import ast as A
from .check import ENGINE_FAULT_KIND, ENGINE_FAULTS, Program, std_dir
from .errors import Diagnostic, KonvergeError
from .fixpoint import (DEFAULT_BUDGET, DEFAULT_HORIZON, Cache, Engine, Result, Run, _Clock, key_text, object_key,
                       shared_objects, spec_objects)
from .values import format_duration

PROPERTIES = ("converges", "invariants", "expectations", "idempotent", "eventually stable", "incremental = naive",
              "orders agree")
BOOKKEEPING = ("resourceVersion", "createdRevision", "managedBy")
SCENARIO_NAME = "verify counterexample"
MAX_EVENTS = 4
MAX_TIME = 900  # seconds of virtual time over which events are spread
# Virtual time a verify run may take: the events' spread and two hours to settle after. A fault
# whose effect never settles (a crash loop) shows up as pending timers at this horizon.
HORIZON = MAX_TIME + 2 * 3600
NAIVE_EVERY = 4  # the naive reference runs on examples 1, 1 + NAIVE_EVERY, … (and on every replay of a failure)
ORDER_SEEDS = 8  # the random firing orders compared against, one converged run kept per seed
DATABASE_DIR = ".konverge-verify"
# The values generated for the engine faults' parameters (check.ENGINE_FAULTS gives their ranges).
ENGINE_ARGS = {"writes": (0, 1, 2), "lag": (1, 2, 3, 4), "steps": (2, 5, 10, 20), "events": (1, 2, 3),
               "requests": (1, 2, 3)}


@attrs.frozen(slots=True)
class Failure:
    property: str
    message: str
    scenario: A.ScenarioDecl
    steps: int
    clock: object
    details: tuple[str, ...] = ()  # objects involved, cycle instances, differing fields
    replay: str = ""  # options that make `konverge reconcile` take the failing run
    objects: tuple[tuple, ...] = ()  # keys of the objects an invariant fails on
    result: Result | None = attrs.field(default=None, eq=False, repr=False)  # the failing run


@attrs.frozen(slots=True)
class Report:
    examples: int
    passed: dict  # property → examples on which it held
    elapsed: float
    failure: Failure | None = None
    skipped_faults: tuple[str, ...] = ()  # faults whose parameters or targets cannot be generated
    checked: dict = attrs.Factory(dict)  # property → examples on which it was checked
    settle_steps: int = 0  # the most steps any example took to settle after its last event


class _Violated(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


# ---- generating fault sequences -------------------------------------------------------------


def _param_strategy(t: A.TypeRef | None, durations: dict):
    """A strategy for a fault parameter's value, as an expression; None if its type is not generated."""
    name = t.name if t is not None else None
    if name == "int":
        return st.integers(0, 5).map(lambda n: A.Number(str(n)))
    if name == "bool":
        return st.booleans().map(A.Bool)
    if name == "string":
        return st.sampled_from(["a", "b"]).map(A.String)
    if name == "quantity":
        return st.sampled_from([A.Unit("500", "m"), A.Number("1"), A.Number("2")])
    if name == "duration":
        return st.sampled_from([durations[10], durations[60]])
    if name == "map" and (not t.args or t.args[0].name == "string"):
        return st.sampled_from([("app", "debug"), ("tier", "a"), ("zone", "b")]).map(
            lambda kv: A.MapLit((A.MapItem(kv[0], A.String(kv[1])),)))
    return None


def targets(program: Program, baseline: Result | None) -> dict[str, list[tuple[str | None, str]]]:
    """Objects by kind that events may aim at: the spec's, and those of the fault-free fixed point."""
    out: dict[str, set] = {}
    for kind, obj, _ in spec_objects(program):
        out.setdefault(kind, set()).add((obj.get("namespace"), obj["name"]))
    for obj in baseline.objects if baseline is not None else ():
        out.setdefault(obj["kind"], set()).add((obj.get("namespace"), obj["name"]))
    return {k: sorted(v, key=lambda x: (x[0] or "", x[1])) for k, v in out.items()}


def controllers(program: Program) -> list[str]:
    """The controllers an engine fault may aim at: those with rules."""
    return sorted(name for name, c in program.controllers.items() if c.rules)


def event_strategies(program: Program, faults: list[str], objects: dict, deletions: bool, durations: dict):
    """One strategy per kind of event, by name (`delete` for deletions); and the faults left out, with why."""
    choices, skipped = {}, []
    for name in faults:
        if name in ENGINE_FAULTS:
            aims = controllers(program)
            if not aims:
                skipped.append(f"{name} (no controller to aim at)")
                continue
            params = [(p, st.sampled_from(ENGINE_ARGS[p]).map(lambda v: A.Number(str(v))))
                      for p, _, _, _ in ENGINE_FAULTS[name].params]
            args = st.tuples(*(s.map(lambda v, n=n: A.EventArg(n, v)) for n, s in params))
            choices[name] = st.builds(lambda c, a, f=name: A.FaultEvent(f, ENGINE_FAULT_KIND, A.ObjRef(c), a),
                                      st.sampled_from(aims), args)
            continue
        fault = program.faults[name]
        kind = program.kind(fault.target.kind)
        aims = objects.get(kind.name, []) if kind is not None else []
        params = [(p.name, _param_strategy(p.type, durations)) for p in fault.params]
        if not aims:
            skipped.append(f"{name} (no {fault.target.kind} to aim at)")
            continue
        if any(s is None for _, s in params):
            skipped.append(f"{name} (a parameter of a type verify does not generate)")
            continue
        args = st.tuples(*(s.map(lambda v, n=n: A.EventArg(n, v)) for n, s in params))
        choices[name] = st.builds(
            lambda ref, a, f=name, k=kind.name: A.FaultEvent(f, k.lower(), A.ObjRef(ref[1], ref[0]), a),
            st.sampled_from(aims), args)
    if deletions:
        # The user's objects (not the standard control plane's). Deleting what controllers made
        # is a fault the rules declare where it makes sense (rules/faults.konv: `kill`).
        std = str(std_dir())
        deletable = sorted({(kind, (o.get("namespace"), o["name"])) for kind, o, d in spec_objects(program)
                            if not str(Path(d.span.file).resolve()).startswith(std)})
        if deletable:
            choices["delete"] = st.sampled_from(deletable).map(
                lambda kr: A.DeleteEvent(kr[0].lower(), A.ObjRef(kr[1][1], kr[1][0])))
    return choices, skipped


def scenario_strategy(choices: dict, base: A.ScenarioDecl | None, durations: dict):
    """Fault sequences as a scenario: the base scenario's items, then 1 to MAX_EVENTS events of
    the kinds this example enables (swarm testing: a few kinds per example). The run without
    any event is `no_faults`, tried first."""
    times = st.integers(0, MAX_TIME // 10).map(lambda n: n * 10)
    names = sorted(choices)
    if not names:
        return st.just(no_faults(base))

    @st.composite
    def build(draw):
        enabled = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
        event = st.one_of([choices[n] for n in sorted(enabled)])
        xs = draw(st.lists(st.tuples(times, event), min_size=1, max_size=MAX_EVENTS))
        ats = tuple(A.At(durations[t], ev) for t, ev in sorted(xs, key=lambda x: x[0]))
        return A.ScenarioDecl(SCENARIO_NAME, (*(base.items if base else ()), *ats))

    return build()


def no_faults(base: A.ScenarioDecl | None) -> A.ScenarioDecl:
    return A.ScenarioDecl(SCENARIO_NAME, base.items if base else ())


# ---- runs, from converged copies ------------------------------------------------------------


class Runs:
    """The spec converged up to its first event, once per firing mode, to copy for each example."""

    def __init__(self, program: Program, base: A.ScenarioDecl | None, budget: int, horizon):
        self.program = program
        self.expectations = tuple(i for i in base.items if isinstance(i, A.Expect)) if base else ()
        self.budget = budget
        self.horizon = horizon
        self.shared = shared_objects(program)
        self._started: dict[tuple, Run] = {}
        self._trusted: set[tuple] = set()  # modes whose copies were seen to play as whole runs do
        self.forking = True

    def play(self, scenario: A.ScenarioDecl, *, order: str = "fixed", seed: int = 0, naive: bool = False) -> Run:
        """A run of the scenario, played; its `result` attribute holds the Result. The first
        scenario with events played in each mode is also played by a whole run, and the two
        results must be equal, or copies are given up for whole runs (slower, same results)."""
        mode = (order, seed, naive)
        events = [i for i in scenario.items if isinstance(i, A.At)]
        if not self.forking:
            return self._whole(mode, events)
        start = self._started.get(mode)
        if start is None:
            start = self._started[mode] = self._start(mode)
            start.advance(0)
        run = start.fork(self.shared)
        run.result = run.play(events)
        if events and mode not in self._trusted:
            whole = self._whole(mode, events)
            if whole.result != run.result:
                self.forking = False
                return whole
            self._trusted.add(mode)
        return run

    def _start(self, mode: tuple) -> Run:
        order, seed, naive = mode
        return Run(self.program, order=order, seed=seed, naive=naive, budget=self.budget, horizon=self.horizon,
                   expectations=self.expectations)

    def _whole(self, mode: tuple, events: list) -> Run:
        run = self._start(mode)
        run.result = run.play(events)
        return run


def _never_settling(program: Program, runs: Runs, names: list[str], objects: dict) -> list[str]:
    """Faults without parameters that, applied alone to their first target, leave timers pending at the
    horizon (a crash loop): by design they never converge, so the default set leaves them out."""
    out = []
    for name in names:
        fault = program.faults.get(name)
        if fault is None:
            continue
        kind = program.kind(fault.target.kind)
        aims = objects.get(kind.name, []) if kind is not None else []
        if fault.params or not aims:
            continue
        ns, obj = aims[0]
        event = A.FaultEvent(name, kind.name.lower(), A.ObjRef(obj, ns))
        r = runs.play(A.ScenarioDecl(SCENARIO_NAME, (A.At(A.Number("0"), event),))).result
        if r.reason == "horizon":
            out.append(name)
    return out


# ---- checking one example -------------------------------------------------------------------


def content(objects) -> dict[tuple, dict]:
    """Objects by key without the engine's bookkeeping: the state a run reached, not its path."""
    return {object_key(o["kind"], o.get("namespace"), o["name"]): {k: v for k, v in o.items() if k not in BOOKKEEPING}
            for o in objects}


def _differences(a: dict, b: dict, limit: int = 6) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(f"{key_text(key)} only in the first run")
        elif key not in a:
            out.append(f"{key_text(key)} only in the second run")
        elif a[key] != b[key]:
            fields = sorted(f for f in set(a[key]) | set(b[key]) if a[key].get(f) != b[key].get(f))
            out.append(f"{key_text(key)} differs in {', '.join(fields)}")
    return out[:limit] + ([f"… and {len(out) - limit} more"] if len(out) > limit else [])


def explanation(program: Program, failure: Failure) -> list[str]:
    """The `explain` chain of the first object an invariant fails on, at the end of the failing
    run; nothing when the failure names no object."""
    if failure.result is None or not failure.objects:
        return []
    return explain_lines(program, failure.result, failure.objects[0])


def explain_lines(program: Program, result: Result, key: tuple) -> list[str]:
    """`konverge explain` of one object at the end of a run, indented under a heading."""
    from .explain import explain, render_explanation

    kind, namespace, name = key
    try:
        text = render_explanation(explain(program, result, kind, namespace or None, name))
    except KonvergeError:
        return []
    return [f"explain {key_text(key)} (at the end of the replay):",
            *(f"  {line}" if line else "" for line in text.rstrip("\n").splitlines())]


def culprits(ev, world, inv: A.InvariantDecl) -> list[tuple]:
    """For a `forall … where …: …` invariant, the keys of the objects it fails on: those of the
    innermost `forall` that fails for them, so that `forall node n: forall p in pods_on(n): …`
    names the pod, not only its node."""
    return list(dict.fromkeys(_failing(ev, world, inv.cond, {})))


def _failing(ev, world, q: A.Expr, env: dict) -> list[tuple]:
    if not isinstance(q, A.Quantifier) or q.quantifier != "forall":
        return []
    if isinstance(q.source, A.KindSource):
        values = world.scan(ev.kind_name(q.source.kind))
    else:
        values = ev.eval(q.source.iterable, env) or ()
    out = []
    for v in values:
        inner = {**env, q.source.var: v}
        if (q.where is None or ev.eval(q.where, inner) is True) and ev.eval(q.body, inner) is not True:
            found = _failing(ev, world, q.body, inner)
            if found:
                out.extend(found)
            elif isinstance(v, dict) and "kind" in v and "name" in v:
                out.append(object_key(v["kind"], v.get("namespace"), v["name"]))
    return out


def result_culprits(program: Program, result: Result, names: list[str]) -> list[tuple]:
    """The objects the named invariants fail on in a run's final state, each once."""
    from .eval import Evaluator

    cache = Cache()
    cache.clock = result.clock
    for o in result.objects:
        cache.put(o)
    ev = Evaluator(program, cache)
    found = [k for inv in program.invariants if inv.name in names for k in culprits(ev, cache, inv)]
    return list(dict.fromkeys(found))


def _cycle_lines(cycle) -> list[str]:
    if cycle is None:
        return []
    return [f"cycle of {cycle.period} steps through rule instances:", *(f"  {i}" for i in cycle.instances)]


@attrs.frozen(slots=True)
class _Rerun:
    now: int  # steps a fresh engine takes at the fixed point's clock
    later: int  # and more, the clock run on to the horizon
    revision: int
    reason: str
    writes: tuple


def _rerun(program: Program, run: Run, budget: int, horizon) -> _Rerun:
    """A fresh engine on the run's store, at the clock it reached: every rule instance evaluated
    afresh; first without moving the clock, then to the horizon."""
    from .api import APIServer

    result = run.result
    clock = _Clock()
    api = APIServer(program, run.api.store, clock=clock)
    engine = Engine(program, api, budget=budget, horizon=horizon)
    clock.engine = engine
    engine.cache.clock = result.clock
    engine.start()
    reason = engine.run(until=result.clock)
    now = engine.steps
    if not reason:
        reason = engine.run()
    return _Rerun(now, engine.steps - now, api.revision, reason, tuple(engine.trace))


def _writes(writes) -> list[str]:
    return [f"{w.instance or w.actor}: {w.verb} {w.kind}/{w.name}" + (f": {w.message}" if w.message else "")
            for w in writes[:6]]


def check_example(program: Program, scenario: A.ScenarioDecl, *, runs: Runs | None = None,
                  budget: int = DEFAULT_BUDGET, horizon=DEFAULT_HORIZON, order_seed: int = 1,
                  strict_orders: bool = False, naive: bool = True, passed: Counter | None = None,
                  checked: Counter | None = None, settle: list | None = None) -> Failure | None:
    """Play one scenario and check every property, cheapest first; the first that fails.
    `naive=False` leaves out the comparison with the naive reference mode."""
    runs = runs if runs is not None else Runs(program, None, budget, horizon)
    passed = passed if passed is not None else Counter()
    checked = checked if checked is not None else Counter()

    def fail(prop, message, result, details=(), replay="", objects=()):
        checked[prop] += 1
        return Failure(prop, message, scenario, result.steps, result.clock, tuple(details), replay, tuple(objects),
                       result)

    def holds(prop):
        checked[prop] += 1
        passed[prop] += 1

    run = runs.play(scenario)
    r = run.result
    if not r.converged:
        why = {"budget": f"the step budget ({budget}) ran out", "cycle": "the state repeats (a cycle)",
               "horizon": "timers are still pending at the horizon"}.get(r.reason, r.reason)
        return fail("converges", f"not converged: {why}", r, _cycle_lines(r.cycle))
    holds("converges")
    settled = r.steps - run.last_event_step
    if settle is not None:
        settle.append(settled)
    invariants = [v for v in r.violations if v.startswith("invariant ")]
    if invariants:
        names = [v.split('"')[1] for v in invariants]
        # An invariant of a step fails on the objects a step changed, which the run names; the
        # others on objects of the final state.
        keys = list(dict.fromkeys([*(k for n in names for k in run.watch.culprits.get(n, ())),
                                   *result_culprits(program, r, names)]))
        return fail("invariants", "; ".join(invariants), r, [f"fails on {key_text(k)}" for k in keys], objects=keys)
    holds("invariants")
    expects = [v for v in r.violations if not v.startswith("invariant ")]
    if expects:
        return fail("expectations", "; ".join(expects), r)
    holds("expectations")
    again = _rerun(program, run, budget, horizon)
    # A write the API server refuses again (it refused the first run too) leaves the state as it was.
    landed = [w for w in again.writes if w.verb != "refused" and w.clock <= r.clock]
    if landed or (not again.later and again.revision != r.revision):
        return fail("idempotent", f"reconciling the fixed point again wrote {len(landed)} time(s) "
                                  f"(revision {r.revision} → {again.revision})", r, _writes(again.writes))
    holds("idempotent")
    pending = run.engine.faults.pending() if run.engine.faults is not None else []
    disturbed = [p for p in pending if p.startswith(("a view", "a back-off"))]
    if disturbed or again.later or again.reason:
        what = (f"{', '.join(disturbed)} still open" if disturbed else
                f"the clock run on to the horizon, a fresh engine took {again.later} more step(s)"
                + (f" ({again.reason})" if again.reason else ""))
        return fail("eventually stable", f"{settled} step(s) after the last event the run stopped, but {what}", r,
                    _writes(again.writes if not disturbed else ()))
    holds("eventually stable")
    mine = content(r.objects)
    if naive:
        reference = runs.play(scenario, naive=True).result
        theirs = content(reference.objects)
        if not reference.converged or theirs != mine:
            return fail("incremental = naive", "the naive reference mode reached a different state"
                        + ("" if reference.converged else f" (not converged: {reference.reason})"), r,
                        _differences(mine, theirs), "--naive")
        holds("incremental = naive")
    other = runs.play(scenario, order="random", seed=order_seed).result
    declared = {object_key(k, o.get("namespace"), o["name"]) for k, o, _ in spec_objects(program)}
    theirs = content(other.objects)
    if not other.converged:
        cycle = _cycle_lines(other.cycle)
        return fail("orders agree", f"with --order random --seed {order_seed} the run does not converge "
                                    f"({other.reason}) after {other.steps} steps at {format_duration(other.clock)}", other,
                    cycle, f"--order random --seed {order_seed}")
    if sorted(_names(other.violations)) != sorted(_names(r.violations)) or {k for k in mine if k in declared} != \
            {k for k in theirs if k in declared} or (strict_orders and mine != theirs):
        return fail("orders agree", f"--order random --seed {order_seed} reaches a different state", r,
                    _differences(mine, theirs), f"--order random --seed {order_seed}")
    holds("orders agree")
    return None


def _names(violations) -> list[str]:
    """The violated properties; an invariant by its name, not where it was first seen."""
    return [v.split('"')[1] if v.startswith("invariant ") else v for v in violations]


# ---- the loop -------------------------------------------------------------------------------


def fault_names(program: Program) -> list[str]:
    """Every fault verify can generate: the program's and the engine's."""
    return sorted({*program.faults, *ENGINE_FAULTS})


def check_fault_names(faults: list[str] | None, known: list[str], note: str = "") -> None:
    """E070 for the first of `faults` not among `known`, with a suggestion."""
    unknown = [f for f in faults or () if f not in known]
    if unknown:
        from .names import closest

        guess = closest(unknown[0], known)
        raise KonvergeError(Diagnostic("E070", f"no fault named `{unknown[0]}`{note}",
                                       hint=f"did you mean `{guess}`?" if guess else
                                       "declared: " + (", ".join(known) or "none")))


def verify(program: Program, *, examples: int = 20, seed: int | None = None, faults: list[str] | None = None,
           scenario: A.ScenarioDecl | None = None, deletions: bool = True, budget: int = DEFAULT_BUDGET,
           horizon=HORIZON, strict_orders: bool = False, order_seed: int | None = None,
           database: str | Path | None = None, database_key: str = "") -> Report:
    """Run `examples` generated fault sequences through `program`; the first failure, shrunk.

    `faults` names the faults to draw from (default: every one, but those that never settle
    alone); `database` is a directory of examples kept between runs (failures are replayed
    first), keyed by `database_key` (e.g. the spec's path) — not with a `seed`, which makes
    the run reproducible, as hypothesis's own @seed does; `order_seed` pins the random firing
    order compared against."""
    known = fault_names(program)
    check_fault_names(faults, known)
    started = time.monotonic()
    runs = Runs(program, scenario, budget, horizon)
    baseline = runs.play(A.ScenarioDecl(SCENARIO_NAME, ())).result
    names = known if faults is None else list(dict.fromkeys(faults))
    objects = targets(program, baseline)
    unsettling = [] if faults is not None else _never_settling(program, runs, names, objects)
    names = [n for n in names if n not in unsettling]
    # The program reads a `Unit` literal by how the checker typed it, keyed by the node's id: the
    # generated durations are registered for the run (and kept alive by this dict), then taken out.
    durations = {t: A.Unit(str(t), "s") for t in range(0, MAX_TIME + 1, 10)}
    for u in durations.values():
        program.unit_types[id(u)] = "duration"
    choices, skipped = event_strategies(program, names, objects, deletions, durations)
    skipped += [f"{n} (alone it never settles: timers pending at the horizon; name it in --faults to include it)"
                for n in unsettling]
    passed: Counter = Counter()
    checked: Counter = Counter()
    settle: list[int] = []
    runs_done = [0]
    shrinking = [False]  # once an example fails, the rest are hypothesis shrinking it: not counted
    db = DirectoryBasedExampleDatabase(str(database)) if database is not None and seed is None else None

    # The fault-free run is tried first (an explicit example), then examples - 1 generated ones.
    @settings(max_examples=max(1, examples - 1), deadline=None, database=db, report_multiple_bugs=False,
              print_blob=False,
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @example(no_faults(scenario), order_seed or 1)
    @given(scenario_strategy(choices, scenario, durations),
           st.integers(1, ORDER_SEEDS) if order_seed is None else st.just(order_seed))
    def prop(sc, order_seed):
        runs_done[0] += 1
        counting = not shrinking[0]
        # The naive reference on a sample of the examples, and on every one once a failure is
        # being shrunk, so that a difference it finds is kept.
        naive = shrinking[0] or (runs_done[0] - 1) % NAIVE_EVERY == 0
        steps: list[int] = []
        failure = check_example(program, sc, runs=runs, budget=budget, horizon=horizon, order_seed=order_seed,
                                strict_orders=strict_orders, naive=naive,
                                passed=passed if counting else Counter(), checked=checked if counting else Counter(),
                                settle=steps)
        if steps:
            if counting:
                settle.append(steps[0])
            target(float(steps[0]), label="steps to settle after the last event")
        if failure is not None:
            shrinking[0] = True
            raise _Violated(failure)

    if db is not None:
        # One key per spec and fault set, so that specs beside each other keep their own examples.
        key = f"{database_key}\0{','.join(names)}\0{scenario.name if scenario else ''}\0{deletions}"
        prop._hypothesis_internal_database_key = hashlib.sha256(key.encode()).digest()
    test = hseed(seed)(prop) if seed is not None else prop
    failure = None
    try:
        test()
    except _Violated as e:
        failure = e.failure
    finally:
        for u in durations.values():
            program.unit_types.pop(id(u), None)
    return Report(examples=runs_done[0], passed=dict(passed), elapsed=time.monotonic() - started, failure=failure,
                  skipped_faults=tuple(skipped), checked=dict(checked), settle_steps=max(settle, default=0))


# ---- writing a counterexample ---------------------------------------------------------------


def counterexample_text(failure: Failure, spec: str, options: str = "") -> str:
    """The failure's scenario as a file that `konverge reconcile SPEC --scenario FILE` replays
    (with `options`, e.g. " --no-std", and those the failing run needs)."""
    from .fmt import format_module

    body = format_module(A.Module("<counterexample>", (failure.scenario,)))
    reported = failure.property in ("converges", "invariants", "expectations") or (
        failure.property == "orders agree" and "does not converge" in failure.message)
    note = "reconcile reports it: exit 3 or 4" if reported else "the run that differs; verify compares it"
    replay = options + (f" {failure.replay}" if failure.replay else "")
    return (f"# Found by `konverge verify`: the property \"{failure.property}\" fails.\n"
            f"#   {failure.message}\n"
            f"# Replay ({note}):\n"
            f"#   konverge reconcile {spec} --scenario THIS_FILE{replay}\n\n{body}")


def default_out(spec: str) -> Path:
    p = Path(spec)
    return p.with_name(p.name[:-len(p.suffix)] + ".counterexample.konv" if p.suffix else p.name + ".counterexample.konv")


def default_database(spec: str) -> Path:
    """The example database kept beside a spec."""
    return Path(spec).resolve().parent / DATABASE_DIR
