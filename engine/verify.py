"""Verify: drive a program through generated faults and check what it promises.

Hypothesis generates a fault sequence — `at T: FAULT KIND NAME args…` events drawn
from the faults the program declares, aimed at objects of the fault's kind (those
the spec declares and those its fault-free fixed point holds), plus object
deletions — as an `ast.ScenarioDecl`, exactly what `reconcile --scenario` plays.
Each example is reconciled and every property is checked:

- converges: a fixed point within the step budget, no cycle, no timer past the horizon;
- invariants: the program's invariants hold at the fixed point;
- expectations: the `expect`s of the scenario given with `scenario=` hold;
- idempotent: reconciling the same store again, at the same clock, writes nothing;
- incremental = naive: the reference mode reaches the same objects;
- orders agree: a random firing order (`order="random"`) converges too, with the
  same verdict on every invariant and expectation and the same declared objects
  left; with `strict_orders`, to the same objects field by field. (Not strict by
  default: in the standard control plane which pod lands on which node, and so
  its IP and what a node failure takes down, depends on the order of binding.)

A failure is shrunk by hypothesis and written out as a scenario file that
`konverge reconcile SPEC --scenario FILE` replays.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import attrs
from hypothesis import HealthCheck, Phase, given, seed as hseed, settings
from hypothesis import strategies as st

from . import ast as A
from .check import Program, std_dir
from .errors import Diagnostic, KonvergeError
from .fixpoint import (DEFAULT_BUDGET, DEFAULT_HORIZON, Cache, Engine, Result, key_text, object_key, reconcile,
                       spec_objects)

PROPERTIES = ("converges", "invariants", "expectations", "idempotent", "incremental = naive", "orders agree")
BOOKKEEPING = ("resourceVersion", "createdRevision", "managedBy")
SCENARIO_NAME = "verify counterexample"
MAX_EVENTS = 4
MAX_TIME = 900  # seconds of virtual time over which events are spread
# Virtual time a verify run may take: the events' spread and two hours to settle after. A fault
# whose effect never settles (a crash loop) shows up as pending timers at this horizon.
HORIZON = MAX_TIME + 2 * 3600


@attrs.frozen(slots=True)
class Failure:
    property: str
    message: str
    scenario: A.ScenarioDecl
    steps: int
    clock: object
    details: tuple[str, ...] = ()  # objects involved, cycle instances, differing fields
    replay: str = ""  # options that make `konverge reconcile` take the failing run


@attrs.frozen(slots=True)
class Report:
    examples: int
    passed: dict  # property → examples on which it held
    elapsed: float
    failure: Failure | None = None
    skipped_faults: tuple[str, ...] = ()  # faults whose parameters or targets cannot be generated


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


def event_strategies(program: Program, faults: list[str], objects: dict, deletions: bool, durations: dict):
    """One strategy per kind of event; and the faults left out, with why."""
    choices, skipped = [], []
    for name in faults:
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
        choices.append(st.builds(
            lambda ref, a, f=name, k=kind.name: A.FaultEvent(f, k.lower(), A.ObjRef(ref[1], ref[0]), a),
            st.sampled_from(aims), args))
    if deletions:
        # The user's objects (not the standard control plane's). Deleting what controllers made
        # is a fault the rules declare where it makes sense (rules/faults.konv: `kill`).
        std = str(std_dir())
        deletable = sorted({(kind, (o.get("namespace"), o["name"])) for kind, o, d in spec_objects(program)
                            if not str(Path(d.span.file).resolve()).startswith(std)})
        if deletable:
            choices.append(st.sampled_from(deletable).map(
                lambda kr: A.DeleteEvent(kr[0].lower(), A.ObjRef(kr[1][1], kr[1][0]))))
    return choices, skipped


def scenario_strategy(choices: list, base: A.ScenarioDecl | None, durations: dict):
    """Fault sequences as a scenario: the base scenario's items, then up to MAX_EVENTS events."""
    event = st.one_of(choices) if choices else st.nothing()
    times = st.integers(0, MAX_TIME // 10).map(lambda n: n * 10)
    timed = st.lists(st.tuples(times, event), max_size=MAX_EVENTS if choices else 0)

    def build(xs):
        ats = tuple(A.At(durations[t], ev) for t, ev in sorted(xs, key=lambda x: x[0]))
        return A.ScenarioDecl(SCENARIO_NAME, (*(base.items if base else ()), *ats))

    return timed.map(build)


def _never_settling(program: Program, names: list[str], objects: dict, budget: int, horizon) -> list[str]:
    """Faults without parameters that, applied alone to their first target, leave timers pending at the
    horizon (a crash loop): by design they never converge, so the default set leaves them out."""
    out = []
    for name in names:
        fault = program.faults[name]
        kind = program.kind(fault.target.kind)
        aims = objects.get(kind.name, []) if kind is not None else []
        if fault.params or not aims:
            continue
        ns, obj = aims[0]
        event = A.FaultEvent(name, kind.name.lower(), A.ObjRef(obj, ns))
        at = A.At(A.Number("0"), event)
        r = reconcile(program, scenario=A.ScenarioDecl(SCENARIO_NAME, (at,)), budget=budget, horizon=horizon)
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


def invariant_culprits(program: Program, objects, name: str) -> list[str]:
    """For a `forall KIND v where …: …` invariant, the objects it fails on."""
    from .eval import Evaluator

    inv = next((i for i in program.invariants if i.name == name), None)
    if inv is None or not isinstance(inv.cond, A.Quantifier) or inv.cond.quantifier != "forall" \
            or not isinstance(inv.cond.source, A.KindSource):
        return []
    cache = Cache()
    for o in objects:
        cache.put(o)
    ev = Evaluator(program, cache)
    q = inv.cond
    kind = ev.kind_name(q.source.kind)
    out = []
    for obj in cache.scan(kind):
        env = {q.source.var: obj}
        if q.where is not None and ev.eval(q.where, env) is not True:
            continue
        if ev.eval(q.body, env) is not True:
            out.append(key_text(object_key(kind, obj.get("namespace"), obj["name"])))
    return out


def _cycle_lines(cycle) -> list[str]:
    if cycle is None:
        return []
    return [f"cycle of {cycle.period} steps through rule instances:", *(f"  {i}" for i in cycle.instances)]


def _rerun_steps(program: Program, store, result: Result, budget: int, horizon) -> tuple[int, int, str, list]:
    """Reconcile the converged store again, at the clock it reached: (steps, revision, reason, writes)."""
    from .api import APIServer

    holder: dict = {}
    api = APIServer(program, store, clock=lambda: holder["engine"].cache.clock if "engine" in holder else 0)
    engine = Engine(program, api, budget=budget, horizon=horizon)
    holder["engine"] = engine
    engine.cache.clock = result.clock
    engine.start()
    reason = engine.run()
    return engine.steps, api.revision, reason, engine.trace


def check_example(program: Program, scenario: A.ScenarioDecl, *, budget: int = DEFAULT_BUDGET,
                  horizon=DEFAULT_HORIZON, order_seed: int = 1, strict_orders: bool = False,
                  passed: Counter | None = None) -> Failure | None:
    """Play one scenario and check every property, cheapest first; the first that fails."""
    from .store import open_store

    passed = passed if passed is not None else Counter()

    def fail(prop, message, result, details=(), replay=""):
        return Failure(prop, message, scenario, result.steps, result.clock, tuple(details), replay)

    store = open_store()
    r = reconcile(program, store=store, scenario=scenario, budget=budget, horizon=horizon)
    if not r.converged:
        why = {"budget": f"the step budget ({budget}) ran out", "cycle": "the state repeats (a cycle)",
               "horizon": "timers are still pending at the horizon"}.get(r.reason, r.reason)
        details = _cycle_lines(r.cycle)
        return fail("converges", f"not converged: {why}", r, details)
    passed["converges"] += 1
    invariants = [v for v in r.violations if v.startswith("invariant ")]
    if invariants:
        name = invariants[0].split('"')[1]
        return fail("invariants", "; ".join(invariants), r,
                    [f"fails on {k}" for k in invariant_culprits(program, r.objects, name)])
    passed["invariants"] += 1
    expects = [v for v in r.violations if not v.startswith("invariant ")]
    if expects:
        return fail("expectations", "; ".join(expects), r)
    passed["expectations"] += 1
    steps, revision, reason, writes = _rerun_steps(program, store, r, budget, horizon)
    if steps or revision != r.revision or reason:
        return fail("idempotent", f"reconciling the fixed point again took {steps} step(s) "
                                  f"(revision {r.revision} → {revision}{', ' + reason if reason else ''})", r,
                    [f"{w.instance or w.actor}: {w.verb} {w.kind}/{w.name}" + (f": {w.message}" if w.message else "")
                     for w in writes[:6]])
    passed["idempotent"] += 1
    mine = content(r.objects)
    naive = reconcile(program, scenario=scenario, naive=True, budget=budget, horizon=horizon)
    theirs = content(naive.objects)
    if not naive.converged or theirs != mine:
        return fail("incremental = naive", "the naive reference mode reached a different state"
                    + ("" if naive.converged else f" (not converged: {naive.reason})"), r, _differences(mine, theirs),
                    "--naive")
    passed["incremental = naive"] += 1
    other = reconcile(program, scenario=scenario, order="random", seed=order_seed, budget=budget, horizon=horizon)
    declared = {object_key(k, o.get("namespace"), o["name"]) for k, o, _ in spec_objects(program)}
    theirs = content(other.objects)
    if not other.converged:
        cycle = _cycle_lines(other.cycle)
        return fail("orders agree", f"with --order random --seed {order_seed} the run does not converge "
                                    f"({other.reason}) after {other.steps} steps at {_clock(other.clock)}", other,
                    cycle, f"--order random --seed {order_seed}")
    if sorted(other.violations) != sorted(r.violations) or {k for k in mine if k in declared} != \
            {k for k in theirs if k in declared} or (strict_orders and mine != theirs):
        return fail("orders agree", f"--order random --seed {order_seed} reaches a different state", r,
                    _differences(mine, theirs), f"--order random --seed {order_seed}")
    passed["orders agree"] += 1
    return None


# ---- the loop -------------------------------------------------------------------------------


def verify(program: Program, *, examples: int = 20, seed: int | None = None, faults: list[str] | None = None,
           scenario: A.ScenarioDecl | None = None, deletions: bool = True, budget: int = DEFAULT_BUDGET,
           horizon=HORIZON, strict_orders: bool = False, order_seed: int | None = None) -> Report:
    """Run `examples` generated fault sequences through `program`; the first failure, shrunk."""
    unknown = [f for f in faults or () if f not in program.faults]
    if unknown:
        from .names import closest

        guess = closest(unknown[0], program.faults)
        raise KonvergeError(Diagnostic("E070", f"no fault named `{unknown[0]}`",
                                       hint=f"did you mean `{guess}`?" if guess else
                                       "declared: " + (", ".join(sorted(program.faults)) or "none")))
    started = time.monotonic()
    baseline = reconcile(program, budget=budget, horizon=horizon)
    names = sorted(program.faults) if faults is None else list(dict.fromkeys(faults))
    objects = targets(program, baseline)
    unsettling = [] if faults is not None else _never_settling(program, names, objects, budget, horizon)
    names = [n for n in names if n not in unsettling]
    # The program reads a `Unit` literal by how the checker typed it, keyed by the node's id: the
    # generated durations are registered for the run (and kept alive by this dict), then taken out.
    durations = {t: A.Unit(str(t), "s") for t in range(0, MAX_TIME + 1, 10)}
    for u in durations.values():
        program.unit_types[id(u)] = "duration"
    choices, skipped = event_strategies(program, names, objects, deletions, durations)
    skipped += [f"{n} (alone it never settles: timers pending at the horizon; name it in faults= to include it)"
                for n in unsettling]
    passed: Counter = Counter()
    runs = [0]
    shrinking = [False]  # once an example fails, the rest are hypothesis shrinking it: not counted

    @settings(max_examples=examples, deadline=None, database=None, report_multiple_bugs=False,
              print_blob=False,
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @given(scenario_strategy(choices, scenario, durations), st.integers(1, 2**16))
    def prop(sc, order_seed):
        runs[0] += 1
        failure = check_example(program, sc, budget=budget, horizon=horizon, order_seed=order_seed,
                                strict_orders=strict_orders, passed=passed if not shrinking[0] else Counter())
        if failure is not None:
            shrinking[0] = True
            raise _Violated(failure)

    test = hseed(seed)(prop) if seed is not None else prop
    failure = None
    try:
        test()
    except _Violated as e:
        failure = e.failure
    finally:
        for u in durations.values():
            program.unit_types.pop(id(u), None)
    return Report(examples=runs[0], passed=dict(passed), elapsed=time.monotonic() - started, failure=failure,
                  skipped_faults=tuple(skipped))


# ---- writing a counterexample ---------------------------------------------------------------


def counterexample_text(failure: Failure, spec: str) -> str:
    """The failure's scenario as a file that `konverge reconcile SPEC --scenario FILE` replays."""
    from .fmt import format_module

    body = format_module(A.Module("<counterexample>", (failure.scenario,)))
    reported = failure.property in ("converges", "invariants", "expectations") or (
        failure.property == "orders agree" and "does not converge" in failure.message)
    note = "reconcile reports it: exit 3 or 4" if reported else "the run that differs; verify compares it"
    replay = f" {failure.replay}" if failure.replay else ""
    return (f"# Found by `konverge verify`: the property \"{failure.property}\" fails.\n"
            f"#   {failure.message}\n"
            f"# Replay ({note}):\n"
            f"#   konverge reconcile {spec} --scenario THIS_FILE{replay}\n\n{body}")


def _clock(t) -> str:
    from .values import format_duration

    return format_duration(t)


def default_out(spec: str) -> Path:
    p = Path(spec)
    return p.with_name(p.name[:-len(p.suffix)] + ".counterexample.konv" if p.suffix else p.name + ".counterexample.konv")
