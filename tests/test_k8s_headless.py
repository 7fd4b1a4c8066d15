"""Headless services (`clusterIP: None`): admission, the allocator, the endpoints controller,
kube-proxy and the kubectl-like views.

Upstream: pkg/apis/core/validation/validation.go (ValidateService's type switch and
ValidateServiceClusterIPsRelatedFields; ValidateServiceUpdate's validateUpgradeDowngradeClusterIPs),
pkg/controller/endpoint/endpoints_controller.go syncService (the `len(service.Spec.Ports) == 0 &&
service.Spec.ClusterIP == api.ClusterIPNone` branch), pkg/proxy/util ShouldSkipService, and the
registry's strategy (normalizeClusterIPs: a clusterIP left out is taken from clusterIPs[0]).
"""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests import service_model as model
from tests.kube import SICK_CONTAINER, node, run, sick_event, sick_node
from tests.service_clusters import endpoint_clusters, endpoints_spec, observed_pods
from tests.test_kube_views import check_golden
from tests.test_kube_views import run as run_view


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the views are given paths relative to the repository


def web(name, where="", extra=""):
    return (f'pod {name} {{ labels {{ app: "db" }} {where}\n'
            f'  container main {{ image: "x"  cpu: 100m  memory: 64Mi {extra}\n'
            '    port pg { containerPort: 5432 } } }\n')


HEADLESS = 'service db {{ clusterIP: "None"  selector {{ app: "db" }} {ports} {extra} }}\n'
PORT = "port pg { port: 5432 }"
SICK = web("db-sick", 'node: "sick" tolerations: [{operator: "Exists"}]', SICK_CONTAINER)


def headless(ports=PORT, extra=""):
    return HEADLESS.format(ports=ports, extra=extra)


def test_a_headless_service_gets_no_cluster_ip_and_no_route_on_any_node():
    c = run(node("n1") + node("n2") + web("db-1") + web("db-2") + headless()
            + 'service web { selector { app: "db" }  port pg { port: 5432 } }\n')
    assert c.get("Service", "db")["clusterIP"] == "None"
    assert not c.writes(kind="Service", name="db", rule="allocate_cluster_ip")
    assert [r["service"] for r in c.of("Route") if r["service"].startswith("default/db")] == []
    # the service beside it, of the same pods, is routed as ever
    assert [r["action"] for r in c.of("Route") if r["service"] == "default/web"] == ["DNAT"]


def test_two_headless_services_do_not_hold_one_address():
    # "None" is no address: the second is not refused as `provided IP is already allocated`
    c = run(node("n1") + headless() + headless().replace("service db", "service db-2"))
    assert [s["clusterIP"] for s in c.of("Service") if s["name"].startswith("db")] == ["None", "None"]


def test_a_headless_service_publishes_its_ready_and_not_ready_endpoints():
    # DNS answers with the Endpoints, so the controller keeps them as for any service.
    c = run(node("n1") + sick_node() + web("db-ok", 'node: "n1"') + SICK + headless()
            + 'scenario "sick" { ' + sick_event() + " }")
    ep = c.get("Endpoints", "db")
    assert [(a["pod"], a["port"], a["portName"]) for a in ep["addresses"]] == [("db-ok", 5432, "pg")]
    assert [a["pod"] for a in ep["notReadyAddresses"]] == ["db-sick"]


def test_a_headless_service_without_ports_lists_each_pod_once_without_a_port():
    c = run(node("n1") + sick_node() + web("db-1") + web("db-2") + SICK + headless(ports="")
            + 'scenario "sick" { ' + sick_event() + " }")
    ep = c.get("Endpoints", "db")
    pods = {p["name"]: p for p in c.pods()}
    assert [(a["pod"], a["ip"], a["port"], a["portName"]) for a in ep["addresses"]] == [
        (n, pods[n]["ip"], None, "") for n in ("db-1", "db-2")]
    assert [(a["pod"], a["port"]) for a in ep["notReadyAddresses"]] == [("db-sick", None)]
    assert not [r for r in c.of("Route") if r["service"] == "default/db"]


