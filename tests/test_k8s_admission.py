"""The API server's defaulting and validation (rules/admission.konv)."""

import pytest

from engine.errors import KonvergeError
from tests.kube import node, run


def create(pod_body: str):
    """Create a pod through a scenario, as a client would; returns (cluster, refusal message or None)."""
    c = run(node("n1") + f'scenario "create" {{ at 1s: create pod x {{ {pod_body} }} }}')
    refused = c.writes(verb="refused", kind="Pod", name="x")
    return c, (refused[0].message if refused else None)


def container(ports: str, name="c") -> str:
    return f'container {name} {{ image: "x" {ports} }}'


def test_valid_pod_is_accepted_with_kubernetes_defaults():
    c, refused = create(container("port http { containerPort: 80 }"))
    assert refused is None
    p = c.get("Pod", "x")
    assert p["restartPolicy"] == "Always" and p["terminationGracePeriodSeconds"] == 30
    assert p["schedulerName"] == "default-scheduler" and p["phase"] == "Running"


def test_container_port_outside_1_to_65535_is_refused():
    for port in (0, 65536):
        _, refused = create(container(f"port p {{ containerPort: {port} }}"))
        assert refused and "outside 1–65535" in refused


def test_host_port_outside_1_to_65535_is_refused():
    _, refused = create(container("port p { containerPort: 80  hostPort: 70000 }"))
    assert refused and "outside 1–65535" in refused


def test_unknown_protocol_is_refused():
    _, refused = create(container('port p { containerPort: 80  protocol: "HTTP" }'))
    assert refused and "TCP, UDP, SCTP" in refused


def test_sctp_and_udp_are_accepted():
    _, refused = create(container('port a { containerPort: 80  protocol: "SCTP" } port b { containerPort: 53  protocol: "UDP" }'))
    assert refused is None


def test_duplicate_port_name_in_a_container_is_refused():
    _, refused = create(container("port web { containerPort: 80 }").replace(
        "port web { containerPort: 80 }", 'ports: [{name: "web", containerPort: 80}, {name: "web", containerPort: 81}]'))
    assert refused and "duplicate port name" in refused


def test_same_port_name_in_two_containers_is_accepted():
    _, refused = create(container("port web { containerPort: 80 }", "a") + container("port web { containerPort: 81 }", "b"))
    assert refused is None


def test_duplicate_host_port_and_protocol_in_a_pod_is_refused():
    _, refused = create(container("port a { containerPort: 80  hostPort: 8080 }", "a")
                        + container("port b { containerPort: 81  hostPort: 8080 }", "b"))
    assert refused and "duplicate hostPort/protocol" in refused


def test_same_host_port_with_another_protocol_is_accepted():
    _, refused = create(container('port a { containerPort: 53  hostPort: 53 } port b { containerPort: 53  hostPort: 53  protocol: "UDP" }'))
    assert refused is None


def test_duplicate_container_port_is_refused():
    # Konverge's deliberate difference: Kubernetes only warns.
    _, refused = create(container("port a { containerPort: 80 }", "a") + container("port b { containerPort: 80 }", "b"))
    assert refused and "duplicate containerPort/protocol" in refused


def test_invalid_pod_in_the_spec_is_refused_at_load():
    with pytest.raises(KonvergeError, match="outside 1–65535"):
        run(node("n1") + 'pod bad { container c { image: "x" port p { containerPort: 0 } } }')


def test_service_port_outside_range_and_bad_protocol_are_refused():
    c = run(node("n1") + 'scenario "bad services" {\n'
            '  at 1s: create service a { port p { port: 0  targetPort: 80 } }\n'
            '  at 2s: create service b { port p { port: 80  targetPort: 80  protocol: "ICMP" } }\n}')
    assert [w.name for w in c.writes(verb="refused", kind="Service")] == ["a", "b"]


def test_nothing_is_created_in_a_terminating_namespace():
    # A pod on a node whose kubelet is down is never removed, so the namespace stays Terminating.
    c = run(node("n1") + node("down", extra="kubeletUp: false")
            + 'namespace doomed {}\npod stuck in doomed { node: "down" container main { image: "x" } }\n'
            'scenario "late" { at 1m: terminate namespace doomed\n'
            '  at 2m: create pod late in doomed { container main { image: "x" } } }', until=3600)
    assert c.get("Namespace", "doomed", None)["phase"] == "Terminating"
    refused = c.writes(verb="refused", kind="Pod", name="late")
    assert refused and "being terminated" in refused[0].message
