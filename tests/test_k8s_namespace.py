"""Namespaces, service accounts, garbage collection and pod GC (rules/controllers.konv)."""

from tests.kube import deployment, node, run

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
