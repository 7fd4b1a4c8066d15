"""A Deployment's status and conditions (rules/controllers.konv, after upstream's
pkg/controller/deployment: sync.go calculateStatus, progress.go syncRolloutStatus and
util/deployment_util.go), minReadySeconds (podutil.IsPodAvailable) and progressDeadlineSeconds,
their validation (ValidateDeploymentSpec) and kubectl's views of them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.kube.manifests import loads
from tests.kube import deployment, node, run

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/kube"


def template(image: str, cpu: str = "100m") -> str:
    return (f'update deployment web {{\n    template {{ labels {{ app: "web" }}  '
            f'container main {{ image: "{image}"  cpu: {cpu}  memory: 64Mi }} }}\n  }}')


TOO_BIG = template("web:2", cpu="64")  # fits no node: the new pods stay Pending
FIXED = template("web:3")


def web(replicas: int = 4, extra: str = "", nodes: str = node("n1", cpu="8")) -> str:
    """A deployment `web` (100m each); `extra` goes into its body, beside replicas."""
    return nodes + deployment("web", replicas=replicas).replace("deployment web {", "deployment web {  " + extra)


def scenario(*events: str) -> str:
    return 'scenario "s" {\n' + "".join(f"  {e}\n" for e in events) + "}\n"


def conditions(d: dict) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in d["conditions"]]


def condition(d: dict, type_: str) -> dict:
    return next(c for c in d["conditions"] if c["type"] == type_)


def counts(d: dict) -> tuple[int, ...]:
    return tuple(d[f] for f in ("createdReplicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                "unavailableReplicas"))


def deployment_states(c) -> list[tuple[int, dict]]:
    """The deployment `web` at each revision it changed: (revision, object)."""
    out, last = [], None
    for revision, objects in c.states():
        d = next((o for o in objects if o["kind"] == "Deployment" and o["name"] == "web"), None)
        if d is not None and d != last:
            out.append((revision, d))
            last = d
    return out


def progressing_reasons(c) -> list[str]:
    reasons = []
    for _, d in deployment_states(c):
        reason = next((x["reason"] for x in d["conditions"] if x["type"] == "Progressing"), None)
        if reason is not None and (not reasons or reasons[-1] != reason):
            reasons.append(reason)
    return reasons


# ---- status counts (calculateStatus) -----------------------------------------------------------

def test_a_complete_deployment_counts_every_replica_updated_ready_and_available():
    d = run(web()).get("Deployment", "web")
    assert counts(d) == (4, 4, 4, 4, 0)
    rs = run(web()).of("ReplicaSet")[0]
    assert (rs["readyReplicas"], rs["availableReplicas"]) == (4, 4)


def test_a_stuck_rollout_counts_the_old_and_the_pending_new_pods():
    # maxSurge 1, maxUnavailable 1 of 4: one old pod goes, two new ones wait Pending.
    d = run(web() + scenario(f"at 1m: {TOO_BIG}")).get("Deployment", "web")
    assert counts(d) == (5, 2, 3, 3, 2)  # total, updated, ready, available, unavailable


def test_the_status_counts_through_a_rollout_stay_consistent_and_end_complete():
    c = run(web(extra="minReadySeconds: 30") + scenario(f"at 1m: {template('web:2')}"), history=True)
    seen = []
    for _, d in deployment_states(c):
        assert d["availableReplicas"] <= d["readyReplicas"] <= d["createdReplicas"]
        assert d["updatedReplicas"] <= d["createdReplicas"]
        seen.append(counts(d))
    # mid-rollout: 5 pods (one surge), some updated, not all available
    assert any(total == 5 and 0 < updated < 5 for total, updated, *_ in seen)
    assert seen[-1] == (4, 4, 4, 4, 0)


@settings(max_examples=12)
@given(replicas=st.integers(1, 5), surge=st.sampled_from(["0", "1", '"25%"']),
       unavailable=st.sampled_from(["1", '"25%"', '"50%"']), min_ready=st.sampled_from([0, 10, 45]))
def test_every_rolling_update_ends_complete_with_its_conditions(replicas, surge, unavailable, min_ready):
    extra = f"maxSurge: {surge}  maxUnavailable: {unavailable}  minReadySeconds: {min_ready}"
    c = run(web(replicas=replicas, extra=extra) + scenario(f"at 1m: {template('web:2')}"))
    d = c.get("Deployment", "web")
    assert counts(d) == (replicas, replicas, replicas, replicas, 0)
    assert conditions(d) == [("Available", "True", "MinimumReplicasAvailable"),
                             ("Progressing", "True", "NewReplicaSetAvailable")]
    assert [rs["availableReplicas"] for rs in sorted(c.of("ReplicaSet"), key=lambda r: r["revision"])] == [0, replicas]


# ---- minReadySeconds (IsPodAvailable) ---------------------------------------------------------

def test_min_ready_seconds_delays_a_pods_availability_on_the_virtual_clock():
    c = run(web(extra="minReadySeconds: 30"), history=True)
    assert c.clock == 31  # the engine waited for the pods to become available (strictly after 30 s)
    seen = [(d["readyReplicas"], d["availableReplicas"]) for _, d in deployment_states(c)]
    assert (4, 0) in seen and seen[-1] == (4, 4)
    writes = c.writes(kind="ReplicaSet", rule="report_ready")
    assert [w.clock for w in writes] == [0, 31]  # ready at 0s, available once ready more than 30s


def test_without_min_ready_seconds_only_ready_pods_are_available():
    # Pods whose readiness probe fails run but are never ready, so never available either.
    probe = 'readinessProbe { httpGet { path: "/healthz"  port: 8080 }  failing: true }'
    c = run(node("n1", cpu="8") + deployment("web", replicas=3, container_extra=probe))
    rs = c.of("ReplicaSet")[0]
    assert (rs["readyReplicas"], rs["availableReplicas"]) == (0, 0)
    assert counts(c.get("Deployment", "web")) == (3, 3, 0, 0, 3)


def test_a_replica_set_takes_its_deployments_min_ready_seconds():
    c = run(web(extra="minReadySeconds: 30") + scenario("at 1m: update deployment web { minReadySeconds: 45 }"))
    assert [rs["minReadySeconds"] for rs in c.of("ReplicaSet")] == [45]


def test_min_ready_seconds_paces_the_rolling_update():
    # An old pod goes only once a new one has been ready more than 30 s (maxUnavailable counts available pods).
    slow = run(web(extra="minReadySeconds: 30") + scenario(f"at 1m: {template('web:2')}"), history=True)
    assert sorted({w.clock for w in slow.writes(rule="scale_down_old")}) == [60, 91, 122]
    fast = run(web() + scenario(f"at 1m: {template('web:2')}"))
    assert {w.clock for w in fast.writes(rule="scale_down_old")} == {60}
    assert counts(slow.get("Deployment", "web")) == (4, 4, 4, 4, 0)


# ---- Available --------------------------------------------------------------------------------

def test_available_is_false_while_below_replicas_less_max_unavailable():
    # Two of four pods fit (1 cpu each on 2 cpus): minimum availability is 3.
    d = run(web(nodes=node("n1", cpu="2")).replace("cpu: 100m", "cpu: 1")).get("Deployment", "web")
    assert condition(d, "Available")["status"] == "False"
    assert condition(d, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert condition(d, "Available")["message"] == "Deployment does not have minimum availability."


def test_available_is_true_with_minimum_availability():
    d = run(web()).get("Deployment", "web")
    assert condition(d, "Available")["message"] == "Deployment has minimum availability."
    assert conditions(d) == [("Available", "True", "MinimumReplicasAvailable"),
                             ("Progressing", "True", "NewReplicaSetAvailable")]


def test_a_recreate_deployment_is_unavailable_while_its_pods_are_replaced():
    spec = web(extra='strategy: "Recreate"  minReadySeconds: 10') + scenario(f"at 1m: {template('web:2')}")
    c = run(spec, history=True)
    available = [c["status"] for _, d in deployment_states(c) for c in d["conditions"] if c["type"] == "Available"]
    assert "False" in available and available[-1] == "True"
    assert conditions(c.get("Deployment", "web"))[-1] == ("Progressing", "True", "NewReplicaSetAvailable")


# ---- Progressing (syncRolloutStatus) ----------------------------------------------------------

def test_progressing_reasons_follow_the_rollout_in_sequence():
    c = run(web(extra="minReadySeconds: 30") + scenario(f"at 1m: {template('web:2')}"), history=True)
    assert progressing_reasons(c) == ["NewReplicaSetCreated", "ReplicaSetUpdated", "NewReplicaSetAvailable",
                                      "NewReplicaSetCreated", "ReplicaSetUpdated", "NewReplicaSetAvailable"]
    d = c.get("Deployment", "web")
    new = next(rs["name"] for rs in c.of("ReplicaSet") if rs["revision"] == 2)
    assert condition(d, "Progressing")["message"] == f'ReplicaSet "{new}" has successfully progressed.'


def test_progressing_keeps_its_transition_time_while_true_and_moves_its_update_time():
    c = run(web(extra="minReadySeconds: 30") + scenario(f"at 1m: {template('web:2')}"))
    p = condition(c.get("Deployment", "web"), "Progressing")
    assert (p["lastTransitionTime"], p["lastUpdateTime"]) == (0, 122)


def test_the_new_replica_set_is_announced_with_the_revision_in_one_write():
    c = run(web())
    (w,) = c.writes(kind="Deployment", rule="record_revision")
    d = run(web() + scenario("at 1m: update deployment web { replicas: 4 }"), history=True)
    first = next(x for _, x in deployment_states(d) if x["revision"] == 1)
    new = d.of("ReplicaSet")[0]["name"]
    assert first["conditions"] == [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
                                    "message": f'Created new replica set "{new}"', "lastUpdateTime": 0,
                                    "lastTransitionTime": 0}]
    assert w.clock == 0


def test_a_deployment_that_writes_its_status_once_when_its_pods_start_together():
    c = run(web())
    assert len(c.writes(kind="Deployment", rule="report_status")) == 1


def test_progress_deadline_exceeded_when_new_pods_cannot_schedule():
    c = run(web() + scenario(f"at 1m: {TOO_BIG}"), history=True)
    d = c.get("Deployment", "web")
    new = next(rs["name"] for rs in c.of("ReplicaSet") if rs["revision"] == 2)
    p = condition(d, "Progressing")
    assert (p["status"], p["reason"], p["message"]) == (
        "False", "ProgressDeadlineExceeded", f'ReplicaSet "{new}" has timed out progressing.')
    # The last progress was at 1m: DeploymentTimedOut is strict, so the deadline is past a second after 600 s.
    assert (p["lastUpdateTime"], p["lastTransitionTime"]) == (661, 661)
    assert [w.clock for w in c.writes(kind="Deployment", rule="report_status")][-1] == 661
    assert condition(d, "Available")["status"] == "True"  # the old pods keep serving
    assert len(c.ready_pods("web")) == 3


def test_a_shorter_progress_deadline_times_out_sooner():
    d = run(web(extra="progressDeadlineSeconds: 120") + scenario(f"at 1m: {TOO_BIG}")).get("Deployment", "web")
    assert condition(d, "Progressing")["lastTransitionTime"] == 181


def test_a_fixed_template_recovers_a_rollout_past_its_deadline():
    c = run(web() + scenario(f"at 1m: {TOO_BIG}", f"at 20m: {FIXED}"), history=True)
    d = c.get("Deployment", "web")
    p = condition(d, "Progressing")
    assert (p["status"], p["reason"], p["lastTransitionTime"]) == ("True", "NewReplicaSetAvailable", 1200)
    assert progressing_reasons(c)[-3:] == ["ProgressDeadlineExceeded", "NewReplicaSetCreated",
                                           "NewReplicaSetAvailable"]
    assert counts(d) == (4, 4, 4, 4, 0)


def test_a_deployment_without_a_progress_deadline_has_no_progressing_condition():
    d = run(web(extra="progressDeadlineSeconds: 2147483647") + scenario(f"at 1m: {TOO_BIG}")).get(
        "Deployment", "web")
    assert conditions(d) == [("Available", "True", "MinimumReplicasAvailable")]


def test_a_rollback_to_an_existing_set_without_a_progressing_condition_finds_it():
    # getNewReplicaSet: a set that exists already, and no Progressing condition to keep.
    spec = web(extra="progressDeadlineSeconds: 2147483647") + scenario(
        f"at 1m: {template('web:2')}",
        'at 2m: update deployment web {\n    progressDeadlineSeconds: 600\n    template { labels { app: "web" }  '
        'container main { image: "web:1"  cpu: 100m  memory: 64Mi } }\n  }')
    c = run(spec, history=True)
    assert "FoundNewReplicaSet" in progressing_reasons(c)
    assert conditions(c.get("Deployment", "web"))[-1] == ("Progressing", "True", "NewReplicaSetAvailable")


def ready_pods_of(spec: str) -> list[str]:
    return sorted(p["name"] for p in run(spec).of("Pod") if p.get("ready"))


def test_a_complete_rollout_keeps_new_replica_set_available_while_lost_pods_come_back():
    # isCompleteDeployment: once NewReplicaSetAvailable, pods lost and becoming available again one by one
    # are not progress (available rises 2 -> 3 -> 4 without the condition moving).
    spec = web(extra="minReadySeconds: 30")
    a, b, *_ = ready_pods_of(spec)
    c = run(spec + scenario(f"at 2m: kill pod {a}", f"at 130s: kill pod {b}"), history=True)
    states = [d for _, d in deployment_states(c)]
    states = states[next(i for i, d in enumerate(states) if d["availableReplicas"] == 4):]
    assert [d["availableReplicas"] for d in states] == [4, 3, 2, 3, 4]
    for d in states:
        p = condition(d, "Progressing")
        assert (p["reason"], p["lastUpdateTime"], p["lastTransitionTime"]) == ("NewReplicaSetAvailable", 31, 0)


def test_more_available_pods_are_progress_that_moves_the_deadline():
    # DeploymentProgressing counts more available pods: an old pod replaced during a stuck rollout and
    # available at 331 s restarts the 600 s deadline from there.
    spec = web(extra="minReadySeconds: 30") + scenario(f"at 1m: {TOO_BIG}")
    old = ready_pods_of(spec)[0]
    c = run(spec[:-2] + f"  at 5m: kill pod {old}\n}}\n", history=True)
    assert progressing_reasons(c)[-2:] == ["ReplicaSetUpdated", "ProgressDeadlineExceeded"]
    assert condition(c.get("Deployment", "web"), "Progressing")["lastTransitionTime"] == 932


def test_a_rollback_completing_in_one_batch_names_the_set_rolled_back_to():
    # Upstream passes through ReplicaSetUpdated and ends NewReplicaSetAvailable of the current new set,
    # not the set rolled back from (now at 0 replicas).
    c = run(web() + scenario(f"at 1m: {template('web:2')}", f"at 2m: {template('web:1')}"))
    current = next(rs["name"] for rs in c.of("ReplicaSet") if rs["replicas"] == 4)
    p = condition(c.get("Deployment", "web"), "Progressing")
    assert (p["reason"], p["message"], p["lastUpdateTime"], p["lastTransitionTime"]) == (
        "NewReplicaSetAvailable", f'ReplicaSet "{current}" has successfully progressed.', 120, 0)


def test_a_deadline_turned_on_during_a_stuck_rollout_finds_the_new_set_and_times_out():
    # getNewReplicaSet writes FoundNewReplicaSet on any sync with a deadline and no Progressing condition.
    spec = web(extra="progressDeadlineSeconds: 2147483647") + scenario(
        f"at 1m: {TOO_BIG}", "at 2m: update deployment web { progressDeadlineSeconds: 600 }")
    c = run(spec, history=True)
    assert progressing_reasons(c) == ["FoundNewReplicaSet", "ProgressDeadlineExceeded"]
    assert condition(c.get("Deployment", "web"), "Progressing")["lastTransitionTime"] == 721


# ---- order independence -----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("events", [(f"at 1m: {TOO_BIG}", f"at 20m: {FIXED}"), (f"at 1m: {template('web:2')}",)])
def test_the_status_is_the_same_whatever_the_firing_order(seed, events):
    spec = web(extra="minReadySeconds: 30") + scenario(*events)
    fixed = run(spec).get("Deployment", "web")
    shuffled = run(spec, order="random", seed=seed).get("Deployment", "web")
    keep = lambda d: json.dumps({k: v for k, v in d.items() if k != "resourceVersion"}, sort_keys=True, default=str)  # noqa: E731
    assert keep(shuffled) == keep(fixed)


def test_a_recreate_rollout_ends_the_same_whatever_the_firing_order():
    # The ready and available counts come from the sets, as calculateStatus's: a shuffled order that
    # writes the status before report_ready must not call the rollout complete before a new pod runs.
    spec = web(replicas=3, extra='strategy: "Recreate"  minReadySeconds: 5') + scenario(f"at 1m: {template('web:2')}")
    store = ("resourceVersion", "createdRevision")  # the store's bookkeeping, not the state
    keep = lambda c: json.dumps([{k: v for k, v in o.items() if k not in store}  # noqa: E731
                                 for o in c.of("Deployment") + c.of("ReplicaSet")], sort_keys=True, default=str)
    fixed = keep(run(spec))
    for seed in range(1, 6):
        assert keep(run(spec, order="random", seed=seed)) == fixed, seed


# ---- validation (ValidateDeploymentSpec) --------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ("minReadySeconds: -1", "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("progressDeadlineSeconds: -5", "spec.progressDeadlineSeconds: Invalid value: -5: must be greater than or "
                                    "equal to 0"),
    ("minReadySeconds: 30  progressDeadlineSeconds: 30",
     "spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds"),
])
def test_bad_min_ready_or_progress_deadline_is_refused_as_kubernetes_does(fields, message, tmp_path, capsys):
    path = tmp_path / "web.konv"
    path.write_text(web(extra=fields))
    code = main(["reconcile", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and f'Deployment "web" is invalid: {message}' in err and "Traceback" not in err


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  minReadySeconds: 10
  progressDeadlineSeconds: %s
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: i}]}}
status:
  replicas: 2
  conditions: [{type: Available, status: "True"}]
"""