@pytest.mark.parametrize(("fields", "message"), [
    ('type: "NodePort"', "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    ('type: "LoadBalancer"',
     "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"),
    ('type: "ExternalName"', "spec.clusterIPs: Forbidden: may not be set for ExternalName services"),
])
def test_none_is_for_a_cluster_ip_service_only(fields, message):
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + headless(extra=fields))
    assert e.value.diagnostics[0].message == f'Service "db" is invalid: {message}'


def test_a_cluster_ip_that_is_neither_an_address_nor_none_is_refused():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + headless().replace('"None"', '"none"'))
    assert e.value.diagnostics[0].message == (
        'Service "db" is invalid: spec.clusterIPs[0]: Invalid value: "none": must be a valid IP address, '
        "(e.g. 10.9.8.7 or 2001:db8::ffff)")


SPEC = "node n1 { cpu: 4  memory: 8Gi }\n" + 'service db { {ip} selector { app: "db" }  port pg { port: 5432 } }\n'


@pytest.mark.parametrize(("first", "then", "shown"), [
    ('clusterIP: "None"', "clusterIP: 10.96.5.5", '["10.96.5.5"]'),  # None → an address
    ("", 'clusterIP: "None"', '["None"]'),  # the allocator's address → None
    ("clusterIP: 10.96.5.5", "clusterIP: 10.96.5.6", '["10.96.5.6"]'),
])
def test_a_cluster_ip_may_not_change_once_set(first, then, shown, tmp_path, capsys):
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(SPEC.replace("{ip}", first))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(SPEC.replace("{ip}", then))
    capsys.readouterr()
    assert main(["reconcile", str(spec), "--data-dir", data]) == 1
    assert (f'error[E200]: Service "db" is invalid: spec.clusterIPs[0]: Invalid value: {shown}: '
            "may not change once set") in capsys.readouterr().err


