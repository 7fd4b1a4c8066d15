"""Namespaces, service accounts, garbage collection and pod GC (rules/controllers.konv)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import cluster_model as model
from tests.kube import deployment, node, run

# Half the profile's examples: each is a whole reconcile through a scenario (CI: 25, ~10 s).
HALF = max(10, settings.default.max_examples // 2)

SHOP = (node("n1") + "namespace shop {}\n" + deployment("web", replicas=2, namespace="shop")
        + 'service web in shop { selector { app: "web" }  port http { port: 80  targetPort: 80 } }\n')


def test_every_active_namespace_has_a_default_service_account():
    c = run(node("n1") + "namespace shop {}\n")
    assert sorted(a["namespace"] for a in c.of("ServiceAccount") if a["name"] == "default") == \
        ["default", "kube-node-lease", "kube-public", "kube-system", "shop"]


def test_deleted_default_service_account_is_recreated():
    c = run(node("n1") + "namespace shop {}\n" + 'scenario "delete sa" { at 1m: delete serviceaccount shop/default }')
    assert c.get("ServiceAccount", "default", "shop") is not None
    assert [w.clock for w in c.writes(verb="create", kind="ServiceAccount") if w.namespace == "shop"][-1] == 60


def test_deleting_a_namespace_deletes_everything_in_it_then_the_namespace():
    c = run(SHOP + 'scenario "delete shop" { at 1m: terminate namespace shop }')
    assert c.get("Namespace", "shop", None) is None
    assert [o for o in c.objects if o.get("namespace") == "shop"] == []
    assert c.get("Namespace", "default", None) is not None and c.get("ServiceAccount", "default") is not None


def test_namespace_stays_terminating_while_a_pod_cannot_be_removed():
    c = run(node("down", extra="kubeletUp: false") + "namespace shop {}\n"
            + 'pod stuck in shop { node: "down" container main { image: "x" } }\n'
            + 'scenario "delete shop" { at 1m: terminate namespace shop }', until=3600)
    ns = c.get("Namespace", "shop", None)
    assert ns["phase"] == "Terminating"
    assert c.get("Pod", "stuck", "shop")["deleting"]
    assert c.get("ServiceAccount", "default", "shop") is None  # not re-created while Terminating


def test_deleting_a_replicaset_deletes_its_pods_in_the_background():
    c = run(node("n1") + 'replicaset rs { replicas: 2  selector { app: "rs" } '
            'template { labels { app: "rs" } container main { image: "x" } } }\n'
            + 'scenario "delete rs" { at 1m: delete replicaset rs }')
    assert c.pods() == []
    assert any(w.rule == "orphaned_pods" for w in c.result.trace)


def test_pod_bound_to_a_node_that_is_gone_is_collected():
    c = run(node("n1") + node("n2") + 'pod p { node: "n2" container main { image: "x" } }\n'
            + 'scenario "remove node" { at 1m: delete node n2 }')
    assert c.get("Pod", "p") is None
    assert c.writes(rule="orphaned_by_node", name="p")


def test_unbound_terminating_pod_is_collected_at_once():
    c = run(node("n1") + 'pod p { nodeSelector { nowhere: "x" } container main { image: "x" } }\n'
            + 'scenario "kill" { at 1m: kill pod p }')
    assert c.get("Pod", "p") is None
    assert c.writes(rule="unbound_terminating", name="p")


def test_deployment_owned_replicaset_of_a_deleted_deployment_is_collected():
    c = run(SHOP + 'scenario "delete" { at 1m: delete deployment shop/web }')
    assert c.of("ReplicaSet", "shop") == [] and c.pods(namespace="shop") == []
    assert c.get("Endpoints", "web", "shop")["addresses"] == []


def test_an_immortal_namespace_is_not_deleted():
    # NamespaceLifecycle: `kubectl delete namespace default` is refused, and nothing in it goes.
    c = run(node("n1") + deployment("web", replicas=1)
            + 'scenario "delete default" { at 1m: terminate namespace default\n at 2m: terminate namespace kube-public }')
    assert [w.message for w in c.writes(verb="refused", kind="Namespace")] == [
        'namespaces "default" is forbidden: this namespace may not be deleted',
        'namespaces "kube-public" is forbidden: this namespace may not be deleted']
    assert {n["name"]: n["phase"] for n in c.of("Namespace")}["default"] == "Active"
    assert c.get("Service", "kubernetes")["clusterIP"] == "10.96.0.1" and len(c.pods("web", live=True)) == 1


def test_kube_node_lease_may_be_deleted():
    c = run(node("n1") + 'scenario "delete" { at 1m: terminate namespace kube-node-lease }')
    assert c.get("Namespace", "kube-node-lease", None) is None


def test_a_mirror_pod_owned_by_its_node_is_kept_and_collected_with_the_node():
    # A static pod's mirror pod has its Node as owner: the garbage collector keeps it while the
    # node exists (Konverge's collector used to know only ReplicaSets and Deployments as owners).
    c = run(node("n1") + node("n2") + 'pod etcd-n1 { node: "n1"  owner: {kind: "Node", name: "n1"}  container main { image: "x" } }\n'
            'pod etcd-n2 { node: "n2"  owner: {kind: "Node", name: "n2"}  container main { image: "x" } }\n'
            'scenario "remove n2" { at 1m: delete node n2 }')
    assert c.get("Pod", "etcd-n1")["phase"] == "Running" and not c.get("Pod", "etcd-n1")["deleting"]
    assert c.get("Pod", "etcd-n2") is None


# ---- against the model (tests/cluster_model.py) -------------------------------------------------

# How a standalone pod is placed: on n1, on `down` (its kubelet is down: a graceful deletion never
# finishes), owned by a ReplicaSet that does not exist, by the namespace's Deployment d0, or by
# its node n1 (a static pod's mirror pod).
POD_KINDS = ("n1", "down", "ghost", "d0", "mirror")


@st.composite
def namespace_histories(draw):
    """1–2 namespaces besides `default`, each with up to 2 Deployments (0–2 replicas, some with a
    service) and up to 2 standalone pods, then up to 5 steps 30 s apart: a namespace deleted
    (default and kube-node-lease now and then), a Deployment, a service, a pod or the `default`
    service account deleted, or a pod created (maybe into a Terminating or removed namespace)."""
    namespaces = ["default"] + [f"ns{i}" for i in range(draw(st.integers(1, 2)))]
    objects = {}
    for ns in namespaces:
        deps = [(f"d{j}", draw(st.integers(0, 2)), draw(st.booleans())) for j in range(draw(st.integers(0, 2)))]
        pods = [(f"q{j}", draw(st.sampled_from(POD_KINDS))) for j in range(draw(st.integers(0, 2)))]
        pods = [(name, kind) for name, kind in pods if kind != "d0" or deps]
        objects[ns] = (deps, pods)
    steps = []
    for i in range(draw(st.integers(0, 5))):
        ns = draw(st.sampled_from(namespaces + ["kube-node-lease"]))
        deps, pods = objects.get(ns, ([], []))
        verb = draw(st.sampled_from(("terminate", "terminate", "delete-deployment", "delete-service",
                                     "kill", "create", "create", "delete-account")))
        if verb == "delete-deployment" and deps:
            steps.append((verb, ns, draw(st.sampled_from(deps))[0]))
        elif verb == "delete-service" and any(svc for _, _, svc in deps):
            steps.append((verb, ns, draw(st.sampled_from([d for d, _, svc in deps if svc]))))
        elif verb == "kill" and pods:
            steps.append((verb, ns, draw(st.sampled_from(pods))[0]))
        elif verb in ("create", "delete-account", "terminate"):
            steps.append((verb, ns, f"new{i}" if verb == "create" else "default"))
    return objects, steps


def namespace_spec(objects, steps) -> str:
    text = [node("n1", extra='labels { role: "work" }'), node("down", extra="kubeletUp: false")]
    for ns, (deps, pods) in objects.items():
        if ns != "default":
            text.append(f"namespace {ns} {{}}\n")
        for name, replicas, svc in deps:
            text.append(deployment(name, replicas=replicas, cpu="10m", memory="16Mi", namespace=ns,
                                   extra='nodeSelector { role: "work" }'))
            if svc:
                text.append(f'service {name} in {ns} {{ selector {{ app: "{name}" }} port http {{ port: 80 }} }}\n')
        for name, kind in pods:
            where = 'node: "down"' if kind == "down" else 'node: "n1"'
            owner = {"ghost": '  owner: {kind: "ReplicaSet", name: "ghost"}',
                     "d0": '  owner: {kind: "Deployment", name: "d0"}',
                     "mirror": '  owner: {kind: "Node", name: "n1"}'}.get(kind, "")
            text.append(f'pod {name} in {ns} {{ labels {{ app: "solo" }}  {where}{owner}\n'
                        '  container main { image: "x" } }\n')
    events = []
    for i, (verb, ns, name) in enumerate(steps):
        at = f"at {30 * (i + 1)}s: "
        events.append(at + {
            "terminate": f"terminate namespace {ns}",
            "delete-deployment": f"delete deployment {ns}/{name}",
            "delete-service": f"delete service {ns}/{name}",
            "kill": f"kill pod {ns}/{name}",
            "create": f'create pod {name} in {ns} {{ labels {{ app: "solo" }}  node: "n1"  container main {{ image: "x" }} }}',
            "delete-account": f"delete serviceaccount {ns}/{name}",
        }[verb])
    return "".join(text) + 'scenario "clean up" {\n' + "\n".join(events) + "\n}\n"


def namespace_replay(objects, steps) -> model.Namespaces:
    m = model.Namespaces(nodes={"n1", "down"})
    for ns, (deps, pods) in objects.items():
        m.create_namespace(ns)
        for name, replicas, svc in deps:
            m.create_deployment(model.Workload(ns, name, replicas))
            if svc:
                m.create_service(ns, name)
        for name, kind in pods:
            owner = {"ghost": ("ReplicaSet", "ghost"), "d0": ("Deployment", "d0"), "mirror": ("Node", "n1")}.get(kind)
            m.create_pod(model.Pod(ns, name, owner, kubelet_up=kind != "down"))
    for verb, ns, name in steps:
        {"terminate": lambda: m.delete_namespace(ns),
         "delete-deployment": lambda: m.delete_deployment(ns, name),
         "delete-service": lambda: m.delete_service(ns, name),
         "kill": lambda: m.delete_pod(ns, name),
         "create": lambda: m.create_pod(model.Pod(ns, name)),
         "delete-account": lambda: m.delete_account(ns, name)}[verb]()
    # The node lifecycle's part: `down` is unreachable from 40 s, and its pods are evicted once
    # their 300 s not-ready/unreachable tolerations run out.
    for p in m.pods.values():
        if not p.kubelet_up:
            p.deleting = True
    return m


@settings(max_examples=HALF)
@given(namespace_histories())
def test_namespaces_accounts_and_dependents_end_as_kubernetes_leaves_them(history):
    objects, steps = history
    c = run(namespace_spec(objects, steps), until=3600)
    m = namespace_replay(objects, steps)
    assert {n["name"]: n["phase"] for n in c.of("Namespace")} == m.namespaces
    assert {(a["namespace"], a["name"]) for a in c.of("ServiceAccount")} == m.accounts
    assert {(d["namespace"], d["name"]) for d in c.of("Deployment")} == set(m.deployments)
    assert {(r["namespace"], r["owner"]["name"]) for r in c.of("ReplicaSet")} == m.replicasets
    solo = {(p["namespace"], p["name"]): p["deleting"] for p in c.of("Pod") if p["labels"].get("app") == "solo"}
    assert solo == {k: p.deleting for k, p in m.pods.items()}
    for (ns, name), w in m.deployments.items():
        assert len(c.pods(name, namespace=ns, live=True)) == w.replicas
    assert not [p for p in c.of("Pod") if p["labels"].get("app") != "solo"
                and (p["namespace"], p["labels"]["app"]) not in m.deployments]
    services = {(s["namespace"], s["name"]) for s in c.of("Service")} - {("default", "kubernetes")}
    assert services == m.services
    assert {(e["namespace"], e["name"]) for e in c.of("Endpoints")} - {("default", "kubernetes")} == m.services
    assert {r["service"] for r in c.of("Route")} - {"default/kubernetes"} == {f"{ns}/{n}" for ns, n in m.services}
    kinds = {"forbidden": "Forbidden", "not found": "NotFound", "does not exist": "NotFound"}
    refused = [(w.kind, f"{w.namespace}/{w.name}" if w.namespace else w.name,
                next(v for k, v in kinds.items() if k in w.message)) for w in c.writes(verb="refused")]
    assert refused == m.refused
