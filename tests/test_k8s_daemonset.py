"""The DaemonSet controller (rules/daemonset.konv), after upstream's
pkg/controller/daemon/daemon_controller_test.go and update_test.go: one pod per eligible node,
node selection by nodeSelector, affinity and taints, self-healing, rolling updates, deletion,
and the pods' survival of a node failure."""

import pytest

from engine.errors import KonvergeError
from tests.kube import node, run

DS = """
daemonset agent {{
  {extra}
  template {{
    labels {{ app: "agent" }}
    {template}
    container main {{ image: "agent:{version}"  cpu: {cpu}  memory: 64Mi }}
  }}
}}
"""


def daemonset(extra="", template="", version="1", cpu="100m"):
    return DS.format(extra=extra, template=template, version=version, cpu=cpu)


def agents(c, live=True):
    return c.pods("agent", live=live)


def nodes_of(pods):
    return sorted(p["node"] for p in pods)


def test_one_pod_on_every_node():
    # TestSimpleDaemonSetLaunchesPods: five nodes, five pods, one on each.
    c = run("".join(node(f"n{i}") for i in range(5)) + daemonset())
    pods = agents(c)
    assert nodes_of(pods) == [f"n{i}" for i in range(5)] and all(p["ready"] for p in pods)
    [ds] = c.of("DaemonSet")
    assert (ds["desiredNumberScheduled"], ds["currentNumberScheduled"], ds["numberReady"],
            ds["updatedNumberScheduled"], ds["numberAvailable"], ds["numberMisscheduled"]) == (5, 5, 5, 5, 5, 0)


