"""The API server's defaulting and validation (rules/admission.konv)."""

import functools
import resource

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.api import APIServer
from engine.cli import main
from engine.errors import KonvergeError
from engine.show import standard_program
from engine.store import open_store
from engine.fixpoint import reconcile
from tests.kube import deployment, node, program_of, run


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


NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "value": "", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = dict(NOT_READY, key="node.kubernetes.io/unreachable")


def standard_api() -> APIServer:
    return APIServer(standard_program(), open_store())


def a_pod(**fields) -> dict:
    return {"name": "x", "containers": [{"name": "c", "image": "x"}], **fields}


def test_a_created_pod_has_the_default_tolerations_in_its_first_revision():
    api = standard_api()
    p = api.create(api.admin, "pod", a_pod())
    assert p["tolerations"] == [NOT_READY, UNREACHABLE]
    assert p["resourceVersion"] == p["createdRevision"] == api.revision  # the create is the only write


def test_a_pod_tolerating_not_ready_for_60s_keeps_it_and_gets_only_unreachable():
    api = standard_api()
    quick = dict(NOT_READY, tolerationSeconds=60)
    p = api.create(api.admin, "pod", a_pod(tolerations=[quick]))
    assert p["tolerations"] == [quick, UNREACHABLE]


def test_a_toleration_without_key_or_without_effect_counts_as_the_default_ones():
    api = standard_api()
    everything = {"key": "", "operator": "Exists", "value": "", "effect": "", "tolerationSeconds": None}
    assert api.create(api.admin, "pod", a_pod(tolerations=[everything]))["tolerations"] == [everything]
    equal_nothing = dict(everything, operator="Equal")  # an empty key tolerates only with Exists
    assert api.create(api.admin, "pod", a_pod(name="z", tolerations=[equal_nothing]))["tolerations"] == [
        equal_nothing, NOT_READY, UNREACHABLE]
    any_effect = dict(NOT_READY, effect="", tolerationSeconds=None)
    p = api.create(api.admin, "pod", a_pod(name="y", tolerations=[any_effect]))
    assert p["tolerations"] == [any_effect, UNREACHABLE]


def test_an_update_gets_the_default_tolerations_once():
    api = standard_api()
    p = api.create(api.admin, "pod", a_pod())
    assert api.update(api.admin, "pod", dict(p, tolerations=[]))["tolerations"] == [NOT_READY, UNREACHABLE]
    assert api.update(api.admin, "pod", dict(p, phase="Running"))["tolerations"] == [NOT_READY, UNREACHABLE]


def test_no_controller_writes_the_default_tolerations_after_the_create():
    c = run(node("n1") + 'pod x { container c { image: "x" } }', history=True)
    first = next(o for _, objects in c.states() for o in objects if o["kind"] == "Pod")
    assert [t["key"] for t in first["tolerations"]] == [NOT_READY["key"], UNREACHABLE["key"]]
    assert [w.rule for w in c.writes(kind="Pod", name="x")] == [None, "bind", "start_containers"]


def test_container_port_outside_1_to_65535_is_refused_with_kubernetes_field_path():
    _, refused = create(container("port p { containerPort: 0 }"))
    assert refused == 'Pod "x" is invalid: spec.containers[0].ports[0].containerPort: Required value'
    _, refused = create(container("port a { containerPort: 80 }", "a")
                        + container("port b { containerPort: 81 } port c { containerPort: 65536 }", "b"))
    assert refused == ('Pod "x" is invalid: spec.containers[1].ports[1].containerPort: Invalid value: 65536: '
                       "must be between 1 and 65535, inclusive")


def test_host_port_outside_1_to_65535_is_refused():
    _, refused = create(container("port p { containerPort: 80  hostPort: 70000 }"))
    assert refused == ('Pod "x" is invalid: spec.containers[0].ports[0].hostPort: Invalid value: 70000: '
                       "must be between 1 and 65535, inclusive")


def test_unknown_protocol_is_refused():
    _, refused = create(container('port p { containerPort: 80  protocol: "HTTP" }'))
    assert refused == ('Pod "x" is invalid: spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": '
                       'supported values: "SCTP", "TCP", "UDP"')


def test_sctp_and_udp_are_accepted():
    _, refused = create(container('port a { containerPort: 80  protocol: "SCTP" } port b { containerPort: 53  protocol: "UDP" }'))
    assert refused is None


