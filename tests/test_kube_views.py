"""The kubectl-like views on the demo cluster: golden outputs, from specs and from a data directory.

Regenerate the goldens with KONVERGE_REGEN=1 after a deliberate change, and read the diff.
"""

import os
from pathlib import Path

import pytest

from engine.cli import main
from engine.kube.tables import selector_text, workload_selector
from engine.kube.views import shares

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/views"
DEMO = "specs/demo.konv"
UNSCHEDULABLE = "tests/data/unschedulable.konv"
POD = "web-3046375658-78508"  # the demo's first replica: names are stable hashes

CASES = {
    "explain_endpoints_web": ["explain", "endpoints/web", DEMO],
    "why_pending_huge": ["why-pending", "huge", UNSCHEDULABLE],
    "trace_pod": ["trace", "--pod", POD, DEMO],
    "route_web": ["route", "web", DEMO],
    # kubectl's label columns: the key's last part as header, empty where a node has no such label
    "get_nodes_label_columns": ["get", "nodes", "-L", "topology.kubernetes.io/zone,kubernetes.io/arch",
                                "--show-labels", DEMO],
    "get_pods_label_columns": ["get", "pods", "-L", "app", "-L", "pod-template-hash", "-o", "wide", DEMO],
}


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # source paths in the output are relative to the working directory


