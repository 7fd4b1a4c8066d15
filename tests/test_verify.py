"""`konverge verify`: generated fault sequences against the spec's properties.

A correct spec passes; a deliberately wrong rule set is caught, shrunk, and written
out as a scenario file that `konverge reconcile` replays to the same failure.
"""

from pathlib import Path

from engine.cli import main

DATA = Path(__file__).parent / "data" / "verify"
DEMO = Path(__file__).parent.parent / "specs" / "demo.konv"


def verify(capsys, *argv, db: bool = False) -> tuple[int, str, str]:
    code = main(["verify", *map(str, argv), *([] if db else ["--no-db"])])
    out, err = capsys.readouterr()
    return code, out, err


def replay(capsys, spec, scenario) -> tuple[int, str]:
    code = main(["reconcile", str(spec), "--scenario", str(scenario)])
    out, _ = capsys.readouterr()
    return code, out


def test_the_demo_cluster_holds_every_property_under_generated_faults(capsys, tmp_path):
    out_file = tmp_path / "ce.konv"
    code, out, err = verify(capsys, DEMO, "--examples", 5, "--seed", 0, "--out", out_file)
    assert code == 0, out
    assert "fault crash (alone it never settles" in err  # a crash loop is left out of the default set
    assert "all properties hold on 5 example(s)" in out
    for prop in ("converges", "invariants", "eventually stable", "idempotent", "orders agree"):
        assert any(line.startswith(prop) and line.rstrip().endswith("5/5") for line in out.splitlines()), prop
    # The naive reference runs on a sample: the fault-free run and every fourth example.
    assert any(line.startswith("incremental = naive") and "2/2 (of 5: a sample)" in line for line in out.splitlines())
    assert not out_file.exists()


def test_endpoints_that_publish_unready_pods_are_caught_with_a_replayable_counterexample(capsys, tmp_path):
    spec = tmp_path / "wrong-endpoints.konv"
    spec.write_text((DATA / "wrong-endpoints.konv").read_text())
    code, out, _ = verify(capsys, spec, "--examples", 10, "--seed", 1, "--faults", "fail,cordon,scale")
    assert code == 4, out
    assert "property violated: invariants" in out
    assert 'invariant "endpoints are the ready matching pods" does not hold' in out
    assert "fails on Service/default/web" in out
    # The explain chain of the object, at the end of a replay: who wrote it, and why.
    assert "explain Service/default/web (at the end of the replay):" in out
    assert "service_ip_allocator/allocate_cluster_ip[Service/default/web]" in out and "Why (" in out
    counterexample = tmp_path / "wrong-endpoints.counterexample.konv"
    assert counterexample.exists()
    assert "fail node" in counterexample.read_text()
    code, out = replay(capsys, spec, counterexample)
    assert code == 4
    assert 'violated: invariant "endpoints are the ready matching pods" does not hold' in out


def test_controllers_that_undo_each_other_are_caught_as_a_cycle_and_shrunk_to_one_event(capsys, tmp_path):
    out_file = tmp_path / "fight.konv"
    code, out, _ = verify(capsys, DATA / "fighting-controllers.konv", "--examples", 10, "--seed", 1,
                          "--faults", "cordon,uncordon,runtime_down", "--out", out_file)
    assert code == 4, out
    assert "property violated: converges" in out and "the state repeats (a cycle)" in out
    assert "drainer/mark[Node/" in out and "tidier/unmark[Node/" in out
    text = out_file.read_text()
    events = [line.strip() for line in text.splitlines() if line.strip().startswith("at ")]
    assert len(events) == 1 and "cordon node" in events[0] and "uncordon" not in events[0]  # shrunk
    code, out = replay(capsys, DATA / "fighting-controllers.konv", out_file)
    assert code == 3
    assert "NOT converged" in out and "drainer/mark" in out


def test_the_counterexample_is_a_formatted_scenario_file(capsys, tmp_path):
    from engine.fmt import format_text

    out_file = tmp_path / "fight.konv"
    verify(capsys, DATA / "fighting-controllers.konv", "--examples", 5, "--seed", 2, "--faults", "cordon",
           "--out", out_file)
    text = out_file.read_text()
    assert format_text(text) == text


def test_a_scenario_s_expectations_are_checked_under_the_generated_faults(capsys, tmp_path):
    # "lose a worker" expects three ready nodes throughout: a second node failure breaks that.
    out_file = tmp_path / "ce.konv"
    code, out, _ = verify(capsys, DEMO, "--scenario", "lose a worker", "--faults", "fail", "--no-deletions",
                          "--examples", 5, "--seed", 0, "--out", out_file)
    assert code == 4, out
    assert "property violated: expectations" in out and "expect always does not hold" in out
    text = out_file.read_text()
    assert "at 30s: fail node worker-1" in text and "expect always" in text
    code, out = replay(capsys, DEMO, out_file)
    assert code == 4 and "violated: expect always does not hold" in out


