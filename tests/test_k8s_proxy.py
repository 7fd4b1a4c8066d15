"""kube-proxy in iptables mode and the service IP allocator (rules/proxy.konv, rules/ipam.konv)."""

from fractions import Fraction
from ipaddress import ip_address, ip_network

from hypothesis import given

from engine.kube.contract import per_node_routes
from tests import service_model as model
from tests.kube import SICK_CONTAINER, node, run, sick_event, sick_node
from tests.service_clusters import endpoint_clusters, reconciled


def web(name, extra="", container_extra=""):
    return (f'pod {name} {{ labels {{ app: "web" }} {extra}\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi port http {{ containerPort: 8080 }} {container_extra} }} }}\n')


SERVICE = 'service web { selector { app: "web" }  port http { port: 80  targetPort: "http" } }\n'


def routes(c, service="default/web"):
    return [r for r in c.of("Route") if r["service"] == service]


def test_kubernetes_service_gets_10_96_0_1():
    c = run(node("n1"))
    assert c.get("Service", "kubernetes")["clusterIP"] == "10.96.0.1"


def test_kubernetes_service_routes_to_the_api_server_not_reject():
    c = run(node("cp", extra="controlPlane: true  internalIP: 10.0.0.10") + node("w1"))
    [r] = routes(c, "default/kubernetes")
    assert (r["clusterIP"], r["port"], r["action"]) == ("10.96.0.1", 443, "DNAT")
    assert r["backends"] == [{"ip": "10.0.0.10", "port": 6443, "probability": 1.0}]


def test_service_ips_are_unique_and_inside_10_96_0_0_12():
    c = run(node("n1") + "".join(f'service s{i} {{ port p {{ port: 80  targetPort: 8080 }} }}\n' for i in range(8)))
    ips = [s["clusterIP"] for s in c.of("Service")]
    assert len(set(ips)) == len(ips) == 9
    assert all(ip_address(ip) in ip_network("10.96.0.0/12") for ip in ips)
    assert ips.count("10.96.0.1") == 1


def test_one_route_per_service_port_listed_per_node_in_the_contract_including_the_control_plane():
    c = run(node("cp", extra="controlPlane: true") + node("w1") + web("web-1") + SERVICE)
    [r] = routes(c)
    listed = [o for o in per_node_routes(c.objects) if o["kind"] == "Route" and o["service"] == "default/web"]
    assert sorted((o["node"], o["name"]) for o in listed) == [("cp", "cp." + r["name"]), ("w1", "w1." + r["name"])]
    assert all(o["backends"] == r["backends"] and o["clusterIP"] == r["clusterIP"] for o in listed)


def test_route_dnats_cluster_ip_to_pod_ip_and_target_port():
    c = run(node("n1") + web("web-1") + SERVICE)
    [r] = routes(c)
    pod = c.get("Pod", "web-1")
    assert r["clusterIP"] == c.get("Service", "web")["clusterIP"] and r["port"] == 80
    assert r["action"] == "DNAT"
    assert r["backends"] == [{"ip": pod["ip"], "port": 8080, "probability": 1.0}]


def test_route_probabilities_follow_iptables_1_over_n_minus_i():
    c = run(node("n1") + "".join(web(f"web-{i}") for i in range(4)) + SERVICE)
    [r] = routes(c)
    assert [b["probability"] for b in r["backends"]] == [0.25, 1 / 3, 0.5, 1.0]
    # the chance of reaching endpoint i is p_i × Π_{j<i}(1 − p_j) = 1/n for each.
    reach, left = [], Fraction(1)
    for b in r["backends"]:
        p = Fraction(b["probability"]).limit_denominator(10)
        reach.append(left * p)
        left *= 1 - p
    assert reach == [Fraction(1, 4)] * 4


def test_backends_are_in_the_order_of_their_ip_port_text():
    # The endpoint cache sorts a port's endpoints by Endpoint.String(), "ip:port": ":" sorts after
    # the digits, so 192.168.0.10:8080 comes before 192.168.0.1:8080.
    c = run(node("n1") + "".join(web(f"web-{i:02}") for i in range(11)) + SERVICE)
    [r] = routes(c)
    assert [b["ip"] for b in r["backends"]][:4] == ["192.168.0.0", "192.168.0.10", "192.168.0.1", "192.168.0.2"]
    assert [b["probability"] for b in r["backends"]] == [1 / (11 - i) for i in range(11)]


def test_service_without_ready_endpoints_is_rejected():
    c = run(node("n1") + SERVICE)
    [r] = routes(c)
    assert r["action"] == "REJECT" and r["backends"] == []


def test_routes_follow_endpoints_when_a_pod_goes():
    c = run(node("n1") + web("web-1") + web("web-2") + SERVICE + 'scenario "kill" { at 1m: kill pod web-2 }')
    [r] = routes(c)
    assert [b["ip"] for b in r["backends"]] == [c.get("Pod", "web-1")["ip"]]


