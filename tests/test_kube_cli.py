"""The Kubernetes edge through the CLI: the JSON contract, get and describe, mixed specs.

Set KONVERGE_REGEN=1 to rewrite the golden files under tests/golden/kube/ after a
deliberate change.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "kube"
DEMO = str(ROOT / "specs" / "demo.konv")
MANIFESTS = str(ROOT / "specs" / "manifests")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def golden(name: str, got: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KONVERGE_REGEN"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_json_contract_of_the_demo_matches_its_golden_file(capsys):
    code, out, _ = run(capsys, "reconcile", DEMO, "-o", "json")
    assert code == 0
    golden("demo.json", out)


def test_json_contract_is_byte_identical_across_runs(capsys):
    first = run(capsys, "reconcile", DEMO, "-o", "json")[1]
    second = run(capsys, "reconcile", DEMO, "-o", "json")[1]
    assert first == second


def test_the_command_as_a_process_prints_all_it_says_before_it_exits(capsys, tmp_path):
    # The console script leaves with os._exit, past Python's own flushing: its output must
    # still be whole, in a pipe and in a file, and its exit code kept.
    import subprocess
    import sys
    expected = run(capsys, "reconcile", DEMO, "-o", "json")[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    piped = subprocess.run([sys.executable, "-m", "engine.cli", "reconcile", DEMO, "-o", "json"],
                           capture_output=True, text=True, cwd=ROOT, env=env)
    assert (piped.returncode, piped.stdout) == (0, expected)
    with open(tmp_path / "out.json", "w") as f:
        filed = subprocess.run([sys.executable, "-m", "engine.cli", "reconcile", DEMO, "-o", "json"],
                               stdout=f, cwd=ROOT, env=env)
    assert filed.returncode == 0 and (tmp_path / "out.json").read_text() == expected
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "get", "pods"], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert bad.returncode == 2 and "error[E203]" in bad.stderr
    closed = subprocess.run([sys.executable, "-m", "engine.cli", "check", DEMO], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env, close_fds=True,
                            preexec_fn=lambda: os.close(1))
    assert (closed.returncode, closed.stderr) == (0, "")
    if os.path.exists("/dev/full"):  # a disk that is full: said, and not a success
        with open("/dev/full", "w") as full:
            failed = subprocess.run([sys.executable, "-m", "engine.cli", "check", DEMO], stdout=full,
                                    stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert failed.returncode == 1 and failed.stderr == "konverge: cannot write the output: No space left on device\n"
        with open("/dev/full", "w") as full:  # more than a buffer: the write fails inside the command
            failed = subprocess.run([sys.executable, "-m", "engine.cli", "reconcile", DEMO, "-o", "json"],
                                    stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert failed.returncode == 1 and failed.stderr == "konverge: cannot write the output: No space left on device\n"


def test_json_contract_shapes_the_fields_it_promises(capsys):
    doc = json.loads(run(capsys, "reconcile", DEMO, "-o", "json")[1])
    assert set(doc) >= {"converged", "steps", "revision", "clock", "objects"}
    keys = [(o["kind"], o["namespace"] or "", o["name"]) for o in doc["objects"]]
    assert keys == sorted(keys)
    pod = next(o for o in doc["objects"] if o["kind"] == "Pod")
    assert pod["containers"][0]["cpu"] == 250 and pod["containers"][0]["memory"] == 134217728
    assert pod["owner"]["kind"] == "ReplicaSet" and pod["phase"] == "Running" and pod["ip"]
    assert "resourceVersion" not in pod and "managedBy" not in pod
    node = next(o for o in doc["objects"] if o["kind"] == "Node" and o["name"] == "worker-1")
    assert node["cpu"] == 4000 and node["memory"] == 8 * 2**30 and node["pods"] == 110
    route = next(o for o in doc["objects"] if o["kind"] == "Route" and o["action"] == "DNAT")
    assert sum(b["probability"] for b in route["backends"]) > 0 and route["service"] == "default/web"


def test_yaml_output_holds_the_same_document(capsys):
    import yaml

    as_json = json.loads(run(capsys, "reconcile", DEMO, "-o", "json")[1])
    as_yaml = yaml.safe_load(run(capsys, "reconcile", DEMO, "-o", "yaml")[1])
    assert as_yaml == as_json


def test_manifests_and_konv_specs_reconcile_together(capsys):
    code, out, err = run(capsys, "reconcile", DEMO, f"{MANIFESTS}/nodes.yaml", f"{MANIFESTS}/namespace.yaml",
                         f"{MANIFESTS}/frontend.yaml", "-o", "json")
    assert code in (0, 4), err
    doc = json.loads(out)
    assert doc["converged"]
    pods = [o for o in doc["objects"] if o["kind"] == "Pod"]
    assert {p["namespace"] for p in pods} == {"default", "shop"}
    assert all(p["phase"] == "Running" for p in pods)
    assert "warning[W301]: kind `ConfigMap` is not supported" in err
    assert "frontend.yaml:105:7" in err



@pytest.mark.parametrize("enabled", [True, False])
def test_main_in_process_leaves_the_cycle_collector_as_it_found_it(capsys, enabled):
    """A caller that goes on after main() (a test, a notebook) gets its collector back, so that
    the run it made, garbage in cycles once dropped, is collected."""
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert run(capsys, "reconcile", DEMO)[0] == 0
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize(("argv", "off"), [(["reconcile", DEMO], True), (["get", "pods", DEMO], True),
                                           (["trace", DEMO], True), (["check", DEMO], False)])
def test_the_console_script_leaves_the_collector_off_after_a_command_of_one_run(capsys, argv, off):
    was = gc.isenabled()
    gc.enable()
    try:
        assert main(argv, exiting=True) == 0
        assert gc.isenabled() is not off
    finally:
        (gc.enable if was else gc.disable)()


def test_manifest_directory_reconciles_and_summarises(capsys):
    code, out, err = run(capsys, "reconcile", MANIFESTS)
    assert code == 0, err
    assert out.startswith("converged in ")
    assert "9 Running and ready" in out  # the storefront's three pods, postgres' three and the node exporter's three


def test_bad_manifest_is_a_diagnostic_and_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: [p\n")
    code, _, err = run(capsys, "reconcile", DEMO, str(bad))
    assert code == 1
    assert f"{bad}:3:1: error[E301]: invalid YAML" in err


@pytest.mark.parametrize("exhaustive", [[], ["--exhaustive"]])
def test_verify_refuses_manifests_rather_than_verify_a_cluster_without_their_objects(capsys, exhaustive):
    code, out, err = run(capsys, "verify", DEMO, MANIFESTS, "--no-db", *exhaustive)
    assert code == 2 and out == ""
    assert (f"{MANIFESTS}/namespace.yaml: error[E070]: verify reads .konv specs only; the objects of this "
            "manifest would be left out") in err


def test_check_reads_manifests_as_reconcile_does_and_fmt_leaves_them_alone(capsys, tmp_path):
    code, out, err = run(capsys, "check", f"{MANIFESTS}/nodes.yaml", f"{MANIFESTS}/namespace.yaml")
    assert (code, err) == (0, "") and out == "ok: 2 file(s) checked as 0 program(s): 5 objects, 0 scenarios, 0 warning(s)\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {team: 1}}\n")
    code, _, err = run(capsys, "check", DEMO, str(bad))
    assert code == 1 and err.startswith(f"{bad}:3:36: error[E302]: `metadata.labels.team` must be a string")
    code, out, err = run(capsys, "fmt", str(bad))
    assert (code, out) == (1, "") and bad.read_text() == "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {team: 1}}\n"
    assert err.startswith(f"{bad}: error[E001]: this is a Kubernetes manifest, not a Konverge file")


def test_get_pods_in_memory(capsys):
    code, out, _ = run(capsys, "get", "pods", DEMO)
    assert code == 0
    golden("get_pods.txt", out)


@pytest.mark.parametrize("kind", ["nodes", "svc", "deployments", "endpoints", "rs"])
def test_get_tables_for_common_kinds(capsys, kind):
    code, out, _ = run(capsys, "get", kind, DEMO)
    assert code == 0
    golden(f"get_{kind}.txt", out)


def test_get_all_namespaces_with_spec_after_the_option(capsys):
    code, out, _ = run(capsys, "get", "pods", "-A", MANIFESTS)
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert len(out.splitlines()) == 11  # the storefront's three pods, postgres' three, the node exporter's three, db-migrate's


def test_get_one_object_as_json_and_name(capsys):
    out = run(capsys, "get", "deployment", "web", DEMO, "-o", "json")[1]
    assert json.loads(out)["name"] == "web"
    assert run(capsys, "get", "svc", DEMO, "-o", "name")[1] == "service/kubernetes\nservice/web\n"


def test_get_missing_object_is_an_error(capsys):
    code, _, err = run(capsys, "get", "pod", "nope", DEMO)
    assert code == 1 and 'pods "nope" not found' in err


def test_describe_deployment_in_memory(capsys):
    code, out, _ = run(capsys, "describe", "deployment/web", DEMO)
    assert code == 0
    golden("describe_deployment.txt", out)


def test_get_and_describe_jobs_as_kubectl_does(capsys):
    # printJob's columns (and -o wide's CONTAINERS IMAGES SELECTOR), describeJob's Duration and
    # Pods Statuses lines; a Succeeded pod is Completed, a Failed one Error.
    jobs = str(ROOT / "specs" / "jobs.konv")
    code, out, _ = run(capsys, "get", "jobs", jobs)
    assert code == 0
    code, wide, _ = run(capsys, "get", "job", "-o", "wide", "--scenario", "the migration's node dies", jobs)
    assert code == 0
    code, pods, _ = run(capsys, "get", "pods", jobs)
    assert code == 0
    golden("get_jobs.txt", out + "\n" + wide + "\n" + pods)
    code, out, _ = run(capsys, "describe", "job/seed", jobs)
    assert code == 0
    golden("describe_job.txt", out)
    assert run(capsys, "get", "jobs", "-o", "name", jobs)[1] == \
        "job.batch/db-migrate\njob.batch/report\njob.batch/seed\n"


@pytest.mark.parametrize("short, plural, namespace, name, kind", [
    # printDaemonSet's columns (and -o wide's CONTAINERS IMAGES SELECTOR), describeDaemonSet's lines.
    ("ds", "daemonsets", "kube-system", "node-exporter", "daemonset"),
    # printStatefulSet's NAME READY AGE (and -o wide's CONTAINERS IMAGES); describeStatefulSet's
    # `Replicas: 3 desired | 3 total`, Partition under the update strategy, Pods Status.
    ("sts", "statefulsets", "shop", "postgres", "statefulset"),
])
def test_get_and_describe_a_workload_as_kubectl_does(capsys, short, plural, namespace, name, kind):
    code, out, _ = run(capsys, "get", short, "-A", MANIFESTS)
    assert code == 0
    code, wide, _ = run(capsys, "get", plural, "-n", namespace, "-o", "wide", MANIFESTS)
    assert code == 0
    golden(f"get_{short}.txt", out + "\n" + wide)
    code, out, _ = run(capsys, "describe", f"{kind}/{name}", "-n", namespace, MANIFESTS)
    assert code == 0
    golden(f"describe_{kind}.txt", out)
    assert run(capsys, "get", short, "-A", "-o", "name", MANIFESTS)[1] == f"{kind}.apps/{name}\n"


def test_get_and_describe_a_pod_with_an_init_container_and_a_sidecar(capsys):
    # specs/shop.konv's api pods: READY counts the sidecar (kubectl 1.29+); describe lists the
    # Init Containers before the Containers, the migration Terminated with exit code 0 and the
    # proxy Running, as kubectl describe shows them once the pod runs.
    shop = str(ROOT / "specs" / "shop.konv")
    code, table, _ = run(capsys, "get", "pods", "-n", "shop", "-l", "tier=api", shop)
    assert code == 0
    name = table.splitlines()[1].split()[0]
    code, out, _ = run(capsys, "describe", f"pod/{name}", "-n", "shop", shop)
    assert code == 0
    golden("get_pods_init.txt", table)
    golden("describe_pod_init.txt", out)


def test_describe_shows_events_and_history(capsys, tmp_path):
    spec = tmp_path / "tiny.konv"
    spec.write_text('node n1 { cpu: 1  memory: 1Gi }\n'
                    'pod big { container c { image: "x"  cpu: 8 } }\n')
    code, out, _ = run(capsys, "describe", "pod/big", str(spec))
    assert code == 0
    assert "Events:\n" in out and "FailedScheduling" in out
    assert "History:\n" in out and "spec" in out


def test_get_from_a_data_directory(capsys, tmp_path):
    data = str(tmp_path / "data")
    assert run(capsys, "reconcile", DEMO, "--data-dir", data)[0] == 0
    in_memory = run(capsys, "get", "pods", DEMO)[1]
    assert run(capsys, "get", "pods", "--data-dir", data)[1] == in_memory


def test_reconciling_a_data_directory_again_goes_on_from_its_clock(capsys, tmp_path):
    data = str(tmp_path / "data")
    code, out, _ = run(capsys, "reconcile", DEMO, "--scenario", "lose a worker", "--data-dir", data)
    assert code == 0 and "virtual clock 371s" in out.splitlines()[0]
    code, out, _ = run(capsys, "reconcile", DEMO, "--data-dir", data)
    first = out.splitlines()[0]
    assert code == 0 and first.startswith("converged in 0 steps") and first.endswith("virtual clock 371s")


def test_describe_from_a_data_directory(capsys, tmp_path):
    data = str(tmp_path / "data")
    assert run(capsys, "reconcile", MANIFESTS, "--data-dir", data)[0] == 0
    code, out, _ = run(capsys, "describe", "deployment/frontend", "-n", "shop", "--data-dir", data)
    assert code == 0
    assert out.startswith("Name:                   frontend\nNamespace:              shop\nKind:                   Deployment\n")


def test_get_needs_specs_or_a_data_directory(capsys):
    code, _, err = run(capsys, "get", "pods")
    assert code == 2 and "error[E203]" in err


def test_contract_defaults_target_port_and_prints_hpa_load_in_millicores(capsys):
    doc = json.loads(run(capsys, "reconcile", str(ROOT / "specs" / "hpa.konv"), "--scenario", "load spike and calm",
                         "-o", "json")[1])
    hpa = next(o for o in doc["objects"] if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["load"] == 600  # `load … cpu = 600m`, in millicores like every cpu field
    demo = json.loads(run(capsys, "reconcile", DEMO, "-o", "json")[1])
    for s in (o for o in demo["objects"] if o["kind"] == "Service"):
        assert all(p["targetPort"] is not None for p in s["ports"])


def test_omitted_target_port_is_the_port_in_the_contract(capsys, tmp_path):
    spec = tmp_path / "s.konv"
    spec.write_text('service s { selector { a: "b" } ports: [{name: "a", port: 83}, {name: "b", port: 84, '
                    'targetPort: 9000}] }\n')
    out = run(capsys, "get", "svc", "s", str(spec), "-o", "json")[1]
    assert [(p["port"], p["targetPort"]) for p in json.loads(out)["ports"]] == [(83, 83), (84, 9000)]


def test_get_pods_has_kubectls_default_and_wide_columns(capsys):
    out = run(capsys, "get", "pods", DEMO)[1]
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    wide = run(capsys, "get", "pods", DEMO, "-o", "wide")[1]
    assert wide.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                            "NOMINATED", "NODE", "READINESS", "GATES"]
    assert "192.168.0.0" in wide and "worker-1" in wide and "192.168.0.0" not in out


def test_a_pod_on_a_lost_node_is_not_ready_yet_its_running_container_counts_in_ready(capsys, tmp_path):
    # The node lifecycle controller's MarkPodsNotReady sets only the pod's Ready condition; kubectl's
    # READY counts the containers whose status says ready and running, which the lost kubelet last
    # reported so.
    spec = tmp_path / "lost.konv"
    spec.write_text('node n1 { cpu: 2  memory: 4Gi }\n'
                    'pod stays { tolerations: [{operator: "Exists"}]\n'
                    '  container app { image: "app:1"  cpu: 100m  memory: 64Mi } }\n'
                    'scenario "lose n1" { at 10s: fail node n1 }\n')
    pod = json.loads(run(capsys, "get", "pod", "stays", str(spec), "--scenario", "lose n1", "-o", "json")[1])
    assert (pod["phase"], pod["ready"]) == ("Running", False)
    table = run(capsys, "get", "pods", str(spec), "--scenario", "lose n1")[1]
    assert table.splitlines()[1].split()[:3] == ["stays", "1/1", "Running"]


def test_get_several_kinds_at_once_prefixes_names_with_kubectls_resource_group(capsys):
    code, out, _ = run(capsys, "get", "deploy,rs", DEMO)
    assert code == 0
    deployments, sets = out.split("\n\n")
    assert deployments.splitlines()[0].split()[:2] == ["NAME", "READY"]
    assert deployments.splitlines()[1].startswith("deployment.apps/web ")
    assert sets.splitlines()[0].split()[:2] == ["NAME", "DESIRED"]
    assert sets.splitlines()[1].startswith("replicaset.apps/web-")
    names = run(capsys, "get", "deploy,svc", DEMO, "-o", "name")[1]
    assert names == "deployment.apps/web\nservice/kubernetes\nservice/web\n"


def test_get_json_shows_objects_as_the_contract_does(capsys):
    got = json.loads(run(capsys, "get", "pods", DEMO, "-o", "json")[1])
    doc = json.loads(run(capsys, "reconcile", DEMO, "-o", "json")[1])
    pods = [o for o in doc["objects"] if o["kind"] == "Pod"]
    assert got == {"kind": "List", "items": pods}
    assert got["items"][0]["containers"][0]["cpu"] == 250 and got["items"][0]["containers"][0]["memory"] == 134217728
    node = json.loads(run(capsys, "get", "node", "worker-1", DEMO, "-o", "json")[1])
    assert node["cpu"] == 4000 and node["memory"] == 8 * 2**30


@pytest.mark.parametrize("budget, why", [("0", "must be at least 1 step, not 0"), ("-3", "must be at least 1 step, not -3"),
                                         ("ten", "'ten' is not a whole number of steps")])
def test_a_step_budget_that_is_no_positive_number_is_a_usage_error(budget, why, capsys):
    with pytest.raises(SystemExit) as e:
        main(["reconcile", DEMO, "--budget", budget])
    assert e.value.code == 2 and f"argument --budget: {why}" in capsys.readouterr().err


def test_every_table_has_kubectls_age_on_the_virtual_clock(capsys, tmp_path):
    code, out, _ = run(capsys, "get", "deploy,rs,svc,ep,ns,nodes", DEMO, "--scenario", "lose a worker")
    assert code == 0
    for table in out.split("\n\n"):
        header, *rows = table.splitlines()
        at = header.split().index("AGE")
        assert rows and all(row.split()[at] == "6m11s" for row in rows), table  # all made at 0s
    # From a data directory, the write that created the object gives its age; without the
    # recorded trace, the age is not known.
    data = tmp_path / "data"
    assert run(capsys, "reconcile", DEMO, "--data-dir", str(data))[0] == 0
    assert run(capsys, "get", "deploy", "--data-dir", str(data))[1].splitlines()[1].split()[-1] == "0s"
    (data / "trace.jsonl").unlink()
    assert run(capsys, "get", "deploy", "--data-dir", str(data))[1].splitlines()[1].split()[-1] == "<unknown>"


def test_wide_nodes_show_the_internal_ip_as_kubectl_does(capsys, tmp_path):
    (tmp_path / "n.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus:\n"
                                     "  allocatable: {cpu: '1', memory: 1Gi}\n"
                                     "  addresses: [{type: InternalIP, address: 10.0.0.11}]\n")
    code, out, _ = run(capsys, "get", "nodes", "-o", "wide", str(tmp_path / "n.yaml"))
    header, row = out.splitlines()
    assert header.split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "INTERNAL-IP"]
    assert row.split()[:5] == ["n", "Ready", "<none>", "0s", "10.0.0.11"]


def test_check_takes_a_directory_of_manifests_as_reconcile_does(capsys):
    code, out, err = run(capsys, "check", MANIFESTS)
    assert code == 0 and out.startswith("ok: 6 file(s) checked")
    assert "W301" in err  # the ConfigMap, as reconcile warns about it


def test_a_usage_error_names_no_made_up_file(capsys):
    code, out, err = run(capsys, "get", "pods")
    assert (code, out) == (2, "")
    assert err.startswith("error[E203]: get needs SPEC files")


def test_describe_prints_tolerations_and_taints_one_a_line_as_kubectl_does(capsys):
    code, out, _ = run(capsys, "get", "pods", "-o", "name", DEMO)
    pod = out.split()[0]
    code, out, _ = run(capsys, "describe", pod, DEMO)
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Tolerations:"))
    assert [line.split(None, 1)[-1] if i == 0 else line.strip() for i, line in enumerate(lines[at:at + 2])] == [
        "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
        "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s"]
    code, out, _ = run(capsys, "describe", "node/control-plane", DEMO)
    assert "Taints:" in out and out.split("Taints:")[1].split("\n")[0].strip() == (
        "node-role.kubernetes.io/control-plane:NoSchedule")


@pytest.mark.parametrize("toleration, text", [
    ({"key": "", "operator": "Exists", "value": "", "effect": ""}, "op=Exists"),
    ({"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}, "gpu=yes:NoSchedule"),
    ({"key": "k", "operator": "Exists", "value": "", "effect": "", "tolerationSeconds": 60}, "k op=Exists for 60s"),
])
def test_a_toleration_reads_as_kubectl_describe_prints_it(toleration, text):
    from engine.kube.tables import toleration_text

    assert toleration_text(toleration) == text


def test_bad_manifests_print_their_golden_diagnostics(capsys, monkeypatch):
    # a lone surrogate escape (JSON stream and YAML), a quoted `+3`, requests above their
    # limits named in Kubernetes' canonical text
    monkeypatch.chdir(ROOT)
    bad = sorted(p.relative_to(ROOT).as_posix() for p in (GOLDEN / "bad").iterdir())
    code, out, err = run(capsys, "check", "--no-std", *bad)
    assert (code, out) == (1, "")
    golden("check_bad_manifests.txt", err)


def test_a_kind_without_a_table_of_its_own_has_age_too(capsys):
    code, out, _ = run(capsys, "get", "serviceaccount", "-A", str(ROOT / "specs" / "shop.konv"))
    assert code == 0
    golden("get_sa.txt", out)  # kubectl's NAME SECRETS AGE, SECRETS 0 as in Kubernetes 1.24+
    code, out, _ = run(capsys, "get", "ipblock", "-o", "wide", DEMO)  # the generic table: AGE after the fields
    assert out.splitlines()[0].split() == ["NAME", "POOL", "CIDR", "NODE", "AGE"]


def test_describe_sorts_several_taints_by_effect_then_key_as_kubectl_does(capsys, tmp_path):
    (tmp_path / "n.yaml").write_text(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n  taints:\n"
        "  - {key: zone, value: b, effect: NoSchedule}\n  - {key: gpu, effect: PreferNoSchedule}\n"
        "  - {key: dedicated, value: db, effect: NoSchedule}\n  - {key: maintenance, effect: NoExecute}\n"
        "status: {allocatable: {cpu: '1', memory: 1Gi}}\n")
    code, out, _ = run(capsys, "describe", "node/n", str(tmp_path / "n.yaml"))
    assert code == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Taints:"))
    golden("describe_node_taints.txt", "\n".join(lines[at:at + 4]) + "\n")


def test_tab_indented_json_is_read_by_every_command(capsys, tmp_path):
    (tmp_path / "ns.json").write_text('{\n\t"apiVersion": "v1",\n\t"kind": "Namespace",\n\t"metadata": {\n\t\t"name": "tabs"\n\t}\n}\n')
    code, out, _ = run(capsys, "get", "ns", "tabs", str(tmp_path))
    assert code == 0 and out.splitlines()[1].split()[:2] == ["tabs", "Active"]


def test_konverges_own_output_in_the_spec_directory_is_refused_with_the_cause(capsys, tmp_path):
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    code, out, _ = run(capsys, "reconcile", str(tmp_path), "-o", "json")
    assert code == 0
    (tmp_path / "out.json").write_text(out)
    code, _, err = run(capsys, "reconcile", str(tmp_path))
    assert code == 1 and "out.json:1:1: error[E303]: this document has no `kind`" in err
    assert "= hint: this is Konverge's own output (`converged`, `objects`), not a manifest: write it outside " \
           "the spec directory" in err


def test_check_reports_an_empty_directory_and_the_other_files_errors_at_once(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: 3}\n")
    code, _, err = run(capsys, "check", str(tmp_path / "empty"), str(tmp_path / "bad.yaml"))
    assert code == 1
    assert "bad.yaml:3:18: error[E302]" in err
    assert f"{tmp_path / 'empty'}: error[E001]: this directory holds no .konv, .yaml, .yml or .json file\n" \
           "  = hint: name the files to read, or a directory that holds specs or manifests" in err


def test_an_error_without_a_place_reads_the_same_as_text_and_rendered():
    from engine.errors import Diagnostic, KonvergeError, render

    placeless = Diagnostic("E203", "get needs SPEC files or --data-dir")
    assert str(KonvergeError(placeless)) == "get needs SPEC files or --data-dir"
    assert render([placeless]).startswith("error[E203]: get needs SPEC files")
    placed = Diagnostic("E001", "cannot read this file", file="a.yaml")
    assert str(KonvergeError(placed)) == "a.yaml: cannot read this file"
    assert render([placed]).startswith("a.yaml: error[E001]")


SHOP = str(ROOT / "specs" / "shop.konv")


def test_get_selects_by_label_selector_in_every_output_format_and_across_namespaces(capsys):
    code, out, _ = run(capsys, "get", "pods", "-A", "-l", "tier in (api,db),app=shop", SHOP, "-o", "wide")
    assert code == 0
    golden("get_pods_selector.txt", out)
    names = run(capsys, "get", "pods", "-A", "--selector", "tier in (api,db),app=shop", SHOP, "-o", "name")[1]
    assert names == "".join(f"pod/{line.split()[1]}\n" for line in out.splitlines()[1:])
    for output in ("json", "yaml"):
        shown = run(capsys, "get", "pods", "-n", "shop", "-l", "tier notin (api,db),!missing", SHOP, "-o", output)[1]
        assert "frontend-" in shown and "api-" not in shown and "db-" not in shown
    code, out, _ = run(capsys, "get", "pods", "-l", "app=shop", SHOP)  # default namespace: none there
    assert (code, out) == (0, "No resources found in default namespace.\n")


BAD_REQUEST = 'error[E204]: Error from server (BadRequest): Unable to find "{}" that match label selector {}, ' \
              'field selector "": '


@pytest.mark.parametrize("argv, message", [
    (["pods", "-l", "tier in api"], BAD_REQUEST.format("/v1, Resource=pods", '"tier in api"')
     + "unable to parse requirement: found 'api' expected: '('\n"),
    (["deploy,rs", "-l", " tier=api, "], BAD_REQUEST.format("apps/v1, Resource=deployments", '"tier=api,"')
     + "found '', expected: identifier after ','\n"),  # the first kind asked for; the selector trimmed
    (["hpa", "-l", "app:x"], BAD_REQUEST.format("autoscaling/v2, Resource=horizontalpodautoscalers", '"app:x"')
     + 'unable to parse requirement: <nil>: Invalid value: "app:x": name part must consist of'),
    (["routes", "-l", "a=\x1b"], BAD_REQUEST.format("routes", '"a=\\x1b"')  # a kind Kubernetes does not serve
     + 'unable to parse requirement: values[0][a]: Invalid value: "\\x1b": a valid label must be'),
])
def test_a_bad_selector_is_the_api_servers_bad_request_in_kubectls_words(capsys, argv, message):
    code, out, err = run(capsys, "get", *argv, SHOP)
    assert (code, out) == (1, "") and message in err and "Traceback" not in err and "\x1b" not in err


def test_a_bad_selector_is_refused_before_the_run(capsys, monkeypatch):
    import engine.fixpoint

    monkeypatch.setattr(engine.fixpoint, "reconcile", lambda *a, **k: pytest.fail("reconciled"))
    code, _, err = run(capsys, "get", "pods", "-l", "a in x", SHOP)
    assert code == 1 and "error[E204]" in err


@pytest.mark.parametrize("argv", [["pods", "web", "-l", "tier=api"], ["pod/web", "--selector", "!tier"]])
def test_a_name_with_a_selector_is_a_usage_error_before_anything_is_read(capsys, argv):
    code, out, err = run(capsys, "get", *argv, "missing.konv")
    assert (code, out) == (2, "")
    assert err == "error[E203]: name cannot be provided when a selector is specified\n" \
                  "  = hint: drop the NAME or the -l SELECTOR\n"


def test_select_refuses_a_name_with_a_selector_to_a_python_caller_too():
    from engine.check import load_program
    from engine.errors import KonvergeError
    from engine.kube.labels import parse_selector
    from engine.kube.tables import select

    program = load_program([SHOP])
    with pytest.raises(KonvergeError) as e:
        select(program, [], "pods", "web", selector=parse_selector("tier=api"))
    assert (e.value.exit_code, e.value.diagnostics[0].code) == (2, "E203")
    assert select(program, [], "ns", None, selector=parse_selector("tier=api"))[1] == []


def test_an_empty_selector_is_none_as_kubectl_trims_it_away(capsys):
    named = run(capsys, "get", "ns", "shop", SHOP)
    assert named[0] == 0
    assert run(capsys, "get", "ns", "shop", "-l", "", SHOP) == named
    assert run(capsys, "get", "ns", "shop", "-l", " \t", SHOP) == named
    assert run(capsys, "get", "ns", "-l", "", SHOP) == run(capsys, "get", "ns", SHOP)


def test_get_name_output_is_kubectls_resource_group_slash_name(capsys):
    code, out, _ = run(capsys, "get", "deploy,rs,hpa,svc,po,ns", "-A", "-o", "name",
                       str(ROOT / "specs" / "hpa.konv"))
    assert code == 0
    golden("get_name_groups.txt", out)
    kinds = {line.split("/")[0] for line in out.splitlines()}
    assert {"deployment.apps", "replicaset.apps", "horizontalpodautoscaler.autoscaling", "service", "pod",
            "namespace"} == kinds


def test_get_events_has_kubectls_columns_last_seen_on_the_virtual_clock(capsys):
    code, out, _ = run(capsys, "get", "events", DEMO, "--scenario", "lose a worker")
    assert code == 0
    golden("get_events.txt", out)
    head, *rows = out.splitlines()
    assert head.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]  # no NAME column
    assert rows and all(r.split()[3].split("/")[0] in ("pod", "node") for r in rows)
    wide = run(capsys, "get", "ev", "-A", "-o", "wide", DEMO, "--scenario", "lose a worker")[1]
    golden("get_events_wide.txt", wide)
    assert wide.splitlines()[0].split()[-5:] == ["MESSAGE", "FIRST", "SEEN", "COUNT", "NAME"]


def test_a_kind_may_be_named_with_its_group_as_kubectl_takes_it(capsys):
    # kubectl get statefulsets.apps / jobs.batch: the resource and its API group; the core
    # group's kinds have none, so pods.apps is an unknown resource type.
    assert run(capsys, "get", "statefulsets.apps", "-A", "-o", "name", MANIFESTS)[1] == "statefulset.apps/postgres\n"
    assert run(capsys, "get", "jobs.batch", "-A", "-o", "name", MANIFESTS)[1] == "job.batch/db-migrate\n"
    code, _, err = run(capsys, "get", "pods.apps", "-A", MANIFESTS)
    assert code == 1 and 'the server doesn\'t have a resource type "pods.apps"' in err
