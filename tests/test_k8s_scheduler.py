"""kube-scheduler's default profile (rules/scheduler.konv) against the reference behaviour."""

import pytest

from engine import fixpoint
from tests.kube import deployment, node, run


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


def test_pod_for_another_scheduler_gets_no_verdict_and_no_event():
    # Kubernetes: no scheduler profile claims it, so it stays Pending without a PodScheduled
    # condition or a FailedScheduling event; a workload's pods carry the template's scheduler.
    c = run(node("a") + deployment("web", replicas=2, extra='schedulerName: "my-scheduler"'))
    pods = c.pods("web")
    assert len(pods) == 2 and all(p["schedulerName"] == "my-scheduler" for p in pods)
    assert all(p["node"] is None and p["phase"] == "Pending" and p["reason"] == "" for p in pods)
    assert not c.of("Event") and not c.writes(rule="bind")


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
    kept, keep = [], fixpoint._Memo.keep

    def spy(self, key, value, reads):
        kept.append(key[0])
        return keep(self, key, value, reads)
    monkeypatch.setattr(fixpoint._Memo, "keep", spy)
    c = run("".join(node(f"n{i}") for i in range(8)) + deployment("web", replicas=8))
    assert sorted(p["node"] for p in c.pods("web")) == [f"n{i}" for i in range(8)]
    assert kept.count("node_use") >= 8  # each node's own
    assert kept.count("node_reasons") == 2 and kept.count("resource_score") == 2
