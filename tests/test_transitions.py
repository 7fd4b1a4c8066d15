"""Invariants of a step: `before(x)`, the object as it was before the latest step.

An invariant that calls `before` relates each object a step created or changed to its
previous version; the engine keeps just the versions one step replaced and checks the
invariant on those objects only, so its cost follows the change, not the cluster.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import ast as A
from engine.check import check_modules
from engine.errors import KonvergeError
from engine.eval import Evaluator
from engine.fixpoint import Cache, Run, _History, reconcile, shared_objects, step_culprits
from engine.parse import parse_text

KINDS = """
kind Item { phase: string = "A"  n: int = 0 }
def may_follow(old: string, new: string) = old == new or old == "A" and new == "B" or old == "B" and new == "C"
"""

FORWARD = """
invariant "items only move forward" {
  forall item i where before(i) != none: may_follow(before(i).phase, i.phase)
}
"""


def program(text: str):
    return check_modules([parse_text(KINDS + text, "t.konv")])


def errors(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(KonvergeError) as e:
        program(text)
    return [(d.code, d.span.line, d.span.col, d.message) for d in e.value.diagnostics if d.severity == "error"]


def items(result) -> dict:
    return {o["name"]: o for o in result.objects if o["kind"] == "Item"}


# ---- the checker ---------------------------------------------------------------------------


def test_an_invariant_that_calls_before_is_one_of_a_step_and_kept_apart():
    p = program(FORWARD + 'invariant "state" { forall item i: i.n >= 0 }\n')
    assert [i.name for i in p.transitions] == ["items only move forward"]
    assert [i.name for i in p.invariants] == ["state"]


def test_several_foralls_joined_by_and_make_one_invariant_of_a_step():
    p = program('invariant "both" { (forall item i: before(i) == none or before(i).n <= i.n)\n'
                '  and (forall item j where before(j) != none: may_follow(before(j).phase, j.phase)) }\n')
    assert [i.name for i in p.transitions] == ["both"]


@pytest.mark.parametrize(("text", "where"), [
    ('invariant "r" at rest { forall item i: before(i) == i }', "`at rest` invariant"),
    ("def prev(i: Item) = before(i)", "or a policy's `deny` on the object a write replaces"),
    ("controller c { rule r for item i where before(i) == none set i.n = 1 }", "after every step"),
    ('scenario "s" { expect always count(x for item x where before(x) == none) == 0 }', "after every step"),
    ("kind Other { n: int = count(x for item x where before(x) == none) }", "after every step"),
    # a mutation reads only the object it admits: a controller predicts what the API server stores
    ('policy "p" { mutate item i when before(i) == none set i.n = 1 }', "in a mutation"),
])
def test_before_anywhere_but_an_invariant_of_a_step_or_a_deny_is_refused(text, where):
    found = errors(text + "\n")
    assert [(code, line) for code, line, _, _ in found] == [("E056", 4)], found
    assert where in found[0][3]


def test_a_def_that_would_look_back_is_told_to_take_before_as_an_argument():
    with pytest.raises(KonvergeError) as e:
        program("def prev(i: Item) = before(i)\n")
    assert e.value.diagnostics[0].hint == "pass `before(x)` to the def as an argument"
    assert e.value.diagnostics[0].span.col == 21


def test_an_invariant_of_a_step_must_be_a_forall_over_a_kind():
    found = errors('invariant "s" { count(item i) > 0 and (forall item i: before(i) == i) }\n')
    assert found == [("E057", 4, 17, found[0][3])] and "forall KIND x" in found[0][3]
    found = errors('invariant "s" { exists item i: before(i) == none }\n')
    assert [c for c, *_ in found] == ["E057"]


def test_before_takes_an_object():
    found = errors('invariant "s" { forall item i: before(i.n) == none }\n')
    assert [(c, m) for c, _, _, m in found] == [("E035", "`before` needs an object of a kind, but this is a int")]


def test_a_def_named_before_is_a_def_like_any_other():
    p = program('def before(i: Item) = i\ninvariant "s" at rest { forall item i: before(i) == i }\n')
    assert p.transitions == () and [i.name for i in p.invariants] == ["s"]


def test_before_round_trips_through_the_formatter():
    from engine.fmt import format_text

    text = ('invariant "both" {\n  (forall item i: before(i) == none or before(i).n <= i.n)\n'
            '    and (forall item j where before(j) != none: before(j).phase == j.phase)\n}\n')
    assert format_text(text) == text


# ---- the engine ----------------------------------------------------------------------------


BACKWARDS = KINDS + FORWARD + """
item one { }
item two { phase: "C" }
controller c {
  rule advance for item i where i.phase == "A" set i.phase = "B"
  rule count for item i where i.phase == "B" and i.n < 3 set i.n = i.n + 1
  rule back for item i where i.phase == "B" and i.n == 3 set i.phase = "A"
}
"""


def test_a_backward_move_is_reported_with_its_step_and_object():
    r = reconcile(check_modules([parse_text(BACKWARDS, "t.konv")]), budget=20)
    # advance (step 1), three counts (2–4), back (5): the fifth step moves B → A.
    assert r.violations == ('invariant "items only move forward" does not hold (after step 5, virtual clock 0s) '
                            "on Item/default/one",)


@pytest.mark.parametrize("mode", [{"naive": True}, {"order": "random", "seed": 3}])
def test_the_naive_mode_and_other_orders_see_the_same_backward_move(mode):
    r = reconcile(check_modules([parse_text(BACKWARDS, "t.konv")]), budget=20, **mode)
    assert [v.split(" (")[0] for v in r.violations] == ['invariant "items only move forward" does not hold']


def test_a_forked_run_looks_back_as_a_whole_run_does():
    p = check_modules([parse_text(BACKWARDS, "t.konv")])
    start = Run(p, budget=20)
    start.advance(0)
    assert start.watch.history.previous == {}  # checked and forgotten after every step
    fork = start.fork(shared_objects(p))
    assert fork.play().violations == Run(p, budget=20).play().violations
    assert fork.watch.culprits == {"items only move forward": (("Item", "default", "one"),)}


def test_a_created_object_has_no_before():
    r = reconcile(program("""
