"""Kubernetes YAML manifests: what is read, what is warned about, what is an error."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest

from engine.errors import KonvergeError
from engine.kube.manifests import load_manifests, loads, parse_quantity


@pytest.mark.parametrize("text, value", [
    ("250m", Fraction(1, 4)), ("0.5", Fraction(1, 2)), ("1", 1), ("1Gi", 2**30), ("128Mi", 134217728),
    ("1e3", 1000), ("1E-3", Fraction(1, 1000)), ("2k", 2000), ("1.5Gi", 3 * 2**29), ("100n", Fraction(1, 10**7)),
    ("3u", Fraction(3, 10**6)), ("4M", 4 * 10**6), (".5", Fraction(1, 2)), ("+1", 1), ("0", 0),
])
def test_quantities_parse_exactly(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1.2.3", "m", "1 Gi", "1e", "0x10"])
def test_malformed_quantities_are_rejected(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def one(text: str):
    m = loads(text, "t.yaml")
    assert len(m.objects) == 1, m
    return m.objects[0]


def test_namespace_and_service_account():
    m = loads("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n---\n"
              "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: shop}\n", "t.yaml")
    assert m.objects == (("Namespace", {"kind": "Namespace", "name": "shop", "namespace": None,
                                        "labels": {"team": "a"}}),
                         ("ServiceAccount", {"kind": "ServiceAccount", "name": "bot", "namespace": "shop"}))
    assert m.warnings == ()


def test_node_reads_labels_taints_cidrs_and_allocatable_over_capacity():
    kind, node = one("""
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {zone: a, node-role.kubernetes.io/control-plane: ""}
spec:
  unschedulable: true
  podCIDRs: [10.244.1.0/24]
  taints: [{key: k, value: v, effect: NoSchedule}]
status:
  capacity: {cpu: "8", memory: 32Gi, pods: "200"}
  allocatable: {cpu: 7500m, memory: 30Gi}
  conditions: [{type: Ready, status: "True"}]
""")
    assert kind == "Node"
    assert node["cpu"] == Fraction(15, 2) and node["memory"] == 30 * 2**30 and node["pods"] == 200
    assert node["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    assert node["unschedulable"] is True and node["podCIDRs"] == ["10.244.1.0/24"]
    assert node["controlPlane"] is True and node["namespace"] is None


def test_pod_reads_spec_and_controller_owner():
    kind, pod = one("""
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: ns
  labels: {app: web}
  annotations: {controller.kubernetes.io/pod-deletion-cost: "5"}
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: x, controller: true}
spec:
  nodeName: n1
  serviceAccountName: bot
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  nodeSelector: {disk: ssd}
  tolerations: [{key: k, operator: Exists, effect: NoExecute, tolerationSeconds: 60}]
  containers:
    - name: c
      image: nginx
      ports: [{name: http, containerPort: 80, protocol: TCP, hostPort: 8080}]
      resources:
        requests: {cpu: 0.5}
        limits: {cpu: "1", memory: 1Gi}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a, b]}]}]
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 10, preference: {matchExpressions: [{key: gpu, operator: Exists}]}}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}
  topologySpreadConstraints:
    - {maxSkew: 2, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
""")
    assert kind == "Pod"
    assert pod["owner"] == {"kind": "ReplicaSet", "name": "rs"}
    assert pod["node"] == "n1" and pod["serviceAccountName"] == "bot" and pod["deletionCost"] == 5
    assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] == 5
    c = pod["containers"][0]
    # requests win; a limit without a request becomes the request, as in Kubernetes
    assert c["cpu"] == Fraction(1, 2) and c["memory"] == 2**30
    assert c["ports"] == [{"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080}]
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                   "tolerationSeconds": 60}]
    assert pod["affinity"] == {
        "requiredNodeTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}],
        "preferredNodeTerms": [{"weight": 10, "preference": {"matchExpressions": [
            {"key": "gpu", "operator": "Exists"}]}}],
        "podAntiAffinity": [{"labelSelector": {"app": "web"}, "topologyKey": "kubernetes.io/hostname"}],
    }
    assert pod["topologySpreadConstraints"] == [{"maxSkew": 2, "topologyKey": "zone",
                                                 "whenUnsatisfiable": "DoNotSchedule",
                                                 "labelSelector": {"app": "web"}}]


def test_deployment_and_replicaset():
    m = loads("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: "50%"}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i, resources: {requests: {cpu: 100m}}}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: rs
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, controller: true}]
spec:
  replicas: 2
  selector: {matchLabels: {app: x}}
  template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c, image: i}]}}
""", "t.yaml")
    (_, d), (_, rs) = m.objects
    assert d == {"kind": "Deployment", "name": "web", "namespace": "default", "replicas": 4,
                 "selector": {"app": "web"}, "strategy": "RollingUpdate", "maxSurge": 1, "maxUnavailable": "50%",
                 "template": {"labels": {"app": "web"},
                              "containers": [{"name": "c", "image": "i", "cpu": Fraction(1, 10)}]}}
    assert rs["owner"] == {"kind": "Deployment", "name": "web"} and rs["replicas"] == 2
    assert rs["selector"] == {"app": "x"}


def test_a_recreate_strategy_is_read_as_the_deployments_strategy():
    (_, d), = loads("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  strategy: {type: Recreate}
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: i}]}}
""", "t.yaml").objects
    assert d["strategy"] == "Recreate" and "maxSurge" not in d


def test_a_recreate_manifest_with_rolling_update_parameters_is_refused_at_its_position(tmp_path):
    path = tmp_path / "db.yaml"
    path.write_text("""apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: i}]}}
