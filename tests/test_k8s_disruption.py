"""PodDisruptionBudgets, the eviction API and `kubectl drain` (rules/disruption.konv), after
upstream's pkg/controller/disruption/disruption_test.go (the budget's status from its pods and
their controllers' scale), pkg/registry/core/pod/storage/eviction_test.go (which evictions a
budget allows, decrements and refuses) and k8s.io/kubectl/pkg/drain (cordon, evict every pod
but a DaemonSet's, retry a refusal every 5 s, done once the pods are gone)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests.kube import deployment, node, run

BIG = node("big", cpu="16", memory="32Gi")  # LeastAllocated puts a workload's pods here first


def budget(extra: str, name: str = "web", selector: str = 'app: "web"') -> str:
    return f"poddisruptionbudget {name} {{\n  selector {{ {selector} }}\n  {extra}\n}}\n"


def status(c, name="web"):
    b = c.get("PodDisruptionBudget", name)
    return b["expectedPods"], b["desiredHealthy"], b["currentHealthy"], b["disruptionsAllowed"]


def evictions(c):
    """(virtual clock, pod, rule) of each eviction the drain made, in order."""
    return [(w.clock, w.name, w.rule) for w in c.writes(kind="Pod") if w.rule and w.rule.startswith("evict")]


@pytest.mark.parametrize("replicas, bound, counts", [
    # TestMinAvailable / TestIntegerMinAvailable: desired is the count, expected the pods.
    (3, "minAvailable: 2", (3, 2, 3, 1)),
    # TestReplicaSet / TestMultipleControllers: a percentage of the controller's scale, rounded up.
    (5, 'minAvailable: "50%"', (5, 3, 5, 2)),
    # TestMaxUnavailable: expected less maxUnavailable.
    (3, "maxUnavailable: 1", (3, 2, 3, 1)),
    # GetScaledValueFromIntOrPercent(roundUp true): 34% of 3 is 2 unavailable.
    (3, 'maxUnavailable: "34%"', (3, 1, 3, 2)),
    # A budget that keeps every pod: no disruption.
    (3, 'minAvailable: "100%"', (3, 3, 3, 0)),
])
def test_the_budget_status_follows_its_pods_and_their_controllers_scale(replicas, bound, counts):
    c = run(node("n1") + deployment("web", replicas=replicas) + budget(bound))
    assert status(c) == counts
    [condition] = c.get("PodDisruptionBudget", "web")["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        ("DisruptionAllowed", "True", "SufficientPods") if counts[3] else
        ("DisruptionAllowed", "False", "InsufficientPods"))


def test_pods_without_a_controller_count_for_an_integer_min_available_only():
    # getExpectedPodCount: an integer minAvailable counts the pods; maxUnavailable the controllers'
    # scale, which leaves unmanaged pods out (expectedPods 0: no disruption, updatePdbStatus).
    bare = "".join(f'pod bare-{i} {{ labels {{ app: "web" }}  container c {{ image: "c:1" }} }}\n'
                   for i in range(2))
    assert status(run(node("n1") + bare + budget("minAvailable: 1"))) == (2, 1, 2, 1)
    assert status(run(node("n1") + bare + budget("maxUnavailable: 1"))) == (0, 0, 2, 0)


def test_a_pod_whose_controller_has_no_scale_fails_the_sync_safe():
    # getExpectedScale: no finder answers for a DaemonSet's pod; failSafe sets disruptionsAllowed 0
    # and the condition SyncFailed with the error.
    ds = ('daemonset agent { template { labels { app: "agent" }  container a { image: "a:1" } } }\n')
    c = run(node("n1") + node("n2") + ds + budget("maxUnavailable: 1", name="agent", selector='app: "agent"'))
    b = c.get("PodDisruptionBudget", "agent")
    assert b["disruptionsAllowed"] == 0
    [condition] = b["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "SyncFailed")
    assert condition["message"] == "daemonsets.apps does not implement the scale subresource"  # getScaleController


def test_a_drain_evicts_one_pod_at_a_time_within_the_budget():
    # The eviction API decrements disruptionsAllowed with each eviction (checkAndDecrement), so the
    # second pod waits for the first one's replacement, and kubectl's retry 5 s later.
    c = run(BIG + node("n2") + node("n3") + deployment("web", replicas=3) + budget("minAvailable: 2")
            + 'scenario "drain" { at 1m: drain node big }\n')
    got = evictions(c)
    assert [(t, rule) for t, _, rule in got] == [(60, "evict_within_budget"), (65, "evict_within_budget"),
                                                 (70, "evict_within_budget")]
    assert not [p for p in c.pods("web") if p["node"] == "big"] and len(c.ready_pods("web")) == 3
    assert c.node("big")["unschedulable"] and c.of("Drain") == []  # kubectl drain is done
    assert status(c) == (3, 2, 3, 1) and c.get("PodDisruptionBudget", "web")["disruptedPods"] == {}


def test_a_drain_waits_for_the_replacement_to_be_ready():
    # The replacement of the first pod has nowhere to go until a node of its pool comes at 5m:
    # the budget refuses the second eviction (429) until then, and kubectl's retries, every 5 s
    # from the refusal, evict it at the first one after the replacement is Ready.
    pool = 'labels { pool: "a" }'
    c = run(node("a1", cpu="16", extra=pool) + node("b1")
            + deployment("web", replicas=3, extra='nodeSelector { pool: "a" }') + budget("minAvailable: 2")
            + 'scenario "drain" {\n  at 1m: drain node a1\n'
              '  at 298s: create node a2 { cpu: 4  memory: 8Gi  labels { pool: "a" } }\n}\n',
            history=True)
    times = [t for t, _, _ in evictions(c)]
    assert times == [60, 300, 305]
    ready = c.writes(kind="Pod", rule="start_containers")  # the kubelet starts it Running and Ready
    second = next(w for w in c.writes(kind="Pod") if w.rule == "evict_within_budget" and w.clock == 300)
    assert any(w.clock == 298 and w.revision < second.revision for w in ready)
    assert all(p["node"] == "a2" for p in c.pods("web"))


def test_a_pod_made_again_under_its_name_on_the_drained_node_is_not_evicted():
    # A StatefulSet pod that tolerates the cordon comes back under its name on the same node:
    # kubectl's waitForDelete sees a new UID, takes the pod for deleted and does not evict it
    # again; the drain finishes with each listed pod evicted once.
    sts = ('statefulset db {\n  replicas: 2\n  template {\n    labels { app: "db" }\n'
           '    tolerations: [{key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule"}]\n'
           '    container pg { image: "postgres:16"  cpu: 500m  memory: 1Gi }\n  }\n}\n')
    c = run(node("worker-1", cpu="8", memory="16Gi") + node("worker-2", cpu="2", memory="4Gi") + sts
            + budget("maxUnavailable: 1", name="db", selector='app: "db"')
            + 'scenario "drain" { at 1m: drain node worker-1 }\n')
    got = evictions(c)
    assert sorted(name for _, name, _ in got) == ["db-0", "db-1"]
    assert c.of("Drain") == [] and len(c.ready_pods("db")) == 2


def test_a_drain_a_budget_blocks_leaves_the_pods_and_comes_to_rest(capsys):
    # minAvailable 100%: every eviction is refused (429); the run converges with the pods in place.
    c = run(BIG + node("n2") + deployment("web", replicas=2) + budget('minAvailable: "100%"')
            + 'scenario "drain" { at 1m: drain node big }\n')
    assert evictions(c) == [] and len(c.ready_pods("web")) == 2
    [drain] = c.of("Drain")
    assert c.node("big")["unschedulable"] and len(drain["pods"]) == 2 and drain["retryAt"] == 65
    assert main(["describe", "node/worker-1", "tests/data/drain-stuck.konv", "--scenario", "drain a worker"]) == 0
    out = capsys.readouterr().out
    assert "Drain:            3 pod(s) left to evict, refused evictions retried every 5s from 65s\n" in out
    assert ("  default/db-0:   PodDisruptionBudget db allows no disruption: it needs 3 healthy pods and has 3 "
            "currently\n") in out


def test_the_stuck_drain_fails_its_expectation():
    # tests/data/drain-stuck.konv: the node is never emptied, so `expect eventually` fails (exit 4).
    assert main(["reconcile", "tests/data/drain-stuck.konv", "--scenario", "drain a worker"]) == 4


def test_a_pod_two_budgets_select_is_never_evicted(capsys):
    # eviction.go: "This pod has more than one PodDisruptionBudget, which the eviction subresource
    # does not support." (500), whatever the budgets allow. kubectl's evictPods retries a 429 only:
    # it gives up on the pod, the drain fails with the error, and deleting a budget later changes
    # nothing.
    spec = (BIG + node("n2") + deployment("web", replicas=3) + budget("minAvailable: 1")
            + budget("maxUnavailable: 2", name="web-too")
            + 'scenario "drain" {\n  at 1m: drain node big\n  at 5m: delete poddisruptionbudget web-too\n}\n')
    c = run(spec, history=True)
    on_big = [p["name"] for p in c.pods("web") if p["node"] == "big"]
    assert evictions(c) == [] and len(on_big) == 3
    [drain] = c.of("Drain")
    assert sorted(drain["failed"]) == sorted(f"default/{name}" for name in on_big)
    assert drain["failed"][f"default/{on_big[0]}"] == (
        f'error when evicting pods/"{on_big[0]}" -n "default": This pod has more than one '
        "PodDisruptionBudget, which the eviction subresource does not support.")
    assert drain["retryAt"] is None  # nothing retried
    assert [w.clock for w in c.writes(kind="Drain") if w.rule == "give_up"] == [60] * 3


def test_daemonset_pods_stay_and_terminal_pods_go():
    # --ignore-daemonsets: a DaemonSet's pod is not listed; a finished pod is evicted without a look
    # at budgets (canIgnorePDB).
    ds = 'daemonset agent { template { labels { app: "agent" }  container a { image: "a:1" } } }\n'
    done = ('job once { template { restartPolicy: "Never"  nodeSelector { "kubernetes.io/hostname": "big" }\n'
            '  container c { image: "c:1"  runFor: 1s } } }\n')
    c = run(BIG + node("n2") + ds + done + 'scenario "drain" { at 1m: drain node big }\n')
    assert [p["name"] for p in c.pods() if p["node"] == "big"] == [
        p["name"] for p in c.pods("agent") if p["node"] == "big"]
    assert [rule for _, _, rule in evictions(c)] == ["evict"]


UNHEALTHY = (BIG + node("n2") + deployment("web", replicas=2, labels='app: "web"  tier: "front"')
             + deployment("bad", replicas=1, labels='app: "bad"  tier: "front"', container_extra="crashing: true"))


@pytest.mark.parametrize("policy, min_available, evicted", [
    # IfHealthyBudget (the default): an unready pod goes while the budget is healthy (current 2 ≥
    # desired 2), without a disruption counted...
    ("IfHealthyBudget", 2, True),
    # ...not while it is short (current 2 < desired 3)...
    ("IfHealthyBudget", 3, False),
    # ...and AlwaysAllow lets it go whatever the budget.
    ("AlwaysAllow", 3, True),
])
def test_an_unhealthy_pod_is_evicted_as_the_policy_says(policy, min_available, evicted):
    c = run(UNHEALTHY + budget(f'minAvailable: {min_available}  unhealthyPodEvictionPolicy: "{policy}"',
                               selector='tier: "front"')
            + 'scenario "drain" { at 2m: drain node big }\n', until=121)
    # The crashing pod is in its back-off, not ready, at 2m; (its replacement is ready for a
    # moment after each restart, which lets the drain go on later: the run stops before).
    got = [(name.startswith("bad-"), rule) for _, name, rule in evictions(c)]
    assert got == ([(True, "evict")] if evicted else [])
    assert len([p for p in c.pods("web") if p["node"] == "big" and not p["deleting"]]) == 2  # budget holds
    assert c.get("PodDisruptionBudget", "web")["disruptedPods"] == {}  # no disruption counted


@pytest.mark.parametrize("extra, message", [
    ("minAvailable: 1  maxUnavailable: 1", "minAvailable and maxUnavailable cannot be both set"),
    ("minAvailable: -1", "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
    ('maxUnavailable: "120%"', "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, "
                               'StrVal:"120%"}: must not be greater than 100%'),
    ('unhealthyPodEvictionPolicy: "Never"', 'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": '
                                            'supported values: "AlwaysAllow", "IfHealthyBudget"'),
    # ValidateLabelSelector, as for every other selector.
    ('minAvailable: 1  matchExpressions: [{key: "app", operator: "Bogus", values: ["web"]}]',
     'spec.selector.matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator'),
    ('minAvailable: 1  matchExpressions: [{key: "app", operator: "Exists", values: ["web"]}]',
     "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists'"),
])
def test_validate_pod_disruption_budget_spec(extra, message):
    # pkg/apis/policy/validation: ValidatePodDisruptionBudgetSpec.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + budget(extra))
    assert message in str(e.value)


MANIFEST = """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  maxUnavailable: "50%"
  selector:
    matchLabels:
      app: web
    matchExpressions:
    - {key: tier, operator: In, values: [front]}
