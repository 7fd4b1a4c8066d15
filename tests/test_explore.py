"""`konverge verify --exhaustive`: every firing order and fault placement of a small spec.

The engine's programs here are tiny ones of their own (no Kubernetes), so that the state
spaces can be counted by hand; the smallest-scope search runs on a small Kubernetes spec.
"""

from pathlib import Path

import pytest

from engine.check import check_modules, load_program
from engine.cli import main
from engine.explore import counterexample, event_text, explore, firing_path
from engine.fixpoint import reconcile
from engine.parse import parse_text

KINDS = """
kind Item { size: int = 0  done: bool = false  owner: string = "" }
kind Box { count: int = 0 }
"""

# Whichever item is marked first wins; the fixed order marks `a` first, and the invariant
# holds there, but nothing in the rule makes `a` win: in another order `b` does.
RACE = """
controller pick {
  rule mark
    for item i
    where count(item j where j.done) == 0
    set i.done = true
}
item a {}
item b {}
invariant "the first item wins" at rest { forall item i where i.done: i.name == "a" }
"""

INDEPENDENT = """
controller c { rule mark for item i where not i.done set i.done = true }
item a {}
item b {}
invariant "every item ends done" at rest { forall item i: i.done }
"""


def program(text: str):
    return check_modules([parse_text(KINDS + text, "t.konv")])