def test_a_manifest_reads_min_ready_and_progress_deadline_and_ignores_its_status():
    m = loads(MANIFEST % 120, "web.yaml")
    assert m.warnings == ()
    (kind, obj, *_), = m.objects
    assert (obj["minReadySeconds"], obj["progressDeadlineSeconds"]) == (10, 120)
    assert "conditions" not in obj and "createdReplicas" not in obj


def test_a_manifest_with_a_deadline_not_above_min_ready_is_refused_at_its_position(tmp_path):
    path = tmp_path / "web.yaml"
    path.write_text(MANIFEST % 10)
    out = subprocess.run([sys.executable, "-m", "engine.cli", "get", "deploy", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (f'{path}:2:7: error[E200]: Deployment "web" is invalid: spec.progressDeadlineSeconds: Invalid value: '
            "10: must be greater than minReadySeconds") in out.stderr


# ---- views ---------------------------------------------------------------------------------------

def test_get_deployments_reads_the_status(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["get", "deployments", "specs/rollout.konv", "--scenario", "a release too big to schedule"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].split()[:4] == ["api", "4/4", "4", "4"]
    assert out.splitlines()[2].split()[:4] == ["shop", "3/4", "2", "3"]


def test_describe_deployment_shows_the_stuck_rollout_as_kubectl_does(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["describe", "deployment/shop", "specs/rollout.konv", "--scenario", "a release too big to schedule"])
    out = capsys.readouterr().out
    assert code == 0
    path = GOLDEN / "describe_deployment_stuck.txt"
    if os.environ.get("KONVERGE_REGEN"):
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8")
    assert "Replicas:               4 desired | 2 updated | 5 total | 3 available | 2 unavailable\n" in out
    assert "  Progressing   False    ProgressDeadlineExceeded\n" in out
