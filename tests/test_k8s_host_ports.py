"""Host ports on a node: the scheduler's NodePorts filter and the kubelet's admission
(rules/scheduler.konv, rules/kubelet.konv), after upstream's
pkg/scheduler/framework/plugins/nodeports/node_ports_test.go (TestNodePorts) and
pkg/kubelet/lifecycle/predicate_test.go (generalFilter's NodePorts failure)."""

from engine.cli import main
from tests.kube import deployment, memo_keeps, node, run, write_spec

NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"


def pod(name, ports, extra="", sidecar=""):
    """A pod whose one container has `ports`: (containerPort, hostPort, protocol) each."""
    text = "  ".join(f'port p{i} {{ containerPort: {cp}  hostPort: {hp}  protocol: "{proto}" }}'
                     for i, (cp, hp, proto) in enumerate(ports))
    return (f'pod {name} {{ labels {{ app: "{name}" }} {extra}\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi  {text} }}\n{sidecar}}}\n')


def test_two_pods_wanting_one_host_port_do_not_share_a_node(capsys):
    # TestNodePorts "same udp port" / "same tcp port": the second pod stays Pending with
    # NodePorts' ErrReason, counted as the unschedulable message counts every reason.
    spec = node("n1") + pod("a", [(80, 8080, "TCP")]) + pod("b", [(81, 8080, "TCP")])
    c = run(spec)
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["node"] == "n1" and a["phase"] == "Running"
    assert b["node"] is None and b["reason"] == "Unschedulable"
    assert b["message"] == f"0/1 nodes are available: 1 {NODE_PORTS}."
    [event] = [e for e in c.of("Event") if e["reason"] == "FailedScheduling"]
    assert event["object"] == "Pod/default/b" and event["message"] == b["message"]
    # why-pending names the plugin and the reason, node by node.
    assert main(["why-pending", "b", str(write_spec(spec))]) == 0
    text = capsys.readouterr().out
    assert "0/1 nodes pass; rejected by NodePorts (1)" in text
    assert f"n1    NodePorts  {NODE_PORTS}" in text


def test_different_protocols_and_different_ports_fit_on_one_node():
    # TestNodePorts "other port" and "same port, different protocol" (UDP beside TCP).
    c = run(node("n1") + pod("a", [(80, 8080, "TCP")]) + pod("b", [(80, 8080, "UDP")])
            + pod("d", [(80, 8081, "TCP")]))
    assert [p["node"] for p in c.pods()] == ["n1", "n1", "n1"]


def test_a_host_port_of_0_is_unset_as_in_kubernetes():
    # validateContainerPorts judges a hostPort only when it is not 0, AccumulateUniqueHostPorts and
    # HostPortInfo skip 0: two pods with hostPort 0, or one with it twice, share a node (review RN).
    c = run(node("n1") + pod("a", [(80, 0, "TCP"), (81, 0, "TCP")]) + pod("b", [(80, 0, "TCP")]))
    assert [(p["node"], p["phase"]) for p in c.pods()] == [("n1", "Running"), ("n1", "Running")]


def test_a_pod_whose_port_is_taken_goes_to_another_node():
    # The filter keeps it off the node with the port; the scores alone would put it there
    # (n1 is emptier by far).
    c = run(node("n1", cpu="16") + node("n2", cpu="1") + pod("a", [(80, 53, "UDP")])
            + pod("b", [(80, 53, "UDP")]))
    assert {p["name"]: p["node"] for p in c.pods()} == {"a": "n1", "b": "n2"}


def test_nodeports_comes_after_node_affinity_and_before_resources():
    # The default profile's filter order: NodeAffinity, NodePorts, NodeResourcesFit; a node fails
    # on its first failing filter. n1 has the port taken and too little cpu left; n2 lacks the label.
    spec = (node("n1", cpu="1", extra='labels { disk: "ssd" }') + node("n2")
            + pod("a", [(80, 8080, "TCP")], extra='nodeSelector { disk: "ssd" }')
            + pod("b", [(80, 8080, "TCP")], extra='nodeSelector { disk: "ssd" }').replace("cpu: 100m", "cpu: 1"))
    b = run(spec).get("Pod", "b")
    # (upstream sorts the "count reason" texts)
    assert b["message"] == (f"0/2 nodes are available: 1 {NODE_PORTS}, "
                            "1 node(s) didn't match Pod's node affinity/selector.")


