"""kube-scheduler's default profile (rules/scheduler.konv) against the reference behaviour."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import scheduler_model as model
from tests.kube import deployment, memo_keeps, node, run


def pod(name, cpu="100m", memory="64Mi", extra="", labels='app: "p"'):
    return (f'pod {name} {{ labels {{ {labels} }} {extra}\n'
            f'  container main {{ image: "x"  cpu: {cpu}  memory: {memory} }} }}\n')


def test_unschedulable_pod_gets_reason_and_kubernetes_format_message():
    c = run(node("small", cpu="500m", extra='labels { disk: "hdd" }')
            + node("tainted", extra='taints: [{key: "dedicated", value: "gpu", effect: "NoSchedule"}]')
            + node("other", extra='labels { disk: "ssd" }')
            + pod("big", cpu="1", extra='nodeSelector { disk: "hdd" }'))
    p = c.get("Pod", "big")
    assert p["node"] is None and p["phase"] == "Pending"
    assert p["reason"] == "Unschedulable"
    # Each node reports its first failing filter; the "count reason" strings are sorted as text.
    assert p["message"] == ("0/3 nodes are available: 1 Insufficient cpu, "
                            "1 node(s) didn't match Pod's node affinity/selector, "
                            "1 node(s) had untolerated taint {dedicated: gpu}.")


def test_unschedulable_pod_gets_a_failed_scheduling_warning_event():
    c = run(node("n1", cpu="1") + pod("big", cpu="2"))
    events = [e for e in c.of("Event") if e["reason"] == "FailedScheduling"]
    assert len(events) == 1
    assert events[0]["type"] == "Warning"
    assert events[0]["object"] == "Pod/default/big"
    assert events[0]["message"] == "0/1 nodes are available: 1 Insufficient cpu."


def test_insufficient_memory_and_cpu_are_both_reported_for_one_node():
    c = run(node("n1", cpu="1", memory="1Gi") + pod("big", cpu="2", memory="2Gi"))
    assert c.get("Pod", "big")["message"] == "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."


def test_pod_count_limit_rejects_with_too_many_pods():
    c = run(node("n1", extra="pods: 2") + pod("a") + pod("b") + pod("c"))
    bound = [p for p in c.pods() if p["node"] == "n1"]
    assert len(bound) == 2
    pending = [p for p in c.pods() if p["node"] is None]
    assert [p["message"] for p in pending] == ["0/1 nodes are available: 1 Too many pods."]


def test_bound_pods_requests_never_exceed_allocatable():
    c = run(node("n1", cpu="1") + node("n2", cpu="1500m") + deployment("web", replicas=5, cpu="300m"))
    for n, cpu in (("n1", 1), ("n2", 1.5)):
        assert sum(p["containers"][0]["cpu"] for p in c.pods("web") if p["node"] == n) <= cpu
    assert all(p["node"] for p in c.pods("web"))


def test_sixth_pod_beyond_capacity_stays_pending():
    c = run(node("n1", cpu="1") + node("n2", cpu="1") + deployment("web", replicas=7, cpu="300m"))
    bound = [p for p in c.pods("web") if p["node"]]
    assert len(bound) == 6
    assert [p["reason"] for p in c.pods("web") if not p["node"]] == ["Unschedulable"]


def test_least_allocated_node_is_preferred():
    c = run(node("a-busy") + node("b-free") + pod("hog", cpu="3", extra='nodeSelector { "kubernetes.io/hostname": "a-busy" }').replace("pod hog {", "pod hog {")
            .replace('nodeSelector { "kubernetes.io/hostname": "a-busy" }', 'node: "a-busy"')
            + pod("newcomer"))
    assert c.get("Pod", "hog")["node"] == "a-busy"
    assert c.get("Pod", "newcomer")["node"] == "b-free"


def test_ties_are_broken_by_node_name():
    c = run(node("zeta") + node("alpha") + node("mid") + pod("p1"))
    assert c.get("Pod", "p1")["node"] == "alpha"


def test_best_effort_pods_spread_because_missing_requests_count_for_scoring():
    c = run(node("n1") + node("n2") + pod("be1", cpu="0", memory="0") + pod("be2", cpu="0", memory="0"))
    assert {c.get("Pod", "be1")["node"], c.get("Pod", "be2")["node"]} == {"n1", "n2"}


def test_pod_with_a_node_set_is_not_scheduled_elsewhere():
    c = run(node("a") + node("b") + pod("pinned", extra='node: "b"'))
    assert c.get("Pod", "pinned")["node"] == "b"
    assert not c.writes(rule="bind", name="pinned")


def test_pod_for_another_scheduler_stays_pending():
    c = run(node("a") + pod("custom", extra='schedulerName: "my-scheduler"'))
    p = c.get("Pod", "custom")
    assert p["node"] is None and p["reason"] == ""


def test_cordoned_node_is_reported_unschedulable():
    c = run(node("a", extra="unschedulable: true") + pod("p"))
    assert c.get("Pod", "p")["message"] == "0/1 nodes are available: 1 node(s) were unschedulable."


def test_equal_toleration_of_the_unschedulable_taint_admits_a_cordoned_node():
    tol = 'tolerations: [{key: "node.kubernetes.io/unschedulable", operator: "Equal", value: "", effect: "NoSchedule"}]'
    c = run(node("a", extra="unschedulable: true") + pod("p", extra=tol))
    assert c.get("Pod", "p")["node"] == "a"


def test_a_node_with_no_allocatable_cpu_is_filtered_not_a_division_by_zero():
    c = run(node("empty", cpu="0") + node("full") + pod("p"))
    assert c.get("Pod", "p")["node"] == "full"
    c = run(node("empty", cpu="0") + pod("p"))
    assert c.get("Pod", "p")["message"] == "0/1 nodes are available: 1 Insufficient cpu."


def test_gt_against_a_label_that_is_no_number_does_not_match():
    c = run(node("word", extra='labels { gen: "new" }') + node("g6", extra='labels { gen: "6" }')
            + pod("p", extra='affinity: {requiredNodeTerms: [{matchExpressions: '
                             '[{key: "gen", operator: "Gt", values: ["5"]}]}]}'))
    assert c.get("Pod", "p")["node"] == "g6"


def test_untolerated_no_execute_taint_rejects_and_toleration_admits():
    taint = 'taints: [{key: "k", value: "v", effect: "NoExecute"}]'
    c = run(node("a", extra=taint)
            + pod("plain")
            + pod("tolerant", extra='tolerations: [{key: "k", operator: "Equal", value: "v", effect: "NoExecute"}]'))
    assert c.get("Pod", "plain")["node"] is None
    assert c.get("Pod", "plain")["message"] == "0/1 nodes are available: 1 node(s) had untolerated taint {k: v}."
    assert c.get("Pod", "tolerant")["node"] == "a"


def test_exists_toleration_without_key_tolerates_every_taint():
    c = run(node("a", extra='taints: [{key: "x", effect: "NoSchedule"}, {key: "y", value: "1", effect: "NoExecute"}]')
            + pod("all", extra='tolerations: [{operator: "Exists"}]'))
    assert c.get("Pod", "all")["node"] == "a"


def test_prefer_no_schedule_taint_is_avoided_when_another_node_fits():
    c = run(node("a-spot", extra='taints: [{key: "spot", effect: "PreferNoSchedule"}]') + node("b-plain", cpu="2")
            + pod("p"))
    # a-spot has more room (LeastAllocated) and sorts first, but TaintToleration ×3 wins.
    assert c.get("Pod", "p")["node"] == "b-plain"


def test_prefer_no_schedule_taint_node_is_used_when_nothing_else_fits():
    c = run(node("a-spot", extra='taints: [{key: "spot", effect: "PreferNoSchedule"}]') + node("b-small", cpu="100m")
            + pod("p", cpu="1"))
    assert c.get("Pod", "p")["node"] == "a-spot"


def test_node_selector_and_required_terms_must_both_match():
    c = run(node("a", extra='labels { disk: "ssd"  zone: "x" }') + node("b", extra='labels { disk: "ssd"  zone: "y" }')
            + pod("p", extra='nodeSelector { disk: "ssd" } affinity: {requiredNodeTerms: [{matchExpressions: '
                             '[{key: "zone", operator: "In", values: ["y"]}]}]}'))
    assert c.get("Pod", "p")["node"] == "b"


def test_required_terms_are_ored_and_expressions_anded():
    affinity = ('affinity: {requiredNodeTerms: ['
                '{matchExpressions: [{key: "zone", operator: "In", values: ["x"]}, {key: "gpu", operator: "Exists"}]},'
                '{matchExpressions: [{key: "zone", operator: "In", values: ["z"]}]}]}')
    c = run(node("a", extra='labels { zone: "x" }')  # first term: zone matches but no gpu
            + node("b", extra='labels { zone: "z" }')  # second term matches
            + pod("p", extra=affinity))
    assert c.get("Pod", "p")["node"] == "b"
    c = run(node("a", extra='labels { zone: "x" }') + node("c", extra='labels { zone: "y"  gpu: "1" }')
            + pod("p", extra=affinity))
    assert c.get("Pod", "p")["node"] is None
    assert "2 node(s) didn't match Pod's node affinity/selector" in c.get("Pod", "p")["message"]


def test_node_affinity_operators_not_in_does_not_exist_gt_lt():
    nodes = (node("g2", extra='labels { gen: "2" }') + node("g4", extra='labels { gen: "4"  spot: "yes" }')
             + node("g6", extra='labels { gen: "6" }') + node("nolabel"))

    def where(op, values=""):
        vals = f", values: [{values}]" if values else ""
        c = run(nodes + pod("p", extra=f'affinity: {{requiredNodeTerms: [{{matchExpressions: '
                                      f'[{{key: "gen", operator: "{op}"{vals}}}]}}]}}'))
        return c.get("Pod", "p")["node"]

    assert where("Gt", '"5"') == "g6"
    assert where("Lt", '"3"') == "g2"
    assert where("DoesNotExist") == "nolabel"
    assert where("NotIn", '"2", "4", "6"') == "nolabel"
    assert where("In", '"4"') == "g4"


def test_preferred_node_affinity_outweighs_free_resources():
    c = run(node("a-big", cpu="16", memory="64Gi") + node("b-small", cpu="2", memory="4Gi", extra='labels { zone: "b" }')
            + pod("p", extra='affinity: {preferredNodeTerms: [{weight: 50, preference: {matchExpressions: '
                             '[{key: "zone", operator: "In", values: ["b"]}]}}]}'))
    assert c.get("Pod", "p")["node"] == "b-small"


def test_topology_spread_do_not_schedule_keeps_skew_within_max_skew():
    zones = "".join(node(f"n{z}{i}", extra=f'labels {{ zone: "{z}" }}') for z in "ab" for i in (1, 2))
    c = run(zones + node("n-c", extra='labels { zone: "c" }', cpu="250m")
            + deployment("web", replicas=5, cpu="200m",
                         extra='topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}]'))
    per_zone = {}
    for p in c.pods("web"):
        if p["node"]:
            per_zone.setdefault(c.node(p["node"])["labels"]["zone"], []).append(p)
    # zone c holds one pod at most (250m), so a and b may exceed it by one only: 2 + 2 + 1.
    assert sorted(len(v) for v in per_zone.values()) == [1, 2, 2]
    pending = [p for p in c.pods("web") if not p["node"]]
    assert len(pending) == 0


def test_topology_spread_refuses_a_pod_that_would_raise_skew():
    c = run(node("a1", extra='labels { zone: "a" }') + node("b1", cpu="150m", extra='labels { zone: "b" }')
            + deployment("web", replicas=4, cpu="100m",
                         extra='topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}]'))
    bound = [p for p in c.pods("web") if p["node"]]
    # a third pod in zone a would make the skew 3 − 1 = 2 > maxSkew.
    assert sorted(p["node"] for p in bound) == ["a1", "a1", "b1"]
    pending = [p for p in c.pods("web") if not p["node"]]
    assert len(pending) == 1
    assert pending[0]["message"] == ("0/2 nodes are available: 1 Insufficient cpu, "
                                     "1 node(s) didn't match pod topology spread constraints.")


def test_schedule_anyway_spread_prefers_the_emptier_domain_but_never_refuses():
    spread = 'topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: {app: "web"}}]'
    c = run(node("a1", extra='labels { zone: "a" }') + node("b1", cpu="150m", extra='labels { zone: "b" }')
            + deployment("web", replicas=3, cpu="100m", extra=spread))
    assert sorted(p["node"] for p in c.pods("web")) == ["a1", "a1", "b1"]


def test_pod_anti_affinity_keeps_replicas_on_different_hosts():
    anti = 'affinity: {podAntiAffinity: [{labelSelector: {app: "cache"}, topologyKey: "kubernetes.io/hostname"}]}'
    c = run("".join(node(f"h{i}", extra=f'labels {{ "kubernetes.io/hostname": "h{i}" }}') for i in (1, 2))
            + deployment("cache", replicas=3, extra=anti))
    nodes = [p["node"] for p in c.pods("cache") if p["node"]]
    assert sorted(nodes) == ["h1", "h2"]
    pending = [p for p in c.pods("cache") if not p["node"]]
    assert pending[0]["message"] == "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."


@pytest.mark.parametrize("selector", [
    'labelSelector: {app: "web"}',
    'matchExpressions: [{key: "app", operator: "Exists"}]',  # selecting the newcomer by expressions
])
def test_existing_pods_anti_affinity_keeps_a_newcomer_away(selector):
    c = run(node("h1", extra='labels { "kubernetes.io/hostname": "h1" }')
            + node("h2", cpu="2", extra='labels { "kubernetes.io/hostname": "h2" }')
            + pod("loner", labels='app: "loner"', extra='node: "h1" affinity: {podAntiAffinity: '
                  f'[{{{selector}, topologyKey: "kubernetes.io/hostname"}}]}}')
            + pod("web", labels='app: "web"'))
    assert c.get("Pod", "web")["node"] == "h2"


def test_existing_pods_anti_affinity_has_its_own_message():
    c = run(node("h1", extra='labels { "kubernetes.io/hostname": "h1" }')
            + pod("loner", labels='app: "loner"', extra='node: "h1" affinity: {podAntiAffinity: '
                  '[{labelSelector: {app: "web"}, topologyKey: "kubernetes.io/hostname"}]}')
            + pod("web", labels='app: "web"'))
    assert c.get("Pod", "web")["message"] == \
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."


@pytest.mark.parametrize("whose", ["incoming", "existing"])
def test_a_terminating_pod_keeps_anti_affine_pods_out_of_its_domain_until_it_is_gone(whose):
    # Upstream counts terminating pods for InterPodAffinity on purpose (kubernetes#111793): the
    # newcomer waits, refused, until the kubelet has removed the pod it must stay away from.
    anti = 'affinity: {podAntiAffinity: [{labelSelector: {app: "%s"}, topologyKey: "zone"}]}'
    old_extra, new_extra = ("", anti % "web") if whose == "incoming" else (anti % "api", "")
    c = run(node("na", extra='labels { zone: "a" }')
            + pod("old", labels='app: "web"', extra=f'node: "na" deleting: true {old_extra}')
            + pod("p", labels='app: "api"', extra=new_extra), history=True)
    reason = "didn't match pod anti-affinity rules" if whose == "incoming" \
        else "didn't satisfy existing pods anti-affinity rules"
    while_old = [next(o for o in objects if o["kind"] == "Pod" and o["name"] == "p")
                 for _, objects in c.states()
                 if any(o["kind"] == "Pod" and o["name"] == "old" for o in objects)
                 and any(o["kind"] == "Pod" and o["name"] == "p" for o in objects)]
    assert while_old and all(q["node"] is None for q in while_old)
    assert while_old[-1]["message"] == f"0/1 nodes are available: 1 node(s) {reason}."
    assert c.get("Pod", "p")["node"] == "na"


def test_a_terminating_pod_is_not_counted_by_topology_spread():
    spread = 'topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}]'
    c = run(node("na", cpu="1", memory="1Gi", extra='labels { zone: "a" }') + node("nb", extra='labels { zone: "b" }')
            + pod("old", labels='app: "web"', extra='node: "nb" deleting: true')
            + pod("p", labels='app: "web"', extra=spread), history=True)
    # Counted, old would send p to zone a (skew 2 in b); not counted, p goes to the roomier nb.
    first = next(o["node"] for _, objects in c.states() for o in objects
                 if o["kind"] == "Pod" and o["name"] == "p" and o["node"])
    assert first == "nb"


def test_a_node_without_the_spread_topology_key_is_reported_missing_the_label():
    spread = 'topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}]'
    c = run(node("bare") + deployment("web", replicas=1, extra=spread))
    assert [p["message"] for p in c.pods("web")] == [
        "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label)."]


def test_pod_affinity_places_a_pod_beside_its_partner():
    c = run(node("h1", cpu="8", extra='labels { "kubernetes.io/hostname": "h1" }')
            + node("h2", extra='labels { "kubernetes.io/hostname": "h2" }')
            + pod("db", labels='app: "db"', extra='node: "h2"')
            + pod("app", labels='app: "app"', extra='affinity: {podAffinity: '
                  '[{labelSelector: {app: "db"}, topologyKey: "kubernetes.io/hostname"}]}'))
    assert c.get("Pod", "app")["node"] == "h2"


def test_pending_pod_is_scheduled_when_a_node_joins():
    c = run(node("small", cpu="500m") + pod("big", cpu="1") + """