def test_duplicate_port_name_in_a_container_is_refused():
    _, refused = create(container("port web { containerPort: 80 }").replace(
        "port web { containerPort: 80 }", 'ports: [{name: "web", containerPort: 80}, {name: "web", containerPort: 81}]'))
    assert refused == 'Pod "x" is invalid: spec.containers[0].ports[1].name: Duplicate value: "web"'


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
    with pytest.raises(KonvergeError, match=r"spec\.containers\[0\]\.ports\[0\]\.containerPort: Required value"):
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


def test_terminating_namespace_refusal_has_kubernetes_message():
    c = run(node("n1") + node("down", extra="kubeletUp: false")
            + 'namespace doomed {}\npod stuck in doomed { node: "down" container main { image: "x" } }\n'
            'scenario "late" { at 1m: terminate namespace doomed\n'
            '  at 2m: create service late in doomed { port p { port: 80 } } }', until=3600)
    [refused] = c.writes(verb="refused", kind="Service", name="late")
    assert refused.message == ('services "late" is forbidden: unable to create new content in namespace doomed '
                               "because it is being terminated")


def refused_by_api(api: APIServer, kind: str, obj: dict) -> tuple[str, int, str]:
    """(Status reason, code, message) of the API server's refusal of creating `obj`."""
    with pytest.raises(KonvergeError) as e:
        api.create(api.admin, kind, obj)
    return e.value.reason, e.value.code, e.value.message


def test_namespace_refusals_answer_as_the_namespace_lifecycle_plugin():
    # NamespaceLifecycle: a missing namespace is NotFound, a Terminating one Forbidden.
    api = standard_api()
    api.create(api.admin, "namespace", {"name": "doomed", "phase": "Terminating"})
    assert refused_by_api(api, "pod", a_pod(namespace="ghost")) == (
        "NotFound", 404, 'namespaces "ghost" not found')
    assert refused_by_api(api, "service", {"name": "s", "namespace": "doomed", "ports": [{"port": 80}]}) == (
        "Forbidden", 403, 'services "s" is forbidden: unable to create new content in namespace doomed because '
                          "it is being terminated")


# ---- objects in a namespace that does not exist -------------------------------------------


def test_object_in_a_missing_namespace_is_refused_with_kubernetes_message():
    c = run(node("n1") + 'scenario "ghost" {\n'
            '  at 1s: create pod p in ghost { container c { image: "x" } }\n'
            '  at 2s: create deployment d in ghost { template { labels { a: "b" } container c { image: "x" } } }\n'
            '  at 3s: create service s in ghost { port p { port: 80 } }\n}')
    refused = c.writes(verb="refused")
    assert [(w.kind, w.name) for w in refused] == [("Pod", "p"), ("Deployment", "d"), ("Service", "s")]
    assert refused[0].message == 'namespaces "ghost" not found'
    assert not c.of("Pod", "ghost") and not c.of("Deployment", "ghost")


def test_spec_object_in_an_undeclared_namespace_is_refused_at_load():
    with pytest.raises(KonvergeError, match='namespaces "ghost" not found'):
        run(node("n1") + 'pod p in ghost { container c { image: "x" } }')


def test_namespace_declared_in_the_same_spec_is_created_first():
    c = run(node("n1") + 'namespace shop {}\n'
            'deployment web in shop { template { labels { app: "web" } container c { image: "x" } } }\n')
    assert c.pods(namespace="shop") and c.pods(namespace="shop")[0]["ready"]


# ---- validation with Kubernetes' messages -----------------------------------------------


def refusal(spec_body: str) -> str:
    """The API server's message for an invalid object declared in a spec (refused at load)."""
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + spec_body)
    [d] = e.value.diagnostics
    return d.message


@pytest.mark.parametrize("body, message", [
    ('service s { selector { a: "b" } ports: [{port: 83}, {port: 84}] }',
     'Service "s" is invalid: spec.ports[0].name: Required value'),
    ('service s { selector { a: "b" } ports: [{name: "a", port: 83}, {port: 84}] }',
     'Service "s" is invalid: spec.ports[1].name: Required value'),
    ('service s { selector { a: "b" } ports: [{name: "x", port: 81}, {name: "x", port: 82}] }',
     'Service "s" is invalid: spec.ports[1].name: Duplicate value: "x"'),
    ('service s { selector { a: "b" } port x { port: 80 } port y { port: 80 } }',
     'Service "s" is invalid: spec.ports[1]: Duplicate value: core.ServicePort{Protocol:"TCP", Port:80}'),
])
def test_service_ports_must_be_named_and_distinct(body, message):
    assert refusal(body) == message