def verify(capsys, *argv) -> tuple[int, str, str]:
    code = main(["verify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the search -------------------------------------------------------------------------------


def test_exhaustive_search_finds_an_order_dependent_violation_that_the_fixed_order_misses():
    p = program(RACE)
    assert reconcile(p).violations == ()  # the engine's own order: `a` first, all is well
    x = explore(p, max_faults=0)
    assert x.violation is not None and x.violation.property == "invariants"
    assert x.violation.names == ("the first item wins",)
    assert firing_path(x.violation) == ["pick/mark[Item/default/b]"]
    cx = counterexample(p, x.violation)
    assert cx.follow == ("pick/mark[Item/default/b]",) and cx.replayed
    assert any(v.startswith('invariant "the first item wins"') for v in cx.result.violations)


def test_an_invariant_of_a_step_is_checked_on_every_move_and_its_counterexample_replays():
    p = program("""
controller c { rule shrink for item i where i.size == 2 set i.size = 1 }
item a { size: 2 }
invariant "sizes only grow" { forall item i where before(i) != none: i.size >= before(i).size }
""")
    x = explore(p, max_faults=0)
    assert x.violation is not None and x.violation.property == "invariants"
    assert x.violation.names == ("sizes only grow",) and x.violation.objects == (("Item", "default", "a"),)
    assert "(after a step)" in x.violation.message
    cx = counterexample(p, x.violation)
    assert cx.replayed and any(v.startswith('invariant "sizes only grow"') for v in cx.result.violations)


STEP_RULES = {
    "mark": "controller m { rule mark for box g where g.count == 0 set g.count = 1 }",
    "flip": "controller f { rule flip for item i where not i.done and count(box g where g.count == 0) > 0 "
            "set i.done = true }",
    "back": "controller k { rule back for item i where i.done and count(box g where g.count == 1) > 0 "
            "set i.done = false }",
    "grow": "controller c1 { rule grow for item i where i.size == 0 set i.size = 1 }",
    "fill": "controller c2 { rule fill for box g where g.count == 0 set g.count = 1 }",
}
REVERTS = """
item t {}
box g {}
invariant "done never reverts" { forall item i where before(i) != none: not (before(i).done and not i.done) }
"""
GROWS_WHILE_EMPTY = """
item a {}
box g {}
invariant "items grow only while every box is empty" {
  forall item i where before(i) != none and before(i).size != i.size: count(box b where b.count == 1) == 0
}
"""


@pytest.mark.parametrize("rules, tail", [
    # The bad move (done → not done) lands on a state the search has seen by another path.
    (["mark", "flip", "back"], REVERTS), (["flip", "back", "mark"], REVERTS),
    # The invariant reads boxes: the reduction must not fire `grow` only before `fill`.
    (["grow", "fill"], GROWS_WHILE_EMPTY), (["fill", "grow"], GROWS_WHILE_EMPTY),
])
@pytest.mark.parametrize("reduce", [False, True])
def test_an_invariant_of_a_step_is_checked_on_every_move_in_every_order(rules, tail, reduce):
    x = explore(program("\n".join(STEP_RULES[r] for r in rules) + tail), max_faults=0, reduce=reduce)
    assert x.violation is not None and x.violation.message.endswith("does not hold (after a step)")


def test_a_correct_program_is_exhausted_and_independent_instances_meet_again():
    p = program(INDEPENDENT)
    full = explore(p, max_faults=0, reduce=False)
    # {}, {a}, {b}, {a, b}: the two orders meet again in the last state.
    assert (full.states, full.transitions, full.fixed_points) == (4, 4, 1)
    assert full.exhausted and full.violation is None
    reduced = explore(p, max_faults=0)
    # The two instances are independent: one order is enough, and reaches the same end.
    assert (reduced.states, reduced.transitions, reduced.fixed_points) == (3, 2, 1)
    assert reduced.ends == full.ends and reduced.exhausted


def test_faults_are_placed_at_every_quiescent_state_and_deletions_count_as_faults():
    p = program(INDEPENDENT)
    x = explore(p, max_faults=1, faults=[])  # no fault declared, and none of the engine's
    # A pass with no fault ({}, {a}, {a, b}), then one with a fault at most: deleting a or b
    # at rest gives two states more, each a fixed point.
    assert x.exhausted and x.violation is None
    assert (x.states, x.fixed_points) == (3 + 5, 1 + 3)


def test_the_clock_advances_to_the_next_deadline_only_when_nothing_else_can_fire():
    p = program("""
    controller late { rule mark for item i where now() >= 30s and not i.done set i.done = true }
    controller grow { rule grow for item i where i.size < 2 set i.size = i.size + 1 }
    item a {}
    """)
    x = explore(p, max_faults=0, reduce=False)
    # size 0, 1, 2 at 0s; then 30s with size 2, then done.
    assert (x.states, x.fixed_points, x.exhausted) == (5, 1, True)
    assert {clock for _, clock in x.ends} == {30}


@pytest.mark.parametrize("text", [
    RACE,
    INDEPENDENT,
    # `bump` writes what the instance of `watch` for the item `make` creates will read: firing
    # `bump` alone first would miss the order where that instance comes and goes before it.
    """
    controller bump { rule bump for box b where b.name == "other" and b.count == 0 set b.count = 1 }
    controller make { rule make for box b where b.name == "src" create item "new" {} }
    controller watch {
      rule watch for item i where i.name == "new" and i.size == 0
        set i.size = if any(box c where c.count > 0) then 1 else 2
    }
    box src {}
    box other {}
    """,
    # `mark` writes what `count` reads, and nothing else links them: each order has its end.
    """
    controller mark { rule mark for item i where i.name == "a" and not i.done set i.done = true }
    controller count { rule count for box b where b.count == 0 set b.count = if any(item i where i.done) then 1 else 2 }
    item a {}
    box b {}
    """,
    """
    controller make { rule box for item i where i.size > 0 ensure box i.name { count: i.size } }
    controller bump { rule bump for item i where i.size < 2 set i.size = i.size + 1 }
    controller reap { rule reap for box b for item i where i.name == b.name and b.count == 2 delete i }
    item a {}
    item b { size: 1 }
    """,
    """
    controller claim { rule claim for item i where i.owner == "" and count(item j where j.owner == "x") < 1
      set i.owner = "x" }
    controller other { rule other for item i where i.owner == "" set i.owner = "y" }
    controller drop { rule drop for item i where i.owner == "y" and i.size == 0 set i.size = 5 }
    item a {}
    item b {}
    item c { size: 1 }
    """,
])
def test_the_reduction_keeps_every_fixed_point_of_the_full_search(text):
    p = program(text.replace("invariant", "# invariant"))
    full = explore(p, max_faults=1, reduce=False, faults=[])
    reduced = explore(p, max_faults=1, faults=[])
    assert full.exhausted and reduced.exhausted
    assert reduced.ends == full.ends
    assert reduced.states <= full.states


def test_controllers_that_undo_each_other_are_a_cycle_that_reconcile_replays():
    p = program("""
    controller on { rule on for item i where not i.done set i.done = true }
    controller off { rule off for item i where i.done set i.done = false }
    item a {}
    """)
    x = explore(p, max_faults=0)
    assert x.violation.property == "converges" and "cycle" in x.violation.message
    cx = counterexample(p, x.violation)
    assert cx.replayed and cx.result.reason == "cycle"


def test_a_cycle_that_only_some_orders_enter_is_replayed_along_its_path():
    # `settle` comes first in the fixed order and ends the game at once; `on` and `off` fired
    # before it undo each other forever.
    p = program("""
    controller settle { rule settle for item i where i.size == 0 set i.size = 1 }
    controller on { rule on for item i where not i.done and i.size == 0 set i.done = true }
    controller off { rule off for item i where i.done and i.size == 0 set i.done = false }
    item a {}
    """)
    assert reconcile(p).converged
    x = explore(p, max_faults=0)
    assert x.violation.property == "converges"
    cx = counterexample(p, x.violation)
    assert cx.follow and cx.replayed and cx.result.reason == "cycle"


def test_the_search_stops_at_max_states_and_says_it_did_not_exhaust_the_space():
    x = explore(program(INDEPENDENT), max_faults=0, max_states=2, reduce=False)
    assert not x.exhausted and x.violation is None and x.states == 2


# ---- the command ------------------------------------------------------------------------------


def test_verify_exhaustive_prints_what_each_property_was_checked_on(capsys, tmp_path):
    spec = tmp_path / "ok.konv"
    spec.write_text(KINDS + INDEPENDENT)
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive")
    assert code == 0, out
    assert "converges" in out and "incremental = naive" in out and "orders agree" in out
    assert "expectations" not in out  # no scenario
    x = explore(program(INDEPENDENT))
    assert f"exhausted: {x.states} states" in out and "all properties hold" in out
    assert x.engine_faults == ("drop", "partial", "stale")  # nothing reads the clock: no `reject`
    assert not (tmp_path / "ok.counterexample.konv").exists()


def test_an_order_dependent_violation_is_written_with_the_firing_path_that_reconcile_follows(capsys, tmp_path):
    spec = tmp_path / "race.konv"
    spec.write_text(KINDS + RACE)
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive", "--max-faults", 0)
    assert code == 4, out
    assert "property violated: invariants" in out and "fails on Item/default/b" in out
    assert "the engine's fixed firing order does not reach it" in out
    assert "explain Item/default/b" in out and "pick/mark[Item/default/b]" in out
    scenario, path = tmp_path / "race.counterexample.konv", tmp_path / "race.counterexample.path"
    assert path.read_text().splitlines()[-1] == "pick/mark[Item/default/b]"
    assert f"replay: konverge reconcile {spec} --scenario {scenario} --follow {path} --no-std" in out
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(scenario), "--follow", str(path)]) == 4
    assert 'violated: invariant "the first item wins"' in capsys.readouterr().out
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(scenario)]) == 0  # the fixed order