def run(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what a fixture printed
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("KONVERGE_REGEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CASES))
def test_view_prints_its_golden_output(name, capsys):
    code, out, err = run(CASES[name], capsys)
    assert (code, err) == (0, "")
    check_golden(name, out)


@pytest.mark.parametrize("argv", [["explain", "endpoints/web"], ["why-pending", "huge"], ["trace"], ["route", "web"]])
def test_a_view_given_no_cluster_shows_how_it_is_called(argv, capsys):
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("error[E220]: give spec files or --data-dir DIR\n")  # no made-up file name
    example = err.split("= hint: e.g. ")[1].split()
    assert example[:2] == ["konverge", argv[0]]
    assert main(example[1:]) == 0  # the example runs


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A data directory per spec, each reconciled once through the CLI."""
    made = {}

    def store(spec: str) -> str:
        if spec not in made:
            d = tmp_path_factory.mktemp("store") / "data"
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                assert main(["reconcile", spec, "--data-dir", str(d)]) == 0
            finally:
                os.chdir(cwd)
            made[spec] = str(d)
        return made[spec]
    return store


@pytest.mark.parametrize("name", sorted(CASES))
def test_views_of_a_persisted_store_match_the_in_memory_ones(name, stores, capsys):
    argv = CASES[name]
    code, out, err = run([*argv[:-1], "--data-dir", stores(argv[-1])], capsys)
    assert (code, err) == (0, "")
    check_golden(name, out)


@pytest.fixture
def data_dir(stores):
    return stores(UNSCHEDULABLE)


def test_the_trace_of_a_persisted_store_lists_every_write(data_dir, capsys):
    code, out, _ = run(["trace", "--data-dir", data_dir], capsys)
    assert code == 0
    assert "scheduler/bind" in out and "Pod/default/huge" in out


def test_why_pending_shows_the_rule_that_judges_a_pod_naming_its_nodes(capsys, tmp_path):
    # A pod whose node affinity names its nodes (a DaemonSet's) is judged by bind_named, over
    # those nodes alone (NodeAffinity's PreFilter), not by bind (review RE).
    spec = tmp_path / "named.konv"
    spec.write_text('node n1 { cpu: 1  memory: 2Gi }\n'
                    'pod lost {\n'
                    '  affinity: {requiredNodeTerms: [{matchFields: [{key: "metadata.name", operator: "In", '
                    'values: ["n2"]}]}]}\n'
                    '  container c { image: "x"  cpu: 100m  memory: 64Mi }\n}\n')
    code, out, _ = run(["why-pending", "lost", str(spec)], capsys)
    assert code == 0
    assert "scheduler/bind_named picks a node where n.name in named_nodes(p) and feasible(p, n):" in out
    assert "does not apply" not in out


def test_why_pending_refuses_a_pod_that_is_not_pending(capsys):
    code, out, err = run(["why-pending", POD, DEMO], capsys)
    assert code == 1 and out == ""
    assert f"pod default/{POD} is not pending: it is Running on node worker-3" in err


def test_why_pending_names_a_terminating_pod_as_get_pods_does(capsys):
    # A pod evicted from a lost node keeps phase Running while it waits there to be removed:
    # why-pending says what `get pods` says, Terminating.
    code, _, err = run(["why-pending", "web-3046375658-16048", DEMO, "--scenario", "lose a worker"], capsys)
    assert code == 1
    assert "pod default/web-3046375658-16048 is not pending: it is Terminating on node worker-1" in err


@pytest.mark.parametrize("argv, hint", [
    (["why-pending", "hgue", UNSCHEDULABLE], "did you mean `huge`?"),
    (["route", "wbe", DEMO], "did you mean `web`?"),
    (["route", "web", "--from", "worker-9", DEMO], "did you mean `worker-1`?"),
    (["route", "web:8080", DEMO], "known: 80, http"),
    (["explain", "endpoint/wbe", DEMO], "did you mean `web`?"),
    (["trace", "--pod", "wbe-1", DEMO], "E221"),
])
def test_unknown_names_are_diagnostics_with_a_suggestion(argv, hint, capsys):
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert hint in err and "Traceback" not in err


SHOP = "specs/shop.konv"  # its workloads live in namespace shop
SHOP_HINT = "look in namespace shop: -n shop"
LOOKED = "looked in namespace shop: -n NAMESPACE for another"  # not there, nor anywhere else


NOT_FOUND = "Error from server (NotFound): "  # kubectl's words for a named object that is not there


@pytest.mark.parametrize("argv, message, hint", [
    (["route", "frontend", SHOP], 'services "frontend" not found', SHOP_HINT),
    (["why-pending", "fronten", SHOP], 'pods "fronten" not found', SHOP_HINT),
    (["trace", "--pod", "api-", SHOP], 'pods "api-" not found', SHOP_HINT),
    (["explain", "deploy/api", SHOP], 'deployments.apps "api" not found', SHOP_HINT),
    (["get", "deploy", "api", SHOP], 'deployments.apps "api" not found', SHOP_HINT),
    (["describe", "deploy/api", SHOP], 'deployments.apps "api" not found', SHOP_HINT),
    (["get", "pod", "web-1", "-n", "shop", SHOP], 'pods "web-1" not found', LOOKED),
    (["describe", "pod", "web-1", "-n", "shop", SHOP], 'pods "web-1" not found', LOOKED),
    (["explain", "hpa/api", "-n", "shop", SHOP], 'horizontalpodautoscalers.autoscaling "api" not found',
     "there are no HorizontalPodAutoscaler objects in namespace shop"),
    (["trace", "--pod", "frontend", "-n", "shop", SHOP], 'pods "frontend" not found', "3 begin so: frontend-"),
    (["route", "frontend", "-n", "shop", "--from", "shop", SHOP], 'nodes "shop" not found',
     "known: shop-node-1, shop-node-2"),  # a node is named whole: no prefix of it is taken
])
def test_a_missing_object_is_kubectls_not_found_with_a_hint_naming_where_it_is(argv, message, hint, capsys):
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"{SHOP}: error[")  # the cluster looked at, for want of a position
    assert NOT_FOUND + message + "\n" in err and hint in err and "Traceback" not in err


def test_explain_words_the_cores_not_found_as_kubectl_does_keeping_its_code_and_hint():
    from engine.errors import KonvergeError
    from engine.explain import explain
    from engine.kube.views import explain_view, load

    program, state = load([SHOP], example="")
    with pytest.raises(KonvergeError) as core:
        explain(program, state, "Deployment", "default", "api")
    with pytest.raises(KonvergeError) as view:
        explain_view(program, state, "deploy/api")
    [c], [v] = core.value.diagnostics, view.value.diagnostics
    assert (c.code, c.message) == ("E210", "there is no Deployment default/api and no write to one")
    assert (v.code, v.message, v.hint) == ("E210", NOT_FOUND + 'deployments.apps "api" not found', c.hint)
    assert c.hint == SHOP_HINT  # the core's hint: only the namespace's names are guesses


def test_get_by_name_across_all_namespaces_is_refused_as_kubectl_does(capsys):
    code, out, err = run(["get", "deploy", "api", "-A", SHOP], capsys)
    assert code == 2 and out == ""
    assert "a resource cannot be retrieved by name across all namespaces" in err and SHOP_HINT in err
    code, out, _ = run(["get", "node", "shop-node-1", "-A", SHOP], capsys)  # a node is in none
    assert code == 0 and out.startswith("NAME") and "shop-node-1" in out


def test_get_of_no_kind_names_the_spec_it_read(capsys):
    code, out, err = run(["get", ",", SHOP], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{SHOP}: error[E202]: `,` names no kind")


def test_a_service_without_endpoints_is_rejected(capsys):
    code, out, _ = run(["route", "kubernetes:443", "--from", "worker-2", DEMO], capsys)
    assert code == 0
    assert "seen from node worker-2" in out and "10.96.0.1:443/TCP → REJECT" in out


def test_a_unique_prefix_names_a_pod(capsys):
    code, out, _ = run(["trace", "--pod", "web-3046375658-7", DEMO], capsys)
    assert code == 0 and out.startswith(f"Pod default/{POD}:")


def test_each_of_n_endpoints_gets_an_equal_share():
    # iptables: endpoint i of n is taken with probability 1/(n − i) among those left.
    for n in range(1, 8):
        got = shares([1.0 / (n - i) for i in range(n)])
        assert got == pytest.approx([1 / n] * n)
    assert shares([0.5, 1.0]) == pytest.approx([0.5, 0.5])


# ---- the views load what `reconcile` loads ----------------------------------------------------

ANTI_AFFINITY = """apiVersion: v1
kind: Node
metadata: {name: n1}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, labels: {app: api}}
spec:
  containers: [{name: c, image: x}]
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [nothing]}]}
        topologyKey: zone
