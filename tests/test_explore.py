"""`konverge verify --exhaustive`: every firing order and fault placement of a small spec.

The engine's programs here are tiny ones of their own (no Kubernetes), so that the state
spaces can be counted by hand; the smallest-scope search runs on a small Kubernetes spec.
"""

from pathlib import Path

import pytest

from engine.check import check_modules, load_program
from engine.cli import main
from engine.explore import counterexample, explore, firing_path
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
    x = explore(p, max_faults=1)
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
    full = explore(p, max_faults=1, reduce=False)
    reduced = explore(p, max_faults=1)
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
    assert "exhausted: 8 states" in out and "all properties hold" in out
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

    report = smallest_failing_scope(load_program([demo]), 1, 1, faults=["fail", "recover"], max_faults=1)
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