def test_a_path_that_no_longer_applies_is_a_diagnostic_not_a_different_run(capsys, tmp_path):
    spec = tmp_path / "race.konv"
    spec.write_text(KINDS + RACE)
    path = tmp_path / "p.path"
    path.write_text("# a path\npick/mark[Item/default/zzz]\n")
    assert main(["reconcile", str(spec), "--no-std", "--follow", str(path)]) == 1
    err = capsys.readouterr().err
    assert "the firing path cannot be followed" in err and "pick/mark[Item/default/zzz]" in err
    assert main(["reconcile", str(spec), "--no-std", "--follow", str(tmp_path / "missing.path")]) == 1
    assert "cannot read the firing path" in capsys.readouterr().err


def test_exhaustive_options_are_checked(capsys, tmp_path):
    spec = tmp_path / "ok.konv"
    spec.write_text(KINDS + INDEPENDENT)
    code, _, err = verify(capsys, spec, "--no-std", "--max-nodes", 2)
    assert code == 2 and "--max-nodes bounds the exhaustive search" in err and "add --exhaustive" in err
    code, _, err = verify(capsys, spec, "--no-std", "--exhaustive", "--seed", 1)
    assert code == 2 and "--seed has no effect with --exhaustive" in err
    code, _, err = verify(capsys, spec, "--no-std", "--exhaustive", "--max-states", 0)
    assert code == 2 and "--max-states must be at least 1" in err
    code, _, err = verify(capsys, spec, "--no-std", "--exhaustive", "--faults", "nope")
    assert code == 1 and "no fault named `nope`" in err
    bad = tmp_path / "bad.konv"
    bad.write_text("item a { sizes: 1 }\n" + KINDS)
    code, _, err = verify(capsys, bad, "--no-std", "--exhaustive")
    assert code == 1 and "error[" in err


