"""`konverge verify`: generated fault sequences against the spec's properties.

A correct spec passes; a deliberately wrong rule set is caught, shrunk, and written
out as a scenario file that `konverge reconcile` replays to the same failure.
"""

from pathlib import Path

from engine.cli import main

DATA = Path(__file__).parent / "data" / "verify"
DEMO = Path(__file__).parent.parent / "specs" / "demo.konv"


def verify(capsys, *argv) -> tuple[int, str, str]:
    code = main(["verify", *map(str, argv)])
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
    for prop in ("converges", "invariants", "idempotent", "incremental = naive", "orders agree"):
        assert any(line.startswith(prop) and line.rstrip().endswith("5/5") for line in out.splitlines()), prop
    assert not out_file.exists()


def test_endpoints_that_publish_unready_pods_are_caught_with_a_replayable_counterexample(capsys, tmp_path):
    spec = tmp_path / "wrong-endpoints.konv"
    spec.write_text((DATA / "wrong-endpoints.konv").read_text())
    code, out, _ = verify(capsys, spec, "--examples", 10, "--seed", 1, "--faults", "runtime_down,cordon,scale")
    assert code == 4, out
    assert "property violated: invariants" in out
    assert 'invariant "endpoints are the ready matching pods" does not hold' in out
    assert "fails on Service/default/web" in out
    counterexample = tmp_path / "wrong-endpoints.counterexample.konv"
    assert counterexample.exists()
    assert "runtime_down node" in counterexample.read_text()
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
