"""Container probes (rules/kubelet.konv): readiness and liveness on the virtual clock, their faults
(rules/faults.konv), their validation (rules/admission.konv), manifests and views.

The timing is upstream's prober worker (pkg/kubelet/prober/worker.go) with its jitter pinned: the
first probe when initialDelaySeconds have passed since the container started, then one each
periodSeconds; an outcome that changes at t is seen by the first probe after t; a result changes
after successThreshold (failureThreshold) probes in a row agree.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import KonvergeError
from engine.fixpoint import reconcile
from engine.kube.manifests import loads
from engine.kube.tables import pod_ready
from tests.kube import node, program_of, run


def pod(name, readiness="", liveness="", extra="", labels='app: "web"'):
    probes = (f"readinessProbe {{ {readiness} }}" if readiness else "") + (
        f"  livenessProbe {{ {liveness} }}" if liveness else "")
    return (f'pod {name} {{ labels {{ {labels} }} node: "n1" {extra}\n'
            f'  container main {{ image: "web:1"  port http {{ containerPort: 8080 }}  {probes} }} }}\n')


SERVICE = 'service web { selector { app: "web" }  port http { port: 80  targetPort: 8080 } }\n'
HTTP = 'httpGet { path: "/healthz"  port: 8080 }'


def ready_clocks(c, name):
    """The virtual times at which the kubelet turned the pod ready (True) or not ready (False)."""
    return [(w.clock, w.rule == "ready") for w in c.writes(kind="Pod", name=name, verb="update")
            if w.rule in ("ready", "not_ready")]


def endpoint_pods(c, field="addresses"):
    return [a["pod"] for a in c.get("Endpoints", "web")[field]]


def events_of(c, name):
    return sorted((e["type"], e["reason"], e["message"]) for e in c.of("Event") if e["object"] == f"Pod/default/{name}")


def test_pod_with_a_readiness_probe_is_not_ready_before_its_initial_delay():
    spec = node("n1") + SERVICE + pod("a", f"{HTTP}  initialDelaySeconds: 15  periodSeconds: 5")
    early = run(spec, until=10)
    a = early.get("Pod", "a")
    assert a["phase"] == "Running" and a["containers"][0]["state"] == "Running" and not a["ready"]
    assert endpoint_pods(early) == [] and endpoint_pods(early, "notReadyAddresses") == ["a"]
    assert pod_ready(a) == (0, 1)
    # Its first probe is at 15 s (initialDelaySeconds after the container started at 0 s).
    c = run(spec, history=True)
    assert ready_clocks(c, "a") == [(15, True)]
    assert c.get("Pod", "a")["readySince"] == 15 and endpoint_pods(c) == ["a"]
    assert pod_ready(c.get("Pod", "a")) == (1, 1)


def test_readiness_probe_without_delay_is_ready_as_the_container_starts():
    # UpdatePodStatus triggers a run of a readiness probe not yet Success: no period to wait.
    c = run(node("n1") + pod("a", HTTP), history=True)
    assert c.get("Pod", "a")["ready"] and c.get("Pod", "a")["readySince"] == 0


def test_success_threshold_needs_that_many_passing_probes_in_a_row():
    c = run(node("n1") + pod("a", f"{HTTP}  initialDelaySeconds: 5  successThreshold: 3"), history=True)
    assert ready_clocks(c, "a") == [(25, True)]  # probes at 5, 15 and 25 s


def test_readiness_failure_leaves_endpoints_but_does_not_restart():
    spec = node("n1") + SERVICE + pod("a", HTTP) + pod("b", HTTP) + 'scenario "s" { at 1m: unready pod a }'
    c = run(spec, history=True)
    a = c.get("Pod", "a")
    # Ready at its first probe, as it starts; probes every 10 s: the one at 60 s ran before the
    # fault; 70, 80 and 90 s fail.
    assert ready_clocks(c, "a") == [(0, True), (90, False)]
    assert not a["ready"] and a["phase"] == "Running" and a["reason"] == ""
    assert a["containers"][0]["state"] == "Running" and a["containers"][0]["restarts"] == 0
    assert a["containers"][0]["startedAt"] == 0
    assert endpoint_pods(c) == ["b"] and endpoint_pods(c, "notReadyAddresses") == ["a"]
    assert events_of(c, "a") == [("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                                                          "statuscode: 500")]
    assert c.get("Pod", "b")["ready"] and events_of(c, "b") == []


def test_readiness_recovers_after_success_threshold_passing_probes():
    spec = (node("n1") + SERVICE + pod("a", f"{HTTP}  successThreshold: 2")
            + 'scenario "s" { at 1m: unready pod a\n at 2m: heal pod a }')
    c = run(spec, history=True)
    # ready at 10 s (probes at 0 and 10 s), not ready at 90 s, ready again at 140 s (130 and 140 s)
    assert ready_clocks(c, "a") == [(10, True), (90, False), (140, True)]
    assert endpoint_pods(c) == ["a"] and c.of("Event") == []
    assert c.get("Pod", "a")["containers"][0]["restarts"] == 0


def test_readiness_failure_shorter_than_the_threshold_changes_nothing():
    spec = node("n1") + pod("a", HTTP) + 'scenario "s" { at 1m: unready pod a\n at 85s: heal pod a }'
    c = run(spec, history=True)
    assert ready_clocks(c, "a") == [(0, True)] and c.get("Pod", "a")["ready"]


def test_probe_faults_leave_a_pod_without_probes_alone():
    c = run(node("n1") + SERVICE + pod("a") + 'scenario "s" { at 1m: unready pod a\n at 2m: unhealthy pod a }')
    a = c.get("Pod", "a")
    assert a["ready"] and a["containers"][0]["restarts"] == 0 and endpoint_pods(c) == ["a"]


def kills_and_restarts(c, name):
    kills = [w.clock for w in c.writes(kind="Pod", name=name, verb="update", rule="probe")
             if w.actor == "kubelet"]
    restarts = [w.clock for w in c.writes(kind="Pod", name=name, verb="update", rule="restart")]
    return kills, restarts


def test_liveness_failure_restarts_the_container_after_failure_threshold_periods_with_back_off():
    spec = node("n1") + pod("a", liveness=HTTP) + 'scenario "s" { at 1m: unhealthy pod a }'
    c = run(spec, until=300, history=True)
    kills, restarts = kills_and_restarts(c, "a")
    # Failing probes at 70, 80, 90 s: killed at 90 s and restarted at once (no back-off entry yet);
    # each new process is probed from its start: killed 20 s later (its probes at 0, 10, 20 s),
    # restarted after 10, 20, 40 s of CrashLoopBackOff.
    assert kills[:4] == [90, 110, 140, 180] and restarts[:4] == [90, 120, 160, 220]
    a = c.get("Pod", "a")
    assert a["phase"] == "Running" and a["containers"][0]["restarts"] == len(restarts)
    assert ("Normal", "Killing", "Container main failed liveness probe, will be restarted") in events_of(c, "a")


def test_liveness_killed_container_exits_137_and_waits_in_crash_loop_back_off():
    spec = node("n1") + pod("a", liveness=HTTP) + 'scenario "s" { at 1m: unhealthy pod a }'
    c = run(spec, until=115)  # killed the second time at 110 s, restarts at 120 s
    a = c.get("Pod", "a")
    main = a["containers"][0]
    assert main["state"] == "Terminated" and main["exitCode"] == 137 and main["backoffUntil"] == 120
    assert a["reason"] == "CrashLoopBackOff" and not a["ready"]
    assert events_of(c, "a") == [
        ("Normal", "Killing", "Container main failed liveness probe, will be restarted"),
        ("Warning", "BackOff", "Back-off restarting failed container main in pod a_default")]
    running = run(spec, until=105)
    assert ("Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500") \
        in events_of(running, "a")


def test_liveness_failure_under_restart_policy_never_leaves_the_pod_failed():
    spec = (node("n1") + pod("a", liveness="tcpSocket { port: 8080 }", extra='restartPolicy: "Never"')
            + 'scenario "s" { at 1m: unhealthy pod a }')
    c = run(spec)
    a = c.get("Pod", "a")
    assert a["phase"] == "Failed" and not a["ready"]
    assert a["containers"][0]["exitCode"] == 137 and a["containers"][0]["restarts"] == 0
    assert ("Normal", "Killing", "Container main failed liveness probe") in events_of(c, "a")


def test_liveness_failure_ends_when_the_probe_passes_again():
    spec = node("n1") + pod("a", liveness=HTTP) + 'scenario "s" { at 1m: unhealthy pod a\n at 100s: heal pod a }'
    c = run(spec)
    a = c.get("Pod", "a")
    assert a["ready"] and a["containers"][0]["restarts"] == 1 and c.of("Event") == []


def test_a_restarted_container_is_probed_for_readiness_from_its_new_start():
    # A liveness kill restarts the process: its readiness starts over at Failure and passes again
    # initialDelaySeconds after the restart.
    spec = (node("n1") + pod("a", f"{HTTP}  initialDelaySeconds: 15", liveness=HTTP)
            + 'scenario "s" { at 1m: unhealthy pod a\n at 95s: heal pod a }')
    c = run(spec, history=True)
    assert ready_clocks(c, "a") == [(15, True), (90, False), (105, True)]


SPEC = (node("n1") + SERVICE + pod("a", f"{HTTP}  initialDelaySeconds: 5", liveness=HTTP)
        + pod("b", f"{HTTP}  periodSeconds: 3  failureThreshold: 2") + pod("c")
        + 'scenario "s" { at 1m: unready pod b\n at 1m: unhealthy pod a\n at 3m: heal pod a\n'
          ' at 200s: heal pod b }')


def test_probes_reach_the_same_state_in_any_firing_order_and_incrementally_as_naively():
    program = program_of(SPEC)
    scenario = program.scenarios["s"]
    fixed = reconcile(program, scenario=scenario)
    assert fixed.converged and not fixed.objects == []
    for seed in range(3):
        assert content(reconcile(program, scenario=scenario, order="random", seed=seed)) == content(fixed)
    assert content(reconcile(program, scenario=scenario, naive=True)) == content(fixed)
    b = next(o for o in fixed.objects if o["kind"] == "Pod" and o["name"] == "b")
    assert b["ready"] and b["containers"][0]["readinessProbe"]["passed"]


def content(result):
    """The final state without the bookkeeping that differs between equal states."""
    return [{k: v for k, v in o.items() if k not in ("resourceVersion", "createdRevision")} for o in result.objects]


@settings(max_examples=25, deadline=None)
@given(delay=st.integers(0, 30), period=st.integers(1, 20), success=st.integers(1, 3),
       failure=st.integers(1, 4), fault=st.integers(20, 100))
def test_readiness_turns_as_the_prober_counts_probes(delay, period, success, failure, fault):
    # The model: probes at delay + k·period; ready at the success-th; a failure at `fault` seen
    # from the first probe after it, not ready at the failure-th failing one.
    spec = (node("n1") + pod("a", f"exec: [\"true\"]  initialDelaySeconds: {delay}  periodSeconds: {period}  "
                                  f"successThreshold: {success}  failureThreshold: {failure}")
            + f'scenario "s" {{ at {fault}s: unready pod a }}')
    c = run(spec, history=True)
    ready_at = delay + (success - 1) * period
    first_failing = delay if fault < delay else delay + ((fault - delay) // period + 1) * period
    unready_at = first_failing + (failure - 1) * period
    # A probe at the fault's instant ran before it; a pod failing before it was ready never is.
    expected = [(ready_at, True), (unready_at, False)] if ready_at <= fault else []
    assert ready_clocks(c, "a") == expected


def test_probes_are_validated_as_kubernetes_validates_them(capsys, tmp_path):
    cases = {
        "livenessProbe { httpGet { port: 8080 }  successThreshold: 2 }":
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "readinessProbe { periodSeconds: 5 }":
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        'readinessProbe { exec: ["true"]  tcpSocket { port: 80 } }':
            "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        "readinessProbe { tcpSocket { port: 0 } }":
            "spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, "
            "inclusive",
        'readinessProbe { tcpSocket { portName: "Http" } }':
            'spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: "Http": must contain only '
            "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "readinessProbe { exec: [] }": "spec.containers[0].readinessProbe.exec.command: Required value",
        'readinessProbe { httpGet { port: 80  scheme: "FTP" } }':
            'spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: '
            '"HTTP", "HTTPS"',
        "readinessProbe { grpc { port: 9000 }  periodSeconds: -1 }":
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
    }
    for i, (probe, message) in enumerate(cases.items()):
        spec = tmp_path / f"bad{i}.konv"
        spec.write_text(f'pod p {{ container web {{ image: "web:1"  {probe} }} }}\n')
        assert main(["reconcile", str(spec)]) == 1
        assert f'Pod "p" is invalid: {message}' in capsys.readouterr().err, probe
    template = tmp_path / "deploy.konv"
    template.write_text('deployment w { replicas: 1  template { labels { app: "w" }\n'
                        '  container web { image: "web:1"  livenessProbe { exec: ["true"]  successThreshold: 3 } } } }\n')
    assert main(["reconcile", str(template)]) == 1
    assert ('Deployment "w" is invalid: spec.template.spec.containers[0].livenessProbe.successThreshold: '
            "Invalid value: 3: must be 1") in capsys.readouterr().err


MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 0
    readinessProbe:
      tcpSocket: {port: http}
      initialDelaySeconds: 5
      failureThreshold: 1
    startupProbe:
      exec: {command: [cat, /tmp/ok]}
"""