def test_a_pod_deleted_and_recreated_under_its_generated_name_is_recovery_not_a_cycle(capsys, tmp_path):
    # The state after recovery equals one seen before the deletion; the engine must not call it a cycle.
    scenario = tmp_path / "delete.konv"
    scenario.write_text('scenario "delete a pod" {\n  at 0s: delete pod default/web-3046375658-16048\n}\n')
    code, out = replay(capsys, DEMO, scenario)
    assert code == 0, out
    assert out.startswith("converged")


def test_a_write_refused_again_at_the_fixed_point_is_not_a_failure_of_idempotence(capsys, tmp_path):
    # Deleting a namespace outright, then the node its pods ran on, leaves its ReplicaSets
    # creating pods the API server refuses ("namespaces not found"): the fixed point has a
    # refused write, which a second reconcile tries once more and is refused again — it writes
    # nothing.
    spec = tmp_path / "gone.konv"
    spec.write_text((DEMO.parent / "node-failure.konv").read_text()
                    + '\nscenario "namespace gone" {\n  at 0s: delete namespace nf\n  at 0s: delete node nf-1\n}\n')
    code, out, _ = verify(capsys, spec, "--scenario", "namespace gone", "--examples", 2, "--seed", 1,
                          "--faults", "cordon", "--no-deletions")
    assert code == 0, out
    assert "refused" not in out


def test_an_unknown_fault_is_invalid_input_with_a_suggestion(capsys):
    code, _, err = verify(capsys, DEMO, "--faults", "cordn")
    assert code == 1
    assert "no fault named `cordn`" in err and "cordon" in err


def test_the_same_seed_finds_the_same_counterexample(capsys, tmp_path):
    texts = []
    for n in range(2):
        out_file = tmp_path / f"ce{n}.konv"
        verify(capsys, DATA / "fighting-controllers.konv", "--examples", 5, "--seed", 7,
               "--faults", "cordon,uncordon", "--out", out_file)
        texts.append(out_file.read_text())
    assert texts[0] == texts[1]


def test_strict_orders_holds_where_firing_order_cannot_matter(capsys, tmp_path):
    # Without pods no scheduling choice is made, so every order reaches the same objects exactly.
    spec = tmp_path / "nodes.konv"
    spec.write_text("node n1 { cpu: 4  memory: 8Gi }\nnode n2 { cpu: 4  memory: 8Gi }\n")
    code, out, _ = verify(capsys, spec, "--examples", 3, "--seed", 0, "--faults", "cordon,label_node",
                          "--strict-orders")
    assert code == 0, out


def test_the_demo_cluster_holds_every_property_under_the_engine_s_faults(capsys):
    code, out, _ = verify(capsys, DEMO, "--examples", 8, "--seed", 3,
                          "--faults", "partial,stale,drop,reject,scale,kill")
    assert code == 0, out
    assert "all properties hold on 8 example(s)" in out


def test_an_unknown_fault_is_matched_against_the_engine_s_faults_too(capsys):
    code, _, err = verify(capsys, DEMO, "--faults", "stael")
    assert code == 1
    assert "no fault named `stael`" in err and "did you mean `stale`?" in err


# ---- invariants: after every step, or at rest ---------------------------------------------

COUNTING = """
kind Counter { n: int = 0 }
counter c {}
controller up { rule count for counter c where c.n < 3 set c.n = c.n + 1 }
"""


def _check(text: str):
    from engine.check import check_modules
    from engine.parse import parse_text

    return check_modules([parse_text(text, "t.konv")])


def test_an_invariant_is_checked_after_every_step():
    from engine.fixpoint import reconcile

    r = reconcile(_check(COUNTING + 'invariant "never two" { forall counter c: c.n != 2 }\n'))
    assert r.converged
    assert r.violations == ('invariant "never two" does not hold (after step 2, virtual clock 0s)',)


def test_an_invariant_at_rest_is_checked_only_where_nothing_is_left_to_do():
    from engine.fixpoint import reconcile

    r = reconcile(_check(COUNTING + 'invariant "never two" at rest { forall counter c: c.n != 2 }\n'))
    assert r.converged and r.violations == ()
    r = reconcile(_check(COUNTING + 'invariant "never three" at rest { forall counter c: c.n != 3 }\n'))
    assert r.violations == ('invariant "never three" does not hold (at rest after step 3, virtual clock 0s)',)


def test_an_invariant_at_rest_is_also_checked_before_the_clock_moves_on():
    from engine.fixpoint import reconcile

    # The counter is 3 only between 0 s and 10 s, when a timed rule resets it: the end state is fine.
    text = COUNTING + """
    controller reset { rule zero for counter c where c.n == 3 and now() >= 10s set c.n = 10 }
    invariant "never three at rest" at rest { forall counter c: c.n != 3 }
    """
    r = reconcile(_check(text))
    assert r.converged and [o["n"] for o in r.objects if o["kind"] == "Counter"] == [10]
    assert r.violations == ('invariant "never three at rest" does not hold (at rest after step 3, virtual clock 0s)',)