""")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "get", "deploy", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (f"{path}:2:7: error[E200]: Deployment \"db\" is invalid: spec.strategy.rollingUpdate: Forbidden: "
            "may not be specified when strategy `type` is 'Recreate'") in out.stderr


RECREATE = """apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  strategy: {type: Recreate, rollingUpdate: %s}
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: i}]}}
"""


def test_an_empty_rolling_update_with_recreate_is_refused_and_a_null_one_is_not():
    # ValidateDeploymentStrategy refuses any non-nil rollingUpdate with Recreate, an empty one too;
    # a null one is nil (review RH).
    with pytest.raises(KonvergeError) as e:
        loads(RECREATE % "{}", "t.yaml")
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E302", 5, 45)
    assert d.message == "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    _, d = one(RECREATE % "null")
    assert d["strategy"] == "Recreate" and "maxSurge" not in d


def test_service_and_hpa():
    m = loads("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  selector: {app: web}
  sessionAffinity: ClientIP
  publishNotReadyAddresses: true
  ports: [{name: http, port: 80, targetPort: http, protocol: TCP, nodePort: 30080}, {port: 81, targetPort: 8081}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 9
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]
""", "t.yaml")
    (_, s), (_, h) = m.objects
    assert s["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080},
                          {"port": 81, "targetPort": 8081}]
    assert (s["type"], s["clusterIP"], s["sessionAffinity"], s["publishNotReadyAddresses"]) == \
        ("NodePort", "10.96.0.10", "ClientIP", True)
    assert h == {"kind": "HorizontalPodAutoscaler", "name": "web", "namespace": "default", "target": "web",
                 "minReplicas": 2, "maxReplicas": 9, "targetCPUUtilization": 60}


def test_a_host_ip_is_read_as_every_address_and_another_than_0000_is_warned_about():
    # HostPortInfo defaults hostIP to 0.0.0.0, which Konverge takes for every host port.
    m = loads("""apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: i
      ports:
        - {containerPort: 80, hostPort: 8080, hostIP: 0.0.0.0}
        - {containerPort: 81, hostPort: 8081, hostIP: 10.0.0.5}
        - {containerPort: 82, hostIP: 10.0.0.6}
        - {containerPort: 83, hostPort: 0, hostIP: 10.0.0.7}
""", "t.yaml")
    [(_, pod)] = m.objects
    assert pod["containers"][0]["ports"] == [{"containerPort": 80, "hostPort": 8080},
                                             {"containerPort": 81, "hostPort": 8081},
                                             {"containerPort": 82}, {"containerPort": 83, "hostPort": 0}]
    [w] = m.warnings  # an address without a host port is ignored upstream too (HostPortInfo.Add; review RN)
    assert (w.code, str(w.span)) == ("W302", "t.yaml:10:55")
    assert w.message.startswith("`spec.containers[0].ports[1].hostIP: 10.0.0.5` is not modelled: Konverge binds")


