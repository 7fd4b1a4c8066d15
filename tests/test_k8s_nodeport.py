"""NodePort and LoadBalancer services: the API server's node port allocator (rules/ipam.konv,
rules/admission.konv) and kube-proxy's node ports (rules/proxy.konv), end to end through the CLI.

Upstream: pkg/registry/core/service/portallocator (calculateRangeOffset, ErrAllocated), the REST
storage's initNodePorts, SetDefaults_Service and validateServiceExternalTrafficPolicy, and
pkg/proxy/iptables/proxier.go syncProxyRules ("Capture nodeports", the EXT chain, the REJECT and
DROP filter rules).
"""

import re
import textwrap
from pathlib import Path

import pytest

from engine.errors import KonvergeError
from engine.eval import _hash
from engine.kube.contract import per_node_routes
from tests.kube import node, run
from tests.test_kube_views import check_golden
from tests.test_kube_views import run as run_view

ROOT = Path(__file__).resolve().parent.parent
SPEC = "tests/data/nodeport.konv"


def web(name, where):
    return (f'pod {name} {{ labels {{ app: "web" }} node: "{where}"\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi port http {{ containerPort: 8080 }} }} }}\n')


def service(name, kind="NodePort", extra="", port="port http { port: 80  targetPort: \"http\" }"):
    return f'service {name} {{ type: "{kind}"  {extra}  selector {{ app: "web" }}  {port} }}\n'


NODES = node("w1") + node("w2") + node("w3")
PODS = web("web-1", "w1") + web("web-2", "w1") + web("web-3", "w3")


def node_ports(c, name):
    return [p["nodePort"] for p in c.get("Service", name)["ports"]]


def route(c, name):
    [r] = [r for r in c.of("Route") if r["service"] == f"default/{name}"]
    return r


# ---- allocation ------------------------------------------------------------------------------

def candidate(ident: str, port: int, i: int = 0) -> int:
    """The i-th node port a service port looks at (rules/ipam.konv node_port_candidate)."""
    return 30086 + (_hash(None, None, [f"{ident}/{port}"]) + i) % 2682


def test_a_node_port_is_allocated_in_the_upper_band_and_is_stable():
    # calculateRangeOffset: min(max(16, 2768/32), 128) = 86 ports, 30000–30085, kept for ports
    # chosen by hand; a port is looked for from a hash of namespace/name/port, the same every run:
    # alone in the cluster, a service's first look is free, so it is the port it gets.
    for i in range(6):
        assert node_ports(run(NODES + service(f"s{i}")), f"s{i}") == [candidate(f"default/s{i}", 80)]
    assert all(30086 <= candidate(f"default/s{i}", 80) for i in range(50))


def test_each_port_gets_its_own_node_port_and_one_number_shares_one():
    # initNodePorts: ports with the same number (53/TCP and 53/UDP) share a node port.
    c = run(NODES + service("dns", port='ports: [{name: "a", port: 53}, {name: "b", port: 53, protocol: "UDP"}, '
                                         '{name: "c", port: 80}]'))
    a, b, c80 = node_ports(c, "dns")
    assert a == b and a != c80 and None not in (a, c80)


def test_an_allocated_port_is_never_one_another_service_holds():
    # The hash start of `b` is made to land on `a`'s port: the allocator goes on to the next one.
    first = node_ports(run(NODES + service("b")), "b")[0]
    c = run(NODES + service("a", port=f'port http {{ port: 81  nodePort: {first} }}') + service("b"))
    assert node_ports(c, "a") == [first] and node_ports(c, "b") == [first + 1 if first < 32767 else 30086]


def test_a_requested_port_another_service_holds_is_refused_with_upstreams_message():
    with pytest.raises(KonvergeError) as e:
        run(NODES + service("a", port='port http { port: 80  nodePort: 30080 }')
            + service("b", port='port dns { port: 53  nodePort: 30080  protocol: "UDP" }'))
    [d] = e.value.diagnostics
    assert d.message == ('Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
                         "provided port is already allocated")


def refused(spec):
    with pytest.raises(KonvergeError) as e:
        run(spec)
    return [d.message for d in e.value.diagnostics]


def test_one_service_cannot_give_one_node_port_to_two_of_its_ports():
    # ValidateService keys node ports by nodePort+protocol (field.Duplicate); with another
    # protocol and another port number, initNodePorts' second Allocate answers ErrAllocated.
    same = 'ports: [{name: "a", port: 80, nodePort: 30100}, {name: "b", port: 90, nodePort: 30100}]'
    assert refused(NODES + service("t", port=same)) == [
        'Service "t" is invalid: spec.ports[1].nodePort: Duplicate value: 30100']
    other = ('ports: [{name: "a", port: 80, nodePort: 30100}, '
             '{name: "b", port: 90, nodePort: 30100, protocol: "UDP"}]')
    assert refused(NODES + service("t", port=other)) == [
        'Service "t" is invalid: spec.ports[1].nodePort: Invalid value: 30100: provided port is already allocated']
    # The same port number on two protocols shares its node port (svcPortToNodePort).
    shared = ('ports: [{name: "a", port: 53, nodePort: 30100}, '
              '{name: "b", port: 53, nodePort: 30100, protocol: "UDP"}]')
    assert node_ports(run(NODES + service("t", port=shared)), "t") == [30100, 30100]