item seed { }
controller c { rule make for item i where i.name == "seed" create item "made" { phase: "C" } }
invariant "made in A" { forall item i where before(i) == none: i.phase == "A" }
invariant "nothing is new" { forall item i: before(i) != none }
"""))
    assert items(r)["made"]["phase"] == "C"
    assert [v.split(" (")[0] for v in r.violations] == ['invariant "made in A" does not hold',
                                                        'invariant "nothing is new" does not hold']
    assert all(v.endswith("on Item/default/made") for v in r.violations)


def test_a_deleted_object_is_not_looked_at_and_an_object_left_alone_is_its_own_before():
    r = reconcile(program("""
item gone { phase: "C" }
item kept { }
item moved { }
controller c {
  rule drop for item i where i.name == "gone" delete i
  rule touch for item i where i.name == "moved" and i.n == 0 set i.n = 1
}
invariant "only moved changes" { forall item i: before(i) == i or i.name == "moved" }
invariant "moved was 0" { forall item i where i.name == "moved": before(i).n == 0 and i.n == 1 }
"""))
    assert set(items(r)) == {"kept", "moved"} and r.violations == ()


def test_a_scenario_event_is_a_step_too():
    p = program(FORWARD + 'item one { phase: "C" }\nscenario "rewind" { at 1m: update item one { phase: "A" } }\n')
    r = reconcile(p, scenario=p.scenarios["rewind"])
    assert r.violations == ('invariant "items only move forward" does not hold (after step 0, virtual clock 1m) '
                            "on Item/default/one",)


def test_an_invariant_of_a_step_is_checked_after_a_step_that_changed_any_kind_it_ranges_over():
    # One passed over after steps that change no kind its `forall`s range over, not only its first.
    r = reconcile(program("""
