"""A corpus of deliberately wrong rule variants that `konverge verify` must catch.

Each spec in tests/data/verify/ replaces (or adds) a controller of the standard
control plane with a buggy one and, where the standard invariants
(rules/invariants.konv) do not state the broken promise, declares an `invariant`
of its own. Each test runs `verify` with a fixed seed and a narrowed fault set,
expects exit 4 and a counterexample file, and replays that file with
`reconcile` (with the options the verify report prints), which must report the
failure again (exit 3: not converged; exit 4: a violated invariant). Where the
spec says how to fix it, the fixed variant passes the same invocation.

Time to catch (wall clock of each test with CI=true: search, shrinking and the
replay, measured on the 2-core development machine under a load of about 3; the
endpoints and fighting-controllers variants are caught in tests/test_verify.py):

| spec | caught by | shrunk to | time |
|---|---|---|---|
| scheduler-ignores-memory.konv | spec invariant "no bound pod is rejected for lack of memory" | no event (fails with no fault) | 1.5 s |
| replicaset-counts-failed-pods.konv | spec invariant "every replicaset has its ready replicas" | `crash pod` | 1.7 s |
| lifecycle-never-evicts.konv | standard "fits its node's selectors and taints" and spec "no pod is left on a failed node past its toleration" | `fail node` | 1.9 s |
| flapping-autoscaler.konv | converges (a cycle: the HPA against a replica cap) | `load horizontalpodautoscaler` | 2.6 s |
| stale-double-create.konv | spec invariant "at most one snapshot per database", after every step | `stale controller snapshotter`, then `order_snapshot` | 2.6 s |
| flapping-spread.konv | converges (a cycle: a descheduler evicting into the zone it empties) | `fail node` | 2.4 s |
| kubelet-readmits-rejected-pods.konv | standard invariant of a step "a pod's phase only moves forward" (Failed → Pending) | `kill pod` | 0.8 s |
| wrong-endpoints.konv (test_verify.py) | standard "endpoints are the ready matching pods" | `fail node` | 5.5 s |
| fighting-controllers.konv (test_verify.py) | converges (a cycle: two rules undoing each other) | `cordon node` | 1.5 s |

Notes:
- Memory: the kubelet rejects a pod that overflows its node's memory (phase
  Failed, reason OutOfmemory) and a failed pod holds no resources, so the
  standard "no node is over capacity" invariant holds again at rest; the spec
  states the scheduler's promise as "the kubelet never has to reject a pod for
  memory". Bare pods are used: under a ReplicaSet the rejected pod is replaced
  forever and the run fails to converge rather than the invariant.
- Eviction: the spec's pods tolerate the lifecycle taints for 0 s, so one
  `fail` suffices; its invariant is `at rest`, checked wherever the engine has
  nothing left to do, so a pod still on the failed node when the clock moves on
  is caught.
- Stale reads: the spec runs without the standard control plane (`--no-std`),
  so that the engine faults are aimed at its two controllers only; the replay
  needs `--no-std` too, which the report prints.
- Phases: a transition is caught only by an invariant of a step (it calls
  `before`), checked after every step on the pods the step changed; at rest
  the re-admitted pod runs and fits, so no invariant of the state sees it.
- Generated deletions are switched off (`--no-deletions`) where deleting the
  only node would break the spec's own invariant with correct rules too.
"""

import re
from pathlib import Path

import pytest

from engine.cli import main

DATA = Path(__file__).parent / "data" / "verify"

CORPUS = [
    # spec, seed, examples, faults, extra options, message the verify report must contain,
    # the events the shrunk counterexample keeps, in order (each a part of its line)
    ("scheduler-ignores-memory.konv", 1, 5, "cordon", [],
     'invariant "no bound pod is rejected for lack of memory" does not hold', ()),
    ("replicaset-counts-failed-pods.konv", 1, 10, "crash", ["--no-deletions"],
     'invariant "every replicaset has its ready replicas" does not hold', ("crash pod default/web-",)),
    ("lifecycle-never-evicts.konv", 1, 5, "fail", ["--no-deletions"],
     'invariant "no pod is left on a failed node past its toleration" does not hold', ("fail node worker-1",)),
    ("flapping-autoscaler.konv", 1, 5, "load", ["--no-deletions"],
     "the state repeats (a cycle)", ("load horizontalpodautoscaler default/api",)),
    ("stale-double-create.konv", 1, 200, "order_snapshot,stale", ["--no-std", "--no-deletions"],
     'invariant "at most one snapshot per database" does not hold',
     ("stale controller snapshotter", "order_snapshot database default/orders")),
    ("flapping-spread.konv", 1, 5, "fail", ["--no-deletions"],
     "the state repeats (a cycle)", ("fail node worker-",)),
    ("kubelet-readmits-rejected-pods.konv", 1, 10, "kill", ["--no-deletions"],
     'invariant "a pod\'s phase only moves forward" does not hold', ("kill pod default/first",)),
]

# The fixes the specs describe: (spec, text replaced, by).
FIXED = [
    ("stale-double-create.konv", 'create snapshot d.name + "-" + str(d.resourceVersion) {', "create snapshot d.name {"),
    ("flapping-spread.konv", "  where c.topologyKey in m.labels\n)",
     "  where c.topologyKey in m.labels and m.ready and not m.unschedulable and m.taints == []\n)"),
]


def verify_args(name: str, spec: Path, out_file: Path) -> list[str]:
    _, seed, examples, faults, extra, _, _ = next(c for c in CORPUS if c[0] == name)
    return ["verify", str(spec), "--examples", str(examples), "--seed", str(seed), "--faults", faults, *extra,
            "--no-db", "--out", str(out_file)]


@pytest.mark.parametrize(("name", "seed", "examples", "faults", "extra", "message", "events"), CORPUS,
                         ids=[c[0].removesuffix(".konv") for c in CORPUS])
def test_a_wrong_rule_variant_is_caught_with_a_replayable_counterexample(
        capsys, tmp_path, name, seed, examples, faults, extra, message, events):
    spec = DATA / name
    out_file = tmp_path / "ce.konv"
    code = main(verify_args(name, spec, out_file))
    out, _ = capsys.readouterr()
    assert code == 4, out
    assert message in out, out
    assert out_file.exists()
    lines = [line.strip() for line in out_file.read_text().splitlines() if line.strip().startswith("at ")]
    assert len(lines) == len(events) and all(e in line for e, line in zip(events, lines)), lines  # shrunk
    # The replay command the report prints, options included.
    replay = re.search(r"^replay: konverge reconcile (.*)$", out, re.M).group(1).split()
    assert replay[:3] == [str(spec), "--scenario", str(out_file)], replay
    code = main(["reconcile", *replay])
    replayed, _ = capsys.readouterr()
    assert code in (3, 4), replayed
    if code == 3:
        assert "NOT converged" in replayed
    else:
        assert f"violated: {message}" in replayed


@pytest.mark.parametrize(("name", "wrong", "right"), FIXED, ids=[f[0].removesuffix(".konv") for f in FIXED])
def test_the_fixed_variant_passes_the_same_verification(capsys, tmp_path, name, wrong, right):
    text = (DATA / name).read_text()
    assert text.count(wrong) == 1
    spec = tmp_path / name
    spec.write_text(text.replace(wrong, right))
    code = main(verify_args(name, spec, tmp_path / "ce.konv"))
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "all properties hold" in out