def test_service_ports_differing_in_protocol_or_alone_unnamed_are_accepted():
    c = run(node("n1") + 'service dns { selector { a: "b" } ports: [{name: "tcp", port: 53}, '
            '{name: "udp", port: 53, protocol: "UDP"}] }\n'
            'service one { selector { a: "b" } ports: [{port: 80}] }\n')
    assert len(c.get("Service", "dns")["ports"]) == 2 and c.get("Service", "one")["clusterIP"]


@pytest.mark.parametrize("body, message", [
    ('service b { clusterIP: 10.96.0.1  selector { x: "y" } port p { port: 80 } }',
     'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.1"]: failed to allocate IP 10.96.0.1: '
     "provided IP is already allocated"),
    ('service c { clusterIP: 172.16.0.1  selector { x: "y" } port p { port: 80 } }',
     'Service "c" is invalid: spec.clusterIPs: Invalid value: ["172.16.0.1"]: failed to allocate IP 172.16.0.1: '
     "the provided IP (172.16.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"),
    ('service c { type: "NodePort"  selector { x: "y" } port p { port: 80  nodePort: 99999 } }',
     'Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 99999: provided port is not in the valid '
     "range. The range of valid ports is 30000-32767"),
    ('service c { selector { x: "y" } port p { port: 80  nodePort: 30080 } }',
     "Service \"c\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    ('deployment d { replicas: -2  template { labels { a: "d" } container c { image: "x" } } }',
     'Deployment "d" is invalid: spec.replicas: Invalid value: -2: must be greater than or equal to 0'),
    ('deployment d { replicas: 99999999999999999999  template { labels { a: "d" } container c { image: "x" } } }',
     'Deployment "d" is invalid: spec.replicas: Invalid value: 99999999999999999999: '
     "must be less than or equal to 2147483647"),
    ('replicaset r { replicas: 2147483648  selector { a: "d" }  template { labels { a: "d" } container c { image: "x" } } }',
     'ReplicaSet "r" is invalid: spec.replicas: Invalid value: 2147483648: must be less than or equal to 2147483647'),
    ('horizontalpodautoscaler h { target: "d"  maxReplicas: 3000000000 }',
     'HorizontalPodAutoscaler "h" is invalid: spec.maxReplicas: Invalid value: 3000000000: '
     "must be less than or equal to 2147483647"),
    ('horizontalpodautoscaler h { target: "d"  minReplicas: 3000000000  maxReplicas: 4 }',
     'HorizontalPodAutoscaler "h" is invalid: spec.minReplicas: Invalid value: 3000000000: '
     "must be less than or equal to 2147483647"),
    ('pod p { container a { image: "x" } container b { image: "x"  cpu: -1 } }',
     'Pod "p" is invalid: spec.containers[1].resources.requests[cpu]: Invalid value: "-1000m": '
     "must be greater than or equal to 0"),
    ('deployment d { template { labels { a: "d" } container c { image: "x"  memory: -1 } } }',
     'Deployment "d" is invalid: spec.template.spec.containers[0].resources.requests[memory]: '
     'Invalid value: "-1": must be greater than or equal to 0'),
    ('pod p { tolerations: [{key: "a", operator: "Bogus", effect: "NoSchedule"}] container c { image: "x" } }',
     'Pod "p" is invalid: spec.tolerations[0].operator: Unsupported value: "Bogus": supported values: '
     '"Equal", "Exists"'),
    ('pod p { tolerations: [{key: "a", operator: "Exists", effect: "Sometimes"}] container c { image: "x" } }',
     'Pod "p" is invalid: spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: '
     '"NoSchedule", "PreferNoSchedule", "NoExecute"'),
    ('pod p { restartPolicy: "Sometimes"  container c { image: "x" } }',
     'Pod "p" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
     '"Always", "OnFailure", "Never"'),
    ('deployment d { template { restartPolicy: "Rarely"  labels { a: "d" } container c { image: "x" } } }',
     'Deployment "d" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Rarely": '
     'supported values: "Always", "OnFailure", "Never"'),
    ('pod p { containers: [] }', 'Pod "p" is invalid: spec.containers: Required value'),
    ('deployment d { template { labels { a: "d" } } }',
     'Deployment "d" is invalid: spec.template.spec.containers: Required value'),
])
def test_invalid_objects_are_refused_with_kubernetes_messages(body, message):
    assert refusal(body) == message