def test_unsupported_kind_is_a_warning_with_its_position():
    m = loads("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n---\n"
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n", "t.yaml")
    assert [k for k, _ in m.objects] == ["Pod"]
    (w,) = m.warnings
    assert (w.code, w.severity, str(w.span)) == ("W301", "warning", "t.yaml:7:7")
    assert "ConfigMap" in w.message


def test_unsupported_fields_are_warnings_naming_them_and_status_is_silent():
    m = loads("""apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: i
      env: [{name: A, value: b}]
  priorityClassName: high
status:
  phase: Running
""", "t.yaml")
    assert [(str(w.span), w.message) for w in m.warnings] == [
        ("t.yaml:8:7", "field `spec.containers[0].env` is not supported by Konverge; ignored"),
        ("t.yaml:9:3", "field `spec.priorityClassName` is not supported by Konverge; ignored"),
    ]
    assert "phase" not in m.objects[0][1]


def test_bad_yaml_is_a_diagnostic_with_its_position():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [p\n", "bad.yaml")
    (d,) = e.value.diagnostics
    assert d.code == "E301" and d.span is not None and d.span.file == "bad.yaml" and d.span.line >= 3


def test_yaml_nested_deeper_than_the_reader_goes_is_a_diagnostic_at_its_deepest_point():
    depth = 3000
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: " + "[" * depth + "]" * depth + "\n", "deep.yaml")
    (d,) = e.value.diagnostics
    assert d.code == "E301" and d.message == f"this YAML nests {depth + 2} deep, too deep to read"  # in 2 maps
    assert (d.span.line, d.span.col) == (5, 10 + depth)  # the innermost `[`


def test_merge_keys_bring_in_the_pairs_of_their_anchor_and_the_mappings_own_keys_win():
    (kind, d), = loads("""apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: &base {app: web, tier: back}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels:
        <<: *base
        tier: front
    spec: {containers: [{name: c, image: i}]}
""", "t.yaml").objects
    assert d["labels"] == {"app": "web", "tier": "back"}
    assert d["template"]["labels"] == {"app": "web", "tier": "front"}


def test_a_merge_key_given_no_mapping_is_a_yaml_error_at_its_value():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {<<: 5}}\n", "t.yaml")
    (d,) = e.value.diagnostics
    assert d.code == "E301" and (d.span.line, d.span.col) == (3, 34)
    assert d.message == "invalid YAML: expected a mapping or list of mappings for merging, but found scalar"


def test_a_key_given_twice_in_one_mapping_is_an_error_not_a_value_dropped():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n", "t.yaml")
    (d,) = e.value.diagnostics
    assert (d.code, d.message, d.span.line, d.span.col) == ("E302", "`name` is given twice in this mapping", 5, 3)
    assert d.hint == "the first is at t.yaml:4:3; keep one"


def test_a_manifest_object_keeps_the_position_of_its_document():
    m = loads("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
              "spec: {containers: [{name: c, image: i}]}\n", "t.yaml")
    assert [(kind, obj["name"], span.line, span.col) for kind, obj, span in m.declared] == [
        ("Namespace", "shop", 2, 7), ("Pod", "p", 6, 7)]


def test_wrong_types_and_bad_quantities_are_errors_all_at_once():
    with pytest.raises(KonvergeError) as e:
        loads("""apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {version: 1}}
spec:
  replicas: three
  selector: {matchLabels: {app: web}}
  template: {spec: {containers: [{name: c, image: i, resources: {requests: {cpu: 1Gb}}}]}}
""", "t.yaml")
    got = [(d.code, d.span.line) for d in e.value.diagnostics]
    assert got == [("E302", 3), ("E302", 5), ("E302", 7)]
    assert e.value.diagnostics[0].hint == 'quote it: "1"'


def test_missing_name_and_duplicates_are_errors(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
                 "apiVersion: v1\nkind: Namespace\nmetadata: {labels: {}}\n")
    with pytest.raises(KonvergeError) as e:
        load_manifests([f])
    assert sorted(d.code for d in e.value.diagnostics) == ["E303", "E304"]


POD_WITH = """apiVersion: v1
kind: Pod
metadata: {{name: p, labels: {{app: api}}}}
spec:
  containers: [{{name: c, image: i}}]
{extra}
"""


def test_selector_match_expressions_are_loaded_as_they_are():
    _, pod = one(POD_WITH.format(extra="""  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels: {tier: web}
          matchExpressions: [{key: app, operator: In, values: [api]}]
        topologyKey: kubernetes.io/hostname
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: zone, labelSelector: {matchExpressions: [{key: app, operator: Exists}]}}"""))
    assert pod["affinity"]["podAntiAffinity"] == [
        {"labelSelector": {"tier": "web"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}],
         "topologyKey": "kubernetes.io/hostname"}]
    # Only expressions: the matchLabels are empty, and the selector is not null.
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == {}
    assert pod["topologySpreadConstraints"][0]["matchExpressions"] == [{"key": "app", "operator": "Exists"}]


@pytest.mark.parametrize("expression, loaded", [
    ("{key: app, operator: NotIn, values: [api]}", {"key": "app", "operator": "NotIn", "values": ["api"]}),
    ("{key: app, operator: Exists}", {"key": "app", "operator": "Exists"}),
    ("{key: app, operator: DoesNotExist, values: null}", {"key": "app", "operator": "DoesNotExist", "values": []}),
    ("{key: app, operator: In, values: [a, b]}", {"key": "app", "operator": "In", "values": ["a", "b"]}),
])
def test_every_label_selector_operator_loads_in_affinity_terms_and_spread_constraints(expression, loaded):
    m = loads(POD_WITH.format(extra=f"""  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {{labelSelector: {{matchExpressions: [{expression}]}}, topologyKey: zone}}
  topologySpreadConstraints:
  - {{maxSkew: 1, topologyKey: zone, labelSelector: {{matchExpressions: [{expression}]}}}}"""), "t.yaml")
    pod = m.objects[0][1]
    assert pod["affinity"]["podAffinity"][0]["matchExpressions"] == [loaded]
    assert pod["topologySpreadConstraints"][0]["matchExpressions"] == [loaded]
    assert m.warnings == ()


@pytest.mark.parametrize("expression, at, message", [
    ("{key: app, operator: In}", "{key",
     "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ("{key: app, operator: NotIn, values: []}", "[]",
     "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ("{key: app, operator: Exists, values: [a]}", "[a]",
     "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    ("{key: app, operator: DoesNotExist, values: [a]}", "[a]",
     "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    ("{key: app, operator: Has, values: [a]}", "Has",
     'matchExpressions[0].operator: Invalid value: "Has": not a valid selector operator'),
    ('{key: gen, operator: Gt, values: ["5"]}', "Gt",
     'matchExpressions[0].operator: Invalid value: "Gt": not a valid selector operator'),
])
def test_invalid_selector_requirements_are_refused_with_kubernetes_messages_at_their_position(
        expression, at, message):
    """The diagnostic points at the requirement (values missing), its values or its operator."""
    cases = (
        ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.", f"""  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {{labelSelector: {{matchExpressions: [{expression}]}}, topologyKey: zone}}"""),
        ("spec.topologySpreadConstraints[0].labelSelector.", f"""  topologySpreadConstraints:
  - {{maxSkew: 1, topologyKey: zone, labelSelector: {{matchExpressions: [{expression}]}}}}"""),
    )
    for path, extra in cases:
        text = POD_WITH.format(extra=extra)
        with pytest.raises(KonvergeError) as e:
            loads(text, "t.yaml")
        [d] = e.value.diagnostics
        assert (d.code, d.message) == ("E302", path + message)
        line = text.splitlines()[d.span.line - 1]
        assert expression in line and d.span.col == line.index(expression) + expression.index(at) + 1
    # A workload's selector, and its template's pod spec, are checked the same way.
    with pytest.raises(KonvergeError) as e:
        loads(f"""apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: rs}}