"""


def test_a_manifest_budget_is_read_and_shown_as_kubectl_shows_it(tmp_path, capsys):
    m = loads(MANIFEST, "pdb.yaml")
    [(_, b)] = m.objects
    assert (b["selector"], b["maxUnavailable"], b["matchExpressions"]) == (
        {"app": "web"}, "50%", [{"key": "tier", "operator": "In", "values": ["front"]}])
    assert not m.warnings
    (tmp_path / "pdb.yaml").write_text(MANIFEST)
    (tmp_path / "web.konv").write_text(node("n1") + deployment("web", replicas=4, labels='app: "web"  tier: "front"'))
    assert main(["get", "pdb", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE\n"
        "web    N/A             50%               2                     0s\n")
    assert main(["get", "poddisruptionbudgets.policy", str(tmp_path), "-o", "name"]) == 0
    assert capsys.readouterr().out == "poddisruptionbudget.policy/web\n"
    assert main(["describe", "pdb/web", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Selector:" in out and "app=web,tier in (front)" in out
    assert "\nMax unavailable:" in out and "Max Unavailable" not in out  # kubectl's label
    status_lines = out[out.index("Status:"):].splitlines()[:5]
    assert [line.split() for line in status_lines] == [
        ["Status:"], ["Allowed", "disruptions:", "2"], ["Current:", "4"], ["Desired:", "2"], ["Total:", "4"]]


def test_describe_shows_a_nil_budget_selector_as_unset(capsys, tmp_path):
    # describePodDisruptionBudget: `Selector: <unset>` for a nil selector (no pod), `Min available`.
    (tmp_path / "b.konv").write_text(node("n1") + "poddisruptionbudget none { minAvailable: 1 }\n")
    assert main(["describe", "pdb/none", str(tmp_path / "b.konv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ["Selector:", "<unset>"] in [line.split() for line in lines]
    assert ["Min", "available:", "1"] in [line.split() for line in lines]


def test_a_manifest_with_both_bounds_is_refused(tmp_path, capsys):
    (tmp_path / "pdb.yaml").write_text(MANIFEST.replace('maxUnavailable: "50%"', "maxUnavailable: 1\n  minAvailable: 1"))
    assert main(["reconcile", str(tmp_path / "pdb.yaml")]) == 1
    assert "minAvailable and maxUnavailable cannot be both set" in capsys.readouterr().err


@settings(max_examples=15, deadline=None)
@given(replicas=st.integers(2, 5), bound=st.integers(0, 5), kind=st.sampled_from(["minAvailable", "maxUnavailable"]))
def test_a_drain_never_takes_a_healthy_budget_below_its_desired_count(replicas, bound, kind):
    # The promise of a budget: while its pods start healthy, a drain never leaves fewer than
    # desiredHealthy of them ready; and with a disruption allowed and room elsewhere it finishes.
    bound = min(bound, replicas)
    desired = bound if kind == "minAvailable" else replicas - bound
    spec = (BIG + node("n2", cpu="8") + node("n3", cpu="8") + deployment("web", replicas=replicas)
            + budget(f"{kind}: {bound}")
            + 'scenario "drain" {\n  at 1m: drain node big\n'
              f'  expect always now() < 1m or count(pod p where p.labels.app == "web" and p.ready and not p.deleting)'
              f' >= {desired}\n}}\n')
    c = run(spec)
    assert not c.result.violations
    if desired < replicas:
        assert not [p for p in c.pods("web") if p["node"] == "big"]
        assert c.of("Drain") == []
    else:  # the budget allows nothing: no eviction, and the drain waits
        assert evictions(c) == [] and [d["name"] for d in c.of("Drain")] == ["big"]


def test_a_budget_per_deployment_costs_each_budget_its_own_pods_only(monkeypatch):
    # One budget per deployment: each pod's change must wake only its own budget, which reads only
    # its own pods (the index on pod labels), so the cost the budgets add grows with the pods, not
    # with pods × budgets (a namespace scan per budget made it quadratic).
    from engine.eval import Evaluator

    calls = [0]
    original = Evaluator.call

    def counting(self, slot, args):
        calls[0] += 1
        return original(self, slot, args)

    monkeypatch.setattr(Evaluator, "call", counting)

    def cost(workloads: int, budgets: bool) -> int:
        text = "".join(node(f"n{i}", cpu="64", memory="256Gi") for i in range(2))
        for w in range(workloads):
            text += deployment(f"web{w}", replicas=10, labels=f'app: "web{w}"')
            if budgets:
                text += budget("maxUnavailable: 1", name=f"web{w}", selector=f'app: "web{w}"')
        calls[0] = 0
        run(text)
        return calls[0]

    small, large = (cost(n, True) - cost(n, False) for n in (3, 9))
    assert large <= 4 * small  # 3× the budgets and 3× the pods: linear is 3×, quadratic 9×


def test_a_spec_importing_the_controllers_alone_checks_without_the_standard_rules(tmp_path):
    # controllers.konv names the PodDisruptionBudget kind (a terminating namespace deletes its
    # budgets): it is declared in kinds.konv, which controllers.konv imports, as every kind it names.
    from pathlib import Path

    rules = Path(__file__).resolve().parent.parent / "rules"
    spec = tmp_path / "spec.konv"
    spec.write_text(f'import "{rules / "controllers.konv"}"\nnode n1 {{ cpu: 4  memory: 8Gi }}\n')
    assert main(["check", "--no-std", str(spec)]) == 0
