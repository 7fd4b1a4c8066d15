"""Init containers and sidecars (restartPolicy Always init containers, KEP-753): the pod's
effective request (rules/scheduler.konv, after k8s.io/component-helpers/resource/helpers.go
PodRequests and its helpers_test.go cases), the kubelet's start, admission, manifest import and
kubectl's READY and STATUS."""

from __future__ import annotations

import pytest

from engine.errors import KonvergeError
from engine.kube.manifests import loads
from engine.kube.tables import pod_ready, pod_status
from tests.kube import node, run


def pod(name: str, app: str, inits: str = "", extra: str = "") -> str:
    """A pod with app containers `app` and init containers `inits`, each `cpu[/sidecar]` items."""
    def containers(kind: str, specs: str) -> str:
        out = []
        for i, item in enumerate(specs.split()):
            cpu, _, sidecar = item.partition("/")
            policy = '  restartPolicy: "Always"' if sidecar else ""
            out.append(f'  {kind} {kind[0]}{i} {{ image: "x"  cpu: {cpu}{policy} }}\n')
        return "".join(out)
    return f"pod {name} {{ {extra}\n{containers('initContainer', inits)}{containers('container', app)}}}\n"


def message(inits: str, app: str = "100m", cpu: str = "1") -> str:
    """The scheduler's verdict on a pod alone against a node of `cpu`: its message, or "" if bound."""
    p = run(node("n1", cpu=cpu) + pod("p", app, inits)).get("Pod", "p")
    return "" if p["node"] else p["message"]


INSUFFICIENT = "0/1 nodes are available: 1 Insufficient cpu."


# helpers_test.go TestPodResourceRequests, as requests against a 1-cpu node.
@pytest.mark.parametrize("inits, app, fits", [
    # "init container requests are larger than regular containers": the init container wins.
    ("1500m", "100m 200m", False),
    ("900m", "100m 200m", True),
    # Init containers run one at a time: their requests do not add up.
    ("900m 900m", "100m", True),
    # "restartable init container": a sidecar adds to the app containers' sum.
    ("600m/s", "500m", False),
    ("400m/s", "500m", True),
    # A sidecar declared before an init container runs beside it: their sum is that step's.
    ("300m/s 800m", "100m", False),
    ("300m/s 700m", "100m", True),
    # A sidecar declared after it does not: the init container's step is its own request.
    ("800m 300m/s", "100m", True),
    # Several sidecars before it add up for that step.
    ("200m/s 200m/s 700m", "100m", False),
])
def test_the_pod_request_is_the_larger_of_the_running_sum_and_the_largest_init_step(inits, app, fits):
    assert message(inits, app) == ("" if fits else INSUFFICIENT)


def test_the_scheduler_refuses_a_node_where_only_the_init_container_does_not_fit():
    # The app container alone (200m) fits the small node; its 1500m init container does not.
    c = run(node("small", cpu="1") + node("busy", cpu="4") + pod("filler", "3500m", extra='node: "busy"')
            + pod("p", "200m", "1500m"))
    p = c.get("Pod", "p")
    assert p["node"] is None
    assert p["message"] == "0/2 nodes are available: 2 Insufficient cpu."


def test_the_init_request_holds_the_node_for_the_pods_after_it():
    # Kubernetes counts the effective request for as long as the pod runs (NodeInfo.Requested):
    # a 900m init container leaves 100m of a 1-cpu node, too little for a 200m pod.
    c = run(node("n1", cpu="1") + pod("a", "100m", "900m") + pod("b", "200m"))
    assert c.get("Pod", "a")["node"] == "n1" and c.get("Pod", "b")["node"] is None


def test_the_kubelet_rejects_with_out_of_cpu_by_the_same_request():
    # Pinned pods skip the scheduler; the kubelet's admission (GeneralPredicates) counts the init
    # container's step as the scheduler does, in its InsufficientResourceError message.
    c = run(node("n1", cpu="1") + pod("a", "100m", "600m", extra='node: "n1"')
            + pod("b", "100m", "100m/s 500m", extra='node: "n1"'))
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running"
    assert (b["phase"], b["reason"]) == ("Failed", "OutOfcpu")
    assert b["message"] == ("Pod was rejected: Node didn't have enough resource: cpu, requested: 600, "
                            "used: 600, capacity: 1000")