spec:
  selector: {{matchExpressions: [{expression}]}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: c, image: i}}]
      topologySpreadConstraints:
      - {{maxSkew: 1, topologyKey: zone, labelSelector: {{matchExpressions: [{expression}]}}}}
""", "t.yaml")
    assert [(d.message, d.span.line) for d in e.value.diagnostics] == [
        ("spec.selector." + message, 5),
        ("spec.template.spec.topologySpreadConstraints[0].labelSelector." + message, 11)]


def test_terms_without_label_selector_match_no_pod_as_in_kubernetes():
    m = loads(POD_WITH.format(extra="""  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone, labelSelector: null}]
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone}]
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone}]"""), "t.yaml")
    pod = m.objects[0][1]
    # Loaded as they are, with no selector: the rules read that as Kubernetes' null selector.
    assert pod["affinity"]["podAffinity"] == [{"topologyKey": "zone"}]
    assert pod["affinity"]["podAntiAffinity"] == [{"topologyKey": "zone"}]
    assert pod["topologySpreadConstraints"] == [{"maxSkew": 1, "topologyKey": "zone"}]
    assert [w.code for w in m.warnings] == ["W302", "W302", "W302"]
    assert all("matches no pod" in w.message for w in m.warnings)
    assert "can never be scheduled" in m.warnings[0].message
    assert "constrains nothing" in m.warnings[1].message


def test_workload_selector_keeps_its_match_expressions():
    m = loads("""apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: Exists}, {key: track, operator: NotIn, values: [canary]}]
  template: {metadata: {labels: {app: web, tier: x}}, spec: {containers: [{name: c, image: i}]}}
""", "t.yaml")
    d = m.objects[0][1]
    assert d["selector"] == {"app": "web"}
    assert d["matchExpressions"] == [{"key": "tier", "operator": "Exists"},
                                     {"key": "track", "operator": "NotIn", "values": ["canary"]}]
    assert m.warnings == ()


def test_an_empty_workload_selector_is_refused_as_in_kubernetes():
    for kind in ("Deployment", "ReplicaSet"):
        with pytest.raises(KonvergeError) as e:
            loads(f"""apiVersion: apps/v1
kind: {kind}
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{}}}}
  template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: c, image: i}}]}}}}
""", "t.yaml")
        [d] = e.value.diagnostics
        assert d.code == "E302" and str(d.span).startswith("t.yaml:5:13")
        assert d.message.endswith("}: empty selector is invalid for deployment")


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"])
@pytest.mark.parametrize("selector", ["", "  selector: null\n"])
def test_an_apps_v1_workload_without_a_selector_is_refused_as_in_kubernetes(kind, selector):
    # apps/v1 ValidateDeploymentSpec (and the ReplicaSet's, DaemonSet's, StatefulSet's): a nil
    # selector is `field.Required(fldPath.Child("selector"), "")`; only extensions/v1beta1 defaulted it.
    with pytest.raises(KonvergeError) as e:
        loads(f"""apiVersion: apps/v1
kind: {kind}
metadata: {{name: web}}
spec:
{selector}  template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: c, image: i}}]}}}}
""", "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, str(d.span), d.message) == ("E302", "t.yaml:4:1", "spec.selector: Required value")
    assert d.hint.startswith("apps/v1 requires a selector")


def test_a_job_without_a_selector_is_read_as_its_generated_one_needs():
    [(_, job)] = loads("""apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: c, image: i}]}}
""", "t.yaml").objects
    assert "selector" not in job  # generateSelector (job.konv) makes it


def test_anti_affinity_with_match_expressions_schedules_as_kubernetes_does(capsys):
    # Two nodes already run pods labelled app=other; the api pod avoids app=api only, so it runs.
    from engine.cli import main

    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    (d / "m.yaml").write_text("""apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {nodeName: n1, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, labels: {app: api}}
spec:
  containers: [{name: c, image: x}]
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [api]}]}
        topologyKey: kubernetes.io/hostname
""")
    assert main(["get", "pod", "api", str(d), "-o", "json"]) == 0
    import json

    out, err = capsys.readouterr()
    assert json.loads(out)["phase"] == "Running" and err == ""


MATCH_EXPRESSIONS_CLUSTER = """apiVersion: v1
kind: Node
metadata: {name: h1, labels: {kubernetes.io/hostname: h1}}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Node
metadata: {name: h2, labels: {kubernetes.io/hostname: h2}}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Node
metadata: {name: h3, labels: {kubernetes.io/hostname: h3}}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Node
metadata: {name: h4, labels: {kubernetes.io/hostname: h4}}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db, tier: backend}}
spec: {nodeName: h1, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cache, labels: {app: cache}}
spec: {nodeName: h2, containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: track, operator: NotIn, values: [canary]}]
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: x}]
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchExpressions: [{key: tier, operator: Exists}]}
            topologyKey: kubernetes.io/hostname
          - labelSelector: {matchExpressions: [{key: app, operator: In, values: [web, cache]}]}
            topologyKey: kubernetes.io/hostname