def test_allocate_load_balancer_node_ports_is_refused_off_a_load_balancer():
    # validation.go: `spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type`
    # is 'LoadBalancer'`.
    assert refused(NODES + service("t", "NodePort", "allocateLoadBalancerNodePorts: false")) == [
        'Service "t" is invalid: spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when '
        "`type` is 'LoadBalancer'"]


def test_a_port_that_finds_no_node_port_does_not_keep_the_others_from_theirs():
    # `filler` holds all 256 ports `t`'s port 80 looks at: port 80 gets none (as a service that
    # finds no cluster IP), port 90 still gets its own.
    held = [candidate("default/t", 80, i) for i in range(256)]
    filler = "ports: [" + ", ".join(f'{{name: "p{i}", port: {1000 + i}, nodePort: {n}}}'
                                    for i, n in enumerate(held)) + "]"
    c = run(NODES + service("filler", port=filler)
            + service("t", port='ports: [{name: "a", port: 80}, {name: "b", port: 90}]'))
    p80, p90 = node_ports(c, "t")
    assert p80 is None and p90 is not None and p90 not in held


def test_deleting_a_service_frees_its_node_port():
    c = run(NODES + service("a", port='port http { port: 80  nodePort: 30080 }')
            + 'scenario "swap" {\n  at 1s: delete service a\n'
              '  at 2s: create service b { type: "NodePort"  port http { port: 80  nodePort: 30080 } }\n}')
    assert c.get("Service", "a") is None and node_ports(c, "b") == [30080]
    assert not c.writes(verb="refused")


def test_a_load_balancer_gets_node_ports_unless_it_says_not_to():
    c = run(NODES + PODS + service("lb", "LoadBalancer")
            + service("bare", "LoadBalancer", "allocateLoadBalancerNodePorts: false"))
    assert 30086 <= node_ports(c, "lb")[0] <= 32767
    assert node_ports(c, "bare") == [None] and route(c, "bare")["nodePort"] is None
    assert route(c, "lb")["nodePort"] == node_ports(c, "lb")[0]


def test_a_cluster_ip_service_gets_no_node_port_and_no_traffic_policy():
    c = run(NODES + PODS + service("plain", "ClusterIP"))
    assert node_ports(c, "plain") == [None]
    assert c.get("Service", "plain")["externalTrafficPolicy"] is None
    assert (route(c, "plain")["nodePort"], route(c, "plain")["localBackends"]) == (None, [])


# ---- externalTrafficPolicy -------------------------------------------------------------------

def test_external_traffic_policy_defaults_to_cluster_for_node_port_and_load_balancer():
    c = run(NODES + service("np") + service("lb", "LoadBalancer"))
    assert [c.get("Service", s)["externalTrafficPolicy"] for s in ("np", "lb")] == ["Cluster", "Cluster"]


@pytest.mark.parametrize("body, message", [
    (service("c", "ClusterIP", 'externalTrafficPolicy: "Local"'),
     'Service "c" is invalid: spec.externalTrafficPolicy: Invalid value: "Local": '
     "may only be set for externally-accessible services"),
    (service("c", "NodePort", 'externalTrafficPolicy: "Global"'),
     'Service "c" is invalid: spec.externalTrafficPolicy: Unsupported value: "Global": '
     'supported values: "Cluster", "Local"'),
])
def test_a_traffic_policy_that_does_not_fit_is_refused(body, message):
    with pytest.raises(KonvergeError) as e:
        run(NODES + body)
    assert [d.message for d in e.value.diagnostics] == [message]


# ---- kube-proxy ------------------------------------------------------------------------------

def test_cluster_policy_routes_every_ready_endpoint_from_every_node():
    c = run(NODES + PODS + service("web"))
    r = route(c, "web")
    assert r["externalTrafficPolicy"] == "Cluster" and r["localBackends"] == []
    assert [b["probability"] for b in r["backends"]] == [1 / 3, 0.5, 1.0]
    listed = [o for o in per_node_routes(c.objects) if o["kind"] == "Route" and o["service"] == "default/web"]
    assert sorted(o["node"] for o in listed) == ["w1", "w2", "w3"]
    assert all(o["nodePort"] == r["nodePort"] and o["backends"] == r["backends"] for o in listed)


def test_local_policy_routes_a_node_port_to_that_nodes_endpoints_only():
    c = run(NODES + PODS + service("web", extra='externalTrafficPolicy: "Local"'))
    r = route(c, "web")
    ips = {p: c.get("Pod", p)["ip"] for p in ("web-1", "web-2", "web-3")}
    local = {x["node"]: [(b["ip"], b["probability"]) for b in x["backends"]] for x in r["localBackends"]}
    assert local == {"w1": sorted([(ips["web-1"], 0.5), (ips["web-2"], 1.0)], key=lambda x: x[1]),
                     "w3": [(ips["web-3"], 1.0)]}
    assert len(r["backends"]) == 3  # the cluster IP still reaches all three