def test_starting_a_pod_completes_its_init_containers_and_starts_its_sidecars():
    c = run(node("n1") + pod("p", "100m", "100m 100m/s"))
    p = c.get("Pod", "p")
    assert (p["phase"], p["ready"]) == ("Running", True)
    init, sidecar = p["initContainers"]
    assert (init["state"], init["exitCode"]) == ("Terminated", 0)
    assert sidecar["state"] == "Running" and p["containers"][0]["state"] == "Running"
    assert pod_ready(p) == (2, 2) and pod_status(p) == "Running"


def test_a_pod_ended_by_its_app_containers_stops_its_sidecars():
    # KEP-753: once the main containers have exited, the kubelet terminates the sidecars.
    c = run(node("n1") + 'pod job { restartPolicy: "Never"\n'
                          '  initContainer proxy { image: "envoy"  restartPolicy: "Always" }\n'
                          '  container main { image: "x"  crashing: true } }\n')
    job = c.get("Pod", "job")
    assert job["phase"] == "Failed"
    assert [(x["state"], x["exitCode"]) for x in job["initContainers"]] == [("Terminated", 0)]
    assert pod_ready(job) == (0, 2)


def test_a_deployments_pods_carry_its_init_containers_and_a_template_without_keeps_its_hash():
    body = ('deployment web { template { labels { app: "web" } %s container c { image: "x" } } }\n')
    with_init = run(node("n1") + body % 'initContainer i { image: "x"  restartPolicy: "Always" }')
    without = run(node("n1") + body % "")
    [p] = with_init.pods("web")
    assert [(c["name"], c["restartPolicy"]) for c in p["initContainers"]] == [("i", "Always")]
    [q] = without.pods("web")
    # Init containers are part of the template's hash; a template without any keeps the hash it
    # had before they were modelled (the goldens' pod names pin that).
    assert q["initContainers"] == [] and p["owner"]["name"] != q["owner"]["name"]
    # An app container has no restartPolicy (InitContainer is a record of its own).
    assert "restartPolicy" not in q["containers"][0] and "restartPolicy" not in p["containers"][0]


def test_restart_policy_is_an_init_containers_field_alone():
    # validateContainers: "may not be set for non-init containers". A spec is refused by the
    # checker (an app container has no such field), a manifest with Kubernetes' message.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + 'pod p { container c { image: "x"  restartPolicy: "Always" } }\n')
    assert "`Container` has no field `restartPolicy`" in e.value.diagnostics[0].message
    with pytest.raises(KonvergeError) as e:
        loads(MANIFEST.replace("- {name: app, image: app:1}", "- {name: app, image: app:1, restartPolicy: Always}"),
              "t.yaml")
    assert [d.message for d in e.value.diagnostics] == [
        "`spec.containers[0].restartPolicy`: Forbidden: may not be set for non-init containers"]


def test_kubectl_counts_sidecars_in_ready_and_shows_init_progress_while_pending():
    # printPod: a sidecar counts among the containers; a pod its kubelet holds before its init
    # containers have run is Init:0/N; an unbound pod is just Pending.
    waiting = {"phase": "Pending", "node": "n1", "containers": [{"state": "Waiting"}],
               "initContainers": [{"state": "Waiting"}, {"state": "Waiting", "restartPolicy": "Always"}]}
    assert pod_status(waiting) == "Init:0/2" and pod_ready(waiting) == (0, 2)
    assert pod_status({**waiting, "node": None}) == "Pending"
    halfway = {**waiting, "initContainers": [{"state": "Terminated", "exitCode": 0}, {"state": "Waiting"}]}
    assert pod_status(halfway) == "Init:1/2"