def test_a_sidecars_host_port_counts_an_init_containers_does_not():
    # util.GetHostPorts: the containers' ports and those of init containers with restartPolicy
    # Always, which run the whole life of the pod.
    sidecar = ('  initContainer proxy { image: "p"  restartPolicy: "Always"  '
               'port s { containerPort: 90  hostPort: 9090 } }\n')
    init = '  initContainer setup { image: "s"  port s { containerPort: 90  hostPort: 9091 } }\n'
    c = run(node("n1") + pod("a", [(80, 8080, "TCP")], sidecar=sidecar + init)
            + pod("b", [(80, 9090, "TCP")]) + pod("d", [(80, 9091, "TCP")]))
    assert c.get("Pod", "b")["node"] is None and NODE_PORTS in c.get("Pod", "b")["message"]
    assert c.get("Pod", "d")["node"] == "n1"


def test_a_finished_pods_host_port_is_free_again():
    # The scheduler's cache holds no Succeeded or Failed pod: its ports are free.
    done = pod("a", [(80, 8080, "TCP")]).replace("memory: 64Mi", "memory: 64Mi  runFor: 10s") \
        .replace("{ labels", '{ restartPolicy: "Never"  labels')
    c = run(node("n1") + done + pod("b", [(80, 8080, "TCP")]))
    assert c.get("Pod", "a")["phase"] == "Succeeded"
    assert c.get("Pod", "b")["node"] == "n1" and c.get("Pod", "b")["phase"] == "Running"


def test_a_pinned_pod_whose_host_port_is_taken_is_rejected_by_the_kubelet():
    # A pod bound with nodeName skips the scheduler; the kubelet's admission (generalFilter,
    # AdmissionCheck's nodeports.Fits) rejects it: reason NodePorts, PredicateFailureError's text.
    c = run(node("n1") + pod("a", [(80, 8080, "TCP")], extra='node: "n1"')
            + pod("b", [(81, 8080, "TCP")], extra='node: "n1"'))
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running"
    assert b["phase"] == "Failed" and b["reason"] == "NodePorts" and b["ip"] is None
    assert b["message"] == f"Pod was rejected: Predicate NodePorts failed: {NODE_PORTS}"
    [event] = [e for e in c.of("Event") if e["object"] == "Pod/default/b"]
    assert (event["type"], event["reason"]) == ("Warning", "NodePorts")
    assert event["message"] == f"Predicate NodePorts failed: {NODE_PORTS}"


def test_a_pinned_pod_with_another_protocol_is_admitted():
    c = run(node("n1") + pod("a", [(80, 8080, "TCP")], extra='node: "n1"')
            + pod("b", [(80, 8080, "UDP")], extra='node: "n1"'))
    assert [p["phase"] for p in c.pods()] == ["Running", "Running"]


def test_a_daemonset_with_a_host_port_runs_one_pod_on_every_node():
    # The usual host-port workload: one agent per node, each with the port of its own node.
    ds = """
daemonset agent {
  template {
    labels { app: "agent" }
    container main { image: "agent:1"  cpu: 100m  memory: 64Mi  port m { containerPort: 9100  hostPort: 9100 } }
  }
}
"""
    c = run(node("n1") + node("n2") + node("n3") + ds)
    agents = c.pods("agent")
    assert sorted(p["node"] for p in agents) == ["n1", "n2", "n3"] and all(p["ready"] for p in agents)


def test_a_deployment_with_a_host_port_runs_one_replica_per_node():
    deployment = """
deployment web {
  replicas: 3
  template {
    labels { app: "web" }
    container main { image: "web:1"  cpu: 100m  memory: 64Mi  port http { containerPort: 80  hostPort: 80 } }
  }
}
"""
    c = run(node("n1") + node("n2") + deployment)
    pods = c.pods("web")
    assert sorted(p["node"] or "-" for p in pods) == ["-", "n1", "n2"]
    [pending] = [p for p in pods if p["node"] is None]
    assert pending["message"] == f"0/2 nodes are available: 2 {NODE_PORTS}."


def test_pods_without_host_ports_never_read_the_ports_used_on_a_node(monkeypatch):
    # NodePorts' PreFilter skips such a pod (almost every pod): neither the scheduler nor the
    # kubelet works out a node's used ports for it, so no pod bound there makes it look again.
    kept = memo_keeps(monkeypatch)
    run("".join(node(f"n{i}") for i in range(4)) + deployment("web", replicas=8))
    assert "node_reasons" in kept
    assert not {"used_host_ports", "ports_fit", "admitted_ports_fit"} & set(kept)
    kept.clear()
    run(node("n1") + node("n2") + pod("a", [(80, 8080, "TCP")]) + pod("b", [(80, 8080, "TCP")]))
    assert "used_host_ports" in kept