def test_local_policy_follows_the_endpoints_when_the_last_local_pod_goes():
    c = run(NODES + PODS + service("web", extra='externalTrafficPolicy: "Local"')
            + 'scenario "go" { at 1m: kill pod web-3 }')
    assert [x["node"] for x in route(c, "web")["localBackends"]] == ["w1"]  # w3 now drops


def test_a_node_port_without_ready_endpoints_is_rejected():
    c = run(NODES + service("idle"))
    r = route(c, "idle")
    assert (r["action"], r["backends"], r["nodePort"] is not None) == ("REJECT", [], True)


# ---- the CLI ---------------------------------------------------------------------------------

def cli(capsys, *argv):
    return run_view(list(argv), capsys)


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_route_node_port_golden(capsys, at_root):
    # "If I hit worker-2:30080, which pods answer, with what probability?" — and the DROP and
    # REJECT cases, in words.
    asked = [["route", "web:30080", "--node-port", "--from", "worker-2", SPEC],
             ["route", "web-local", "--node-port", "--from", "worker-1", SPEC],
             ["route", "web-local", "--node-port", "--from", "worker-2", SPEC],
             ["route", "idle", "--node-port", SPEC],
             ["route", "web-lb", SPEC],
             ["route", "web-sticky", "--node-port", "--from", "worker-3", SPEC]]
    text = ""
    for argv in asked:
        code, out, err = cli(capsys, *argv)
        assert (code, err) == (0, "")
        text += "$ konverge " + " ".join(argv) + "\n" + out
    check_golden("route_node_port", text)


def test_get_services_golden_shows_types_node_ports_and_pending_load_balancers(capsys, at_root):
    code, out, err = cli(capsys, "get", "services", SPEC)
    assert (code, err) == (0, "")
    check_golden("get_services_node_port", out)


def test_describe_service_shows_kubectls_node_port_and_traffic_policy_lines(capsys, at_root):
    out = cli(capsys, "describe", "service/web-local", SPEC)[1]
    assert re.search(r"^NodePort: +http  3\d{4}/TCP$", out, re.M)  # kubectl: name, then nodePort/protocol
    assert "Node Port:" not in out  # once, in kubectl's form: not also as a field of the port
    assert re.search(r"^External Traffic Policy: +Local$", out, re.M)
    plain = cli(capsys, "describe", "service/kubernetes", SPEC)[1]
    assert "External Traffic Policy" not in plain and "NodePort:" not in plain


def test_route_node_port_of_a_cluster_ip_service_says_it_has_none(capsys, at_root):
    code, out, err = cli(capsys, "route", "kubernetes", "--node-port", SPEC)
    assert code == 1 and "error[E225]: service default/kubernetes has no node ports: it is of type ClusterIP" in err
    assert "a NodePort or LoadBalancer service has them" in err


def test_route_node_port_says_why_a_node_port_or_load_balancer_service_has_none(capsys, at_root, tmp_path):
    code, out, err = cli(capsys, "route", "web-bare", "--node-port", SPEC)
    assert code == 1 and ("error[E225]: service default/web-bare has no node ports: it is a LoadBalancer with "
                          "allocateLoadBalancerNodePorts false") in err
    assert "a NodePort or LoadBalancer service has them" not in err
    held = ", ".join(f'{{name: "p{i}", port: {1000 + i}, nodePort: {candidate("default/u", 80, i)}}}'
                     for i in range(256))
    spec = tmp_path / "full.konv"
    spec.write_text(NODES + service("filler", port=f"ports: [{held}]") + service("u"), encoding="utf-8")
    code, out, err = cli(capsys, "route", "u", "--node-port", str(spec))
    assert code == 1 and ("error[E225]: service default/u has no node ports: the allocator found no free node "
                          "port for them (256 looks a port)") in err
    assert "a NodePort or LoadBalancer service has them" not in err
    # One port chosen by hand, the other left without: the view says why that one has none.
    spec.write_text(NODES + service("b", "LoadBalancer", "allocateLoadBalancerNodePorts: false",
                                    'ports: [{name: "a", port: 80, nodePort: 30001}, {name: "b", port: 90}]'))
    code, out, err = cli(capsys, "route", "b", "--node-port", str(spec))
    assert code == 0 and "  90/TCP: no node port (allocateLoadBalancerNodePorts false)\n" in out


def test_manifests_import_type_node_port_and_traffic_policy(tmp_path):
    from engine.kube.manifests import load_manifests

    (tmp_path / "svc.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          type: LoadBalancer
          externalTrafficPolicy: Local
          allocateLoadBalancerNodePorts: false
          selector: {app: web}
          ports:
            - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
        """))
    [(kind, obj)] = load_manifests([str(tmp_path / "svc.yaml")]).objects
    assert (obj["type"], obj["externalTrafficPolicy"], obj["allocateLoadBalancerNodePorts"]) == (
        "LoadBalancer", "Local", False)
    assert obj["ports"][0]["nodePort"] == 30080