"""


def test_views_read_yaml_manifests(capsys, tmp_path):
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(ANTI_AFFINITY)
    code, out, err = run(["why-pending", "lonely", str(manifest)], capsys)
    assert (code, err) == (0, "")
    assert "0/1 nodes are available: 1 node(s) didn't match pod affinity rules." in out
    assert "n1    InterPodAffinity  node(s) didn't match pod affinity rules" in out


def test_views_read_directories_mixing_konv_and_yaml(capsys, tmp_path):
    (tmp_path / "pods.yaml").write_text(ANTI_AFFINITY)
    (tmp_path / "svc.konv").write_text('service api { selector { app: "api" }  port http { port: 80 } }\n')
    code, out, err = run(["route", "api", str(tmp_path)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("Service default/api, seen from node n1") and "→ REJECT" in out
    code, out, _ = run(["explain", "pod/lonely", str(tmp_path)], capsys)
    assert code == 0 and out.startswith("Pod/default/lonely")


def test_views_play_a_scenario_from_a_file(capsys, tmp_path):
    scenario = tmp_path / "down.konv"
    scenario.write_text('scenario "worker-1 goes down" { at 30s: fail node worker-1 }\n')
    code, out, err = run(["trace", DEMO, "--scenario", str(scenario)], capsys)
    assert (code, err) == (0, "")
    assert "scenario/fail" in out and "node_lifecycle" in out
    by_name = run(["trace", DEMO, "--scenario", "lose a worker"], capsys)[1]
    assert "scenario/fail" in by_name


def test_why_pending_names_the_filter_that_rejected_each_node(capsys):
    code, out, _ = run(["why-pending", "huge", UNSCHEDULABLE], capsys)
    assert code == 0
    assert "0/4 nodes pass; rejected by NodeResourcesFit (3), TaintToleration (1)" in out
    table = out[out.index("  NODE"):].splitlines()
    assert [line.split()[1] for line in table[1:]] == ["TaintToleration"] + ["NodeResourcesFit"] * 3
    assert "feasible  " not in out


def test_why_pending_names_inter_pod_affinity_for_existing_pods_anti_affinity(capsys, tmp_path):
    spec = tmp_path / "loner.konv"
    spec.write_text('node h1 { cpu: 4  memory: 8Gi  labels { "kubernetes.io/hostname": "h1" } }\n'
                    'pod loner { labels { app: "loner" }  node: "h1"  affinity: {podAntiAffinity: '
                    '[{labelSelector: {app: "web"}, topologyKey: "kubernetes.io/hostname"}]}\n'
                    '  container main { image: "x"  cpu: 100m  memory: 64Mi } }\n'
                    'pod web { labels { app: "web" }  container main { image: "x"  cpu: 100m  memory: 64Mi } }\n')
    code, out, _ = run(["why-pending", "web", str(spec)], capsys)
    assert code == 0
    assert "rejected by InterPodAffinity (1)" in out


def test_explain_takes_the_kinds_short_names_as_get_does(capsys):
    code, out, _ = run(["explain", "svc/kubernetes", DEMO], capsys)
    assert code == 0 and out.startswith("Service/default/kubernetes")


# ---- selectors, kubectl-style ----------------------------------------------------------------

SELECTORS = """node n1 { cpu: 4  memory: 8Gi }
replicaset web {
  replicas: 2
  selector { app: "web" }
  matchExpressions: [{key: "tier", operator: "In", values: ["b", "a"]}, {key: "legacy", operator: "DoesNotExist"},
                     {key: "track", operator: "NotIn", values: ["canary"]}, {key: "env", operator: "Exists"}]
  template { labels { app: "web"  tier: "a"  env: "prod" }  container c { image: "nginx:1.27" } }
}
"""


def test_a_selector_prints_as_kubectl_prints_it():
    # labels.Selector.String(): requirements sorted by key, the values of each sorted.
    assert selector_text({"tier": "a", "app": "web"}, []) == "app=web,tier=a"
    assert selector_text({"app": "web"}, [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                          {"key": "legacy", "operator": "DoesNotExist", "values": []},
                                          {"key": "track", "operator": "NotIn", "values": ["x"]},
                                          {"key": "env", "operator": "Exists", "values": []}]) == \
        "app=web,env,!legacy,tier in (a,b),track notin (x)"
    assert selector_text(None, []) == selector_text({}, []) == "<none>"


def test_a_deployment_without_a_selector_shows_its_templates_labels():
    template = {"labels": {"app": "web"}}
    assert workload_selector({"kind": "Deployment", "selector": {}, "matchExpressions": [], "template": template}) \
        == "app=web"
    only_expressions = [{"key": "track", "operator": "Exists", "values": []}]
    assert workload_selector({"kind": "Deployment", "selector": {}, "matchExpressions": only_expressions,
                              "template": template}) == "track"


def test_get_rs_wide_and_describe_rs_show_the_selectors_expressions(capsys, tmp_path):
    spec = tmp_path / "selectors.konv"
    spec.write_text(SELECTORS)
    code, out, err = run(["get", "rs", str(spec), "-o", "wide"], capsys)
    assert (code, err) == (0, "")
    check_golden("get_rs_wide_selector", out)
    code, out, err = run(["describe", "rs/web", str(spec)], capsys)
    assert (code, err) == (0, "")
    # One line, as kubectl describe prints a selector; the columns stay where they were.
    assert "\nSelector:           app=web,env,!legacy,tier in (a,b),track notin (canary)\n" in out
    assert "Match Expressions" not in out


def test_show_labels_is_refused_with_a_printer_that_is_not_a_table(capsys):
    # kubectl's GetOptions.Validate: "--show-labels option cannot be used with json printer"
    for output in ("json", "yaml", "name"):
        code, out, err = run(["get", "nodes", "--show-labels", "-o", output, DEMO], capsys)
        assert (code, out) == (2, "")
        assert f"--show-labels option cannot be used with {output} printer" in err


def test_show_labels_prints_none_for_an_object_without_labels(capsys):
    code, out, err = run(["get", "endpoints", "web", "--show-labels", DEMO], capsys)
    assert code == 0 and out.splitlines()[0].split()[-1] == "LABELS" and out.splitlines()[1].split()[-1] == "<none>"


def test_roles_are_kubectls_node_role_labels_and_kubernetes_io_role():
    from engine.kube.tables import node_roles
    labels = {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x",
              "kubernetes.io/role": "worker", "node-role.kubernetes.io/etcd": "true"}
    assert node_roles({"labels": labels}) == "control-plane,etcd,worker"
    assert node_roles({"labels": {"kubernetes.io/role": ""}}) == "<none>"
