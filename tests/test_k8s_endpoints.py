"""The endpoints controller (rules/endpoints.konv)."""

from hypothesis import given

from tests import service_model as model
from tests.kube import SICK_CONTAINER, node, run, sick_event, sick_node
from tests.service_clusters import endpoint_clusters, reconciled


def web(name, labels='app: "web"', extra="", ports='port http { containerPort: 8080 }', container_extra=""):
    return (f'pod {name} {{ labels {{ {labels} }} {extra}\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi {ports} {container_extra} }} }}\n')


SERVICE = 'service web { selector { app: "web" }  port http { port: 80  targetPort: "http" } }\n'


def test_service_with_selector_gets_endpoints_of_ready_matching_pods():
    c = run(node("n1") + web("web-1") + web("web-2") + web("other", labels='app: "other"') + SERVICE)
    ep = c.get("Endpoints", "web")
    assert sorted(a["pod"] for a in ep["addresses"]) == ["web-1", "web-2"]
    pods = {p["name"]: p for p in c.pods()}
    for a in ep["addresses"]:
        assert a["ip"] == pods[a["pod"]]["ip"] and a["port"] == 8080 and a["node"] == "n1" and a["portName"] == "http"
    assert ep["notReadyAddresses"] == []


def test_service_without_selector_gets_no_endpoints():
    c = run(node("n1") + web("web-1") + 'service manual { port p { port: 80  targetPort: 80 } }')
    assert c.get("Endpoints", "manual") is None
    assert c.get("Endpoints", "kubernetes") is None


def test_deleting_the_service_deletes_its_endpoints():
    c = run(node("n1") + web("web-1") + SERVICE + 'scenario "delete" { at 1m: delete service web }')
    assert c.get("Endpoints", "web") is None


def test_target_port_defaults_to_port():
    c = run(node("n1") + web("web-1") + 'service web { selector { app: "web" }  port p { port: 8080 } }')
    assert [a["port"] for a in c.get("Endpoints", "web")["addresses"]] == [8080]


def test_kubernetes_service_lists_the_api_servers_of_ready_control_plane_nodes():
    c = run(node("cp", extra="controlPlane: true  internalIP: 10.0.0.10") + node("w1", extra="internalIP: 10.0.0.11")
            + node("cp2", extra="controlPlane: true"))  # no address: nothing to publish for it
    ep = c.get("Endpoints", "kubernetes")
    assert ep["addresses"] == [{"ip": "10.0.0.10", "port": 6443, "pod": "", "node": "cp", "portName": "https"}]
    assert ep["notReadyAddresses"] == []


def test_kubernetes_service_endpoints_follow_the_control_plane_node_going_down():
    c = run(node("cp", extra="controlPlane: true  internalIP: 10.0.0.10") + node("w1")
            + 'scenario "down" { at 10s: fail node cp }', until=600)
    assert c.get("Endpoints", "kubernetes") is None


def test_numeric_target_port_is_used_as_is():
    c = run(node("n1") + web("web-1") + 'service web { selector { app: "web" }  port p { port: 80 targetPort: 9000 } }')
    assert [a["port"] for a in c.get("Endpoints", "web")["addresses"]] == [9000]


def test_named_target_port_resolves_per_pod_and_skips_pods_without_it():
    c = run(node("n1") + web("web-a") + web("web-b", ports="port http { containerPort: 9090 }")
            + web("web-none", ports="port metrics { containerPort: 9100 }") + SERVICE)
    ports = {a["pod"]: a["port"] for a in c.get("Endpoints", "web")["addresses"]}
    assert ports == {"web-a": 8080, "web-b": 9090}


def test_named_target_port_matches_the_service_ports_protocol_too():
    # FindPort: a container port of that name *and* the service port's protocol, the first one.
    c = run(node("n1") + 'pod dns { labels { app: "dns" }\n'
            '  container udp { image: "x"  ports: [{name: "dns", containerPort: 53, protocol: "UDP"}] }\n'
            '  container tcp { image: "y"  ports: [{name: "dns", containerPort: 5353, protocol: "TCP"}] } }\n'
            'service dns { selector { app: "dns" }  ports: [{name: "tcp", port: 53, targetPort: "dns", protocol: "TCP"}, '
            '{name: "udp", port: 53, targetPort: "dns", protocol: "UDP"}, {name: "sctp", port: 53, targetPort: "dns", protocol: "SCTP"}] }\n')
    got = sorted((a["portName"], a["port"]) for a in c.get("Endpoints", "dns")["addresses"])
    assert got == [("tcp", 5353), ("udp", 53)]


def test_multi_port_service_lists_each_pod_once_per_port():
    c = run(node("n1") + web("web-1", ports="port http { containerPort: 8080 } port admin { containerPort: 9000 }")
            + 'service web { selector { app: "web" }  port http { port: 80 targetPort: "http" } '
              'port admin { port: 90 targetPort: "admin" } }')
    got = sorted((a["portName"], a["port"]) for a in c.get("Endpoints", "web")["addresses"])
    assert got == [("admin", 9000), ("http", 8080)]