# ---- the smallest scope, on Kubernetes ------------------------------------------------------------

CROWDED = """
node worker-1 { cpu: 4  memory: 8Gi }
node worker-2 { cpu: 4  memory: 8Gi }
deployment web {
  replicas: 3
  template {
    labels { app: "web" }
    container nginx { image: "nginx:1.27"  cpu: 250m  memory: 128Mi }
  }
}
# Wrong on purpose: nothing spreads the pods, so two share a node as soon as there are two.
invariant "a node runs one web pod at most" at rest {
  forall node n: count(pod p where p.node == n.name and p.labels.app == "web") <= 1
}
"""


def test_the_smallest_failing_scope_is_reported_and_written_as_a_spec_that_replays(capsys, tmp_path):
    spec = tmp_path / "crowded.konv"
    spec.write_text(CROWDED)
    code, out, _ = verify(capsys, spec, "--exhaustive", "--max-nodes", 1, "--max-pods", 3, "--max-faults", 0)
    assert code == 4, out
    table = out.split("first failing scope")[0]
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("1", "1", "holds"), ("1", "2", "fails")]
    assert "first failing scope: 1 node(s), 2 pod(s)" in out
    written = tmp_path / "crowded.counterexample.konv"
    text = written.read_text()
    assert "replicas: 2" in text and "worker-2" not in text  # the spec cut down to the scope
    assert f'replay: konverge reconcile {written} --scenario "exhaustive counterexample"' in out
    assert main(["reconcile", str(written), "--scenario", "exhaustive counterexample"]) == 4
    assert 'invariant "a node runs one web pod at most"' in capsys.readouterr().out


def test_scopes_grow_by_total_size_and_a_correct_spec_holds_in_every_one(tmp_path):
    from engine.kube.scope import Scope, scoped, sizes, smallest_failing_scope

    assert sizes(2, 2) == [Scope(1, 1), Scope(1, 2), Scope(2, 1), Scope(2, 2)]
    spec = tmp_path / "spread.konv"
    spec.write_text(CROWDED.replace("<= 1", "<= 3"))
    p = load_program([spec])
    small = scoped(p, Scope(1, 2))
    assert [d.name for d in small.objects if d.kind == "node"] == ["worker-1"]
    report = smallest_failing_scope(p, 1, 2, max_faults=0)
    assert report.failed is None and [r.scope for r in report.runs] == [Scope(1, 1), Scope(1, 2)]
    assert all(r.exploration.exhausted for r in report.runs)
    lone = tmp_path / "lone.konv"
    lone.write_text(CROWDED.replace("node worker-2 { cpu: 4  memory: 8Gi }", ""))
    report = smallest_failing_scope(load_program([lone]), 2, 1, max_faults=0)
    # A spec with one node cut to two nodes is the same spec: explored once.
    assert [(r.scope, r.same_as) for r in report.runs] == [(Scope(1, 1), None), (Scope(2, 1), Scope(1, 1))]


def test_the_demo_spec_holds_in_its_smallest_scope():
    demo = Path(__file__).parent.parent / "specs" / "demo.konv"
    from engine.kube.scope import smallest_failing_scope

    # About 10,000 states: the Deployment's status (its counts and conditions, written by a batched
    # rule that every firing order may fire at each step of the rollout) makes more of them.
    report = smallest_failing_scope(load_program([demo]), 1, 1, faults=["fail", "recover"], max_faults=1,
                                    max_states=15000)
    assert report.failed is None and report.runs[0].exploration.exhausted