"""


def test_manifest_with_match_expressions_loads_and_schedules_as_kubernetes_does(tmp_path, capsys):
    # web avoids hosts with any `tier` label (h1: db), and hosts running web or cache (h2, then
    # each other): two replicas land on h3 and h4, the third has nowhere to go.
    import json

    from engine.cli import main

    (tmp_path / "cluster.yaml").write_text(MATCH_EXPRESSIONS_CLUSTER)
    assert main(["reconcile", str(tmp_path), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pods = {o["name"]: o for o in out["objects"] if o["kind"] == "Pod"}
    web = sorted((p for p in pods.values() if p["labels"].get("app") == "web"), key=lambda p: (p["node"] is None, p["node"] or ""))
    assert [p["node"] for p in web] == ["h3", "h4", None]
    assert web[2]["message"] == "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."
    [rs] = [o for o in out["objects"] if o["kind"] == "ReplicaSet"]
    assert rs["matchExpressions"] == [{"key": "track", "operator": "NotIn", "values": ["canary"]}]
    assert rs["selector"] == {"app": "web", "pod-template-hash": rs["labels"]["pod-template-hash"]}


def test_pod_naming_a_missing_service_account_in_a_manifest_is_refused(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\n"
                                     "spec: {serviceAccountName: bot, containers: [{name: c, image: i}]}\n")
    assert main(["reconcile", str(tmp_path / "p.yaml")]) == 1
    assert ('pods "p" is forbidden: error looking up service account default/bot: serviceaccount "bot" not found'
            in capsys.readouterr().err)
    # Declared beside it, in a later document, the account is created first.
    (tmp_path / "p.yaml").write_text((tmp_path / "p.yaml").read_text()
                                     + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n")
    assert main(["reconcile", str(tmp_path / "p.yaml")]) == 0


def test_annotations_that_are_not_modelled_are_a_warning():
    m = loads("""apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    controller.kubernetes.io/pod-deletion-cost: "3"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    prometheus.io/scrape: "true"
spec: {containers: [{name: c, image: i}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, annotations: {team: a}}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {controller.kubernetes.io/pod-deletion-cost: "1"}}
    spec: {containers: [{name: c, image: i}]}
""", "t.yaml")
    assert m.objects[0][1]["deletionCost"] == 3
    assert [(str(w.span), w.message) for w in m.warnings] == [
        ("t.yaml:6:5", "annotation `prometheus.io/scrape` of `metadata.annotations` is not modelled (Konverge "
                       "reads only `controller.kubernetes.io/pod-deletion-cost`); ignored"),
        ("t.yaml:13:34", "annotation `team` of `metadata.annotations` is not modelled; ignored"),
        ("t.yaml:17:45", "annotation `controller.kubernetes.io/pod-deletion-cost` of "
                         "`spec.template.metadata.annotations` is not modelled; ignored"),
    ]


def test_template_scheduler_and_service_account_are_carried_to_the_pods():
    m = loads("""apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      schedulerName: my-scheduler
      serviceAccount: bot
      containers: [{name: c, image: i}]
""", "t.yaml")
    # serviceAccount is the deprecated alias of serviceAccountName.
    assert m.warnings == ()
    template = m.objects[0][1]["template"]
    assert template["schedulerName"] == "my-scheduler" and template["serviceAccountName"] == "bot"


def test_node_internal_ip_is_read_from_status_addresses():
    _, node = one("""apiVersion: v1
kind: Node
metadata: {name: cp, labels: {node-role.kubernetes.io/control-plane: ""}}
status:
  allocatable: {cpu: "4", memory: 8Gi}
  addresses: [{type: Hostname, address: cp}, {type: InternalIP, address: 10.0.0.10}]