def test_dropping_clusterIP_from_the_spec_keeps_the_service_headless(tmp_path, capsys):
    # As kubectl apply and the registry's patchAllocatedValues keep it: the field left out is no change.
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(SPEC.replace("{ip}", 'clusterIP: "None"'))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(SPEC.replace("{ip}", ""))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["get", "svc", "db", "--data-dir", data, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["clusterIP"] == "None"


def test_get_svc_shows_none_as_kubectl_does(capsys):
    code, out, _ = run_view(["get", "svc", "-n", "shop", "specs/manifests"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("frontend-pods "))
    assert row.split()[:5] == ["frontend-pods", "ClusterIP", "None", "<none>", "8080/TCP"]


def test_route_of_a_headless_service_says_what_dns_answers(capsys):
    code, out, err = run_view(["route", "frontend-pods", "-n", "shop", "specs/manifests"], capsys)
    assert code == 0, err
    check_golden("route_headless", out)


def test_route_of_one_port_of_a_headless_service_and_of_one_it_lacks(capsys):
    code, out, _ = run_view(["route", "frontend-pods:http", "-n", "shop", "specs/manifests"], capsys)
    assert code == 0 and out.count("8080/TCP") == 3
    code, _, err = run_view(["route", "frontend-pods:9090", "-n", "shop", "specs/manifests"], capsys)
    assert code == 1 and "9090" in err


def test_route_of_a_headless_service_without_ready_endpoints(tmp_path, capsys):
    spec = tmp_path / "s.konv"
    spec.write_text(node("n1") + sick_node() + SICK + headless() + 'scenario "sick" { ' + sick_event() + " }\n")
    code, out, _ = run_view(["route", "db", str(spec), "--scenario", "sick"], capsys)
    assert code == 0
    assert out.splitlines()[1:] == [
        "  DNS db.default.svc.cluster.local has no address to answer with: the service has no ready endpoints",
        "  (1 not-ready endpoint(s) left out: publishNotReadyAddresses is false)"]


def test_route_node_port_of_a_headless_service_is_E225(capsys):
    code, _, err = run_view(["route", "frontend-pods", "--node-port", "-n", "shop", "specs/manifests"], capsys)
    assert code == 1 and "error[E225]: service shop/frontend-pods has no node ports: it is headless" in err


MANIFEST = """apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{port: 5432}]
"""


@pytest.mark.parametrize("spec", ["  clusterIP: None\n", "  clusterIP: None\n  clusterIPs: [None]\n"])
def test_a_manifest_headless_service_is_read_without_a_warning(spec):
    m = loads(MANIFEST + spec, "t.yaml")
    assert m.warnings == ()
    assert m.objects[0][1]["clusterIP"] == "None"


def test_a_dual_stack_pair_is_read_with_a_warning_for_its_second_address():
    m = loads(MANIFEST + "  clusterIP: 10.96.0.5\n  clusterIPs: [10.96.0.5, 'fd00::5']\n", "t.yaml")
    assert [w.message for w in m.warnings] == ["dual-stack `spec.clusterIPs` are not modelled; only 10.96.0.5 is used"]
    assert m.objects[0][1]["clusterIP"] == "10.96.0.5"


def test_an_empty_manifest_cluster_ip_asks_the_allocator_without_a_warning():
    m = loads(MANIFEST + '  clusterIP: ""\n', "t.yaml")
    assert m.warnings == () and "clusterIP" not in m.objects[0][1]


@pytest.mark.parametrize(("spec", "message", "line"), [
    ("  clusterIP: None\n  clusterIPs: [10.96.0.5]\n",
     'spec.clusterIPs: Invalid value: ["10.96.0.5"]: first value must match `clusterIP`', 8),
    ("  clusterIP: None\n  clusterIPs: [None, 10.96.0.5]\n",
     "spec.clusterIPs: Invalid value: [\"None\", \"10.96.0.5\"]: 'None' must be the first and only value", 8),
    # the strategy fills clusterIPs from clusterIP, never clusterIP from clusterIPs
    ("  clusterIPs: [None]\n", 'spec.clusterIPs: Invalid value: ["None"]: must be empty when `clusterIP` is not specified',
     7),
    ("  clusterIPs: [10.96.0.5]\n",
     'spec.clusterIPs: Invalid value: ["10.96.0.5"]: must be empty when `clusterIP` is not specified', 7),
    ("  clusterIP: 10.96.0.5\n  clusterIPs: [10.96.0.5, 10.96.0.6]\n",
     'spec.clusterIPs: Invalid value: ["10.96.0.5", "10.96.0.6"]: may specify no more than one IP for each IP family',
     8),
])
def test_manifest_cluster_ips_that_disagree_are_refused(spec, message, line):
    with pytest.raises(KonvergeError) as e:
        loads(MANIFEST + spec, "t.yaml")
    assert [(d.code, d.message, d.span.line) for d in e.value.diagnostics] == [("E302", message, line)]


# ---- a property: random clusters with some headless services ---------------------------------


def headless_endpoints(service: model.Service, pods: list[model.Pod]) -> model.Endpoints | None:
    """syncService for a headless service: as for any, but without ports each pod once, portless."""
    if service.ports:
        return model.endpoints(service, pods)
    with_port = model.Service(service.name, service.selector, (model.ServicePort("", 1, None, "TCP"),),
                              service.namespace, service.publish_not_ready)
    got = model.endpoints(with_port, pods)
    if got is None:
        return None
    return model.Endpoints({model.Address(a.ip, None, a.pod, a.node, "") for a in got.addresses},
                           {model.Address(a.ip, None, a.pod, a.node, "") for a in got.not_ready})


def _addresses(items) -> set:
    return {model.Address(a["ip"], a["port"], a["pod"], a["node"], a["portName"]) for a in items}


@given(endpoint_clusters(), st.data())
def test_headless_services_have_endpoints_and_no_routes_while_the_others_route_theirs(cluster, data):
    pods, services = cluster
    chosen = {s.name for s in services if s.type == "ClusterIP" and data.draw(st.booleans(), label=s.name)}
    text = endpoints_spec(pods, services)
    for name in chosen:
        text = text.replace(f"service {name} {{ ", f'service {name} {{ clusterIP: "None"  ', 1)
    c = run(text, until=900)
    seen = observed_pods(c, pods)
    for s in services:
        svc, got = c.get("Service", s.name), c.get("Endpoints", s.name)
        routes = [r for r in c.of("Route") if r["service"] == f"default/{s.name}"]
        want = headless_endpoints(s, seen) if s.name in chosen else model.endpoints(s, seen)
        assert (got is None) == (want is None), s.name
        if want is not None:
            assert (_addresses(got["addresses"]), _addresses(got["notReadyAddresses"])) == \
                   (want.addresses, want.not_ready), s.name
        if s.name in chosen:
            assert svc["clusterIP"] == "None" and routes == [], s.name
        else:
            assert svc["clusterIP"] not in (None, "None"), s.name
            assert sorted((r["port"], r["protocol"]) for r in routes) == sorted((p.port, p.protocol) for p in s.ports)
            for r in routes:
                sp = next(p for p in s.ports if (p.port, p.protocol) == (r["port"], r["protocol"]))
                ready = sorted((a for a in want.addresses if a.port_name == sp.name) if want else (),
                               key=lambda a: f"{a.ip}:{a.port}")
                assert [(b["ip"], b["port"]) for b in r["backends"]] == [(a.ip, a.port) for a in ready], s.name


# ---- review fixes ----------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["", 'clusterIP: "None"'])
def test_changing_a_service_to_external_name_drops_its_cluster_ip(first, tmp_path, capsys):
    # dropTypeDependentFields: the cluster IP the service held is dropped, not refused as set on
    # an ExternalName service; an address goes back to the allocator.
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(SPEC.replace("{ip}", first))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(SPEC.replace("{ip}", first + ' type: "ExternalName"'))
    capsys.readouterr()
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["get", "svc", "db", "--data-dir", data, "-o", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["type"], got.get("clusterIP")) == ("ExternalName", None)


def test_a_new_external_name_service_with_a_cluster_ip_is_still_refused():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + SPEC.replace("{ip}", 'clusterIP: 10.96.5.5 type: "ExternalName"').split("\n", 1)[1])
    assert e.value.diagnostics[0].message == (
        'Service "db" is invalid: spec.clusterIPs: Forbidden: may not be set for ExternalName services')


def test_get_endpoints_of_a_headless_service_without_ports_lists_the_ips_alone(tmp_path, capsys):
    # kubectl's formatEndpoints: a subset without ports shows its addresses' IPs alone.
    spec = tmp_path / "s.konv"
    spec.write_text(node("n1") + web("db-1") + web("db-2") + headless(ports=""))
    code, out, err = run_view(["get", "endpoints", "db", str(spec)], capsys)
    assert code == 0, err
    shown = out.splitlines()[1].split()[1]
    assert shown.count("192.168.") == 2 and ":" not in shown and "None" not in shown


def test_an_endpoint_address_without_a_port_serves_no_service_port():
    # Written by hand for a service without a selector: the address matches no service port, so
    # kube-proxy REJECTs the port rather than writing a backend without a port.
    c = run(node("n1") + 'service ext { port p { port: 80 } }\n'
            + 'endpoints ext { addresses: [ {ip: 10.1.2.3, pod: "x", portName: "p"} ] }\n')
    assert not c.writes(verb="refused")
    assert [(r["action"], r["backends"]) for r in c.of("Route") if r["service"] == "default/ext"] == [
        ("REJECT", [])]
    assert c.result.violations == ()


@pytest.mark.parametrize(("endpoints", "said"), [
    ("", "are not written"),
    ('endpoints db { addresses: [] }\n', "hold no ready address"),
])
def test_route_of_a_headless_service_without_a_selector_says_so(endpoints, said, tmp_path, capsys):
    spec = tmp_path / "s.konv"
    spec.write_text(node("n1") + 'service db { clusterIP: "None"  port pg { port: 5432 } }\n' + endpoints)
    code, out, err = run_view(["route", "db", str(spec)], capsys)
    assert code == 0, err
    assert out.splitlines()[1] == ("  DNS db.default.svc.cluster.local has no address to answer with: the service "
                                   f"has no selector, and its Endpoints, the user's to write, {said}")
