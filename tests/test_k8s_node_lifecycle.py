"""Heartbeats, the node lifecycle controller and the taint manager (rules/node_lifecycle.konv)."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import kubelet_model as model
from tests.kube import deployment, node, run

SERVICE = 'service web { selector { app: "web" }  port http { port: 80  targetPort: 80 } }\n'


def pod(name, node_name, tolerations=None, labels='app: "web"'):
    tol = f"tolerations: [{tolerations}]" if tolerations is not None else ""
    return (f'pod {name} {{ labels {{ {labels} }} node: "{node_name}" {tol}\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi }} }}\n')


def first_write(c, rule, name=None):
    return next(w for w in c.result.trace if w.rule == rule and (name is None or w.name == name))


def test_node_without_heartbeat_becomes_unknown_after_the_40s_grace_with_the_unreachable_taint():
    c = run(node("n1") + node("n2") + 'scenario "fail" { at 30s: fail node n1 }')
    n1 = c.node("n1")
    assert n1["readyCondition"] == "Unknown" and n1["ready"] is False
    [taint] = [t for t in n1["taints"] if t["key"] == "node.kubernetes.io/unreachable"]
    assert taint["effect"] == "NoExecute"
    marked = first_write(c, "mark_unknown", "n1")
    assert 70 <= marked.clock <= 71  # 40 s after the last heartbeat at 30 s
    assert taint["timeAdded"] == marked.clock
    assert c.node("n2")["ready"] and c.node("n2")["taints"] == []


def test_runtime_failure_makes_the_node_not_ready_with_the_not_ready_taint():
    c = run(node("n1") + 'scenario "runtime" { at 30s: runtime_down node n1 }')
    n1 = c.node("n1")
    assert n1["readyCondition"] == "False" and not n1["ready"]
    assert [t["key"] for t in n1["taints"]] == ["node.kubernetes.io/not-ready"]
    assert n1["taints"][0]["timeAdded"] == 30


def test_pods_on_an_unreachable_node_leave_endpoints_when_it_turns_unknown():
    c = run(node("n1") + node("n2") + pod("web-1", "n1") + pod("web-2", "n2") + SERVICE
            + 'scenario "fail" { at 30s: fail node n1 }', until=100)
    assert not c.get("Pod", "web-1")["ready"] and not c.get("Pod", "web-1")["deleting"]
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == ["web-2"]
    assert [a["pod"] for a in c.get("Endpoints", "web")["notReadyAddresses"]] == ["web-1"]


def test_pods_of_a_node_whose_kubelet_reports_not_ready_keep_their_readiness_and_endpoints():
    # MarkPodsNotReady runs only when the controller turns a Ready node Unknown; a kubelet that
    # reports Ready=False (its runtime down) leaves its pods' Ready as it was until eviction.
    c = run(node("n1") + node("n2") + pod("web-1", "n1") + pod("web-2", "n2") + SERVICE
            + 'scenario "runtime" { at 30s: runtime_down node n1 }', until=100)
    assert c.node("n1")["readyCondition"] == "False"
    assert c.get("Pod", "web-1")["ready"] and not c.get("Pod", "web-1")["deleting"]
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == ["web-1", "web-2"]


def test_a_node_not_ready_before_its_kubelet_stops_keeps_its_pods_readiness():
    c = run(node("n1") + pod("web-1", "n1") + 'scenario "runtime, then kubelet" { at 30s: runtime_down node n1\n'
            ' at 50s: fail node n1 }', until=100)
    assert c.node("n1")["readyCondition"] == "Unknown" and c.get("Pod", "web-1")["ready"]


def test_failing_a_failed_kubelet_again_does_not_renew_its_heartbeat():
    c = run(node("n1") + 'scenario "fail twice" { at 30s: fail node n1\n at 60s: fail node n1 }')
    assert first_write(c, "mark_unknown", "n1").clock == 71  # 40 s after the first failure, not the second


def test_pod_with_the_default_toleration_is_evicted_300s_after_the_taint():
    c = run(node("n1") + node("n2") + pod("web-1", "n1") + 'scenario "fail" { at 30s: fail node n1 }')
    evicted = first_write(c, "evict", "web-1")
    tainted = c.node("n1")["taints"][0]["timeAdded"]
    assert evicted.clock == tainted + 300


def test_pods_get_the_default_300s_not_ready_and_unreachable_tolerations():
    c = run(node("n1") + pod("web-1", "n1"))
    tolerations = {(t["key"], t["operator"], t["effect"], t["tolerationSeconds"]) for t in c.get("Pod", "web-1")["tolerations"]}
    assert tolerations == {("node.kubernetes.io/not-ready", "Exists", "NoExecute", 300),
                           ("node.kubernetes.io/unreachable", "Exists", "NoExecute", 300)}


def test_pod_tolerating_not_ready_for_60s_is_evicted_at_60s():
    tol = '{key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 60}'
    c = run(node("n1") + pod("quick", "n1", tol) + pod("slow", "n1")
            + 'scenario "runtime" { at 30s: runtime_down node n1 }')
    assert first_write(c, "evict", "quick").clock == 90
    assert first_write(c, "evict", "slow").clock == 330
    # Its kubelet, whose runtime is down, syncs no pod: the evicted pods stay Terminating until it is back.
    assert c.get("Pod", "quick")["deleting"] and c.get("Pod", "slow")["deleting"]
    c = run(node("n1") + pod("quick", "n1", tol) + pod("slow", "n1")
            + 'scenario "runtime" { at 30s: runtime_down node n1\n at 2m: recover node n1 }')
    assert first_write(c, "evict", "quick").clock == 90 and not c.writes(rule="evict", name="slow")
    assert c.get("Pod", "quick") is None and [w.clock for w in c.writes(verb="delete", name="quick")] == [120]
    assert not c.get("Pod", "slow")["deleting"]


def test_pod_not_tolerating_a_new_no_execute_taint_is_evicted_at_once():
    c = run(node("n1") + pod("plain", "n1") + pod("tolerant", "n1", '{key: "maint", operator: "Exists", effect: "NoExecute"}')
            + 'scenario "taint" { at 1m: update node n1 { taints: [{key: "maint", effect: "NoExecute"}] } }')
    assert first_write(c, "evict", "plain").clock == 60
    assert c.get("Pod", "plain") is None  # the kubelet removed it
    tolerant = c.get("Pod", "tolerant")
    assert tolerant is not None and not tolerant["deleting"] and tolerant["ready"]


def test_pod_tolerating_without_seconds_is_never_evicted():
    tol = '{key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute"}'
    c = run(node("n1") + pod("stay", "n1", tol) + pod("go", "n1") + 'scenario "fail" { at 30s: fail node n1 }')
    assert not c.get("Pod", "stay")["deleting"]
    assert c.get("Pod", "go")["deleting"]
    assert not c.writes(rule="evict", name="stay")


def test_lost_workers_pods_are_evicted_and_replaced_on_healthy_nodes():
    c = run(node("n1") + node("n2") + deployment("web", replicas=4) + 'scenario "fail" { at 30s: fail node n1 }')
    live = c.pods("web", live=True)
    assert len(live) == 4 and all(p["node"] == "n2" and p["ready"] for p in live)
    # Evicted pods stay terminating: no kubelet can remove them while n1 is down.
    assert all(p["node"] == "n1" for p in c.pods("web") if p["deleting"])


def test_recovered_node_loses_its_taint_becomes_ready_and_removes_evicted_pods():
    c = run(node("n1") + node("n2") + deployment("web", replicas=2)
            + 'scenario "blip" { at 30s: fail node n1\n at 10m: recover node n1 }')
    n1 = c.node("n1")
    assert n1["ready"] and n1["readyCondition"] == "True" and n1["taints"] == []
    assert all(not p["deleting"] for p in c.pods("web"))
    assert len(c.ready_pods("web")) == 2


def test_node_back_within_the_toleration_keeps_its_pods():
    c = run(node("n1") + pod("web-1", "n1") + 'scenario "blip" { at 30s: fail node n1\n at 3m: recover node n1 }')
    p = c.get("Pod", "web-1")
    assert p is not None and p["ready"] and not p["deleting"]
    assert c.node("n1")["taints"] == []


def test_control_plane_node_is_tainted_no_schedule_and_runs_no_workloads():
    c = run(node("cp", extra="controlPlane: true") + node("w1") + deployment("web", replicas=2))
    assert c.node("cp")["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule",
                                       "timeAdded": None}]
    assert all(p["node"] == "w1" for p in c.pods("web"))


UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def test_cordon_taints_the_node_no_schedule_and_uncordon_removes_the_taint():
    # TaintNodesByCondition (node_lifecycle_controller.go doNoScheduleTaintingPass): a node whose
    # spec.unschedulable is true carries node.kubernetes.io/unschedulable:NoSchedule, stamped by
    # SwapNodeControllerTaint; uncordoned, it loses it. Its pods stay: NoSchedule does not evict.
    spec = node("n1") + node("n2") + deployment("web", replicas=2)
    cordoned = run(spec + 'scenario "cordon" { at 1m: cordon node n1 }')
    assert cordoned.node("n1")["taints"] == [{"key": UNSCHEDULABLE, "value": "", "effect": "NoSchedule",
                                              "timeAdded": 60}]
    assert cordoned.node("n2")["taints"] == []
    assert sorted(p["node"] for p in cordoned.pods("web", live=True)) == ["n1", "n2"]
    assert cordoned.result.violations == ()
    back = run(spec + 'scenario "cordon" { at 1m: cordon node n1\n at 2m: uncordon node n1 }')
    assert back.node("n1")["taints"] == [] and not back.node("n1")["unschedulable"]
    assert [w.clock for w in back.writes(rule="taint_unschedulable", name="n1")] == [60, 120]


def test_a_cordoned_nodes_pending_pod_names_it_unschedulable_once():
    # NodeUnschedulable runs before TaintToleration and a node fails on its first failing filter,
    # so the cordon's taint adds no "untolerated taint" to the message.
    c = run(node("n1", extra="unschedulable: true") + deployment("web"))
    assert c.node("n1")["taints"][0]["key"] == UNSCHEDULABLE
    [p] = c.pods("web")
    assert p["message"] == "0/1 nodes are available: 1 node(s) were unschedulable."


def test_a_daemonset_pod_is_placed_on_a_cordoned_tainted_node():
    # The DaemonSet controller's pods tolerate node.kubernetes.io/unschedulable:NoSchedule
    # (AddOrUpdateDaemonPodTolerations), for NodeUnschedulable and TaintToleration alike.
    ds = ('daemonset agent { template { labels { app: "agent" }\n'
          '  container main { image: "agent:1"  cpu: 100m  memory: 64Mi } } }\n')
    c = run(node("n1", extra="unschedulable: true") + ds)
    assert c.node("n1")["taints"][0]["key"] == UNSCHEDULABLE
    [p] = c.pods("agent")
    assert p["node"] == "n1" and p["ready"]


def test_the_cordon_taint_is_the_no_schedule_one_and_other_effects_of_its_key_are_left_alone():
    # doNoScheduleTaintingPass filters the node's taints by effect NoSchedule (TaintSetFilter): a
    # spec's NoExecute taint of that key is no cordon's, and a cordoned node with a
    # PreferNoSchedule one of that key still gets the NoSchedule taint (review RN).
    c = run(node("n1", extra=f'taints: [{{key: "{UNSCHEDULABLE}", effect: "NoExecute"}}]')
            + node("n2", extra=f'unschedulable: true  taints: [{{key: "{UNSCHEDULABLE}", effect: "PreferNoSchedule"}}]'))
    assert [t["effect"] for t in c.node("n1")["taints"]] == ["NoExecute"]
    assert [t["effect"] for t in c.node("n2")["taints"]] == ["PreferNoSchedule", "NoSchedule"]


def test_pods_on_a_failed_node_are_not_counted_ready_even_before_eviction():
    c = run(node("n1") + pod("web-1", "n1") + 'scenario "fail" { at 30s: fail node n1 }', until=200)
    p = c.get("Pod", "web-1")
    assert not p["ready"] and not p["deleting"]


def test_no_new_pod_is_scheduled_onto_an_unreachable_node_despite_default_tolerations():
    c = run(node("n1", cpu="8") + node("n2", cpu="1") + 'scenario "fail then create" { at 30s: fail node n1\n'
            '  at 2m: create pod late { container main { image: "x"  cpu: 500m } } }', until=200)
    assert c.get("Pod", "late")["node"] == "n2"


def test_pod_with_nowhere_else_to_go_reports_the_unreachable_taint():
    c = run(node("n1") + 'scenario "fail then create" { at 30s: fail node n1\n'
            '  at 2m: create pod late { container main { image: "x" } } }', until=200)
    assert c.get("Pod", "late")["message"] == \
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."


# ---- the controller's events -------------------------------------------------------------------


def events(c) -> list[tuple[str, str, str, str]]:
    return sorted((e["object"], e["type"], e["reason"], e["message"]) for e in c.of("Event"))


def test_a_node_not_ready_has_a_node_not_ready_event_and_evicted_pods_a_taint_manager_one():
    c = run(node("n1") + node("n2") + pod("web-1", "n1") + 'scenario "fail" { at 30s: fail node n1 }')
    assert events(c) == [
        ("Node/n1", "Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady"),
        ("Pod/default/web-1", "Normal", "TaintManagerEviction", "Marking for deletion Pod default/web-1")]
    [not_ready] = [e for e in c.of("Event") if e["reason"] == "NodeNotReady"]
    assert not_ready["at"] == first_write(c, "mirror_ready", "n1").clock  # when the node turned not ready


def test_a_recovered_node_and_its_removed_pods_keep_no_events():
    c = run(node("n1") + node("n2") + deployment("web", replicas=2)
            + 'scenario "blip" { at 30s: fail node n1\n at 10m: recover node n1 }')
    assert c.of("Event") == []
    made = c.writes(kind="Event", verb="create")
    assert {w.name.split(".")[1] for w in made} == {"nodenotready", "taintmanagereviction"}
    assert sorted(w.name for w in c.writes(kind="Event", verb="delete")) == sorted(w.name for w in made)


# ---- against the Kubernetes model (tests/kubelet_model.py) --------------------------------------

NR, UR = model.NOT_READY, model.UNREACHABLE
TOLERATIONS = [  # (as written in the spec, as the model reads it)
    ([], []),
    ([model.Toleration(NR, "Exists", "", "NoExecute", 60)], None),
    ([model.Toleration(UR, "Exists", "", "NoExecute", 120)], None),
    ([model.Toleration(NR, "Exists", "", "NoExecute", 0)], None),
    ([model.Toleration(NR, "Exists", "", "NoExecute")], None),
    ([model.Toleration("", "Exists")], None),
    ([model.Toleration(NR, "Exists", "", "NoSchedule", 60)], None),
    ([model.Toleration("", "Exists", "", "NoExecute", 30)], None),
]


def toleration_text(t: model.Toleration) -> str:
    seconds = f", tolerationSeconds: {t.seconds}" if t.seconds is not None else ""
    effect = f', effect: "{t.effect}"' if t.effect else ""
    return f'{{key: "{t.key}", operator: "{t.operator}"{effect}{seconds}}}'


@st.composite
def failing_nodes(draw):
    """One or two nodes, each with a few faults at distinct times — a failure or a runtime failure at
    a quarter past a second, a recovery at half past, so that no two moments the model and the rules
    order could coincide — and pods pinned to them with a choice of NoExecute tolerations."""
    nodes = {}
    for name in ("n1", "n2")[:draw(st.integers(1, 2))]:
        faults, t = [], 0
        for _ in range(draw(st.integers(0, 3))):
            t += draw(st.integers(1, 400))
            kind = draw(st.sampled_from(["fail", "fail", "runtime_down", "recover"]))
            faults.append((Fraction(t) + (Fraction(1, 2) if kind == "recover" else Fraction(1, 4)), kind))
        nodes[name] = faults
    pods = [(f"p{i}", draw(st.sampled_from(sorted(nodes))), draw(st.integers(0, len(TOLERATIONS) - 1)))
            for i in range(draw(st.integers(1, 4)))]
    return nodes, pods


def seconds_text(t: Fraction) -> str:
    return f"{int(t * 1000)}ms"


@settings(max_examples=25, deadline=None)
@given(failing_nodes())
def test_nodes_and_their_pods_fare_as_the_kubernetes_model_says(cluster):
    # The node lifecycle controller and the taint manager in the model: each node's Ready condition,
    # its lifecycle taint and when it was added, when each pod is evicted (its tolerations after
    # DefaultTolerationSeconds), whether it is still there, terminating, ready — at the horizon.
    nodes, pods = cluster
    horizon = Fraction(1300) + Fraction(1, 8)
    spec = "".join(node(n) for n in nodes) + "".join(
        pod(name, n, ", ".join(toleration_text(t) for t in TOLERATIONS[k][0])) for name, n, k in pods)
    moments = sorted((t, kind, n) for n, faults in nodes.items() for t, kind in faults)
    spec += 'scenario "faults" {\n' + "".join(f"  at {seconds_text(t)}: {kind} node {n}\n"
                                             for t, kind, n in moments) + "}\n"
    c = run(spec, until=horizon)
    # A documented difference (rules/node_lifecycle.konv): a lifecycle taint swapped for the other
    # (Ready=False, then the kubelet stops) counts the pods' toleration afresh.
    lives = {n: model.node_life(faults, horizon) for n, faults in nodes.items()}
    for n, life in lives.items():
        got = c.node(n)
        assert got["readyCondition"] == model.at(life.conditions, horizon), n
        key = model.at(life.taints, horizon)
        lifecycle = [(t["key"], t["effect"], t["timeAdded"]) for t in got["taints"]]
        added = max(t for t, k in life.taints if k == key) if key else None
        assert lifecycle == ([(key, "NoExecute", added)] if key else []), n
        became = [t for t, k in life.conditions if k == "Unknown"]
        assert [w.clock for w in c.writes(rule="mark_unknown", name=n)] == became, n
    for name, n, k in pods:
        tolerations = model.default_tolerations(TOLERATIONS[k][0])
        got = c.get("Pod", name)
        evicted = model.eviction_time(lives[n], tolerations, horizon, swap_restarts=True)
        assert [w.clock for w in c.writes(rule="evict", name=name)] == ([evicted] if evicted is not None else []), name
        exists, deleting, ready = model.pod_fate(lives[n], evicted, horizon)
        assert (got is not None) == exists, name
        if got is not None:
            assert (got["deleting"], got["ready"]) == (deleting, ready), name
            assert [model.Toleration(t["key"], t["operator"], t["value"], t["effect"], t["tolerationSeconds"])
                    for t in got["tolerations"]] == tolerations, name