def test_multi_port_addresses_come_port_by_port_each_in_pod_order():
    # A pod without a port's named target port is left out of that port's addresses only.
    both = "port http { containerPort: 8080 } port admin { containerPort: 9000 }"
    c = run(node("n1") + web("web-b", ports=both) + web("web-a", ports=both)
            + web("web-c", ports="port http { containerPort: 8081 }")
            + 'service web { selector { app: "web" }  port http { port: 80 targetPort: "http" } '
              'port admin { port: 90 targetPort: "admin" } }')
    got = [(a["portName"], a["pod"], a["port"]) for a in c.get("Endpoints", "web")["addresses"]]
    assert got == [("http", "web-a", 8080), ("http", "web-b", 8080), ("http", "web-c", 8081),
                   ("admin", "web-a", 9000), ("admin", "web-b", 9000)]


def test_pods_of_other_namespaces_are_not_endpoints():
    c = run(node("n1") + "namespace other {}\n" + web("web-1") + web("web-x").replace("pod web-x", "pod web-x in other")
            + SERVICE)
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == ["web-1"]


SICK_WEB = web("web-sick", extra='node: "sick" tolerations: [{operator: "Exists"}]', container_extra=SICK_CONTAINER)


def test_not_ready_pods_go_to_not_ready_addresses():
    # Its containers crashed and the node's runtime is down: the pod runs but is not ready.
    c = run(node("n1") + sick_node() + web("web-ok", extra='node: "n1"') + SICK_WEB + SERVICE
            + 'scenario "sick" { ' + sick_event() + ' }')
    assert c.get("Pod", "web-sick")["phase"] == "Running" and not c.get("Pod", "web-sick")["ready"]
    ep = c.get("Endpoints", "web")
    assert [a["pod"] for a in ep["addresses"]] == ["web-ok"]
    assert [a["pod"] for a in ep["notReadyAddresses"]] == ["web-sick"]


def test_publish_not_ready_addresses_puts_every_pod_in_addresses():
    c = run(node("n1") + sick_node() + SICK_WEB
            + SERVICE.replace("selector", "publishNotReadyAddresses: true selector")
            + 'scenario "sick" { ' + sick_event() + ' }')
    assert c.get("Pod", "web-sick")["phase"] == "Running" and not c.get("Pod", "web-sick")["ready"]
    ep = c.get("Endpoints", "web")
    assert [a["pod"] for a in ep["addresses"]] == ["web-sick"] and ep["notReadyAddresses"] == []


def test_publish_not_ready_addresses_keeps_terminating_pods():
    # ShouldPodBeInEndpoints(pod, publishNotReadyAddresses): the pod's kubelet is gone, so it stays
    # terminating; a service publishing not-ready addresses keeps it, the other drops it.
    c = run(node("n1") + node("far") + web("web-far", extra='node: "far" tolerations: [{operator: "Exists"}]')
            + SERVICE.replace("selector", "publishNotReadyAddresses: true selector")
            + SERVICE.replace("service web", "service strict")
            + 'scenario "gone" { at 30s: fail node far\n at 40s: kill pod web-far }', until=900)
    assert c.get("Pod", "web-far")["deleting"]
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == ["web-far"]
    strict = c.get("Endpoints", "strict")
    assert strict["addresses"] == [] and strict["notReadyAddresses"] == []


def test_pod_without_ip_is_not_an_endpoint():
    c = run(node("n1") + web("web-1") + web("web-pending", extra='nodeSelector { none: "x" }') + SERVICE)
    ep = c.get("Endpoints", "web")
    assert [a["pod"] for a in ep["addresses"] + ep["notReadyAddresses"]] == ["web-1"]


def test_terminating_and_terminal_pods_are_left_out():
    c = run(node("n1") + node("down", extra="kubeletUp: false") + web("web-1")
            + web("web-done", extra='restartPolicy: "Never"', container_extra="crashing: true")
            + SERVICE + 'scenario "kill" { at 1m: kill pod web-1 }')
    ep = c.get("Endpoints", "web")
    assert c.get("Pod", "web-done")["phase"] == "Failed"
    assert ep["addresses"] == [] and ep["notReadyAddresses"] == []


def test_relabelled_pod_leaves_the_endpoints():
    c = run(node("n1") + web("web-1") + web("web-2") + SERVICE
            + 'scenario "relabel" { at 1m: relabel pod web-2 labels = {app: "debug"} }')
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == ["web-1"]


def test_crashed_container_removes_the_pod_from_endpoints_until_it_restarts():
    c = run(node("n1") + web("web-1") + web("web-2", container_extra="crashing: true") + SERVICE, history=True, until=60)
    seen = set()
    for _, objects in c.states():
        for o in objects:
            if o["kind"] == "Endpoints" and o["name"] == "web":
                seen.add(tuple(sorted(a["pod"] for a in o["addresses"])))
    assert ("web-1", "web-2") in seen and ("web-1",) in seen


# ---- a second opinion: the model of tests/service_model.py ------------------------------------

def _addresses(items):
    return {model.Address(a["ip"], a["port"], a["pod"], a["node"], a["portName"]) for a in items}


@given(endpoint_clusters())
def test_endpoints_are_what_the_kubernetes_endpoints_controller_writes(cluster):
    c, seen, services = reconciled(cluster)
    for s in services:
        want, got = model.endpoints(s, seen), c.get("Endpoints", s.name)
        if want is None:
            assert got is None, s.name
            continue
        assert got is not None, s.name
        assert _addresses(got["addresses"]) == want.addresses, s.name
        assert _addresses(got["notReadyAddresses"]) == want.not_ready, s.name