def test_not_ready_endpoints_get_no_traffic():
    # Its containers crashed and the node's runtime is down: the pod runs but is not ready.
    c = run(node("n1") + sick_node() + web("web-ok", extra='node: "n1"')
            + web("web-sick", extra='node: "sick" tolerations: [{operator: "Exists"}]', container_extra=SICK_CONTAINER)
            + SERVICE + 'scenario "sick" { ' + sick_event() + ' }')
    assert c.get("Pod", "web-sick")["phase"] == "Running" and not c.get("Pod", "web-sick")["ready"]
    for r in routes(c):
        assert [b["ip"] for b in r["backends"]] == [c.get("Pod", "web-ok")["ip"]]


def test_session_affinity_client_ip_is_carried_on_the_route():
    c = run(node("n1") + web("web-1") + SERVICE.replace("selector", 'sessionAffinity: "ClientIP" selector'))
    assert routes(c)[0]["sessionAffinity"] == "ClientIP"


def test_each_service_port_gets_its_own_route():
    c = run(node("n1") + web("web-1").replace("port http { containerPort: 8080 }",
                                               "port http { containerPort: 8080 } port dns { containerPort: 53 protocol: \"UDP\" }")
            + 'service web { selector { app: "web" } port http { port: 80 targetPort: "http" } '
              'port dns { port: 53 targetPort: "dns" protocol: "UDP" } }')
    got = sorted((r["protocol"], r["port"], r["backends"][0]["port"]) for r in routes(c))
    assert got == [("TCP", 80, 8080), ("UDP", 53, 53)]


def test_deleting_a_service_removes_its_routes():
    c = run(node("n1") + web("web-1") + SERVICE + 'scenario "delete" { at 1m: delete service web }')
    assert routes(c) == []


def test_a_route_kind_of_the_specs_own_is_listed_as_it_is():
    from engine.check import check_modules
    from engine.fixpoint import reconcile
    from engine.kube.contract import document
    from engine.parse import parse_text

    p = check_modules([parse_text('cluster kind Node { }\nkind Route { node: string }\n'
                                  'node n1 {}\nnode n2 {}\nroute r1 { node: "n1" }\n', "own.konv")])
    routes = [o for o in document(p, reconcile(p))["objects"] if o["kind"] == "Route"]
    assert [(o["name"], o["node"]) for o in routes] == [("r1", "n1")]


# ---- a second opinion: the model of tests/service_model.py ------------------------------------

def _backends(r) -> tuple:
    """The route's backends as iptables is given them: the probability printed "%0.10f", none on the last."""
    n = len(r["backends"])
    return tuple(model.Backend(b["ip"], b["port"], "%0.10f" % b["probability"] if i < n - 1 else "")
                 for i, b in enumerate(r["backends"]))


def node_port_route(r, node) -> model.NodePortRoute:
    """What `node` does with the route's node port, read as kube-proxy programs it: the service
    chain's backends under Cluster, the node's `localBackends` entry under Local, none: DROP."""
    if r["action"] == "REJECT":
        return model.NodePortRoute("REJECT", ())
    if r["externalTrafficPolicy"] != "Local":
        return model.NodePortRoute("DNAT", _backends(r))
    mine = [x for x in r["localBackends"] if x["node"] == node]
    return model.NodePortRoute("DNAT", _backends(mine[0])) if mine else model.NodePortRoute("DROP", ())


@given(endpoint_clusters())
def test_routes_are_what_kube_proxy_programs_from_the_kubernetes_endpoints(cluster):
    # The model's endpoints, from the pods as Konverge left them, through the model's proxy; node
    # ports too, each node's, allocated once each in the upper band (the drawn ports' numbers differ).
    c, seen, services = reconciled(cluster)
    held = [p["nodePort"] for svc in c.of("Service") for p in svc["ports"] if p["nodePort"] is not None]
    assert len(held) == len(set(held)) and all(30086 <= x <= 32767 for x in held)
    node_ports = set(held)
    for s in services:
        ip = c.get("Service", s.name)["clusterIP"]
        eps = model.endpoints(s, seen)
        routes = {(r["port"], r["protocol"]): r for r in c.of("Route") if r["service"] == f"default/{s.name}"}
        assert sorted(routes) == sorted((sp.port, sp.protocol) for sp in s.ports), s.name
        for sp in s.ports:
            want, r = model.route(model.Service(s.name, s.selector, s.ports, s.namespace, s.publish_not_ready,
                                                s.session_affinity, ip), sp, eps), routes[sp.port, sp.protocol]
            got = model.Route(r["clusterIP"], r["port"], r["protocol"], r["action"], _backends(r), r["sessionAffinity"])
            assert got == want, (s.name, sp.name)
            # Its node port, node by node (rules/proxy.konv keeps what differs in localBackends).
            has_node_port = s.type != "ClusterIP"
            assert (r["nodePort"] is not None) == has_node_port == (r["nodePort"] in node_ports), (s.name, sp.name)
            assert r["externalTrafficPolicy"] == s.external_traffic_policy
            for n in ("n1", "n2", "sick", "far"):
                if has_node_port:
                    assert node_port_route(r, n) == model.node_port_route(s, sp, eps, n), (s.name, sp.name, n)