kind Gauge { level: int = 0 }
gauge g { level: 5 }
item one { }
controller c { rule drain for gauge g where g.level > 0 set g.level = 0 }
invariant "nothing goes down" {
  (forall item i where before(i) != none: before(i).n <= i.n)
    and (forall gauge g where before(g) != none: before(g).level <= g.level)
}
"""))
    assert r.violations == ('invariant "nothing goes down" does not hold (after step 1, virtual clock 0s) '
                            "on Gauge/default/g",)


def test_before_needs_a_world_that_remembers_the_step():
    p = program(FORWARD + "item one { }\n")
    cache = Cache()
    cache.put({"kind": "Item", "name": "one", "namespace": "default", "phase": "A", "n": 0, "resourceVersion": 1,
               "createdRevision": 1})
    with pytest.raises(KonvergeError) as e:
        Evaluator(p, cache).eval(p.transitions[0].cond, {})
    assert e.value.diagnostics[0].code == "E100"


def item(name: str, phase: str, created: int = 1, rv: int = 1) -> dict:
    return {"kind": "Item", "name": name, "namespace": "default", "phase": phase, "n": 0, "resourceVersion": rv,
            "createdRevision": created}


def test_an_object_deleted_and_created_again_in_one_step_is_new():
    cache = Cache()
    history = _History(cache)
    old, new = item("x", "C"), item("x", "A", created=7, rv=7)
    cache.put(new)
    history.note([(("Item", "default", "x"), old, None), (("Item", "default", "x"), None, new)])
    assert history.before(new) is None
    history.previous = {("Item", "default", "x"): old}
    assert history.before(item("x", "C", rv=5)) == old


def test_only_the_objects_a_step_changed_are_evaluated():
    p = program(FORWARD)
    cache = Cache()
    for n in range(1000):
        cache.put(item(f"i{n:04}", "B"))
    history = _History(cache)
    asked = []
    get = cache.get
    cache.get = lambda key: asked.append(key) or get(key)
    changed = cache.put(item("i0007", "A", rv=2))
    history.note([(("Item", "default", "i0007"), changed, cache.get(("Item", "default", "i0007")))])
    asked.clear()
    bad = step_culprits(Evaluator(p, history), p.transitions[0], history.previous)
    assert bad == [("Item", "default", "i0007")] and asked == [("Item", "default", "i0007")]


# ---- the promise: checking the changed objects is checking them all ------------------------------

PHASES = ["A", "B", "C"]
ops = st.lists(st.tuples(st.sampled_from(["create", "update", "delete"]), st.integers(0, 5),
                         st.sampled_from(PHASES)), max_size=6)


@given(st.lists(ops, min_size=1, max_size=8))
def test_checking_the_changed_objects_agrees_with_checking_every_object_against_the_previous_state(steps):
    # The full reading: every object, `before` from a stored copy of the whole previous state.
    p = program(FORWARD)
    inv = p.transitions[0]
    cache = Cache()
    history = _History(cache)
    revision = 0
    for batch in steps:
        stored = {key: obj for key, obj in ((("Item", "default", o["name"]), o) for o in cache.all())}
        for verb, n, phase in batch:
            key = ("Item", "default", f"i{n}")
            revision += 1
            current = cache.get(key)
            if verb == "delete":
                if current is not None:
                    history.note([(key, cache.remove(key), None)])
                continue
            created = revision if current is None or verb == "create" else current["createdRevision"]
            obj = item(key[2], phase, created=created, rv=revision)
            if verb == "create" and current is not None:
                history.note([(key, cache.remove(key), None)])  # deleted, and a new object under its name
            history.note([(key, cache.put(obj), obj)])
        incremental = step_culprits(Evaluator(p, history), inv, history.previous)
        history.previous = {}
        full = _Stored(cache, stored)
        ev = Evaluator(p, full)
        q = inv.cond
        expected = [("Item", "default", o["name"]) for o in cache.scan("Item")
                    if ev.eval(q.where, {"i": o}) is True and ev.eval(q.body, {"i": o}) is not True]
        assert incremental == sorted(expected)


RULES = """
controller c {
  rule up for item i where i.n < 3 set i.n = i.n + 1
  rule advance for item i where i.phase == "A" and i.n >= 1 set i.phase = "B"
  rule finish for item i where i.phase == "B" and i.n >= 2 set i.phase = "C"
  rule rewind for item i where i.phase == "C" and i.n == 3 and i.name == "i1" set i.phase = "A"
  rule make for item i where i.name == "i0" and i.n == 3 create item "i9" { phase: "C" }
  rule drop for item i where i.name == "i2" and i.n == 2 delete i
}
"""


@given(st.lists(st.tuples(st.sampled_from(PHASES), st.integers(0, 3)), min_size=1, max_size=5), st.integers(0, 5))
def test_a_run_checks_each_step_as_a_full_evaluation_against_the_stored_previous_state_would(start, seed):
    decls = "".join(f'item i{n} {{ phase: "{phase}"  n: {k} }}\n' for n, (phase, k) in enumerate(start))
    p = program(FORWARD + RULES + decls)
    inv = p.transitions[0]
    run = Run(p, order="random", seed=seed, budget=60)
    engine, watch = run.engine, run.watch
    stored = [{(o["kind"], o["namespace"], o["name"]): o for o in engine.cache.all()}]
    checked = engine.after_step

    def after():
        incremental = step_culprits(watch.step_ev, inv, watch.history.previous)
        ev = Evaluator(p, _Stored(engine.cache, stored[0]))
        q = inv.cond
        full = [("Item", "default", o["name"]) for o in engine.cache.scan("Item")
                if ev.eval(q.where, {"i": o}) is True and ev.eval(q.body, {"i": o}) is not True]
        assert incremental == full
        checked()
        stored[0] = {(o["kind"], o["namespace"], o["name"]): o for o in engine.cache.all()}

    engine.after_step = after
    r = run.play()
    # Only `rewind` moves an item back, and only i1.
    assert bool(r.violations) == bool(watch.culprits)
    assert all(key[2] == "i1" for keys in watch.culprits.values() for key in keys)


class _Stored:
    """The whole previous state kept: `before(x)` is its version there, if it is the same object."""

    def __init__(self, cache: Cache, stored: dict):
        self.cache, self.stored = cache, stored

    def scan(self, kind):
        return self.cache.scan(kind)

    def now(self):
        return 0

    def before(self, obj):
        old = self.stored.get(("Item", "default", obj["name"]))
        return old if old is not None and old["createdRevision"] == obj["createdRevision"] else None


# ---- the standard invariants of a step -------------------------------------------------------


def test_the_standard_pod_phase_invariant_allows_exactly_the_kubernetes_transitions():
    from engine.show import standard_program

    p = standard_program()
    inv = next(i for i in p.transitions if i.name == "a pod's phase only moves forward")
    phases = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
    allowed = set()
    for old in phases:
        for new in phases:
            cache = Cache()
            history = _History(cache)
            before = {"kind": "Pod", "name": "p", "namespace": "default", "phase": old, "resourceVersion": 1,
                      "createdRevision": 1}
            after = {**before, "phase": new, "resourceVersion": 2}
            cache.put(after)
            history.note([(("Pod", "default", "p"), before, after)])
            if not step_culprits(Evaluator(p, history), inv, history.previous):
                allowed.add((old, new))
    forward = {("Pending", "Running"), ("Pending", "Succeeded"), ("Pending", "Failed"), ("Running", "Succeeded"),
               ("Running", "Failed"), ("Pending", "Unknown"), ("Running", "Unknown")}
    assert allowed == {(x, x) for x in phases} | forward | {("Unknown", x) for x in phases}


def test_the_standard_invariants_of_a_step_are_the_phase_transitions():
    from engine.show import standard_program

    assert {i.name for i in standard_program().transitions} == {
        "a pod's phase only moves forward", "a namespace only goes from Active to Terminating"}


def test_before_is_a_plain_call_on_both_parse_paths():
    text = 'item one { }\ninvariant "s" { forall item i: before(i) == none }\n'
    fast, lark = parse_text(text), parse_text(text, fast=False)
    assert fast.decls == lark.decls
    call = fast.decls[1].cond.body.left
    assert isinstance(call, A.Call) and call.fn == "before"
