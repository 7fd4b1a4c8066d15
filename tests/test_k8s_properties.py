"""Properties of the standard control plane on random small clusters.

Hypothesis draws 1–4 nodes (cpu, memory, labels, taints), 1–3 deployments (replicas, requests,
node selectors, tolerations, a host port or none), a service for each, and optionally a fault (a failed kubelet, a
failed runtime, a cordon); the spec is written as text, reconciled, and the fixed point is
checked against what Kubernetes promises.
"""

from fractions import Fraction
from ipaddress import ip_address, ip_network

from hypothesis import given
from hypothesis import strategies as st

from tests.kube import run

MI = 2 ** 20
GI = 2 ** 30
CPUS = {"500m": Fraction(1, 2), "1": 1, "2": 2, "4": 4}
MEMORIES = {"512Mi": 512 * MI, "1Gi": GI, "4Gi": 4 * GI}
POD_CPUS = {"100m": Fraction(1, 10), "250m": Fraction(1, 4), "500m": Fraction(1, 2), "1": 1}
POD_MEMORIES = {"64Mi": 64 * MI, "256Mi": 256 * MI, "1Gi": GI}
ZONES = ["a", "b"]


@st.composite
def clusters(draw):
    nodes = []
    for i in range(draw(st.integers(1, 4))):
        nodes.append({
            "name": f"node-{i}",
            "cpu": draw(st.sampled_from(sorted(CPUS))),
            "memory": draw(st.sampled_from(sorted(MEMORIES))),
            "zone": draw(st.sampled_from(ZONES)),
            "ssd": draw(st.booleans()),
            "taint": draw(st.sampled_from([None, "NoSchedule", "PreferNoSchedule"])),
        })
    deployments = []
    for i in range(draw(st.integers(1, 3))):
        deployments.append({
            "name": f"app-{i}",
            "replicas": draw(st.integers(0, 4)),
            "cpu": draw(st.sampled_from(sorted(POD_CPUS))),
            "memory": draw(st.sampled_from(sorted(POD_MEMORIES))),
            "selector": draw(st.sampled_from([None, "zone", "ssd"])),
            "zone": draw(st.sampled_from(ZONES)),
            "tolerates": draw(st.booleans()),
            "hostPort": draw(st.sampled_from([None, 9000, 9001])),
        })
    fault = draw(st.one_of(st.none(), st.tuples(st.sampled_from(["fail", "runtime_down", "cordon"]),
                                                 st.sampled_from([n["name"] for n in nodes]))))
    return nodes, deployments, fault


def spec_text(nodes, deployments, fault) -> str:
    out = []
    for n in nodes:
        labels = f'zone: "{n["zone"]}"' + (' disk: "ssd"' if n["ssd"] else "")
        taints = f'taints: [{{key: "dedicated", value: "batch", effect: "{n["taint"]}"}}]' if n["taint"] else ""
        out.append(f'node {n["name"]} {{ cpu: {n["cpu"]}  memory: {n["memory"]}  labels {{ {labels} }} {taints} }}')
    for d in deployments:
        selector = {None: "", "zone": f'nodeSelector {{ zone: "{d["zone"]}" }}',
                    "ssd": 'nodeSelector { disk: "ssd" }'}[d["selector"]]
        host = f'hostPort: {d["hostPort"]}' if d["hostPort"] else ""
        tolerations = ('tolerations: [{key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule"}]'
                       if d["tolerates"] else "")
        out.append(f'''deployment {d["name"]} {{
  replicas: {d["replicas"]}
  template {{
    labels {{ app: "{d["name"]}" }}
    {selector}
    {tolerations}
    container main {{ image: "{d["name"]}:1"  cpu: {d["cpu"]}  memory: {d["memory"]}  port http {{ containerPort: 8080 {host} }} }}
  }}
}}
service {d["name"]} {{ selector {{ app: "{d["name"]}" }}  port http {{ port: 80  targetPort: "http" }} }}''')
    if fault:
        out.append(f'scenario "fault" {{ at 30s: {fault[0]} node {fault[1]} }}')
    return "\n".join(out) + "\n"


def terminal(p):
    return p["phase"] in ("Succeeded", "Failed")


def pod_cpu(p):
    return sum(c["cpu"] for c in p["containers"])


def pod_memory(p):
    return sum(c["memory"] for c in p["containers"])


def tolerates(p, taint):
    for t in p["tolerations"]:
        key_ok = (t["key"] in ("", taint["key"])) if t["operator"] == "Exists" else \
            (t["key"] == taint["key"] and t["value"] == taint["value"])
        if key_ok and t["effect"] in ("", taint["effect"]):
            return True
    return False


def host_ports(p):
    return {(cp["hostPort"], cp["protocol"]) for c in p["containers"] for cp in c["ports"] if cp["hostPort"]}