def test_at_rest_is_part_of_the_language_and_kept_by_the_formatter():
    from engine import ast as A
    from engine.fmt import format_text
    from engine.parse import parse_text

    text = 'invariant "a" at rest { true }\n\ninvariant "b" { true }\n'
    assert format_text(text) == text
    decls = parse_text(text).decls
    assert [(d.name, d.at_rest) for d in decls] == [("a", True), ("b", False)]
    assert parse_text('node at { rest: 1 }\n').decls[0] == A.ObjectDecl(
        "node", "at", None, (A.FieldEntry("rest", A.Number("1")),))  # still plain names elsewhere


def test_the_standard_invariants_are_at_rest():
    from engine.show import standard_program

    assert all(inv.at_rest for inv in standard_program().invariants)


def test_the_standard_invariants_state_the_control_plane_s_promises():
    from engine.show import standard_program

    assert {inv.name for inv in standard_program().invariants} == {
        "no node is over capacity", "every bound pod fits its node's selectors and taints", "pod IPs are unique",
        "endpoints are the ready matching pods", "no pod is left on a failed node past its toleration",
        "every node routes a service port to its ready endpoints"}


# ---- search: example database, swarm testing -------------------------------------------------


def test_a_failure_is_kept_in_the_example_database_beside_the_spec_and_tried_first(capsys, tmp_path):
    # A failure that takes a search to find (tens of examples): the next run starts from it.
    spec = tmp_path / "snapshots.konv"
    spec.write_text((DATA / "stale-double-create.konv").read_text())
    runs, texts = [], []
    for _ in range(2):
        code, out, _ = verify(capsys, "--no-std", spec, "--examples", 1000, "--faults", "order_snapshot,stale",
                              "--no-deletions", db=True)
        assert code == 4, out
        runs.append(int(out.split("shrunk counterexample (")[1].split(" ")[0]))
        texts.append((tmp_path / "snapshots.counterexample.konv").read_text())
    assert (tmp_path / ".konverge-verify").is_dir()
    assert runs[1] <= 3 and texts[1] == texts[0]  # the fault-free run, the failure kept, no search


def test_a_seeded_run_is_reproducible_and_keeps_no_example_database(capsys, tmp_path):
    spec = tmp_path / "fight.konv"
    spec.write_text((DATA / "fighting-controllers.konv").read_text())
    code, _, _ = verify(capsys, spec, "--examples", 5, "--seed", 1, "--faults", "cordon", db=True)
    assert code == 4
    assert not (tmp_path / ".konverge-verify").exists()


def test_each_example_draws_its_events_from_a_few_of_the_fault_kinds():
    from hypothesis import find
    from hypothesis import strategies as st

    from engine import ast as A
    from engine.verify import scenario_strategy

    durations = {t: A.Unit(str(t), "s") for t in range(0, 901, 10)}
    kinds = {n: st.just(A.DeleteEvent(n, A.ObjRef("x"))) for n in ("node", "pod", "service")}
    strategy = scenario_strategy(kinds, None, durations)

    def kinds_of(sc):
        return {at.event.kind for at in sc.items}

    # Examples of one kind only, and examples of all three, both come up.
    alone = find(strategy, lambda sc: len(sc.items) >= 2 and kinds_of(sc) == {"service"})
    assert kinds_of(alone) == {"service"}
    mixed = find(strategy, lambda sc: len(kinds_of(sc)) == 3)
    assert len(mixed.items) >= 3


def test_an_invariant_over_a_nodes_pods_names_the_pod_it_fails_on(capsys, tmp_path):
    # "every bound pod fits its node's selectors and taints" goes node by node, then over each
    # node's pods (forall … : forall p in pods_on(n): …): the failure names the innermost
    # binding, the pod bound by hand past the node's taint, not the node.
    spec = tmp_path / "by-hand.konv"
    spec.write_text(
        'node n2 { cpu: 4  memory: 8Gi  taints: [ { key: "x", value: "", effect: "NoExecute", timeAdded: 0s } ] }\n'
        "node n3 { cpu: 4  memory: 8Gi }\n"
        "replace controller node_lifecycle { }\n"
        'pod byhand { node: "n2"  container c { image: "c:1"  cpu: 100m  memory: 64Mi } }\n'
        'pod tolerant { node: "n2"  tolerations: [ { key: "x", operator: "Exists", effect: "NoExecute" } ]\n'
        '  container c { image: "c:1"  cpu: 100m  memory: 64Mi } }\n')
    code, out, _ = verify(capsys, spec, "--examples", 2, "--seed", 1, "--faults", "cordon", "--out", tmp_path / "ce.konv")
    assert code == 4, out
    assert 'invariant "no pod is left on a failed node past its toleration" does not hold' in out
    assert "fails on Pod/default/byhand" in out and "fails on Node/" not in out
    assert "Pod/default/tolerant" not in out.split("explain")[0]