def test_writes_the_api_server_refuses_are_no_move_and_leave_the_state_at_rest():
    p = program("""
    policy "items stay small" { deny item i when i.size > 1 }
    controller grow { rule grow for item i where i.size < 5 set i.size = i.size + 1 }
    item a {}
    invariant "an item grows to 1" at rest { forall item i: i.size == 1 }
    """)
    x = explore(p, max_faults=0)
    assert x.exhausted and x.violation is None
    assert (x.states, x.fixed_points) == (2, 1)


def test_a_write_refused_in_one_state_is_tried_again_in_another():
    # While the lock exists the API server refuses the item; once a deletion takes it away, the
    # same write goes through.
    p = program("""
    policy "nothing is made while locked" {
      deny item i when i.resourceVersion == none and count(box b where b.count > 0) > 0
    }
    controller make { rule make for box b where b.name == "gate" create item "made" {} }
    box gate {}
    box lock { count: 1 }
    invariant "made once unlocked" at rest {
      count(box b where b.name == "lock") > 0 or count(item i where i.name == "made") == 1
    }
    """)
    x = explore(p, max_faults=1)
    assert x.exhausted and x.violation is None


# ---- the engine's faults -------------------------------------------------------------------------

# The box is made and the item emptied in one firing, and the box is how the controller tells
# that the move is done: a crash between the two writes leaves the size counted twice for good.
MOVE = """
controller move {
  rule move
    for item i
    where WHEN i.size > 0 and not any(box b where b.name == i.name)
    create box i.name { count: i.size }
    set i.size = 0
}
item a { size: 3 }
invariant "a size is counted once: in its item or in its box" at rest {
  forall item i: i.size == 0 or not any(box b where b.name == i.name)
}
"""


def move(when: str = "") -> str:
    return MOVE.replace("WHEN ", when)


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_a_crash_between_two_writes_is_found_with_one_fault_and_not_without():
    p = program(move())
    assert reconcile(p).violations == ()
    assert explore(p, max_faults=0).violation is None
    v = explore(p, max_faults=1).violation
    assert v is not None and v.names == ("a size is counted once: in its item or in its box",)
    assert [(s.instance, event_text(s.fault)) for s in v.struck] == [
        ("move/move[Item/default/a]", "partial controller move writes = 1")]
    # The other engine faults and every deletion leave it whole.
    assert explore(p, max_faults=1, faults=["drop", "stale", "reject"]).violation is None


def test_a_crash_in_the_run_from_the_spec_is_replayed_by_the_firing_path_that_arms_it(capsys, tmp_path):
    spec = tmp_path / "move.konv"
    spec.write_text(KINDS + move())
    assert verify(capsys, spec, "--no-std", "--exhaustive", "--max-faults", 0)[0] == 0
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive", "--max-faults", 1)
    assert code == 4, out
    assert "engine fault: move/move[Item/default/a] (`partial controller move writes = 1` strikes it)" in out
    scenario, path = tmp_path / "move.counterexample.konv", tmp_path / "move.counterexample.path"
    # No scenario event can strike the run from the spec's objects (events come at rest): the
    # firing path arms the crash just before the firing it strikes.
    assert parse_text(scenario.read_text(), str(scenario)).decls[-1].items == ()
    assert lines(path) == ["partial controller move writes = 1", "move/move[Item/default/a]"]
    assert f"replay: konverge reconcile {spec} --scenario {scenario} --follow {path} --no-std" in out
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(scenario), "--follow", str(path)]) == 4
    assert 'violated: invariant "a size is counted once' in capsys.readouterr().out
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(scenario)]) == 0  # no crash, no bug


def test_a_crash_after_the_run_has_come_to_rest_is_a_scenario_event(capsys, tmp_path):
    spec = tmp_path / "late.konv"
    spec.write_text(KINDS + move("now() >= 10s and "))
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive")
    assert code == 4, out
    assert "events: at 0s: partial controller move writes = 1" in out
    written = tmp_path / "late.counterexample.konv"
    assert "at 0s: partial controller move writes = 1" in written.read_text()
    assert not (tmp_path / "late.counterexample.path").exists()
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(written)]) == 4
    assert 'violated: invariant "a size is counted once' in capsys.readouterr().out