def fits(p, n, on_node):
    """Whether pod p could be bound to node n now (selector, hard taints, host ports, resources,
    readiness)."""
    if not n["ready"] or n["unschedulable"]:
        return False
    if any(t["effect"] != "PreferNoSchedule" and not tolerates(p, t) for t in n["taints"]):
        return False
    if not all(n["labels"].get(k) == v for k, v in p["nodeSelector"].items()):
        return False
    if any(host_ports(p) & host_ports(q) for q in on_node):
        return False
    return (sum(pod_cpu(q) for q in on_node) + pod_cpu(p) <= n["cpu"]
            and sum(pod_memory(q) for q in on_node) + pod_memory(p) <= n["memory"]
            and len(on_node) + 1 <= n["pods"])


def check(c, nodes, deployments, fault):
    # A failed node (kubelet down) or a not-ready one (runtime down: its evicted pods stay there,
    # terminating, as its kubelet syncs no pod) keeps no live pod; a cordoned
    # one keeps those it runs and takes no new ones.
    fail = fault[1] if fault and fault[0] != "cordon" else None
    nodes_by_name = {n["name"]: n for n in c.of("Node")}
    pods = c.of("Pod")
    holding = {name: [p for p in pods if p["node"] == name and not terminal(p)] for name in nodes_by_name}

    # No node over capacity.
    for name, n in nodes_by_name.items():
        assert sum(pod_cpu(p) for p in holding[name]) <= n["cpu"], name
        assert sum(pod_memory(p) for p in holding[name]) <= n["memory"], name
        assert len(holding[name]) <= n["pods"]
        # No two pods on a node share a host port and protocol (NodePorts, and the kubelet's
        # admission).
        used = [port for p in holding[name] for port in host_ports(p)]
        assert len(used) == len(set(used)), name

    # Every bound pod fits its node's selector and NoSchedule taints (the failed node's
    # NoExecute taint is the taint manager's: pods there are evicted, i.e. terminating; a
    # cordon's taint keeps new pods off and leaves the node's pods running).
    for p in pods:
        if p["node"] and not terminal(p):
            n = nodes_by_name[p["node"]]
            assert all(n["labels"].get(k) == v for k, v in p["nodeSelector"].items()), p["name"]
            assert all(tolerates(p, t) for t in n["taints"]
                       if t["effect"] == "NoSchedule" and t["key"] != "node.kubernetes.io/unschedulable"), p["name"]
            if p["node"] == fail:  # past the 300 s toleration of the lifecycle taint: evicted
                assert p["deleting"], p["name"]

    # IPs are unique and come from the node's own blocks.
    blocks = {}
    for b in c.of("IPBlock"):
        blocks.setdefault(b["node"], []).append(ip_network(b["cidr"]))
    ips = [p["ip"] for p in pods if p["ip"]]
    assert len(ips) == len(set(ips))
    for p in pods:
        if p["ip"]:
            assert any(ip_address(p["ip"]) in net for net in blocks.get(p["node"], [])), p["name"]

    # Endpoints are the ready matching pods; every node routes to exactly them (one Route per service
    # port holds every node's table).
    for d in deployments:
        ep = c.get("Endpoints", d["name"])
        ready = sorted(p["ip"] for p in pods
                       if p["labels"].get("app") == d["name"] and p["ready"] and not p["deleting"] and p["ip"])
        assert sorted(a["ip"] for a in ep["addresses"]) == ready, d["name"]
        service = c.get("Service", d["name"])
        routes = [r for r in c.of("Route") if r["service"] == f"default/{d['name']}"]
        assert len(routes) == 1
        for r in routes:
            assert r["clusterIP"] == service["clusterIP"]
            assert sorted(b["ip"] for b in r["backends"]) == ready
            assert r["action"] == ("DNAT" if ready else "REJECT")
            if ready:
                n = len(r["backends"])
                assert [b["probability"] for b in r["backends"]] == [1.0 / (n - i) for i in range(n)]

    # Replicas are met when capacity allows: each deployment has its replicas of live pods, each
    # running and ready, or Pending as Unschedulable because no node can take it.
    for d in deployments:
        live = [p for p in pods if p["labels"].get("app") == d["name"] and not p["deleting"] and not terminal(p)]
        assert len(live) == d["replicas"], d["name"]
        for p in live:
            if p["node"] is None:
                assert p["reason"] == "Unschedulable" and p["message"].startswith(f"0/{len(nodes)} nodes are available: ")
                assert not any(fits(p, n, holding[name]) for name, n in nodes_by_name.items()), p["name"]
            else:
                assert p["ready"] and p["phase"] == "Running" and p["node"] != fail, p["name"]


@given(clusters())
def test_random_small_clusters_reach_a_fixed_point_that_keeps_kubernetes_promises(cluster):
    nodes, deployments, fault = cluster
    c = run(spec_text(nodes, deployments, fault))
    assert c.result.converged
    assert c.result.violations == ()  # the standard invariants of rules/invariants.konv
    check(c, nodes, deployments, fault)