def test_a_pod_is_owned_named_by_its_node_and_carries_the_daemon_tolerations():
    # NewPod, AddOrUpdateDaemonPodTolerations and ReplaceDaemonSetPodNodeNameNodeAffinity.
    c = run(node("n1") + daemonset(template='tolerations: [{key: "node.kubernetes.io/not-ready", '
                                              'operator: "Exists", effect: "NoExecute", tolerationSeconds: 60}]'))
    [p] = agents(c)
    assert p["owner"] == {"kind": "DaemonSet", "name": "agent"}
    assert p["name"].startswith("agent-") and "controller-revision-hash" in p["labels"]
    assert p["affinity"]["requiredNodeTerms"] == [
        {"matchExpressions": [], "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    # the template's not-ready toleration is replaced in place, without its seconds
    assert [(t["key"], t["effect"], t["tolerationSeconds"]) for t in p["tolerations"]] == [
        ("node.kubernetes.io/not-ready", "NoExecute", None),
        ("node.kubernetes.io/unreachable", "NoExecute", None),
        ("node.kubernetes.io/disk-pressure", "NoSchedule", None),
        ("node.kubernetes.io/memory-pressure", "NoSchedule", None),
        ("node.kubernetes.io/pid-pressure", "NoSchedule", None),
        ("node.kubernetes.io/unschedulable", "NoSchedule", None),
    ]


def test_node_selector_picks_the_nodes():
    # TestNodeSelectorDaemonLaunchesPods and TestSelectorDaemonDeletesUnselectedPods.
    c = run(node("n1", extra='labels { disk: "ssd" }') + node("n2") + node("n3", extra='labels { disk: "ssd" }')
            + daemonset(template='nodeSelector { disk: "ssd" }'))
    assert nodes_of(agents(c)) == ["n1", "n3"]
    assert c.of("DaemonSet")[0]["desiredNumberScheduled"] == 2


def test_required_node_affinity_picks_the_nodes():
    # TestNodeAffinityDaemonLaunchesPods: the template's required terms choose the nodes; the pods'
    # own terms name their node instead.
    c = run(node("n1", extra='labels { zone: "a" }') + node("n2", extra='labels { zone: "b" }') + daemonset(
        template='affinity: {requiredNodeTerms: [{matchExpressions: [{key: "zone", operator: "In", values: ["a"]}]}]}'))
    assert nodes_of(agents(c)) == ["n1"]


def test_untolerated_taints_keep_pods_off_and_tolerated_ones_do_not():
    # TestTaintedNodeDaemonDoesNotLaunchIntolerantPods, TestTaintedNodeDaemonLaunchesToleratePods.
    taint = 'taints: [{key: "dedicated", value: "gpu", effect: "NoSchedule"}]'
    spec = node("n1") + node("n2", extra=taint)
    assert nodes_of(agents(run(spec + daemonset()))) == ["n1"]
    tolerant = daemonset(template='tolerations: [{key: "dedicated", operator: "Exists"}]')
    assert nodes_of(agents(run(spec + tolerant))) == ["n1", "n2"]


def test_control_plane_node_is_skipped_unless_tolerated():
    spec = node("cp", extra="controlPlane: true") + node("w1")
    assert nodes_of(agents(run(spec + daemonset()))) == ["w1"]
    tolerant = daemonset(template='tolerations: [{key: "node-role.kubernetes.io/control-plane", '
                                  'operator: "Exists", effect: "NoSchedule"}]')
    assert nodes_of(agents(run(spec + tolerant))) == ["cp", "w1"]


def test_cordoned_node_still_runs_the_pod():
    # The unschedulable toleration the controller adds lets the scheduler place it there.
    assert nodes_of(agents(run(node("n1", extra="unschedulable: true") + daemonset()))) == ["n1"]


def test_a_node_added_later_gets_a_pod():
    # TestNewNodeAddsDaemonPod (the node's add event).
    c = run(node("n1") + daemonset() + """
scenario "add" { at 1m: create node n2 { cpu: 4  memory: 8Gi } }
""")
    assert nodes_of(agents(c)) == ["n1", "n2"] and all(p["ready"] for p in agents(c))


def test_a_node_relabeled_away_loses_its_pod():
    # TestNodeDaemonDoesNotLaunchesPodsWhenNodeNoLongerMatches: the pod on a node the selector no
    # longer matches is deleted (and the kubelet removes it).
    c = run(node("n1", extra='labels { disk: "ssd" }') + node("n2", extra='labels { disk: "ssd" }')
            + daemonset(template='nodeSelector { disk: "ssd" }') + """
scenario "relabel" { at 1m: update node n2 { labels: {disk: "hdd"} } }
""")
    assert nodes_of(agents(c)) == ["n1"] and c.of("DaemonSet")[0]["desiredNumberScheduled"] == 1
    assert c.writes(verb="update", kind="Pod", rule="delete_misplaced")


def test_a_failed_pod_is_deleted_and_replaced():
    # TestDaemonKillFailedPods: a failed daemon pod is deleted, and the node gets a new one.
    c = run(node("n1") + daemonset(template='restartPolicy: "Never"') + """
scenario "fail" { at 1m: crash pod agent-NAME }
""".replace("agent-NAME", "agent-" + _first_pod_suffix()))
    assert c.writes(verb="update", kind="Pod", rule="delete_finished")
    [p] = agents(c)
    assert p["phase"] == "Running" and p["ready"] and p["containers"][0]["restarts"] == 0


def _first_pod_suffix():
    """The name the set's first pod on n1 gets (a stable hash), read from a run."""
    return run(node("n1") + daemonset()).of("Pod")[0]["name"].split("-")[1]


def test_extra_pods_on_a_node_keep_the_oldest():
    # TestDaemonSetRespectsTermination / dedupCurHistories: of two running daemon pods on one node,
    # the one created first stays (OnDelete, as these pods lack the template's hash and a rolling
    # update would replace them).
    extra = ('pod agent-old { labels { app: "agent" } owner { kind: "DaemonSet"  name: "agent" } '
             'node: "n1"  container main { image: "agent:1"  cpu: 100m  memory: 64Mi } }\n')
    c = run(node("n1") + extra + daemonset(extra='updateStrategy: "OnDelete"') + """
scenario "dup" { at 1m: create pod agent-new { labels: {app: "agent"} owner: {kind: "DaemonSet", name: "agent"}
  node: "n1" createdAt: 1m containers: [{name: "main", image: "agent:1", cpu: 100m, memory: 64Mi}] } }
""")
    assert [p["name"] for p in agents(c)] == ["agent-old"]
    assert [w.name for w in c.writes(verb="update", kind="Pod", rule="delete_duplicates")] == ["agent-new"]


def test_rolling_update_replaces_pods_within_max_unavailable():
    # update_test.go TestDaemonSetUpdatesPods: with maxUnavailable 2 of 5 nodes, no state ever has
    # fewer than 3 nodes with a ready pod, two nodes are replaced at a time, and all end updated.
    spec = "".join(node(f"n{i}") for i in range(5)) + daemonset(extra="maxUnavailable: 2") + """
scenario "roll" {
  at 1m: update daemonset agent { template: {labels: {app: "agent"},
    containers: [{name: "main", image: "agent:2", cpu: 100m, memory: 64Mi}]} }
}
"""
    c = run(spec, history=True)
    assert all(p["containers"][0]["image"] == "agent:2" and p["ready"] for p in agents(c))
    assert nodes_of(agents(c)) == [f"n{i}" for i in range(5)]
    fewest = 5
    for _, objects in c.states():
        ready = {p["node"] for p in objects if p["kind"] == "Pod" and p["labels"].get("app") == "agent"
                 and p["ready"] and not p["deleting"]}
        if any(o["kind"] == "DaemonSet" and o["template"]["containers"][0]["image"] == "agent:2" for o in objects):
            fewest = min(fewest, len(ready))
    assert fewest == 3
    [ds] = c.of("DaemonSet")
    assert ds["updatedNumberScheduled"] == 5 and ds["numberAvailable"] == 5


def test_on_delete_changes_only_replaced_pods():
    # TestDaemonSetUpdatesNoTemplateChanged / OnDelete: the template change alone replaces nothing.
    spec = node("n1") + node("n2") + daemonset(extra='updateStrategy: "OnDelete"') + """
scenario "edit" {
  at 1m: update daemonset agent { template: {labels: {app: "agent"},
    containers: [{name: "main", image: "agent:2", cpu: 100m, memory: 64Mi}]} }
}
"""
    c = run(spec)
    assert [p["containers"][0]["image"] for p in agents(c)] == ["agent:1", "agent:1"]
    assert c.of("DaemonSet")[0]["updatedNumberScheduled"] == 0


def test_deleting_the_daemonset_deletes_its_pods():
    c = run(node("n1") + node("n2") + daemonset() + """
scenario "delete" { at 1m: delete daemonset agent }
""")
    assert agents(c, live=False) == []


def test_a_full_node_leaves_the_pod_pending_with_the_schedulers_message():
    # The default scheduler places daemon pods (ScheduleDaemonSetPods): a node without room leaves
    # its pod Pending, FailedScheduling, and the other nodes' affinity rejects it.
    hog = ('pod hog { node: "n1"  container main { image: "hog:1"  cpu: 3900m  memory: 64Mi } }\n')
    c = run(node("n1") + node("n2") + hog + daemonset(cpu="200m"))
    pending = [p for p in agents(c) if p["node"] is None]
    assert len(pending) == 1 and pending[0]["reason"] == "Unschedulable"
    assert pending[0]["message"] == ("0/2 nodes are available: 1 Insufficient cpu, "
                                     "1 node(s) didn't match Pod's node affinity/selector.")
    assert nodes_of([p for p in agents(c) if p["node"]]) == ["n2"]
    [ds] = c.of("DaemonSet")
    # a pending pod counts for the node its affinity names (GetTargetNodeName)
    assert (ds["desiredNumberScheduled"], ds["currentNumberScheduled"], ds["numberReady"]) == (2, 2, 1)


def test_pods_survive_a_node_failure_past_300_seconds():
    # Their not-ready and unreachable tolerations have no seconds: the taint manager never evicts them,
    # where a Deployment's pod on the same node goes after 300 s.
    c = run(node("n1") + node("n2") + daemonset() + """
deployment web { replicas: 1 template { labels { app: "web" } nodeSelector { "kubernetes.io/hostname": "n1" }
  container main { image: "web:1"  cpu: 100m  memory: 64Mi } } }
scenario "fail" { at 10s: fail node n1 }
""")
    assert c.clock > 300
    on_n1 = [p for p in agents(c) if p["node"] == "n1"]
    assert len(on_n1) == 1 and not on_n1[0]["deleting"] and not on_n1[0]["ready"]
    assert all(p["deleting"] for p in c.pods("web") if p["node"] == "n1")
    [ds] = c.of("DaemonSet")
    # the failed node's NoSchedule twin of its taint: no longer desired, its pod misscheduled
    assert (ds["desiredNumberScheduled"], ds["numberMisscheduled"]) == (1, 1)


def test_a_selector_that_does_not_match_the_template_is_refused():
    # ValidateDaemonSetSpec: the selector must select the template's labels.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + """
daemonset bad { selector { app: "other" } template { labels { app: "agent" }
  container main { image: "agent:1" } } }
""")
    assert ('DaemonSet "bad" is invalid: spec.template.metadata.labels: Invalid value: '
            'map[string]string{"app":"agent"}: `selector` does not match template `labels`') in str(e.value)


def test_a_rolling_update_with_max_unavailable_0_is_refused():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + daemonset(extra="maxUnavailable: 0"))
    assert ("spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            in str(e.value))


def test_a_daemon_pod_is_judged_on_the_node_it_names_alone(monkeypatch):
    # NodeAffinity's PreFilter returns the nodes `matchFields metadata.name In` names, and only those
    # are filtered and scored: the scheduler's verdicts grow with the nodes, not with their square.
    from engine import picks
    judged = []
    judge = picks.Picks._judge
    monkeypatch.setattr(picks.Picks, "_judge", lambda self, *a: judged.append(a[-1]) or judge(self, *a))
    c = run("".join(node(f"n{i:02}") for i in range(40)) + daemonset())
    assert nodes_of(agents(c)) == [f"n{i:02}" for i in range(40)]
    assert len(judged) <= 2 * 40


def test_an_old_pod_that_is_not_ready_counts_against_max_unavailable():
    # update.go rollingUpdate: an old pod not available is replaced at once and counted unavailable
    # (numUnavailable++), so with maxUnavailable 1 no ready pod goes until it has been replaced.
    base = "".join(node(f"n{i}") for i in range(3)) + daemonset(extra="maxUnavailable: 1")
    crashed = next(p["name"] for p in agents(run(base)) if p["node"] == "n0")
    c = run(base + """
scenario "roll" {
  at 1m: crash pod %s
  at 3m: update daemonset agent { template: {labels: {app: "agent"},
    containers: [{name: "main", image: "agent:2", cpu: 100m, memory: 64Mi}]} }
}
""" % crashed, history=True, until=1200)
    worst = 0
    for _, objects in c.states():
        if any(o["kind"] == "DaemonSet" and o["template"]["containers"][0]["image"] == "agent:2" for o in objects):
            ready = {p["node"] for p in objects if p["kind"] == "Pod" and p["ready"] and not p["deleting"]}
            worst = max(worst, 3 - len(ready))
    assert worst == 1
    assert all(p["containers"][0]["image"] == "agent:2" and p["ready"] for p in agents(c))


PERCENT = ("a valid percent string must be a numeric string followed by an ending '%' "
           "(e.g. '1%' or '93%', regex used for validation is '[0-9]+%')")


@pytest.mark.parametrize("value, message", [
    ('"abc"', 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"abc"}: ' + PERCENT),
    ('"%"', 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"%"}: ' + PERCENT),
    ("-1", "Invalid value: -1: must be greater than or equal to 0"),
    ('"300%"', 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"300%"}: must not be greater than 100%'),
])
def test_max_unavailable_is_a_count_or_a_percentage_up_to_100(value, message):
    # ValidateRollingUpdateDaemonSet: ValidatePositiveIntOrPercent and IsNotMoreThan100Percent.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + daemonset(extra=f"maxUnavailable: {value}"))
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: " + message in str(e.value)


@pytest.mark.parametrize("fields, message", [
    ('maxSurge: "x"', 'spec.strategy.rollingUpdate.maxSurge: Invalid value: '
                      'intstr.IntOrString{Type:1, IntVal:0, StrVal:"x"}: ' + PERCENT),
    ("maxUnavailable: -2", "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: -2: "
                           "must be greater than or equal to 0"),
    ('maxUnavailable: "101%"', 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: '
                               'intstr.IntOrString{Type:1, IntVal:0, StrVal:"101%"}: must not be greater than 100%'),
])
def test_a_deployments_max_surge_and_max_unavailable_are_validated(fields, message):
    # ValidateRollingUpdateDeployment, with upstream's messages.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + "deployment web { %s template { labels { app: \"web\" }\n"
            "  container main { image: \"web:1\" } } }\n" % fields)
    assert message in str(e.value)


def test_a_plain_pod_with_match_fields_affinity_lands_on_the_named_node():
    # NodeAffinity's Filter and PreFilter: `matchFields metadata.name In` picks the node by name;
    # NotIn keeps it off; names in two terms are ORed.
    c = run("".join(node(f"n{i}") for i in range(4)) + """
pod one { affinity: {requiredNodeTerms: [{matchFields: [{key: "metadata.name", operator: "In", values: ["n2"]}]}]}
  container main { image: "x:1"  cpu: 100m  memory: 64Mi } }
pod two { affinity: {requiredNodeTerms: [{matchFields: [{key: "metadata.name", operator: "In", values: ["n9"]}]},
                                         {matchFields: [{key: "metadata.name", operator: "In", values: ["n3"]}]}]}
  container main { image: "x:1"  cpu: 100m  memory: 64Mi } }
pod none { affinity: {requiredNodeTerms: [{matchFields: [{key: "metadata.name", operator: "In", values: ["n9"]}]}]}
  container main { image: "x:1"  cpu: 100m  memory: 64Mi } }
pod notin { affinity: {requiredNodeTerms: [{matchFields: [
    {key: "metadata.name", operator: "NotIn", values: ["n0"]}]}]}
  container main { image: "x:1"  cpu: 100m  memory: 64Mi } }
""")
    placed = {p["name"]: p["node"] for p in c.of("Pod")}
    assert (placed["one"], placed["two"], placed["none"]) == ("n2", "n3", None)
    assert placed["notin"] not in (None, "n0")
    assert c.get("Pod", "none")["message"] == (
        "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.")