def test_a_taken_cluster_ip_is_refused_when_a_second_service_claims_it():
    c = run(node("n1") + 'service a { clusterIP: 10.96.0.10  selector { x: "y" } port p { port: 80 } }\n'
            'scenario "claim" { at 1s: create service b { clusterIP: 10.96.0.10  selector { x: "y" } '
            'port p { port: 80 } } }')
    [refused] = c.writes(verb="refused", kind="Service", name="b")
    assert "provided IP is already allocated" in refused.message
    assert c.get("Service", "kubernetes")["clusterIP"] == "10.96.0.1"


def test_scaling_a_deployment_below_zero_is_refused():
    c = run(node("n1") + 'deployment d { replicas: 1  template { labels { a: "d" } container c { image: "x" } } }\n'
            'scenario "down" { at 1s: scale deployment d replicas = -1 }')
    [refused] = c.writes(verb="refused", kind="Deployment", name="d")
    assert "spec.replicas: Invalid value: -1" in refused.message
    assert c.get("Deployment", "d")["replicas"] == 1


# ---- label selectors (ValidateLabelSelectorRequirement, ValidateReplicaSetSpec) ----------------

CONTAINER = 'container c { image: "x" }'
TERMS = "requiredDuringSchedulingIgnoredDuringExecution"