# `mark` marks each item at once; `watch`, a second later, flags the items still unmarked: only a
# refused request, whose retry waits a second on the virtual clock, holds `mark` back so long.
LATE = """
controller mark { rule mark for item i where not i.done set i.done = true }
controller watch { rule watch for item i where now() >= 1s and not i.done and i.owner == "" set i.owner = "late" }
item a {}
invariant "no item is flagged late" at rest { forall item i: i.owner != "late" }
"""


def test_a_refused_request_backs_off_on_the_clock_and_the_retry_comes_late(capsys, tmp_path):
    p = program(LATE)
    assert explore(p, max_faults=1, faults=["partial", "drop", "stale"]).violation is None
    v = explore(p, max_faults=1).violation
    assert v is not None and v.names == ("no item is flagged late",) and v.clock == 1
    assert [event_text(s.fault) for s in v.struck] == ["reject controller mark requests = 1"]
    assert any(s.kind == "advance" for s in v.path)  # the back-off, on the clock
    spec = tmp_path / "late.konv"
    spec.write_text(KINDS + LATE)
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive")
    assert code == 4, out
    path = tmp_path / "late.counterexample.path"
    assert lines(path)[:2] == ["reject controller mark requests = 1", "mark/mark[Item/default/a]"]
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(tmp_path / "late.counterexample.konv"),
                 "--follow", str(path)]) == 4
    assert 'violated: invariant "no item is flagged late"' in capsys.readouterr().out


def test_a_refused_request_is_not_explored_where_nothing_reads_the_clock():
    # A back-off only holds the firing back until the rest is at rest, an order the search tries
    # anyway, and moves a clock nothing reads: no new state.
    x = explore(program(INDEPENDENT), faults=["reject"])
    assert x.engine_faults == () and any(s.startswith("reject (nothing reads the clock") for s in x.skipped_faults)
    assert explore(program(LATE), faults=["reject"], max_faults=0).engine_faults == ("reject",)


def test_a_controller_behind_double_creates_with_two_faults_and_the_path_replays_it(capsys, tmp_path):
    # stale-double-create.konv: the snapshotter names each snapshot after the database's version
    # and looks for it in its cache; a cache that loses or holds back its own create takes another.
    corpus = Path(__file__).parent / "data" / "verify" / "stale-double-create.konv"
    p = load_program([corpus], std=False)
    assert explore(p, max_faults=1).violation is None  # the database must be ordered a snapshot first
    for fault in ("stale", "drop"):
        v = explore(p, max_faults=2, faults=["order_snapshot", fault]).violation
        assert v is not None and v.names == ("at most one snapshot per database",)
        assert [s.fault.fault for s in v.struck] + [s.event.fault for s in v.events] == [fault, "order_snapshot"]
        cx = counterexample(p, v)
        assert cx.replayed and any(not isinstance(f, str) and f.fault == fault for f in cx.follow)
    code, out, _ = verify(capsys, corpus, "--no-std", "--exhaustive", "--max-faults", 2, "--out",
                          tmp_path / "cx.konv")
    assert code == 4 and "at most one snapshot per database" in out
    assert main(["reconcile", str(corpus), "--no-std", "--scenario", str(tmp_path / "cx.konv"),
                 "--follow", str(tmp_path / "cx.path")]) == 4


# `link` writes two items in one firing (a crash may land the first alone); `stamp` and `late`
# write boxes, independently of it but for `late`, a second on, which reads the items.
LINK = """
controller link {
  rule link
    for item i where i.owner != "" and not i.done
    for item j where j.name == i.owner
    set i.done = true
    set j.size = j.size + 1
}
controller stamp { rule stamp for box b where b.count == 0 set b.count = 1 }
item a { owner: "b" }
item b {}
box x {}
box y {}
"""
LATE_STAMP = """
controller late { rule late for box b where now() >= 1s and b.count == 1
  set b.count = if any(item i where i.done) then 3 else 2 }
"""


