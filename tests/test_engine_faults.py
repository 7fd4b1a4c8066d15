"""Faults of the engine (engine/faults.py): a controller that crashes part-way through a
rule, reads a stale cache, loses watch events or has its requests refused.

Each lands (the run takes a different path), a correct program still converges to the
same state, the naive reference takes the same path, and a run copied from a converged
one (as `verify` plays its examples) is the same run, byte for byte.
"""

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine import ast as A
from engine.check import check_modules
from engine.cli import main
from engine.fixpoint import reconcile
from engine.parse import parse_text
from engine.verify import HORIZON, Runs, event_strategies, scenario_strategy

DATA = Path(__file__).parent / "data" / "verify"

# A source, a mirror kept equal to it, a pair of objects made in one firing, and a ticker
# that works a few steps on its own after each bump: steps in which others could act.
SPEC = """
kind Source { value: int = 0 }
kind Mirror { value: int = 0 }
kind Tick { n: int = 0 }

source a {}
tick t {}

fault bump(source s) { set s.value = s.value + 1 }

controller mirror {
  rule copy for source s ensure mirror s.name { value: s.value }
}

controller pair {
  rule make
    for source s
    where s.value > 0
    create mirror s.name + "-left" { value: 1 }
    create mirror s.name + "-right" { value: 2 }
}

controller ticker {
  rule count for source s for tick t where t.n < s.value * 3 set t.n = t.n + 1
}
"""


def program(scenario: str = ""):
    return check_modules([parse_text(SPEC + scenario, "t.konv")])


def play(events: str, **kw):
    p = program(f'scenario "s" {{\n{events}\n}}\n')
    return reconcile(p, scenario=p.scenarios["s"], **kw)


def objects(result, kind: str) -> dict:
    return {o["name"]: o for o in result.objects if o["kind"] == kind}


def step_of(result, actor: str, verb: str, name: str) -> int:
    return next(w.step for w in result.trace if w.actor == actor and w.verb == verb and w.name == name)


def settled(result) -> None:
    """What every correct run of SPEC ends with, whatever the faults."""
    assert result.converged, result.reason
    mirrors = objects(result, "Mirror")
    source = objects(result, "Source")["a"]
    assert mirrors["a"]["value"] == source["value"]
    assert objects(result, "Tick")["t"]["n"] == 3 * source["value"]
    assert ("a-left" in mirrors) == ("a-right" in mirrors) == (source["value"] > 0)


def same_path_in_naive_mode(events: str) -> None:
    assert play(events) == play(events, naive=True)


def test_without_faults_a_firing_writes_both_objects_of_the_pair_in_one_step():
    r = play("  at 10s: bump source a")
    settled(r)
    assert step_of(r, "pair", "create", "a-left") == step_of(r, "pair", "create", "a-right")


def test_a_controller_that_crashes_part_way_lands_a_prefix_of_its_writes_then_restarts():
    events = "  at 0s: partial controller pair writes=1\n  at 10s: bump source a"
    r = play(events)
    settled(r)
    # The crash cut the firing after its first write; the restarted controller made the other.
    assert step_of(r, "pair", "create", "a-left") < step_of(r, "pair", "create", "a-right")
    same_path_in_naive_mode(events)


def test_a_crash_waits_for_a_firing_with_more_writes_than_land():
    # `mirror` writes one object at a time: a crash after 1 write never comes.
    events = "  at 0s: partial controller mirror writes=1\n  at 10s: bump source a"
    assert play(events).trace == play("  at 10s: bump source a").trace


def test_a_controller_that_loses_a_watch_event_acts_only_after_it_relists():
    plain = play("  at 10s: bump source a")
    assert step_of(plain, "mirror", "update", "a") < step_of(plain, "ticker", "update", "t")
    events = "  at 0s: drop controller mirror events=1\n  at 10s: bump source a"
    r = play(events)
    settled(r)
    # The mirror missed the bump: it only saw it when it relisted, once nothing else was left.
    last_tick = max(w.step for w in r.trace if w.actor == "ticker")
    assert step_of(r, "mirror", "update", "a") > last_tick
    same_path_in_naive_mode(events)


def test_refused_requests_are_retried_after_a_growing_back_off_on_the_virtual_clock():
    events = "  at 0s: reject controller mirror requests=2\n  at 10s: bump source a"
    r = play(events)
    settled(r)
    refused = [w for w in r.trace if w.actor == "mirror" and w.verb == "refused"]
    assert [w.clock for w in refused] == [10, 11]
    assert all("InternalError (500)" in w.message for w in refused)
    assert "retried after 1s" in refused[0].message and "retried after 2s" in refused[1].message
    done = next(w for w in r.trace if w.actor == "mirror" and w.verb == "update")
    assert done.clock == 13  # 10 s, then 1 s and 2 s of back-off
    same_path_in_naive_mode(events)


def test_an_invariant_at_rest_is_not_checked_while_a_refused_request_waits_to_be_retried():
    invariant = 'invariant "the mirror is the source" at rest {\n' \
                "  forall source s: any(mirror m where m.name == s.name and m.value == s.value)\n}\n"
    p = program(invariant + 'scenario "s" {\n  at 0s: reject controller mirror requests=2\n  at 10s: bump source a\n}\n')
    r = reconcile(p, scenario=p.scenarios["s"])
    settled(r)
    assert r.violations == ()  # the engine was idle at 10 s and 11 s, but the mirror's update was pending