@pytest.mark.parametrize("body, message", [
    (f'pod p {{ affinity: {{podAffinity: [{{matchExpressions: [{{key: "a", operator: "In"}}], topologyKey: "z"}}]}} '
     f'{CONTAINER} }}',
     f'Pod "p" is invalid: spec.affinity.podAffinity.{TERMS}[0].labelSelector.matchExpressions[0].values: '
     "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    (f'pod p {{ affinity: {{podAntiAffinity: [{{labelSelector: {{a: "b"}}, topologyKey: "z"}}, '
     f'{{matchExpressions: [{{key: "a", operator: "Exists"}}, {{key: "a", operator: "NotIn", values: []}}], '
     f'topologyKey: "z"}}]}} {CONTAINER} }}',
     f'Pod "p" is invalid: spec.affinity.podAntiAffinity.{TERMS}[1].labelSelector.matchExpressions[1].values: '
     "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    (f'pod p {{ topologySpreadConstraints: [{{topologyKey: "z", matchExpressions: '
     f'[{{key: "a", operator: "Exists", values: ["b"]}}]}}] {CONTAINER} }}',
     'Pod "p" is invalid: spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].values: '
     "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    (f'pod p {{ topologySpreadConstraints: [{{topologyKey: "z", matchExpressions: '
     f'[{{key: "a", operator: "DoesNotExist", values: ["b"]}}]}}] {CONTAINER} }}',
     'Pod "p" is invalid: spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].values: '
     "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    (f'pod p {{ affinity: {{podAffinity: [{{matchExpressions: [{{key: "a", operator: "Gt", values: ["1"]}}], '
     f'topologyKey: "z"}}]}} {CONTAINER} }}',
     f'Pod "p" is invalid: spec.affinity.podAffinity.{TERMS}[0].labelSelector.matchExpressions[0].operator: '
     'Invalid value: "Gt": not a valid selector operator'),
    (f'replicaset r {{ selector {{ a: "b" }} matchExpressions: [{{key: "a", operator: "Like", values: ["x"]}}] '
     f'template {{ labels {{ a: "b" }} {CONTAINER} }} }}',
     'ReplicaSet "r" is invalid: spec.selector.matchExpressions[0].operator: Invalid value: "Like": '
     "not a valid selector operator"),
    (f'deployment d {{ template {{ labels {{ a: "d" }} topologySpreadConstraints: [{{topologyKey: "z", '
     f'matchExpressions: [{{key: "a", operator: "In"}}]}}] {CONTAINER} }} }}',
     'Deployment "d" is invalid: spec.template.spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0]'
     ".values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    (f'replicaset r {{ template {{ labels {{ a: "b" }} {CONTAINER} }} }}',
     'ReplicaSet "r" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"),
    (f'replicaset r {{ selector {{ a: "c" }} template {{ labels {{ a: "b"  z: "y" }} {CONTAINER} }} }}',
     'ReplicaSet "r" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"a":"b", "z":"y"}: '
     "`selector` does not match template `labels`"),
    (f'deployment d {{ matchExpressions: [{{key: "track", operator: "Exists"}}] '
     f'template {{ labels {{ a: "d" }} {CONTAINER} }} }}',
     'Deployment "d" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"a":"d"}: '
     "`selector` does not match template `labels`"),
])
def test_invalid_label_selectors_are_refused_with_kubernetes_messages(body, message):
    assert refusal(body) == message


def test_valid_label_selectors_of_every_operator_are_accepted():
    exprs = ('[{key: "a", operator: "In", values: ["b"]}, {key: "a", operator: "NotIn", values: ["c"]}, '
             '{key: "a", operator: "Exists"}, {key: "t", operator: "DoesNotExist"}]')
    c = run(node("n1", extra='labels { z: "1" }') + f'replicaset r {{ matchExpressions: {exprs} template {{ labels {{ a: "b" }} {CONTAINER} }} }}\n'
            f'pod p {{ labels {{ x: "y" }} topologySpreadConstraints: [{{topologyKey: "z", labelSelector: {{}}, '
            f'matchExpressions: {exprs}}}] {CONTAINER} }}\n')
    assert c.get("ReplicaSet", "r")["matchExpressions"][3] == {"key": "t", "operator": "DoesNotExist", "values": []}
    assert c.get("Pod", "p")["ready"] and len(c.pods()) == 2


# ---- label syntax (IsQualifiedName, IsValidLabelValue) and node affinity ------------------------

NAME_PART = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
             "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
         "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
         "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
PREFIX = ("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
          "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
          r"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
NODE_TERMS = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
LONG = 64 * "k"


def node_affinity(*exprs: str) -> str:
    """A pod's required node affinity: one term of the given requirements."""
    return "affinity: {requiredNodeTerms: [{matchExpressions: [" + ", ".join(exprs) + "]}]}"


def required(key: str, operator: str, values: str | None = None) -> str:
    return f'{{key: "{key}", operator: "{operator}"' + (f", values: {values}}}" if values is not None else "}")


@pytest.mark.parametrize("body, message", [
    (f'pod p {{ labels {{ "bad key": "x" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "bad key": name part {NAME_PART}'),
    (f'pod p {{ labels {{ app: "-web" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "-web": {VALUE}'),
    (f'pod p {{ labels {{ app: "{LONG}" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "{LONG}": must be no more than 63 bytes'),
    (f'pod p {{ labels {{ "{LONG}": "x" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "{LONG}": name part must be no more than 63 bytes'),
    (f'pod p {{ labels {{ "Example.com/app": "x" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "Example.com/app": {PREFIX}'),
    (f'pod p {{ labels {{ "/app": "x" }} {CONTAINER} }}',
     'Pod "p" is invalid: metadata.labels: Invalid value: "/app": prefix part must be non-empty'),
    (f'pod p {{ labels {{ "example.com/": "x" }} {CONTAINER} }}',
     'Pod "p" is invalid: metadata.labels: Invalid value: "example.com/": name part must be non-empty'),
    (f'pod p {{ labels {{ "a/b/c": "x" }} {CONTAINER} }}',
     f'Pod "p" is invalid: metadata.labels: Invalid value: "a/b/c": a valid label key {NAME_PART} with an '
     "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    (f'pod p {{ nodeSelector {{ disk: "ssd!" }} {CONTAINER} }}',
     f'Pod "p" is invalid: spec.nodeSelector: Invalid value: "ssd!": {VALUE}'),
    (f'pod p {{ affinity: {{podAffinity: [{{labelSelector: {{"a b": "c"}}, topologyKey: "z"}}]}} {CONTAINER} }}',
     f'Pod "p" is invalid: spec.affinity.podAffinity.{TERMS}[0].labelSelector.matchLabels: Invalid value: "a b": '
     f"name part {NAME_PART}"),
    (f'pod p {{ affinity: {{podAntiAffinity: [{{matchExpressions: [{required("a", "In", """["ok", "not ok"]""")}], '
     f'topologyKey: "z"}}]}} {CONTAINER} }}',
     f'Pod "p" is invalid: spec.affinity.podAntiAffinity.{TERMS}[0].labelSelector.matchExpressions[0].values[1]: '
     f'Invalid value: "not ok": {VALUE}'),
    (f'pod p {{ topologySpreadConstraints: [{{topologyKey: "z", matchExpressions: [{required("_a", "Exists")}]}}] '
     f'{CONTAINER} }}',
     'Pod "p" is invalid: spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].key: '
     f'Invalid value: "_a": name part {NAME_PART}'),
    (f'replicaset r {{ labels {{ "tier!": "x" }} selector {{ a: "b" }} template {{ labels {{ a: "b" }} {CONTAINER} }} }}',
     f'ReplicaSet "r" is invalid: metadata.labels: Invalid value: "tier!": name part {NAME_PART}'),
    (f'replicaset r {{ selector {{ a: "b c" }} template {{ labels {{ a: "b c" }} {CONTAINER} }} }}',
     f'ReplicaSet "r" is invalid: spec.selector.matchLabels: Invalid value: "b c": {VALUE}'),
    (f'replicaset r {{ selector {{ a: "b" }} matchExpressions: [{required("a", "NotIn", """["x."]""")}] '
     f'template {{ labels {{ a: "b" }} {CONTAINER} }} }}',
     f'ReplicaSet "r" is invalid: spec.selector.matchExpressions[0].values[0]: Invalid value: "x.": {VALUE}'),
    (f'deployment d {{ template {{ labels {{ a: "d"  "b/": "x" }} {CONTAINER} }} }}',
     'Deployment "d" is invalid: spec.template.metadata.labels: Invalid value: "b/": name part must be non-empty'),
    (f'deployment d {{ template {{ labels {{ a: "d" }} nodeSelector {{ "-zone": "a" }} {CONTAINER} }} }}',
     f'Deployment "d" is invalid: spec.template.spec.nodeSelector: Invalid value: "-zone": name part {NAME_PART}'),
    ('service s { selector { app: "web/1" } port p { port: 80 } }',
     f'Service "s" is invalid: spec.selector: Invalid value: "web/1": {VALUE}'),
    ('node n2 { cpu: 4  memory: 8Gi  labels { zone: "a b" } }',
     f'Node "n2" is invalid: metadata.labels: Invalid value: "a b": {VALUE}'),
    ('namespace shop { labels { "team=a": "x" } }',
     f'Namespace "shop" is invalid: metadata.labels: Invalid value: "team=a": name part {NAME_PART}'),
    # Node affinity (ValidateNodeSelectorRequirement): Gt and Lt take exactly one value.
    (f'pod p {{ {node_affinity(required("gen", "Gt", "[]"))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[0].values: Required value: '
     "must be specified single value when `operator` is 'Lt' or 'Gt'"),
    (f'pod p {{ {node_affinity(required("a", "Exists"), required("gen", "Lt", """["1", "2"]"""))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[1].values: Required value: '
     "must be specified single value when `operator` is 'Lt' or 'Gt'"),
    (f'pod p {{ {node_affinity(required("zone", "In"))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[0].values: Required value: '
     "must be specified when `operator` is 'In' or 'NotIn'"),
    (f'pod p {{ {node_affinity(required("zone", "DoesNotExist", """["a"]"""))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[0].values: Forbidden: '
     "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    (f'pod p {{ {node_affinity(required("zone", "Near", """["a"]"""))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[0].operator: Invalid value: "Near": '
     "not a valid selector operator"),
    (f'pod p {{ {node_affinity(required("gen", "Gt", """["-1"]"""))} {CONTAINER} }}',
     f'Pod "p" is invalid: {NODE_TERMS}[0].matchExpressions[0].values[0]: Invalid value: "-1": {VALUE}'),
    (f'deployment d {{ template {{ labels {{ a: "d" }} affinity: {{preferredNodeTerms: [{{weight: 1, preference: '
     f'{{matchExpressions: [{required("a:b", "Exists")}]}}}}]}} {CONTAINER} }} }}',
     'Deployment "d" is invalid: spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuring'
     f'Execution[0].preference.matchExpressions[0].key: Invalid value: "a:b": name part {NAME_PART}'),
    # validatePreferredSchedulingTerms: the weight before the preference.
    (f'pod p {{ affinity: {{preferredNodeTerms: [{{weight: 1, preference: {{matchExpressions: '
     f'[{required("a", "Exists")}]}}}}, {{weight: 0, preference: {{matchExpressions: [{required("a:b", "Exists")}]}}}}]}} '
     f'{CONTAINER} }}',
     'Pod "p" is invalid: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[1].weight: '
     'Invalid value: 0: must be in the range 1-100'),
    (f'pod p {{ affinity: {{preferredNodeTerms: [{{weight: 101, preference: {{matchExpressions: '
     f'[{required("a", "Exists")}]}}}}]}} {CONTAINER} }}',
     'Pod "p" is invalid: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: '
     'Invalid value: 101: must be in the range 1-100'),
])
def test_invalid_labels_and_node_affinity_are_refused_with_kubernetes_messages(body, message):
    assert refusal(body) == message


def test_valid_labels_of_every_shape_are_accepted():
    name, value = 63 * "n", 63 * "v"
    c = run(node("n1", extra='labels { gen: "5"  "node-role.kubernetes.io/control-plane": "" }')
            + f'pod p {{ labels {{ "app.kubernetes.io/name": "web"  "{name}": "{value}"  "A_b.C-9": "X_y.z-0"  e: "" }}\n'
            '  nodeSelector { "node-role.kubernetes.io/control-plane": "" }\n'
            f'  {node_affinity(required("gen", "Gt", """["4"]"""), required("gen", "Lt", """["6"]"""))}\n'
            f"  {CONTAINER} }}\n")
    p = c.get("Pod", "p")
    assert p["ready"] and p["labels"]["e"] == "" and p["labels"][name] == value


def test_a_gt_value_that_is_no_integer_is_accepted_and_matches_no_node():
    # Kubernetes checks only how many values there are; the scheduler cannot parse this one,
    # and the term selects no node.
    c = run(node("n1", extra='labels { gen: "5" }')
            + f'pod p {{ {node_affinity(required("gen", "Gt", """["four"]"""))} {CONTAINER} }}\n')
    p = c.get("Pod", "p")
    assert not c.writes(verb="refused") and p["phase"] == "Pending" and p["node"] is None


def test_a_label_edit_to_an_invalid_label_is_refused_and_the_pod_keeps_its_labels():
    c = run(node("n1") + f'pod p {{ labels {{ app: "web" }} {CONTAINER} }}\n'
            'scenario "edit" { at 1m: relabel pod p labels = {app: "web server"} }')
    [refused] = c.writes(verb="refused", kind="Pod", name="p")
    assert refused.message == f'Pod "p" is invalid: metadata.labels: Invalid value: "web server": {VALUE}'
    assert c.get("Pod", "p")["labels"] == {"app": "web"}


# ---- service accounts (the ServiceAccount admission plugin) ------------------------------------


def test_pod_naming_a_missing_service_account_is_refused_with_kubernetes_message():
    _, refused = create(f'serviceAccountName: "bot" {CONTAINER}')
    assert refused == ('pods "x" is forbidden: error looking up service account default/bot: '
                       'serviceaccount "bot" not found')
    assert refusal(f'pod p in kube-system {{ serviceAccountName: "bot" {CONTAINER} }}') == (
        'pods "p" is forbidden: error looking up service account kube-system/bot: serviceaccount "bot" not found')
    assert refused_by_api(standard_api(), "pod", a_pod(serviceAccountName="bot"))[:2] == ("Forbidden", 403)
    assert refused_by_api(standard_api(), "pod", a_pod(restartPolicy="Sometimes"))[:2] == ("Invalid", 422)


def test_pod_naming_an_existing_service_account_is_accepted():
    c = run(node("n1") + "serviceaccount bot {}\n" + f'pod p {{ serviceAccountName: "bot" {CONTAINER} }}\n')
    assert c.get("Pod", "p")["serviceAccountName"] == "bot" and c.get("Pod", "p")["ready"]


def test_service_account_defaults_to_default_which_needs_no_lookup():
    # A spec's pods are created before the serviceaccount controller makes `default`.
    c, refused = create(CONTAINER)
    assert refused is None and c.get("Pod", "x")["serviceAccountName"] == "default"
    c = run(node("n1") + f"namespace fresh {{}}\npod p in fresh {{ {CONTAINER} }}\n")
    assert c.get("Pod", "p", "fresh")["ready"]


def test_a_refused_spec_object_is_reported_at_its_declaration(tmp_path, capsys):
    spec = tmp_path / "bad.konv"
    spec.write_text('node n1 { cpu: 4  memory: 8Gi }\n\n'
                    'pod web {\n'
                    '  container a { image: "x" port http { containerPort: 80 } }\n'
                    '  container b { image: "y" port web { containerPort: 80 } }\n'
                    '}\n')
    code = main(["reconcile", str(spec)])
    err = capsys.readouterr().err
    assert code == 1
    assert f'{spec}:3:1: error[E200]: Pod "web" is invalid' in err and "3 | pod web {" in err


def test_a_replicaset_asking_for_the_most_replicas_kubernetes_allows_makes_them_without_running_out_of_memory():
    # The names of its pods are looked for among 90000 counters at most, not among 2^31. Should
    # that go, the run fails on 2 GiB more memory than the tests hold, not on the machine's.
    program = program_of(node("n1") + 'replicaset r { replicas: 2147483647  selector { a: "d" } '
                         'template { labels { a: "d" } container c { image: "x" } } }')
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + 2**31, hard))
    try:
        result = reconcile(program, budget=3)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert not result.converged
    assert sum(o["kind"] == "Pod" for o in result.objects) == 500  # the first burst (burstReplicas)


def test_a_refused_manifest_object_is_reported_at_its_document(tmp_path, capsys):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n"
                        "status: {capacity: {cpu: '4', memory: 8Gi}}\n---\n"
                        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    code = main(["reconcile", str(manifest)])
    err = capsys.readouterr().err
    assert code == 1
    assert f'{manifest}:7:7: error[E200]: Pod "p" is invalid: spec.containers: Required value' in err
    assert "7 | kind: Pod" in err


def test_a_deployment_whose_template_has_a_bad_port_is_refused_itself():
    # As Kubernetes validates the template: the Deployment is refused, no ReplicaSet is made.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + deployment("web", container_extra='port p { containerPort: 80  protocol: "tcp" }'))
    assert e.value.diagnostics[0].message == (
        'Deployment "web" is invalid: spec.template.spec.containers[0].ports[0].protocol: Unsupported value: '
        '"tcp": supported values: "SCTP", "TCP", "UDP"')


def test_every_refused_object_of_a_spec_is_reported_each_at_its_declaration():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + 'service web { selector: {app: "web"}  port http { port: 0 } }\n'
            + 'service api { selector: {app: "api"}  port http { port: 80  protocol: "http" } }\n')
    assert [(d.span.line, d.message) for d in e.value.diagnostics] == [
        (2, 'Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive'),
        (3, 'Service "api" is invalid: spec.ports[0].protocol: Unsupported value: "http": '
            'supported values: "SCTP", "TCP", "UDP"')]


_standard_program = functools.cache(standard_program)


# The label, subdomain, port name and percent checks as they read before `matches`, character by
# character: the patterns must accept exactly what these did.
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _label_syntax(s):
    return s != "" and all(c in "-._" + _ALNUM for c in s) and s[0] not in "-_." and s[-1] not in "-_."


def _dns_label(s):
    lower = "-0123456789abcdefghijklmnopqrstuvwxyz"
    return s != "" and all(c in lower for c in s) and s[0] != "-" and s[-1] != "-"


def _port_name_error(s):
    if any(c not in "-0123456789abcdefghijklmnopqrstuvwxyz" for c in s):
        return "only"
    if not any(c in "abcdefghijklmnopqrstuvwxyz" for c in s):
        return "letter"
    return None


@settings(max_examples=300, deadline=None)
@given(s=st.text(alphabet="aZ9-_.%/\n éİK\u212a", max_size=7))
@example(s="a_b.c-d")
@example(s="a..b")
@example(s="_a")
@example(s="ab-")
@example(s="a--b")
@example(s="10%")
@example(s="%")
@example(s="a\n")
def test_the_syntax_checks_by_pattern_accept_what_the_character_checks_accepted(s):
    from engine.eval import Evaluator

    prog = _standard_program()
    ev = Evaluator(prog, None)

    def call(name, *args):
        return ev.call_def(prog.defs[name], list(args))
    assert call("label_syntax", s) is _label_syntax(s)
    if s and len(s) <= 253:
        assert (call("key_prefix_error", s) is None) is all(_dns_label(p) for p in s.split("."))
    if len(s) <= 15:
        why = call("port_name_error", "p", s)
        want = _port_name_error(s)
        assert (why is None or "--" in s or s[:1] == "-" or s[-1:] == "-") if want is None else \
            why is not None and ("at least one letter" in why) is (want == "letter")
    assert call("valid_percent", s) is (len(s) > 1 and s[-1] == "%" and all(c in "0123456789" for c in s[:-1]))