@pytest.mark.parametrize("body, refusal", [
    ('initContainer c { image: "x" } container c { image: "x" }',
     'spec.initContainers[0].name: Duplicate value: "c"'),
    # (The language refuses an item given twice in one list: a list literal is needed to say it.)
    ('initContainers: [{name: "i", image: "x"}, {name: "i", image: "x"}] container c { image: "x" }',
     'spec.initContainers[1].name: Duplicate value: "i"'),
    ('containers: [{name: "c", image: "x"}, {name: "c", image: "x"}]',
     'spec.containers[1].name: Duplicate value: "c"'),
    ('initContainer i { image: "x"  restartPolicy: "OnFailure" } container c { image: "x" }',
     'spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'),
    ('initContainer i { image: "x"  cpu: -1 } container c { image: "x" }',
     'spec.initContainers[0].resources.requests[cpu]: Invalid value: "-1000m": must be greater than or equal to 0'),
    ('initContainer i { image: "x"  port p { containerPort: 70000 } } container c { image: "x" }',
     'spec.initContainers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive'),
])
def test_admission_judges_init_containers_as_kubernetes_does(body, refusal):
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + f"pod p {{ {body} }}\n")
    [d] = e.value.diagnostics
    assert d.message == f'Pod "p" is invalid: {refusal}'


def test_a_template_is_judged_with_its_path():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + 'deployment d { template { labels { a: "d" } '
                         'initContainer c { image: "x" } container c { image: "x" } } }\n')
    [d] = e.value.diagnostics
    assert d.message == 'Deployment "d" is invalid: spec.template.spec.initContainers[0].name: Duplicate value: "c"'


def test_a_sidecars_port_clashes_with_an_app_containers_and_an_init_containers_does_not():
    # A sidecar shares the pod's network with the app containers while they run; an init
    # container proper has exited before they start.
    def refused(policy: str) -> bool:
        try:
            run(node("n1") + f'pod p {{ initContainer i {{ image: "x"  {policy} port a {{ containerPort: 80 }} }}'
                             f' container c {{ image: "x"  port b {{ containerPort: 80 }} }} }}\n')
        except KonvergeError as e:
            return "duplicate containerPort/protocol" in e.diagnostics[0].message
        return False
    assert refused('restartPolicy: "Always"') and not refused("")


MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: migrate
    image: migrate:1
    resources: {requests: {cpu: 500m, memory: 1Gi}}
  - name: proxy
    image: envoy:1
    restartPolicy: Always
    ports: [{name: admin, containerPort: 9901}]
    resources: {limits: {cpu: 100m}}
  containers:
  - {name: app, image: app:1}
"""


def test_manifest_init_containers_are_read_as_containers_are():
    m = loads(MANIFEST, "t.yaml")
    assert m.warnings == ()
    [(kind, p)] = m.objects
    migrate, proxy = p["initContainers"]
    assert (migrate["name"], migrate["cpu"], migrate["memory"]) == ("migrate", pytest.approx(0.5), 2**30)
    assert proxy["restartPolicy"] == "Always" and proxy["cpu"] == pytest.approx(0.1)  # the limit as request
    assert proxy["ports"] == [{"name": "admin", "containerPort": 9901}]


def test_a_manifest_init_containers_errors_and_warnings_name_its_field_path():
    text = MANIFEST.replace("resources: {requests: {cpu: 500m, memory: 1Gi}}",
                            "resources: {requests: {cpu: 2}, limits: {cpu: 1}}\n    tty: true")
    with pytest.raises(KonvergeError) as e:
        loads(text, "t.yaml")
    got = [d.message for d in e.value.diagnostics]
    assert any("`spec.initContainers[0].resources.requests`: Invalid value" in m for m in got), got
    assert any("`spec.initContainers[0].tty`" in m for m in got), got


def test_the_hpa_measures_utilisation_against_the_app_containers_and_sidecars_requests():
    # calculatePodRequests: the app containers' and the sidecars' requests (3 × (400m + 100m)),
    # not the 900m init container's: 1350m used is 90% of 1500m, against a 60% target →
    # ceil(3 × 90/60) = 5 replicas.
    c = run(node("n1", cpu="16", memory="32Gi")
            + 'deployment api { replicas: 3  template { labels { app: "api" }\n'
              '  initContainer migrate { image: "x"  cpu: 900m }\n'
              '  initContainer proxy { image: "x"  cpu: 100m  restartPolicy: "Always" }\n'
              '  container api { image: "x"  cpu: 400m } } }\n'
            + 'horizontalpodautoscaler api { target: "api"  maxReplicas: 10  targetCPUUtilization: 60 }\n'
            + 'scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1350m }\n')
    assert c.get("Deployment", "api")["replicas"] == 5
    assert c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] == 54