def test_a_permanent_refusal_is_not_retried_but_a_transient_one_is():
    # Without the fault nothing is refused; the transient refusals leave nothing behind.
    r = play("  at 0s: reject controller pair requests=1\n  at 10s: bump source a")
    settled(r)
    assert not [w for w in r.trace if w.verb == "refused" and "InternalError" not in w.message]


def test_a_stale_controller_double_creates_under_a_generated_name():
    spec = (DATA / "stale-double-create.konv").read_text()
    scenario = 'scenario "s" {\n  at 0s: stale controller snapshotter lag=2 steps=10\n' \
               '  at 10s: order_snapshot database orders\n}\n'
    p = check_modules([parse_text(spec + scenario, "t.konv")])
    r = reconcile(p, scenario=p.scenarios["s"])
    assert r.converged
    assert len(objects(r, "Snapshot")) >= 2  # one per version of the database it saw
    assert r.violations and r.violations[0].startswith('invariant "at most one snapshot per database" does not hold')
    assert reconcile(p, scenario=p.scenarios["s"], naive=True) == r


def test_a_stale_controller_with_a_fixed_name_gets_already_exists_and_the_program_converges():
    spec = (DATA / "stale-double-create.konv").read_text().replace(
        'create snapshot d.name + "-" + str(d.resourceVersion) {', "create snapshot d.name {")
    scenario = 'scenario "s" {\n  at 0s: stale controller snapshotter lag=2 steps=10\n' \
               '  at 10s: order_snapshot database orders\n}\n'
    p = check_modules([parse_text(spec + scenario, "t.konv")])
    r = reconcile(p, scenario=p.scenarios["s"])
    assert r.converged and not r.violations
    assert list(objects(r, "Snapshot")) == ["orders"]
    assert any(w.verb == "refused" and "already exists" in w.message for w in r.trace)


def test_a_stale_window_is_counted_in_steps_and_closes_by_itself():
    events = "  at 0s: stale controller mirror lag=3 steps=2\n  at 10s: bump source a"
    r = play(events)
    settled(r)
    same_path_in_naive_mode(events)


def test_engine_faults_replay_byte_identically_from_a_scenario_file(tmp_path, capsys):
    spec = tmp_path / "spec.konv"
    spec.write_text(SPEC)
    scenario = tmp_path / "faults.konv"
    scenario.write_text('scenario "faults" {\n'
                        "  at 0s: partial controller pair writes=1\n"
                        "  at 0s: stale controller ticker lag=2 steps=5\n"
                        "  at 0s: drop controller mirror events=1\n"
                        "  at 0s: reject controller ticker requests=1\n"
                        "  at 10s: bump source a\n"
                        "  at 20s: bump source a\n}\n")
    outputs = []
    for _ in range(2):
        code = main(["reconcile", "--no-std", str(spec), "--scenario", str(scenario), "-o", "json"])
        outputs.append(capsys.readouterr().out)
        assert code == 0
    assert outputs[0] == outputs[1]
    assert '"converged": true' in outputs[0]


def test_an_engine_fault_names_a_controller_of_the_program(tmp_path, capsys):
    spec = tmp_path / "spec.konv"
    spec.write_text(SPEC)
    scenario = tmp_path / "bad.konv"
    scenario.write_text('scenario "bad" {\n  at 0s: stale controller mirorr lag=2\n}\n')
    code = main(["reconcile", "--no-std", str(spec), "--scenario", str(scenario)])
    err = capsys.readouterr().err
    assert code == 1
    assert "error[E053]: no controller named `mirorr`" in err and "did you mean `mirror`?" in err


# ---- copies of a converged run play as whole runs do ----------------------------------------

FAULT_PROGRAM = program()
DURATIONS = {t: A.Unit(str(t), "s") for t in range(0, 901, 10)}
for _u in DURATIONS.values():
    FAULT_PROGRAM.unit_types[id(_u)] = "duration"
CHOICES, _ = event_strategies(FAULT_PROGRAM, ["bump", "partial", "stale", "drop", "reject"],
                              {"Source": [("default", "a")]}, False, DURATIONS)
RUNS = Runs(FAULT_PROGRAM, None, 10_000, HORIZON)


@given(scenario_strategy(CHOICES, None, DURATIONS), st.sampled_from([("fixed", 0), ("random", 1), ("random", 2)]))
def test_a_copied_run_plays_any_fault_sequence_as_a_whole_run_does(scenario, order):
    copied = RUNS.play(scenario, order=order[0], seed=order[1]).result
    whole = reconcile(FAULT_PROGRAM, scenario=scenario, order=order[0], seed=order[1], budget=10_000,
                      horizon=HORIZON)
    assert copied == whole
    settled(whole)


@given(scenario_strategy(CHOICES, None, DURATIONS))
def test_the_naive_reference_takes_the_same_path_under_engine_faults(scenario):
    assert RUNS.play(scenario, naive=True).result == RUNS.play(scenario).result