@pytest.mark.parametrize("faults", [["partial"], ["reject"], ["drop"], ["stale"]])
@pytest.mark.parametrize("text", [RACE, INDEPENDENT, LINK, LINK + LATE_STAMP])
def test_the_reduction_keeps_every_fixed_point_of_the_full_search_under_the_engines_faults(text, faults):
    p = program(text.replace("invariant", "# invariant"))
    full = explore(p, max_faults=1, reduce=False, faults=faults)
    reduced = explore(p, max_faults=1, faults=faults)
    assert full.exhausted and reduced.exhausted
    assert reduced.ends == full.ends
    assert reduced.states <= full.states
    if text.startswith(LINK) and faults[0] in full.engine_faults and faults[0] in ("partial", "reject"):
        # A crash, or a retry a second late, ends where no firing order without it does.
        assert full.ends > explore(p, max_faults=1, reduce=False, faults=[]).ends


def test_a_firing_path_line_that_is_neither_an_instance_nor_an_engine_fault_is_a_diagnostic(capsys, tmp_path):
    spec = tmp_path / "move.konv"
    spec.write_text(KINDS + move())
    path = tmp_path / "p.path"
    path.write_text("# a path\n# more\nfail node worker-1\n")
    assert main(["reconcile", str(spec), "--no-std", "--follow", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 3 of the firing path is neither a rule instance nor an engine fault" in err
    path.write_text("# a path\npartial controller mover writes = 1\nmove/move[Item/default/a]\n")
    assert main(["reconcile", str(spec), "--no-std", "--follow", str(path)]) == 1
    assert "no controller named `mover`" in capsys.readouterr().err


# ---- a scenario of the user's, on every path -----------------------------------------------------

GROW = """
scenario "grow" {
  at 5s: update item a { size: 4 }
  expect always count(box b) <= 1
  expect eventually count(box b where b.count == WANT) == 1
}
"""


def test_exhaustive_plays_a_scenario_on_every_path_with_its_faults_on_top(capsys, tmp_path):
    spec = tmp_path / "late.konv"
    spec.write_text(KINDS + move("now() >= 10s and "))
    scenario = tmp_path / "grow.konv"
    scenario.write_text(GROW.replace("WANT", "4"))
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive", "--scenario", scenario, "--max-faults", 0)
    assert code == 0, out
    assert "expectations" in out and "all properties hold" in out
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive", "--scenario", scenario, "--no-deletions")
    assert code == 4, out
    assert "events: at 5s: update item a { size: 4 }; at 5s: partial controller move writes = 1" in out
    written = tmp_path / "late.counterexample.konv"
    assert "expect always count(box b) <= 1" in written.read_text()  # its expects, kept
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(written)]) == 4
    assert 'violated: invariant "a size is counted once' in capsys.readouterr().out


def test_a_scenario_expect_that_does_not_hold_is_a_violation_that_replays(capsys, tmp_path):
    spec = tmp_path / "late.konv"
    spec.write_text(KINDS + move("now() >= 10s and "))
    scenario = tmp_path / "grow.konv"
    scenario.write_text(GROW.replace("WANT", "3"))
    code, out, _ = verify(capsys, spec, "--no-std", "--exhaustive", "--scenario", scenario, "--max-faults", 0)
    assert code == 4, out
    assert "property violated: expectations" in out and f"expect eventually does not hold at the end ({scenario}:5:3)" in out
    assert main(["reconcile", str(spec), "--no-std", "--scenario", str(tmp_path / "late.counterexample.konv")]) == 4
    assert "violated: expect eventually does not hold at the end" in capsys.readouterr().out


def test_an_expect_within_a_time_fails_when_a_refused_request_makes_the_firing_late(capsys, tmp_path):
    p = program(move("now() >= 10s and ") + """
    scenario "on time" { expect eventually count(box b) == 1 within 10s }
    """)
    on_time = p.scenarios["on time"]
    assert explore(p, scenario=on_time, max_faults=0).violation is None
    v = explore(p, scenario=on_time, max_faults=1, faults=["reject"], deletions=False).violation
    assert v is not None and v.property == "expectations" and "within 10s" in v.message
    cx = counterexample(p, v, on_time)
    assert cx.replayed and cx.follow == ()  # the refusal comes at rest, before the clock moves: an event
    assert [s.text() for s in cx.violation.events] == ["at 0s: reject controller move requests = 1"]