def test_manifest_probes_are_read_with_kubernetes_defaults_and_startup_probes_are_warned_about():
    m = loads(MANIFEST, "p.yaml")
    (_, pod_obj), = m.objects
    c = pod_obj["containers"][0]
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080}}  # periodSeconds 0: the default
    assert c["readinessProbe"] == {"tcpSocket": {"portName": "http"}, "initialDelaySeconds": 5,
                                   "failureThreshold": 1}
    assert [(w.code, w.message, str(w.span)) for w in m.warnings] == [
        ("W302", "field `spec.containers[0].startupProbe` is not supported by Konverge; ignored", "p.yaml:16:5")]


def test_manifest_probe_is_refused_with_the_kubernetes_message_at_its_document(capsys, tmp_path):
    path = tmp_path / "web.yaml"
    path.write_text(MANIFEST.replace("periodSeconds: 0", "successThreshold: 2"))
    assert main(["get", "pods", str(path)]) == 1
    err = capsys.readouterr().err
    assert (f'{path}:2:7: error[E200]: Pod "web" is invalid: spec.containers[0].livenessProbe.successThreshold: '
            "Invalid value: 2: must be 1") in err and "Traceback" not in err


def test_describe_pod_shows_its_probes_and_unhealthy_events_as_kubectl(capsys, tmp_path):
    spec = tmp_path / "p.konv"
    spec.write_text(node("n1") + pod("a", f"{HTTP}  initialDelaySeconds: 5", liveness='exec: ["cat", "/tmp/ok"]')
                    + pod("b", "tcpSocket { port: 8080 }  periodSeconds: 5")
                    + 'scenario "s" { at 1m: unready pod a }')
    assert main(["describe", "pod/a", str(spec), "--scenario", "s"]) == 0
    out = capsys.readouterr().out
    assert "    Liveness:      exec [cat /tmp/ok] delay=0s timeout=1s period=10s #success=1 #failure=3\n" in out
    assert "    Readiness:     http-get http://:8080/healthz delay=5s timeout=1s period=10s #success=1 #failure=3\n" \
        in out
    assert "Warning   Unhealthy   0s   kubelet   Readiness probe failed: HTTP probe failed with statuscode: 500" in out
    assert main(["describe", "pod/b", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "    Readiness:     tcp-socket :8080 delay=0s timeout=1s period=5s #success=1 #failure=3\n" in out
    assert "Liveness" not in out
    assert main(["get", "pods", str(spec), "--scenario", "s"]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["a", "0/1", "Running"], ["b", "1/1", "Running"]]


def test_verify_holds_on_a_spec_with_probes_and_leaves_the_liveness_loop_out(capsys, tmp_path):
    # A liveness probe failing on every process is a crash loop: alone it never settles, so the
    # default set of faults leaves `unhealthy` out, as it does `crash`; `unready` and `heal` settle.
    spec = tmp_path / "probes.konv"
    spec.write_text(node("n1") + SERVICE + pod("a", HTTP, liveness=HTTP) + pod("b", HTTP))
    code = main(["verify", str(spec), "--examples", "5", "--seed", "0", "--no-db", "--faults", "unready,heal"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "all properties hold on 5 example(s)" in out
    code = main(["verify", str(spec), "--examples", "3", "--seed", "0", "--no-db"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "fault unhealthy (alone it never settles" in err


def test_daemonset_with_an_invalid_probe_is_refused_itself(capsys, tmp_path):
    # ValidateDaemonSet → ValidatePodTemplateSpec: the DaemonSet is invalid, not its pods.
    spec = tmp_path / "ds.konv"
    spec.write_text(node("n1") + 'daemonset a { template { labels { app: "a" }\n'
                    '  container m { image: "x"  livenessProbe { httpGet { port: 80 }  successThreshold: 3 } } } }\n')
    assert main(["reconcile", str(spec)]) == 1
    err = capsys.readouterr().err
    assert ('DaemonSet "a" is invalid: spec.template.spec.containers[0].livenessProbe.successThreshold: '
            "Invalid value: 3: must be 1") in err and "Pod " not in err


def test_killing_event_is_only_for_a_container_the_liveness_probe_killed():
    # The container exits by itself at 65 s (runFor) and restarts at once; the liveness probe
    # failing since 60 s kills nothing before 85 s (the new process's probes at 65, 75, 85 s).
    spec = (node("n1") + pod("a", liveness='exec: ["true"]').replace("port http", "runFor: 65s  port http")
            + 'scenario "s" { at 60s: unhealthy pod a }')
    early = run(spec, until=70)
    assert early.get("Pod", "a")["containers"][0]["restarts"] == 1
    assert [e for e in events_of(early, "a") if e[1] == "Killing"] == []
    killed = run(spec, until=86)
    assert ("Normal", "Killing", "Container main failed liveness probe, will be restarted") in events_of(killed, "a")
    # Healed and failing again: the old kill is forgotten until the probe kills again.
    again = run(spec.replace("at 60s: unhealthy pod a", "at 60s: unhealthy pod a\n at 87s: heal pod a\n"
                                                         " at 88s: unhealthy pod a"), until=89)
    assert [e for e in events_of(again, "a") if e[1] == "Killing"] == []


def test_a_deleting_pods_liveness_probe_kills_nothing():
    # worker.go: "Pod deletion requested, setting probe result to success". The taint manager
    # evicts the pod at 90 s, the instant its liveness probe (failing since 60 s) would kill it:
    # in whatever order the rules fire, nothing kills the container once the pod is deleting.
    spec = (node("n1", extra='taints: [{key: "maint", effect: "NoExecute"}]')
            + 'pod a { node: "n1"\n  tolerations: [{key: "maint", operator: "Exists", effect: "NoExecute", '
              'tolerationSeconds: 90}]\n'
            + f'  container main {{ image: "web:1"  livenessProbe {{ {HTTP} }} }} }}\n'
            + 'scenario "s" { at 1m: unhealthy pod a }')
    program = program_of(spec)
    for seed in range(30):
        r = reconcile(program, scenario=program.scenarios["s"], order="random", seed=seed)
        rules = [w.rule for w in r.trace if w.kind == "Pod" and w.name == "a" and w.clock == 90]
        assert "evict" in rules and "probe" not in rules[rules.index("evict"):], (seed, rules)


def test_probe_on_a_port_name_the_container_lacks_errors_and_its_result_is_thrown_away():
    # prober.go runProbe: ResolveContainerPort fails (strconv.Atoi of the name); worker.go doProbe
    # throws the result away: readiness stays at its initial Failure, liveness never kills.
    spec = (node("n1") + SERVICE
            + pod("a", 'httpGet { path: "/r"  portName: "nope" }', liveness='tcpSocket { portName: "gone" }  '
                  'failing: true'))
    c = run(spec, until=120)
    a = c.get("Pod", "a")
    assert not a["ready"] and a["containers"][0]["restarts"] == 0 and a["containers"][0]["state"] == "Running"
    assert endpoint_pods(c) == [] and endpoint_pods(c, "notReadyAddresses") == ["a"]
    assert events_of(c, "a") == [
        ("Warning", "Unhealthy", 'Liveness probe errored and resulted in unknown state: strconv.Atoi: parsing "gone": '
                                 "invalid syntax"),
        ("Warning", "Unhealthy", 'Readiness probe errored and resulted in unknown state: strconv.Atoi: parsing "nope": '
                                 "invalid syntax")]
    # A name the container has resolves: the probe runs (and here passes).
    ok = run(node("n1") + pod("b", 'httpGet { path: "/r"  portName: "http" }'))
    assert ok.get("Pod", "b")["ready"] and events_of(ok, "b") == []


def test_tcp_probe_failure_names_the_resolved_port_and_its_host():
    # prober.go: the TCP probe dials net.JoinHostPort(host or the pod's IP, the resolved port).
    spec = (node("n1") + pod("a", 'tcpSocket { portName: "http" }  failing: true')
            + pod("b", 'tcpSocket { port: 5432  host: "10.1.2.3" }  failing: true')
            + pod("c", 'tcpSocket { port: 5432  host: "::1" }  failing: true'))
    c = run(spec, until=30)
    ip = c.get("Pod", "a")["ip"]
    assert events_of(c, "a") == [("Warning", "Unhealthy", f"Readiness probe failed: dial tcp {ip}:8080: connect: "
                                                          "connection refused")]
    assert events_of(c, "b") == [("Warning", "Unhealthy", "Readiness probe failed: dial tcp 10.1.2.3:5432: connect: "
                                                          "connection refused")]
    assert events_of(c, "c") == [("Warning", "Unhealthy", "Readiness probe failed: dial tcp [::1]:5432: connect: "
                                                          "connection refused")]


def test_manifest_grpc_probe_without_a_port_is_refused_as_port_zero(capsys, tmp_path):
    # Go decodes the missing int32 as 0, which validateProbe refuses (no "Required value").
    path = tmp_path / "grpc.yaml"
    path.write_text(MANIFEST.replace("tcpSocket: {port: http}", "grpc: {}"))
    assert main(["get", "pods", str(path)]) == 1
    assert ('Pod "web" is invalid: spec.containers[0].readinessProbe.grpc.port: Invalid value: 0: must be between 1 '
            "and 65535, inclusive") in capsys.readouterr().err


INIT = """apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  initContainers:
  - name: i
    image: x
    livenessProbe: {exec: {command: [ok]}}
  containers:
  - name: m
    image: x
"""


def test_manifest_plain_init_container_probe_is_refused_and_a_sidecars_warned_about():
    # validateInitContainers forbids probes on an init container without restartPolicy=Always;
    # a sidecar's probes are valid upstream, but not modelled here.
    with pytest.raises(KonvergeError) as refused:
        loads(INIT, "p.yaml")
    assert [(d.code, d.message, str(d.span)) for d in refused.value.diagnostics] == [
        ("E302", "`spec.initContainers[0].livenessProbe`: Forbidden: may not be set for init containers without "
                 "restartPolicy=Always", "p.yaml:8:5")]
    m = loads(INIT.replace("    livenessProbe", "    restartPolicy: Always\n    readinessProbe"), "p.yaml")
    assert [(w.code, w.message) for w in m.warnings] == [
        ("W302", "field `spec.initContainers[0].readinessProbe` is not supported by Konverge; ignored")]


def test_an_outcome_flipped_back_between_two_probes_keeps_the_failure_streak():
    # Probes at 70 and 80 s fail; healed at 85 s and failing again at 86 s, before the probe at
    # 90 s: no probe saw the heal, so the streak goes on and 90 s is the third failure in a row.
    flip = 'scenario "s" { at 61s: unready pod a\n at 85s: heal pod a\n at 86s: unready pod a }'
    c = run(node("n1") + pod("a", HTTP) + flip, history=True)
    assert ready_clocks(c, "a") == [(0, True), (90, False)]
    # A heal a probe saw (at 90 s) starts the streak over: failing again from the probe at 100 s.
    seen = 'scenario "s" { at 61s: unready pod a\n at 85s: heal pod a\n at 91s: unready pod a }'
    c = run(node("n1") + pod("a", HTTP) + seen, history=True)
    assert ready_clocks(c, "a") == [(0, True), (120, False)]


def test_describe_puts_a_slash_before_an_http_probe_path_without_one(capsys, tmp_path):
    # kubectl's DescribeProbe prints a url.URL, whose String() adds the "/" beside a host.
    spec = tmp_path / "p.konv"
    spec.write_text(node("n1") + pod("a", 'httpGet { path: "healthz"  port: 8080  host: "::1" }'))
    assert main(["describe", "pod/a", str(spec)]) == 0
    assert "    Readiness:     http-get http://[::1]:8080/healthz delay=0s" in capsys.readouterr().out