scenario "a node joins" {
  at 1m: create node large { cpu: 4  memory: 8Gi }
}
""")
    p = c.get("Pod", "big")
    assert p["node"] == "large" and p["reason"] == "" and p["message"] == "" and p["ready"]
    assert not [e for e in c.of("Event") if e["reason"] == "FailedScheduling"]


def test_balanced_allocation_breaks_an_equal_least_allocated_score():
    # Both nodes would be 59 for LeastAllocated; a-skewed would be 62.5% cpu and 19% memory full,
    # b-even 37.5% and 44%: BalancedAllocation (78 against 96) sends the pod to b-even.
    c = run(node("a-skewed") + node("b-even")
            + pod("cpu-hog", cpu="2", memory="1Gi", extra='node: "a-skewed"')
            + pod("mem-hog", cpu="1", memory="3Gi", extra='node: "b-even"')
            + pod("newcomer", cpu="500m", memory="512Mi"))
    assert c.get("Pod", "newcomer")["node"] == "b-even"


def test_least_allocated_rounds_each_resource_down_before_averaging():
    # For 100m and 300Mi, small is 80 (cpu) and 41 (memory, 41.4) free, (80 + 41) / 2 = 60;
    # large is 96 (96.7) and 41, 68 — 69 if the shares were averaged before rounding down.
    # BalancedAllocation gives 80 and 72: 140 each, and the tie goes to the first name.
    c = run(node("a-small", cpu="500m", memory="512Mi") + node("b-large", cpu="3", memory="512Mi")
            + pod("p", cpu="100m", memory="300Mi"))
    assert c.get("Pod", "p")["node"] == "a-small"


def test_a_resource_the_node_has_none_of_is_left_out_of_the_resource_scores():
    # no-cpu has memory only: LeastAllocated scores that alone (87) and BalancedAllocation,
    # with one share, 100: 187 against plain's 83 + 93, where counting the missing cpu as
    # full would give no-cpu 43 + 56.
    c = run(node("a-no-cpu", cpu="0", memory="512Mi") + node("b-plain", cpu="500m", memory="512Mi")
            + pod("p", cpu="0", memory="64Mi"))
    assert c.get("Pod", "p")["node"] == "a-no-cpu"


def test_balanced_allocation_does_not_score_a_pod_that_requests_nothing():
    # LeastAllocated (non-zero requests) prefers a (67 against 60); BalancedAllocation would
    # prefer b, evenly used (100 against 87), and outweigh it, but it skips best-effort pods.
    c = run(node("a", cpu="1", memory="1Gi") + node("b", cpu="1", memory="1Gi")
            + pod("q", cpu="0", memory="256Mi", extra='node: "a"')
            + pod("r", cpu="250m", memory="256Mi", extra='node: "b"')
            + pod("best-effort", cpu="0", memory="0"))
    assert c.get("Pod", "best-effort")["node"] == "a"


def test_a_pod_that_requests_no_cpu_fits_a_node_whose_cpu_shrank_below_its_pods_requests():
    # fitsRequest (the scheduler's and the kubelet's) checks only the resources a pod requests.
    c = run(node("n", cpu="2") + pod("busy", cpu="1500m")
            + 'scenario "shrink" {\n  at 10s: update node n { cpu: 1 }\n'
            + '  at 20s: create pod be { container main { image: "x"  memory: 64Mi } }\n}\n')
    assert c.get("Pod", "be")["node"] == "n" and c.get("Pod", "be")["phase"] == "Running"


def test_balanced_allocation_rounds_each_share_to_a_float_as_upstream_does():
    # 2600m and 512Mi: LeastAllocated gives a 48 and b 20, BalancedAllocation b 93 and a, with
    # shares 13/15 and 1/6, exactly 65 — but upstream's float64 shares make it 64.99…, truncated
    # to 64: a 112 against b's 113, where the exact 65 would tie and the tie go to a.
    c = run(node("a", cpu="3", memory="3Gi") + node("b", cpu="3", memory="704Mi")
            + pod("p", cpu="2600m", memory="512Mi"))
    assert c.get("Pod", "p")["node"] == "b"


def test_taint_score_is_rounded_down_before_it_is_reversed():
    # Untolerated PreferNoSchedule taints 3, 1 and 0: normalised 100 − ⌊100·1/3⌋ = 67 for b,
    # so b (196 + 3·67) beats the nearly full c (96 + 3·100) by one point.
    prefer = 'taints: [{}]'
    taint = '{{key: "{}", effect: "PreferNoSchedule"}}'
    c = run(node("a", memory="4Gi", extra=prefer.format(", ".join(taint.format(k) for k in ("k1", "k2", "k3"))))
            + node("b", memory="4Gi", extra=prefer.format(taint.format("k1")))
            + node("c", cpu="4", memory="4Gi")
            + pod("q", cpu="3900m", memory="0", extra='node: "c"')
            + pod("p", cpu="100m", memory="64Mi"))
    assert c.get("Pod", "p")["node"] == "b"


def test_pod_for_another_scheduler_gets_no_verdict_and_no_event():
    # Kubernetes: no scheduler profile claims it, so it stays Pending without a PodScheduled
    # condition or a FailedScheduling event; a workload's pods carry the template's scheduler.
    c = run(node("a") + deployment("web", replicas=2, extra='schedulerName: "my-scheduler"'))
    pods = c.pods("web")
    assert len(pods) == 2 and all(p["schedulerName"] == "my-scheduler" for p in pods)
    assert all(p["node"] is None and p["phase"] == "Pending" and p["reason"] == "" for p in pods)
    assert not c.of("Event") and not c.writes(rule="bind")


def test_topology_spread_counts_only_pods_on_nodes_the_pod_may_go_to():
    # Upstream counts a domain's pods on the nodes the pod's node affinity and selector allow
    # (nodeAffinityPolicy Honor): the two web pods on the hdd node do not make zone a full, so the
    # replicas split a and b, where counting them would send both to b.
    spread = 'topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}]'
    c = run(node("n1", extra='labels { zone: "a"  disk: "ssd" }')
            + node("n2", extra='labels { zone: "a"  disk: "hdd" }')
            + node("n3", extra='labels { zone: "b"  disk: "ssd" }')
            + pod("old-1", labels='app: "web"', extra='node: "n2"') + pod("old-2", labels='app: "web"', extra='node: "n2"')
            + pod("w1", labels='app: "web"', extra=f'nodeSelector {{ disk: "ssd" }} {spread}')
            + pod("w2", labels='app: "web"', extra=f'nodeSelector {{ disk: "ssd" }} {spread}'))
    assert sorted(c.get("Pod", w)["node"] for w in ("w1", "w2")) == ["n1", "n3"]


def test_the_first_spread_constraint_a_node_fails_gives_its_reason():
    # n1 has no rack, but the zone constraint, first, already fails there (zone a holds two web
    # pods on n3, counted, zone b none): its reason, not the missing label's.
    spread = ('topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}}, '
              '{maxSkew: 1, topologyKey: "rack", labelSelector: {app: "web"}}]')
    c = run(node("n1", extra='labels { zone: "a" }')
            + node("n2", extra='labels { zone: "b"  rack: "r1" } unschedulable: true')
            + node("n3", extra='labels { zone: "a"  rack: "r2" } unschedulable: true')
            + pod("old-1", labels='app: "web"', extra='node: "n3"') + pod("old-2", labels='app: "web"', extra='node: "n3"')
            + pod("w", labels='app: "web"', extra=spread))
    assert c.get("Pod", "w")["message"] == ("0/3 nodes are available: 1 node(s) didn't match pod topology spread "
                                            "constraints, 2 node(s) were unschedulable.")


def test_pod_affinity_counts_only_pods_that_match_all_its_terms():
    # The db pod matches the first term, the cache pod the second; neither both, so no pod counts
    # (upstream's podMatchesAllAffinityTerms) and p, matching neither itself, cannot go anywhere.
    affinity = ('affinity: {podAffinity: [{labelSelector: {app: "db"}, topologyKey: "zone"}, '
                '{labelSelector: {tier: "cache"}, topologyKey: "zone"}]}')
    c = run(node("n1", cpu="8", extra='labels { zone: "a" }')
            + pod("db", labels='app: "db"', extra='node: "n1"') + pod("cache", labels='app: "c"  tier: "cache"', extra='node: "n1"')
            + pod("p", labels='app: "web"', extra=affinity))
    assert c.get("Pod", "p")["message"] == "0/1 nodes are available: 1 node(s) didn't match pod affinity rules."


def test_the_first_pod_of_a_self_affine_group_still_needs_the_topology_key():
    # No pod matches yet and p matches its own term, so it may start — but only on a node with the
    # term's key (satisfyPodAffinity returns false at once for a node without it).
    affinity = 'affinity: {podAffinity: [{labelSelector: {app: "web"}, topologyKey: "zone"}]}'
    c = run(node("bare") + pod("p", labels='app: "web"', extra=affinity))
    assert c.get("Pod", "p")["message"] == "0/1 nodes are available: 1 node(s) didn't match pod affinity rules."
    c = run(node("bare") + node("zoned", cpu="1", extra='labels { zone: "a" }') + pod("p", labels='app: "web"', extra=affinity))
    assert c.get("Pod", "p")["node"] == "zoned"


def test_schedule_anyway_spread_scores_with_upstreams_weighted_formula():
    # maxSkew 3, zones a (one web pod) and b (none), two domains: raw scores round(1·log 4 + 2) = 3
    # and 2, normalised 100·(3 + 2 − s)/3: a 66, b 100. With the preferred zone a (+200) that
    # outweighs b's 68 points of spread; the simple reversed count (a 0, b 100) would tie them
    # and let b's lighter load win.
    spread = ('topologySpreadConstraints: [{maxSkew: 3, topologyKey: "zone", whenUnsatisfiable: "ScheduleAnyway", '
              'labelSelector: {app: "web"}}]')
    prefer = ('affinity: {preferredNodeTerms: [{weight: 10, preference: {matchExpressions: '
              '[{key: "zone", operator: "In", values: ["a"]}]}}]}')
    c = run(node("na", extra='labels { zone: "a" }') + node("nb", extra='labels { zone: "b" }')
            + pod("old", labels='app: "web"', extra='node: "na"')
            + pod("p", labels='app: "web"', extra=f"{spread} {prefer}"))
    assert c.get("Pod", "p")["node"] == "na"


def test_existing_pods_required_affinity_draws_the_pods_it_selects():
    # InterPodAffinity scores an existing pod's required affinity term that selects the incoming
    # pod (hardPodAffinityWeight 1) in the existing pod's domain: zone a scores 100 (×2), which
    # outweighs b's lighter load.
    c = run(node("na", extra='labels { zone: "a" }') + node("nb", extra='labels { zone: "b" }')
            + pod("fan", labels='app: "fan"', cpu="1", extra='node: "na" affinity: {podAffinity: '
                  '[{labelSelector: {app: "web"}, topologyKey: "zone"}]}')
            + pod("p", labels='app: "web"'))
    assert c.get("Pod", "p")["node"] == "na"


# ---- full label selectors in pod affinity, anti-affinity and topology spread --------------

# One pod on each host: which hosts a required pod affinity term allows shows which pods
# its selector selects.
HOSTS = "".join(node(f"h{i}", extra=f'labels {{ "kubernetes.io/hostname": "h{i}" }}') for i in (1, 2, 3, 4))
RESIDENTS = (pod("a", labels='app: "a"  tier: "db"', extra='node: "h1"')
             + pod("b", labels='app: "b"  tier: "web"', extra='node: "h2"')
             + pod("c", labels='app: "c"', extra='node: "h3"')
             + pod("d", labels='role: "x"', extra='node: "h4"'))


def beside(selector: str) -> str | None:
    c = run(HOSTS + RESIDENTS + pod("p", labels='own: "p"', extra=f'affinity: {{podAffinity: '
                                    f'[{{{selector}, topologyKey: "kubernetes.io/hostname"}}]}}'))
    return c.get("Pod", "p")["node"]


def test_in_selects_pods_whose_label_has_one_of_the_values():
    assert beside('matchExpressions: [{key: "app", operator: "In", values: ["c", "z"]}]') == "h3"


def test_not_in_selects_pods_without_the_key_too():
    # d has no `app` label at all: NotIn holds for it, as in Kubernetes' labels.Selector.
    assert beside('matchExpressions: [{key: "app", operator: "NotIn", values: ["a", "b", "c"]}]') == "h4"


def test_exists_and_does_not_exist_test_the_key_alone():
    assert beside('matchExpressions: [{key: "tier", operator: "Exists"}, '
                  '{key: "tier", operator: "NotIn", values: ["db"]}]') == "h2"
    assert beside('matchExpressions: [{key: "tier", operator: "DoesNotExist"}, '
                  '{key: "app", operator: "Exists"}]') == "h3"


def test_match_labels_and_match_expressions_are_anded():
    assert beside('labelSelector: {tier: "db"}, matchExpressions: '
                  '[{key: "app", operator: "In", values: ["a", "b"]}]') == "h1"
    assert beside('labelSelector: {tier: "db"}, matchExpressions: '
                  '[{key: "app", operator: "In", values: ["b"]}]') is None


def test_a_required_affinity_term_without_a_selector_can_never_be_met():
    # Kubernetes' null selector matches no pod (LabelSelectorAsSelector(nil) is Nothing).
    c = run(HOSTS + RESIDENTS + pod("p", extra='affinity: {podAffinity: [{topologyKey: "kubernetes.io/hostname"}]}'))
    assert c.get("Pod", "p")["message"] == "0/4 nodes are available: 4 node(s) didn't match pod affinity rules."


def test_an_empty_selector_selects_every_pod_and_a_null_one_none():
    host = node("h1", extra='labels { "kubernetes.io/hostname": "h1" }')
    resident = pod("r", labels='app: "r"', extra='node: "h1"')
    empty = 'affinity: {podAntiAffinity: [{labelSelector: {}, topologyKey: "kubernetes.io/hostname"}]}'
    null = 'affinity: {podAntiAffinity: [{topologyKey: "kubernetes.io/hostname"}]}'
    c = run(host + resident + pod("p", extra=empty))
    assert c.get("Pod", "p")["message"] == "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
    assert run(host + resident + pod("p", extra=null)).get("Pod", "p")["node"] == "h1"


def test_anti_affinity_with_not_in_keeps_away_from_pods_without_the_key():
    c = run(node("h1", extra='labels { "kubernetes.io/hostname": "h1" }')
            + node("h2", cpu="8", extra='labels { "kubernetes.io/hostname": "h2" }')
            + pod("a", labels='app: "a"', extra='node: "h1"') + pod("unlabelled", labels='role: "x"', extra='node: "h2"')
            + pod("p", labels='app: "p"', extra='affinity: {podAntiAffinity: [{matchExpressions: '
                  '[{key: "app", operator: "NotIn", values: ["a", "p"]}], topologyKey: "kubernetes.io/hostname"}]}'))
    # h2 has more room, but its pod has no `app` label, which NotIn selects.
    assert c.get("Pod", "p")["node"] == "h1"


def test_topology_spread_counts_only_the_pods_its_expressions_select():
    # Two canaries already run in zone a. Counted, they would send three of the four new
    # replicas to zone b; DoesNotExist leaves them out, so the replicas split two and two.
    spread = ('topologySpreadConstraints: [{maxSkew: 1, topologyKey: "zone", labelSelector: {app: "web"}, '
              'matchExpressions: [{key: "track", operator: "DoesNotExist"}]}]')
    c = run(node("na", extra='labels { zone: "a" }') + node("nb", extra='labels { zone: "b" }')
            + pod("canary-1", labels='app: "web"  track: "canary"', extra='node: "na"')
            + pod("canary-2", labels='app: "web"  track: "canary"', extra='node: "na"')
            + deployment("web", replicas=4, extra=spread))
    placed = [p["node"] for p in c.pods("web") if "track" not in p["labels"]]
    assert sorted(placed) == ["na", "na", "nb", "nb"]


def test_nodes_alike_in_content_and_use_share_the_filter_and_score_results(monkeypatch):
    # The filters and scores that weigh a node's resources read its use (`node_use`), not its
    # pods: they are memoised by the node's content and use, so that eight alike nodes taking a
    # pod each are judged for two uses (empty, one pod) rather than node by node.
    kept = memo_keeps(monkeypatch)
    c = run("".join(node(f"n{i}") for i in range(8)) + deployment("web", replicas=8))
    assert sorted(p["node"] for p in c.pods("web")) == [f"n{i}" for i in range(8)]
    assert kept.count("node_use") >= 8  # each node's own
    assert kept.count("node_reasons") == 2 and kept.count("resource_score") == 2


# ---- a second opinion: the model of tests/scheduler_model.py ----------------------------------

@pytest.mark.parametrize("x, rounded", [
    (0.49999999999999994, 0), (0.5, 1), (2.5, 3), (-0.5, -1), (-0.49999999999999994, 0), (-2.5, -3),
    (1e20, 10**20), (2.0**60 + 2**8, 2**60 + 2**8),
])
def test_the_models_go_round_rounds_halves_away_from_zero_on_the_exact_value(x, rounded):
    assert model.go_round(x) == rounded and type(model.go_round(x)) is int


MI = 1024 * 1024
LABEL_VALUES = {"zone": ("a", "b"), "disk": ("ssd", "hdd"), "gen": ("1", "3", "5", "new")}
TAINT_KEYS = ("k1", "k2", "spot")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Topology keys of spread constraints and pod (anti-)affinity terms: the node labels above, a rack
# only some nodes carry, and the hostname, which PodTopologySpread's score treats apart.
TOPOLOGY_KEYS = ("zone", "rack", model.HOSTNAME, "zone", "disk")
APPS = ("web", "db")


def _quoted(values) -> str:
    return ", ".join(f'"{v}"' for v in values)


@st.composite
def requirements(draw):
    key = draw(st.sampled_from((*LABEL_VALUES, "absent")))
    operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")))
    if operator in ("In", "NotIn"):
        values = draw(st.lists(st.sampled_from(LABEL_VALUES.get(key, ("x",))), min_size=1, max_size=2, unique=True))
    elif operator in ("Gt", "Lt"):
        values = [str(draw(st.integers(0, 6)))]
    else:
        values = []
    return model.Requirement(key, operator, tuple(values))


terms = st.lists(requirements(), max_size=2).map(tuple)  # an empty term selects no node


@st.composite
def tolerations(draw):
    key = draw(st.sampled_from(("", *TAINT_KEYS, model.UNSCHEDULABLE_TAINT)))
    # An empty key needs Exists, and Exists no value (API validation).
    operator = "Exists" if key == "" else draw(st.sampled_from(("Equal", "Exists")))
    value = draw(st.sampled_from(("", "x"))) if operator == "Equal" else ""
    return model.Toleration(key, operator, value, draw(st.sampled_from(("", *EFFECTS))))


def _some(draw, element, sizes=(0, 0, 0, 1, 2)):
    """A few of `element`: most often none, so that most pods have somewhere to go."""
    return tuple(draw(element) for _ in range(draw(st.sampled_from(sizes))))


@st.composite
def pod_selectors(draw, app):
    """A LabelSelector over pods, most often the workload's own app; sometimes another's, one by
    expressions, the empty one (every pod) or null (none)."""
    kind = draw(st.sampled_from(("own", "own", "own", "other", "expressions", "empty", "null")))
    if kind == "null":
        return None
    if kind == "empty":
        return model.Selector()
    if kind == "expressions":
        key = draw(st.sampled_from(("app", "tier")))
        operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        values = (draw(st.sampled_from((*APPS, "x"))),) if operator in ("In", "NotIn") else ()
        labels = {"app": app} if draw(st.booleans()) else {}
        return model.Selector(labels, (model.Requirement(key, operator, values),))
    return model.Selector({"app": app if kind == "own" else draw(st.sampled_from(APPS))})


@st.composite
def spread_constraints(draw, app):
    return model.SpreadConstraint(
        max_skew=draw(st.sampled_from((1, 1, 2, 3))),
        topology_key=draw(st.sampled_from(TOPOLOGY_KEYS)),
        when_unsatisfiable=draw(st.sampled_from(("DoNotSchedule", "ScheduleAnyway"))),
        selector=draw(pod_selectors(app)),
    )


@st.composite
def affinity_terms(draw, app):
    return model.AffinityTerm(draw(pod_selectors(app)), draw(st.sampled_from(TOPOLOGY_KEYS)))


@st.composite
def weighted_terms(draw, app):
    """A preferred pod (anti-)affinity term: a weight, light to heavy, and a term."""
    return draw(st.sampled_from((1, 10, 50, 100, 100))), draw(affinity_terms(app))


@st.composite
def scheduler_clusters(draw):
    """2–6 nodes and 1–8 pods without a node, small enough that they compete, and maybe a few pods
    already bound, one maybe terminating. The pods come in one or two workloads — pods alike, scheduled one after another,
    so that the counts of topology spread and pod (anti-)affinity matter. The choices lean towards
    pods that fit somewhere, on nodes that differ in their scores."""
    names = draw(st.permutations("abcdef"))[:draw(st.integers(2, 6))]
    taints = st.builds(model.Taint, st.sampled_from(TAINT_KEYS), st.sampled_from(("", "x")),
                       st.sampled_from(("PreferNoSchedule", "PreferNoSchedule", *EFFECTS)))
    nodes = []
    for name in names:
        labels = {k: draw(st.sampled_from(v)) for k, v in LABEL_VALUES.items() if draw(st.booleans())}
        if draw(st.integers(0, 3)) > 0:  # most nodes in a zone, so that spreading by zone has domains
            labels["zone"] = draw(st.sampled_from(("a", "b", "c")))
        rack = draw(st.sampled_from((None, "r1", "r2", "r3")))
        if rack:
            labels["rack"] = rack
        # Every kubelet registers its node's hostname label: its name, or a --hostname-override
        # ("shared", which two nodes may carry).
        labels[model.HOSTNAME] = draw(st.sampled_from((name, name, name, "shared")))
        labels = {**model.KUBELET_LABELS, **labels}
        nodes.append(model.Node(
            name=name,
            milli_cpu=draw(st.sampled_from((4000, 2000, 3000, 1000, 1500, 500, 0))),
            memory=draw(st.sampled_from((4096, 2048, 3072, 1024, 512, 0))) * MI,
            pods=draw(st.sampled_from((110, 3, 2, 1))),
            labels=labels,
            taints=tuple({(t.key, t.effect): t for t in _some(draw, taints, (0, 0, 1, 3))}.values()),
            unschedulable=draw(st.integers(0, 9)) == 9,
        ))
    cpus = st.sampled_from((100, 250, 0, 500, 1000, 1500))
    memories = st.sampled_from((64, 256, 0, 1024, 1536)).map(lambda m: m * MI)
    container = st.tuples(cpus, memories)
    init_container = st.tuples(cpus, memories, st.booleans())  # a sidecar or not
    templates = []
    for _ in range(draw(st.integers(1, 2))):
        app = draw(st.sampled_from(APPS))
        labels = {"app": app, **({"tier": "x"} if draw(st.booleans()) else {})}
        templates.append((draw(st.integers(1, 5)), dict(
            containers=tuple(draw(st.lists(container, min_size=1, max_size=2))),
            init_containers=_some(draw, init_container, (0, 0, 0, 1, 2, 3)),
            node_selector=draw(st.sampled_from(({}, {}, {}, {}, {"disk": "ssd"}, {"zone": "a"}))),
            required_terms=_some(draw, terms, (0, 0, 0, 0, 0, 1)),
            preferred_terms=_some(draw, st.tuples(st.integers(1, 100), terms), (0, 1, 2)),
            tolerations=_some(draw, tolerations(), (0, 1, 2, 3)),
            labels=labels,
            spread=_some(draw, spread_constraints(app), (0, 1, 1, 2)),
            affinity=_some(draw, affinity_terms(app), (0, 0, 0, 1, 2)),
            anti_affinity=_some(draw, affinity_terms(app), (0, 0, 1)),
            preferred_affinity=_some(draw, weighted_terms(app), (0, 0, 1, 2)),
            preferred_anti_affinity=_some(draw, weighted_terms(app), (0, 1, 1, 2)),
        )))
    specs = [spec for replicas, spec in templates for _ in range(replicas)][:8]
    order = draw(st.permutations(range(len(specs))))  # the workloads' pods interleave by name
    pods = [model.Pod(name=f"p{i}", **specs[k]) for i, k in enumerate(order)]
    # Pods already bound, whose labels and (anti-)affinity the scheduled ones meet: on nodes where
    # the kubelet admits them and no NoExecute taint evicts them.
    homes = [n.name for n in nodes if n.pods == 110 and not any(t.effect == "NoExecute" for t in n.taints)]
    for i in range(draw(st.sampled_from((0, 1, 2, 2))) if homes else 0):
        app = draw(st.sampled_from(APPS))
        pods.append(model.Pod(
            name=f"q{i}", containers=((0, 0),), labels={"app": app}, node_name=draw(st.sampled_from(homes)),
            affinity=_some(draw, affinity_terms(draw(st.sampled_from(APPS))), (0, 1, 1)),
            anti_affinity=_some(draw, affinity_terms(draw(st.sampled_from(APPS))), (0, 0, 1)),
            preferred_affinity=_some(draw, weighted_terms(draw(st.sampled_from(APPS))), (0, 0, 1)),
            preferred_anti_affinity=_some(draw, weighted_terms(draw(st.sampled_from(APPS))), (0, 0, 1)),
        ))
    # Maybe a terminating pod of a workload, as a rolling update leaves one, keeping the new pods
    # away (its anti-affinity, or else anti-affinity to its own kind): until the kubelet has removed
    # it, InterPodAffinity counts it and its terms, PodTopologySpread does not.
    if homes and draw(st.integers(0, 2)) == 0:
        spec = templates[0][1]
        anti = spec["anti_affinity"] or (model.AffinityTerm(model.Selector({"app": spec["labels"]["app"]}),
                                                            draw(st.sampled_from(TOPOLOGY_KEYS))),)
        pods.append(model.Pod(
            name="old", containers=((0, 0),), labels=spec["labels"], node_name=draw(st.sampled_from(homes)),
            affinity=spec["affinity"], anti_affinity=anti, spread=spec["spread"], deleting=True,
            preferred_affinity=spec["preferred_affinity"], preferred_anti_affinity=spec["preferred_anti_affinity"],
        ))
    return nodes, pods


def _expressions(term) -> str:
    return "[" + ", ".join(f'{{key: "{r.key}", operator: "{r.operator}", values: [{_quoted(r.values)}]}}'
                           for r in term) + "]"


def _labels(labels: dict) -> str:
    return ", ".join(f'"{k}": "{v}"' for k, v in labels.items())


def _selector(selector) -> str:
    """A LabelSelector flattened as the kinds hold it: no fields at all for a null one."""
    if selector is None:
        return ""
    labels = f"labelSelector: {{{_labels(selector.match_labels)}}}, " \
        if selector.match_labels or not selector.match_expressions else ""
    return labels + f"matchExpressions: {_expressions(selector.match_expressions)}, "


def _pod_terms(terms) -> str:
    return "[" + ", ".join(f'{{{_selector(t.selector)}topologyKey: "{t.topology_key}"}}' for t in terms) + "]"


def _weighted_terms(terms) -> str:
    return "[" + ", ".join(f'{{weight: {w}, podAffinityTerm: {{{_selector(t.selector)}topologyKey: "{t.topology_key}"}}}}'
                           for w, t in terms) + "]"


def scheduler_spec(nodes, pods) -> str:
    """The cluster as a user writes it: without the labels the kubelet registers the node with."""
    text = []
    for n in nodes:
        registered = {**model.KUBELET_LABELS, model.HOSTNAME: n.name}
        labels = "  ".join(f'"{k}": "{v}"' for k, v in n.labels.items() if registered.get(k) != v)
        taints = ", ".join(f'{{key: "{t.key}", value: "{t.value}", effect: "{t.effect}"}}' for t in n.taints)
        text.append(f"node {n.name} {{ cpu: {n.milli_cpu}m  memory: {n.memory // MI}Mi  pods: {n.pods}"
                    f"  labels {{ {labels} }}  taints: [{taints}]  unschedulable: {str(n.unschedulable).lower()} }}\n")
    for p in pods:
        labels = "  ".join(f'"{k}": "{v}"' for k, v in p.labels.items())
        selector = "  ".join(f'{k}: "{v}"' for k, v in p.node_selector.items())
        required = ", ".join(f"{{matchExpressions: {_expressions(t)}}}" for t in p.required_terms)
        preferred = ", ".join(f"{{weight: {w}, preference: {{matchExpressions: {_expressions(t)}}}}}"
                              for w, t in p.preferred_terms)
        tolerations = ", ".join(f'{{key: "{t.key}", operator: "{t.operator}", value: "{t.value}", effect: "{t.effect}"}}'
                                for t in p.tolerations)
        spread = ", ".join(f'{{maxSkew: {c.max_skew}, topologyKey: "{c.topology_key}", '
                           f'whenUnsatisfiable: "{c.when_unsatisfiable}", {_selector(c.selector)}}}' for c in p.spread)
        containers = "".join(f'  container c{i} {{ image: "x"  cpu: {cpu}m  memory: {memory // MI}Mi }}\n'
                             for i, (cpu, memory) in enumerate(p.containers))
        containers += "".join(f'  initContainer i{i} {{ image: "x"  cpu: {cpu}m  memory: {memory // MI}Mi'
                              + ('  restartPolicy: "Always"' if sidecar else "") + " }\n"
                              for i, (cpu, memory, sidecar) in enumerate(p.init_containers))
        bound = f'  node: "{p.node_name}"\n' if p.node_name else ""
        bound += "  deleting: true\n" if p.deleting else ""
        text.append(f"pod {p.name} {{ labels {{ {labels} }}  nodeSelector {{ {selector} }}  tolerations: [{tolerations}]\n"
                    f"  affinity: {{requiredNodeTerms: [{required}], preferredNodeTerms: [{preferred}],\n"
                    f"    podAffinity: {_pod_terms(p.affinity)}, podAntiAffinity: {_pod_terms(p.anti_affinity)},\n"
                    f"    preferredPodAffinity: {_weighted_terms(p.preferred_affinity)},\n"
                    f"    preferredPodAntiAffinity: {_weighted_terms(p.preferred_anti_affinity)}}}\n"
                    f"  topologySpreadConstraints: [{spread}]\n{bound}{containers}}}\n")
    return "".join(text)


@st.composite
def soft_affinity_clusters(draw):
    """Clusters where preferred pod (anti-)affinity decides: 2–6 nodes alike in capacity and without
    taints, in zones and racks (some without), 2–8 pods of one or two workloads that mostly carry
    preferred terms, and a few pods already bound, some with preferred terms of their own that
    select the newcomers (InterPodAffinity's symmetry)."""
    names = draw(st.permutations("abcdef"))[:draw(st.integers(2, 6))]
    nodes = []
    for name in names:
        labels = {**model.KUBELET_LABELS, model.HOSTNAME: draw(st.sampled_from((name, name, name, "shared")))}
        for key, values in (("zone", ("a", "b", "c")), ("rack", ("r1", "r2"))):
            if draw(st.integers(0, 3)) > 0:
                labels[key] = draw(st.sampled_from(values))
        nodes.append(model.Node(name=name, milli_cpu=draw(st.sampled_from((4000, 4000, 8000))),
                                memory=4096 * MI, labels=labels))
    keys = (model.HOSTNAME, "zone", "rack")
    terms = st.builds(model.AffinityTerm, st.one_of(st.just(None), st.sampled_from(APPS).map(
        lambda app: model.Selector({"app": app}))), st.sampled_from(keys))
    weighted = st.tuples(st.sampled_from((1, 10, 50, 100)), terms)
    specs = []
    for _ in range(draw(st.integers(1, 2))):
        spec = dict(containers=((draw(st.sampled_from((100, 500, 1000))), 256 * MI),),
                    labels={"app": draw(st.sampled_from(APPS))},
                    preferred_affinity=_some(draw, weighted, (0, 1, 1, 2)),
                    preferred_anti_affinity=_some(draw, weighted, (0, 1, 1, 2)),
                    anti_affinity=_some(draw, terms, (0, 0, 0, 0, 1)))
        specs += [spec] * draw(st.integers(1, 5))
    specs = specs[:8]
    order = draw(st.permutations(range(len(specs))))
    pods = [model.Pod(name=f"p{i}", **specs[k]) for i, k in enumerate(order)]
    for i in range(draw(st.integers(0, 3))):
        pods.append(model.Pod(
            name=f"q{i}", containers=((0, 0),), labels={"app": draw(st.sampled_from(APPS))},
            node_name=draw(st.sampled_from(names)), affinity=_some(draw, terms, (0, 0, 1)),
            preferred_affinity=_some(draw, weighted, (0, 1)), preferred_anti_affinity=_some(draw, weighted, (0, 1, 1)),
        ))
    return nodes, pods


@given(scheduler_clusters())
def test_pods_land_where_the_kubernetes_model_places_them(cluster):
    # The bind rule takes pending pods in its firing order, by name within the namespace, each
    # against the nodes as the earlier bindings left them, and takes a pending pod again once a
    # binding changed what it reads: the model schedules them so too. A terminating pod is removed
    # by the kubelet once the scheduler has settled; where there is one, the placements just before
    # are the model's too.
    assert_placed_as_the_model_places(*cluster)


@given(soft_affinity_clusters())
def test_preferred_pod_affinity_places_pods_where_the_kubernetes_model_does(cluster):
    assert_placed_as_the_model_places(*cluster)


def assert_placed_as_the_model_places(nodes, pods):
    terminating = any(p.deleting for p in pods)
    c = run(scheduler_spec(nodes, pods), history=terminating)
    expected = model.schedule(nodes, sorted(pods, key=lambda p: p.name))
    if terminating:
        before = model.schedule(nodes, sorted(pods, key=lambda p: p.name), remove_terminating=False)
        last = [pods for pods in ([o for o in objects if o["kind"] == "Pod"] for _, objects in c.states())
                if any(o["name"] == "old" for o in pods)][-1]
        assert {o["name"]: o["node"] for o in last} == {name: b.node for name, b in before.items()}
    events = {e["name"]: e["message"] for e in c.of("Event") if e["reason"] == "FailedScheduling"}
    for p in pods:
        if p.deleting:  # the kubelet removed it
            assert p.name not in expected and not any(q["name"] == p.name for q in c.of("Pod")), p.name
            continue
        got, want = c.get("Pod", p.name), expected[p.name]
        assert got["node"] == want.node, p.name
        if want.node is None:
            assert (got["reason"], got["message"]) == ("Unschedulable", want.message), p.name
            assert events[p.name + ".failedscheduling"] == want.message
        elif p.node_name is None:
            assert not got.get("reason") and p.name + ".failedscheduling" not in events, p.name


def test_a_pod_that_fits_any_node_or_scores_alike_everywhere_is_judged_as_the_written_filters_and_scores_judge_it():
    # reasons, admits and score ask any_node(p) and preference_alike(p) of the pod alone before
    # the calls of the pod and each node they stand for: where those hold, the calls must give
    # what the shortcut gives (every node matches; the preference scores are 300 everywhere).
    from engine import fixpoint
    from engine.check import load_program, std_dir
    from engine.eval import Evaluator

    tolerant = 'tolerations: [{key: "spot", operator: "Exists", effect: "PreferNoSchedule"}]'
    spread = ('topologySpreadConstraints: [{maxSkew: 1, topologyKey: "kubernetes.io/hostname", '
              'whenUnsatisfiable: "ScheduleAnyway", labelSelector: {app: "s"}}]')
    c = run(node("a", extra='labels { disk: "ssd" }')
            + node("b", extra='taints: [{key: "spot", effect: "PreferNoSchedule"}]')
            + node("c", cpu="8", extra='labels { disk: "hdd" }')
            + pod("plain") + pod("calm", extra=tolerant) + pod("ssd", extra='nodeSelector { disk: "ssd" }')
            + pod("prefers", extra=tolerant + ' affinity: {preferredNodeTerms: [{weight: 50, preference: '
                                  '{matchExpressions: [{key: "disk", operator: "In", values: ["hdd"]}]}}]}')
            + pod("spread", labels='app: "s"', extra=tolerant + " " + spread)
            + pod("spread2", labels='app: "s"', extra=tolerant + " " + spread))
    prog = load_program(sorted(std_dir().glob("*.konv")), std=False)
    cache = fixpoint.Cache()
    for o in c.objects:
        cache.put(o)
    ev = Evaluator(prog, cache)

    def call(name, *args):
        return ev.call_def(prog.defs[name], list(args))

    alike, fits_any = set(), set()
    for p in c.of("Pod"):
        for n in c.of("Node"):
            if call("any_node", p):
                fits_any.add(p["name"])
                assert call("matches_node_affinity", p, n) is True
            assert call("score", p, n) == call("resource_score", p, n, call("node_use", n)) + call(
                "preference_score", p, n)
            if call("preference_alike", p):
                alike.add(p["name"])
                assert call("preference_score", p, n) == 300
            assert call("admits", p, n) == (call("out_of", p, n) is None and call("matches_node_affinity", p, n)
                                            and call("admitted_ports_fit", p, n))
    # Each condition fails for some pod: the soft taint for those that do not tolerate it (plain,
    # ssd), the preferred term (prefers), the spread constraint (spread, spread2); the selector
    # and the affinity for any_node.
    assert alike == {"calm"}
    assert fits_any == {"plain", "calm", "spread", "spread2"}
    assert c.get("Pod", "prefers")["node"] == "c" and c.get("Pod", "ssd")["node"] == "a"
