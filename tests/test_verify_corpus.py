"""A corpus of deliberately wrong rule variants that `konverge verify` must catch.

Each spec in tests/data/verify/ replaces (or adds) a controller of the standard
control plane with a buggy one and, where the standard invariants
(rules/invariants.konv) do not state the broken promise, declares an `invariant`
of its own. Each test runs `verify` with a fixed seed and a narrowed fault set,
expects exit 4 and a counterexample file, and replays that file with
`reconcile`, which must report the failure again (exit 3: not converged; exit 4:
a violated invariant).

Time to catch (wall clock of each test with CI=true: search, shrinking and the
replay, measured on the development machine; about 10 s for the module; the
correct rules pass the same invocation, checked by hand when the corpus was
written):

| spec | caught by | shrunk to | time |
|---|---|---|---|
| scheduler-ignores-memory.konv | spec invariant "no bound pod is rejected for lack of memory" | no event (fails at rest) | ~1.0 s |
| replicaset-counts-failed-pods.konv | spec invariant "every replicaset has its ready replicas" | `crash pod` | ~2.0 s |
| lifecycle-never-evicts.konv | standard "fits its node's selectors and taints" and spec "no pod is left on a failed node past its toleration" | `fail node` | ~2.6 s |
| flapping-autoscaler.konv | converges (a cycle: the HPA against a replica cap) | `load horizontalpodautoscaler` | ~4.0 s |

Notes:
- Memory: the kubelet rejects a pod that overflows its node's memory (phase
  Failed, reason OutOfmemory) and a failed pod holds no resources, so the
  standard "no node is over capacity" invariant holds again at the fixed point;
  the spec states the scheduler's promise as "the kubelet never has to reject a
  pod for memory". Bare pods are used: under a ReplicaSet the rejected pod is
  replaced forever and the run fails to converge rather than the invariant.
- Eviction: invariants are checked at the fixed point, whose clock is that of
  the last write. Without an `evict` rule nothing wakes the controller when a
  300 s default toleration runs out, so a single `fail` is not a counterexample
  (the clock stops just after the taint) and the shrinker kept two events; the
  spec's pods tolerate the lifecycle taints for 0 s, so one `fail` suffices.
- Generated deletions are switched off (`--no-deletions`) where deleting the
  only node would break the spec's own invariant with correct rules too.
"""

from pathlib import Path

import pytest

from engine.cli import main

DATA = Path(__file__).parent / "data" / "verify"

CORPUS = [
    # spec, seed, examples, faults, extra options, message the verify report must contain,
    # the one event the shrunk counterexample keeps (None: it fails with no event)
    ("scheduler-ignores-memory.konv", 1, 5, "cordon", [],
     'invariant "no bound pod is rejected for lack of memory" does not hold', None),
    ("replicaset-counts-failed-pods.konv", 1, 10, "crash", ["--no-deletions"],
     'invariant "every replicaset has its ready replicas" does not hold', "crash pod default/web-"),
    ("lifecycle-never-evicts.konv", 1, 5, "fail", ["--no-deletions"],
     'invariant "no pod is left on a failed node past its toleration" does not hold', "fail node worker-1"),
    ("flapping-autoscaler.konv", 1, 5, "load", ["--no-deletions"],
     "the state repeats (a cycle)", "load horizontalpodautoscaler default/api"),
]


@pytest.mark.parametrize(("name", "seed", "examples", "faults", "extra", "message", "event"), CORPUS,
                         ids=[c[0].removesuffix(".konv") for c in CORPUS])
def test_a_wrong_rule_variant_is_caught_with_a_replayable_counterexample(
        capsys, tmp_path, name, seed, examples, faults, extra, message, event):
    spec = DATA / name
    out_file = tmp_path / "ce.konv"
    code = main(["verify", str(spec), "--examples", str(examples), "--seed", str(seed),
                 "--faults", faults, *extra, "--out", str(out_file)])
    out, _ = capsys.readouterr()
    assert code == 4, out
    assert message in out, out
    assert out_file.exists()
    events = [line.strip() for line in out_file.read_text().splitlines() if line.strip().startswith("at ")]
    if event is None:
        assert events == []
    else:
        assert len(events) == 1 and event in events[0], events  # shrunk to the fault that exposes the bug
    code = main(["reconcile", str(spec), "--scenario", str(out_file)])
    replayed, _ = capsys.readouterr()
    assert code in (3, 4), replayed
    if code == 3:
        assert "NOT converged" in replayed
    else:
        assert "violated: invariant" in replayed