""")
    assert node["internalIP"] == "10.0.0.10" and node["controlPlane"] is True


def test_namespaces_then_service_accounts_come_first_whatever_the_file_order(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
                                     "spec: {serviceAccountName: bot, containers: [{name: c, image: i}]}\n")
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: shop}\n---\n"
                                     "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    m = load_manifests([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [k for k, _ in m.objects] == ["Namespace", "ServiceAccount", "Pod"]


def test_containers_null_is_refused_like_spec_null(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: null}\n")
    assert main(["reconcile", str(tmp_path / "p.yaml")]) == 1
    assert 'Pod "p" is invalid: spec.containers: Required value' in capsys.readouterr().err


def test_the_core_never_imports_the_kubernetes_edge():
    from pathlib import Path

    engine = Path(__file__).resolve().parent.parent / "engine"
    core = [engine / f"{m}.py" for m in ("parse", "check", "api", "fixpoint", "eval", "types", "values")]
    core += sorted((engine / "store").glob("*.py"))
    for f in core:
        text = f.read_text(encoding="utf-8")
        assert "from .kube" not in text and "engine.kube" not in text and "from ..kube" not in text, f


def test_quantities_round_trip_through_their_canonical_text():
    from hypothesis import given, strategies as st

    from engine.values import format_quantity

    @given(st.integers(min_value=0, max_value=10**15), st.sampled_from([1, 1000]))
    def check(n, denominator):
        q = Fraction(n, denominator)
        assert parse_quantity(format_quantity(q)) == q

    check()


def test_a_quoted_number_where_an_integer_belongs_says_so_and_how_to_fix_it():
    with pytest.raises(KonvergeError) as e:
        loads('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: "3"\n'
              '  selector: {matchLabels: {app: web}}\n  template: {spec: {containers: [{name: c, image: i}]}}\n', "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E302", 5, 13)
    assert d.message == '`spec.replicas` must be an integer, not the string "3"'
    assert d.hint == "remove the quotes: 3"


def test_a_list_whose_items_are_not_a_list_is_an_error_not_nothing():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: List\nitems: {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n", "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.message) == ("E302", 3, "`items` of a List must be a list of objects")


def test_json_manifests_are_read_as_kubectl_reads_them(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "ns.json").write_text('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "j"}}\n')
    (tmp_path / "pod.json").write_text(
        '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "j"},\n'
        '  "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "0.5"}}}]}}]}\n')
    node = tmp_path / "node.yaml"
    node.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {allocatable: {cpu: '1', memory: 1Gi}}\n")
    assert main(["get", "pods", "-n", "j", "-o", "json", str(tmp_path)]) == 0
    pod = __import__("json").loads(capsys.readouterr().out)["items"][0]
    assert (pod["name"], pod["containers"][0]["cpu"], pod["node"]) == ("p", 500, "n")


def test_a_request_above_its_limit_is_refused_with_kubernetes_message_at_the_request():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n"
              "    resources:\n      requests: {cpu: '2', memory: 1Gi}\n      limits: {cpu: 1500m, memory: 1Gi}\n",
              "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E302", 9, 23)
    assert d.message == ('`spec.containers[0].resources.requests`: Invalid value: "2": '
                         'must be less than or equal to cpu limit of 1500m')
    # a request equal to its limit, or a limit alone, is what Kubernetes takes
    _, pod = one("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n"
                 "    resources:\n      requests: {memory: 1Gi}\n      limits: {cpu: 0.5, memory: 1Gi}\n")
    assert (pod["containers"][0]["cpu"], pod["containers"][0]["memory"]) == (Fraction(1, 2), 2**30)


@pytest.mark.parametrize("file, text", [
    ("t.json", '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"mood": "x\\ud83d\\ude00"}}}'),
    ("t.yaml", 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {mood: "x\\ud83d\\ude00"}}\n'),
])
def test_an_escaped_character_beyond_the_bmp_is_read_as_that_character(file, text):
    [(_, ns, _)] = loads(text, file).declared
    assert ns["labels"] == {"mood": "x\U0001F600"}
    assert ns["labels"]["mood"].encode("utf-8")  # printable: no lone UTF-16 halves left


def test_an_escaped_character_beyond_the_bmp_prints_in_every_output(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "x.json").write_text('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},'
                                     '"spec":{"containers":[{"name":"c","image":"i\\ud83d\\ude00"}]}}')
    for output in ("wide", "yaml", "json"):
        assert main(["get", "pods", "-o", output, str(tmp_path / "x.json")]) == 0
    assert "i\U0001F600" in capsys.readouterr().out


@pytest.mark.parametrize("file, text, at", [
    ("t.json", '{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "a", "labels": {"k": "\\ude00"}}}', (2, 44)),
    ("t.yaml", 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {k: "x\\ud83d"}}\n', (3, 33)),
])
def test_half_a_surrogate_pair_is_an_error_at_its_string(file, text, at):
    with pytest.raises(KonvergeError) as e:
        loads(text, file)
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E302", *at)
    assert "half of a UTF-16 surrogate pair" in d.message
    str(e.value).encode("utf-8")  # the error itself prints


def test_tab_indented_json_is_read_as_kubectl_reads_it_with_its_positions():
    text = ('{\n\t"apiVersion": "apps/v1",\n\t"kind": "Deployment",\n\t"metadata": {\n\t\t"name": "web"\n\t},\n\t"spec": {\n\t\t"replicas": "3",\n\t\t"selector": {"matchLabels": {"app": "web"}},\n'
            '\t\t"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}\n\t}\n}\n')
    with pytest.raises(KonvergeError) as e:
        loads(text, "t.json")
    [d] = e.value.diagnostics  # read as JSON; the one error is the quoted number, where it is
    assert (d.code, d.span.line, d.span.col, d.hint) == ("E302", 8, 15, "remove the quotes: 3")
    [(kind, _, span)] = loads(text.replace('"3"', "3"), "t.json").declared
    assert (kind, span.line, span.col) == ("Deployment", 3, 10)


@pytest.mark.parametrize("text, at", [
    ("{'kind': 'Namespace', 'metadata': {'name': 'a'}}", (1, 2)),  # YAML takes single quotes
    ('{"kind": "Namespace",\n "metadata": {"name": "a"} "x"}', (2, 28)),
    ('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}\n{"kind": ', (2, 10)),  # the second object of a stream
])
def test_invalid_json_is_an_error_at_the_position_json_gives(text, at):
    with pytest.raises(KonvergeError) as e:
        loads(text, "t.json")
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E301", *at)
    assert d.message.startswith("invalid JSON: ")


def test_a_trailing_comma_that_yaml_would_take_is_invalid_json_as_kubectl_says():
    with pytest.raises(KonvergeError) as e:
        loads('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a",}}', "t.json")
    [d] = e.value.diagnostics  # json's wording and position differ between Python versions
    assert (d.code, d.span.line) == ("E301", 1) and d.message.startswith("invalid JSON: ")
    [(_, ns, _)] = loads('{apiVersion: v1, kind: Namespace, metadata: {name: a,}}', "t.yaml").declared  # YAML flow style
    assert ns["name"] == "a"


def test_a_json_stream_is_read_object_by_object_as_kubectl_reads_it():
    text = ('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}\n'
            '  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}} {"apiVersion": "v1", "kind": "Namespace",\n'
            '"metadata": {"name": "c"}}\n\n')
    got = [(o["name"], span.line, span.col) for _, o, span in loads(text, "t.json").declared]
    assert got == [("a", 1, 30), ("b", 2, 32), ("c", 2, 101)]
    with pytest.raises(KonvergeError) as e:  # positions hold within a later object too
        loads(text.replace('"c"', "3"), "t.json")
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col, d.message) == ("E302", 3, 22, "`metadata.name` must be a string, but "
                                                                           "`3` reads as an integer")
    assert loads(" \n", "t.json").declared == ()  # an empty file, as an empty YAML one


@pytest.mark.parametrize("value, hint", [
    ('"3"', "remove the quotes: 3"),
    ("'+3'", "remove the quotes: 3"),
    ("08", None),  # not quoted: a string only because YAML 1.1 reads no octal 08
    ('"010"', None),  # unquoted, YAML 1.1 would read it as octal 8
    ('"٣"', None),  # an Arabic-Indic digit is no integer to Kubernetes
    ('"3.0"', None),
])
def test_only_a_quoted_canonical_integer_is_told_to_drop_its_quotes(value, hint):
    with pytest.raises(KonvergeError) as e:
        loads(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {value}\n"
              "  selector: {matchLabels: {app: web}}\n  template: {spec: {containers: [{name: c, image: i}]}}\n", "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, d.span.line, d.hint) == ("E302", 5, hint)
    assert d.message.startswith("`spec.replicas` must be an integer")


@pytest.mark.parametrize("text, shown", [
    ("2.0", "2"), ("1.5", "1500m"), ("0.1", "100m"), ("2000", "2k"), ("1500", "1500"), ("1000M", "1G"),
    ("1e3", "1e3"), ("1.5e3", "1500"), ("1.5Gi", "1536Mi"), ("1024Mi", "1Gi"), ("0.5Gi", "512Mi"),
    ("1.5Ki", "1536"), ("512", "512"), ("0.0000000001", "1n"), ("0", "0"),
])
def test_a_quantity_prints_as_kubernetes_quantity_string(text, shown):
    from engine.kube.manifests import quantity_text

    assert quantity_text(text) == shown


def test_a_request_above_its_limit_names_both_in_kubernetes_canonical_text():
    with pytest.raises(KonvergeError) as e:
        loads("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n"
              "    resources:\n      requests: {cpu: 2.0, memory: 1.5Gi}\n      limits: {cpu: 1.5, memory: 1024Mi}\n",
              "t.yaml")
    assert [(d.span.col, d.message.split("Invalid value: ")[1]) for d in e.value.diagnostics] == [
        (23, '"2": must be less than or equal to cpu limit of 1500m'),
        (36, '"1536Mi": must be less than or equal to memory limit of 1Gi')]


def test_konverges_own_json_output_read_as_a_manifest_says_what_it_is():
    with pytest.raises(KonvergeError) as e:
        loads('{"converged": true, "objects": []}', "out.json")
    [d] = e.value.diagnostics
    assert (d.code, d.message) == ("E303", "this document has no `kind`")
    assert "Konverge's own output" in d.hint and "outside the spec directory" in d.hint
    with pytest.raises(KonvergeError) as e:
        loads('{"objects": []}', "other.json")
    assert e.value.diagnostics[0].hint is None


WEB = ("metadata: {name: web}\nspec: {selector: {matchLabels: {app: web}}, "
       "template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: i}]}}}\n")


@pytest.mark.parametrize("kind, version", [
    ("Namespace", "v1"), ("Node", "v1"), ("Pod", "v1"), ("Service", "v1"), ("ServiceAccount", "v1"),
    ("Deployment", "apps/v1"), ("ReplicaSet", "apps/v1"),
    ("HorizontalPodAutoscaler", "autoscaling/v1"), ("HorizontalPodAutoscaler", "autoscaling/v2"),
])
def test_each_kind_is_read_in_the_group_and_version_kubernetes_serves_it_in(kind, version):
    body = {"Node": "metadata: {name: n}\nstatus: {allocatable: {cpu: '1', memory: 1Gi}}\n",
            "HorizontalPodAutoscaler": "metadata: {name: h}\nspec: {scaleTargetRef: {name: web}, maxReplicas: 3}\n",
            "Deployment": WEB, "ReplicaSet": WEB}.get(kind, "metadata: {name: x}\n")
    m = loads(f"apiVersion: {version}\nkind: {kind}\n{body}", "t.yaml")
    assert [k for k, _ in m.objects] == [kind] and m.warnings == ()


@pytest.mark.parametrize("version, kind, served", [
    ("v1", "Deployment", "apps/v1"), ("apps/v1", "Pod", "v1"), ("extensions/v1beta1", "ReplicaSet", "apps/v1"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2 or autoscaling/v1"),
])
def test_an_api_version_that_does_not_serve_the_kind_is_refused_at_it_as_kubectl_does(version, kind, served):
    with pytest.raises(KonvergeError) as e:
        loads(f"kind: {kind}\napiVersion: {version}\n{WEB}", "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, str(d.span), d.span.end_col) == ("E305", "t.yaml:2:13", 13 + len(version))
    assert d.message == f'no matches for kind "{kind}" in version "{version}"'
    assert d.hint.startswith(f"{kind} is served as {served}: write `apiVersion: {served.split()[0]}`")
    assert d.hint.endswith("(kubectl adds: ensure CRDs are installed first)")


@pytest.mark.parametrize("text, at", [
    ("kind: Pod\nmetadata: {name: p}\n", "t.yaml:1:7"),  # kubectl: apiVersion not set
    ("apiVersion:\nkind: Pod\nmetadata: {name: p}\n", "t.yaml:1:12"),  # null: not set either
    ("apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, metadata: {name: p}}\n", "t.yaml:4:10"),  # an item of a List
    ("kind: ConfigMap\nmetadata: {name: c}\n", "t.yaml:1:7"),  # any kind, read or not
    ('apiVersion: ""\nkind: Pod\nmetadata: {name: p}\n', "t.yaml:1:13"),  # empty: not set either
    ("apiVersion: ''\nkind: ConfigMap\nmetadata: {name: c}\n", "t.yaml:1:13"),  # also for a kind not read
])
def test_a_document_without_api_version_is_refused_as_kubectl_does(text, at):
    with pytest.raises(KonvergeError) as e:
        loads(text, "t.yaml")
    [d] = e.value.diagnostics
    assert (d.code, str(d.span)) == ("E303", at)
    assert d.message.startswith("apiVersion not set: this ")
    assert d.hint.endswith("kubectl refuses an object without it")


def test_a_kind_konverge_does_not_read_keeps_its_warning_whatever_its_group():
    m = loads("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: db}\n---\n"
              "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\n", "t.yaml")
    assert m.objects == () and [(w.code, w.span.line) for w in m.warnings] == [("W301", 2), ("W301", 6)]


def test_daemonset_reads_selector_template_and_update_strategy_and_warns_about_the_rest():
    m = loads("""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: "20%", maxSurge: 1}}
  minReadySeconds: 10
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: i, resources: {requests: {cpu: 10m}}}]
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchFields: [{key: metadata.name, operator: NotIn, values: [n9]}]}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ondelete}
spec:
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: x}}
  template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c, image: i}]}}
""", "t.yaml")
    (_, ds), (_, other) = m.objects
    assert ds == {"kind": "DaemonSet", "name": "agent", "namespace": "kube-system", "selector": {"app": "agent"},
                  "updateStrategy": "RollingUpdate", "maxUnavailable": "20%",
                  "template": {"labels": {"app": "agent"},
                               "containers": [{"name": "c", "image": "i", "cpu": Fraction(1, 100)}],
                               "affinity": {"requiredNodeTerms": [{"matchFields": [
                                   {"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]}}}
    assert other["updateStrategy"] == "OnDelete" and other["selector"] == {"app": "x"}
    assert [(str(w.span), w.message) for w in m.warnings] == [
        ("t.yaml:7:90", "`spec.updateStrategy.rollingUpdate.maxSurge: 1` is not modelled; Konverge rolls "
                        "DaemonSets out with maxSurge 0"),
        ("t.yaml:8:3", "field `spec.minReadySeconds` is not supported by Konverge; ignored"),
    ]


def test_a_daemonset_that_surges_without_unavailable_pods_is_imported_with_max_unavailable_1():
    # maxSurge 1, maxUnavailable 0 is valid upstream (update.go's surge path); Konverge has no surge,
    # so the rollout may take one node's pod away at a time, and the warning points at maxSurge.
    m = loads("""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template: {metadata: {labels: {app: agent}}, spec: {containers: [{name: c, image: i}]}}
  selector: {matchLabels: {app: agent}}
""", "t.yaml")
    [(_, ds)] = m.objects
    assert ds["maxUnavailable"] == 1 and ds["updateStrategy"] == "RollingUpdate"
    [w] = m.warnings
    assert (w.code, str(w.span)) == ("W302", "t.yaml:8:31")
    assert w.message.startswith("`spec.updateStrategy.rollingUpdate.maxSurge: 1` is not modelled; ")
    assert "takes maxUnavailable 1 in place of 0" in w.message


HPA_OF = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: db}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: {kind}, name: db}}
  maxReplicas: 5
"""


@pytest.mark.parametrize("kind, target", [
    ("Deployment", "db"), ("StatefulSet", "StatefulSet/db"), ("ReplicaSet", "ReplicaSet/db")])
def test_an_hpa_targets_a_deployment_statefulset_or_replicaset(kind, target):
    # The kinds whose scale the HPA writes: a Deployment by its name alone, as a spec names it
    # (and as before, so its outputs are unchanged), the others as KIND/NAME.
    m = loads(HPA_OF.format(kind=kind), "h.yaml")
    [(_, h)] = m.objects
    assert h["target"] == target and m.warnings == ()


def test_an_hpa_of_another_kind_is_a_warning_and_scales_nothing():
    m = loads(HPA_OF.format(kind="ReplicationController"), "h.yaml")
    [(_, h)] = m.objects
    assert h["target"] == "ReplicationController/db"
    [w] = m.warnings
    assert (w.code, str(w.span)) == ("W302", "h.yaml:5:19")
    assert "not ReplicationController: this autoscaler scales nothing" in w.message


def test_an_hpa_of_a_deployment_named_with_a_slash_is_refused_not_read_as_another_kind(tmp_path, capsys):
    # ValidateCrossVersionObjectReference refuses the name ("may not contain '/'"); read as a bare
    # name, `a/b` would have been the kind `a`'s object `b`, and the manifest accepted
    from engine.cli import main

    f = tmp_path / "h.yaml"
    f.write_text(HPA_OF.replace("name: db}}\n  max", "name: \"a/b\"}}\n  max").format(kind="Deployment"))
    [(_, h)] = loads(f.read_text(), "h.yaml").objects
    assert h["target"] == "Deployment/a/b"
    assert main(["get", "hpa", str(f)]) == 1
    assert "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'" in capsys.readouterr().err
