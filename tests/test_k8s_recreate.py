"""A Deployment's Recreate strategy (rules/controllers.konv, rules/admission.konv), as upstream's
pkg/controller/deployment/recreate.go and its recreate_test.go: every old ReplicaSet goes to 0,
the new one is created and scaled up only once no old pod runs (terminating ones count)."""

import json

from tests.kube import deployment, node, run

NEW_IMAGE = ('update deployment web {\n    template { labels { app: "web" }  '
             'container main { image: "web:2"  cpu: 100m  memory: 64Mi } }\n  }')


def recreate(events: str, replicas: int = 3, nodes: str = node("n1", cpu="16"), **options):
    spec = nodes + deployment("web", replicas=replicas).replace("deployment web {",
                                                                'deployment web { strategy: "Recreate"')
    return run(spec + f'scenario "s" {{\n  {events}\n}}\n', history=True, **options)


def images(pods):
    return sorted(p["containers"][0]["image"] for p in pods)


def live(pods):
    return [p for p in pods if not p["deleting"] and p["phase"] not in ("Succeeded", "Failed")]


def test_recreate_creates_no_new_pod_before_every_old_one_is_gone():
    c = recreate(f"at 1m: {NEW_IMAGE}")
    seen_both = []
    for revision, objects in c.states():
        pods = [o for o in objects if o["kind"] == "Pod"]
        old = [p for p in pods if p["containers"][0]["image"] == "web:1"]
        new = [p for p in pods if p["containers"][0]["image"] == "web:2"]
        if old and new:
            seen_both.append(revision)
        sets = [o for o in objects if o["kind"] == "ReplicaSet"]
        if old and any(rs["template"]["containers"][0]["image"] == "web:2" for rs in sets):
            seen_both.append(revision)  # not even the new set exists while an old pod does
    assert seen_both == []


def test_recreate_scales_every_old_set_to_zero_in_one_write():
    c = recreate(f"at 1m: {NEW_IMAGE}")
    downs = c.writes(verb="update", kind="ReplicaSet", rule="recreate_scale_down_old")
    assert len(downs) == 1
    assert c.writes(rule="scale_down_old") == [] and c.writes(rule="clean_up_unhealthy_old") == []


def test_a_recreate_rollout_ends_with_the_new_set_at_replicas_and_the_old_at_zero():
    c = recreate(f"at 1m: {NEW_IMAGE}")
    old, new = sorted(c.of("ReplicaSet"), key=lambda r: r["revision"])
    assert (old["replicas"], new["replicas"], new["revision"]) == (0, 3, 2)
    assert c.get("Deployment", "web")["revision"] == 2
    assert images(live(c.pods("web"))) == ["web:2"] * 3 and all(p["ready"] for p in live(c.pods("web")))


def test_a_recreate_deployment_scales_its_current_set_directly():
    c = recreate("at 1m: scale deployment web replicas = 5")
    assert len(c.of("ReplicaSet")) == 1 and c.of("ReplicaSet")[0]["replicas"] == 5
    assert len(live(c.pods("web"))) == 5


def test_an_old_pod_stuck_terminating_on_a_lost_node_holds_the_new_pods_back():
    # The node's kubelet stops: after the 300 s unreachable toleration the old pods are evicted,
    # and the update at 10m scales their set to 0, but they stay Terminating (nothing can confirm
    # their containers stopped), so oldPodsRunning holds the rollout: no new set, no new pod.
    # The old pods are pinned to n1; the new template is not, so n2 could run the new pods at once.
    nodes = node("n1", cpu="16", extra='labels { pool: "a" }') + node("n2", cpu="16")
    spec_pin = 'nodeSelector { pool: "a" }'
    c = run(nodes + deployment("web", replicas=2, extra=spec_pin).replace(
        "deployment web {", 'deployment web { strategy: "Recreate"')
        + f'scenario "s" {{\n  at 30s: fail node n1\n  at 10m: {NEW_IMAGE}\n}}\n', until=1800)
    pods = c.pods("web")
    assert images(pods) == ["web:1", "web:1"] and all(p["deleting"] for p in pods)
    assert [rs["replicas"] for rs in c.of("ReplicaSet")] == [0]


def test_the_held_rollout_goes_on_once_the_node_returns_and_its_old_pods_are_gone():
    nodes = node("n1", cpu="16")
    c = run(nodes + deployment("web", replicas=2).replace("deployment web {", 'deployment web { strategy: "Recreate"')
            + f'scenario "s" {{\n  at 30s: fail node n1\n  at 10m: {NEW_IMAGE}\n  at 20m: recover node n1\n}}\n')
    assert images(c.pods("web")) == ["web:2", "web:2"]
    assert sorted(rs["replicas"] for rs in c.of("ReplicaSet")) == [0, 2]


def refusal(spec_fields: str):
    """Create deployment web with these fields through a scenario; the refusal's message or None."""
    web = deployment("web").replace("deployment web {", "deployment web { " + spec_fields).replace("\n", " ")
    c = run(node("n1") + f'scenario "s" {{\n  at 1s: create {web}\n}}\n')
    refused = c.writes(verb="refused", kind="Deployment", name="web")
    return refused[0].message if refused else None


def test_rolling_update_parameters_are_forbidden_with_recreate():
    assert refusal('strategy: "Recreate"  maxSurge: 1') == (
        "Deployment \"web\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when "
        "strategy `type` is 'Recreate'")
    assert refusal('strategy: "Recreate"') is None


def test_an_unknown_strategy_is_refused():
    assert refusal('strategy: "BlueGreen"') == (
        'Deployment "web" is invalid: spec.strategy.type: Unsupported value: "BlueGreen": '
        'supported values: "Recreate", "RollingUpdate"')


def test_switching_to_recreate_keeps_the_defaulted_rolling_update_parameters_and_is_refused():
    # SetDefaults_Deployment gave the RollingUpdate deployment 25%/25%; an update that only sets
    # the type keeps them, and the API server refuses it, as a real cluster does.
    c = run(node("n1") + deployment("web") + 'scenario "s" {\n  at 1m: update deployment web { strategy: "Recreate" }\n}\n')
    d = c.get("Deployment", "web")
    assert (d["strategy"], d["maxSurge"], d["maxUnavailable"]) == ("RollingUpdate", "25%", "25%")
    assert [w.message for w in c.writes(verb="refused", kind="Deployment")] == [
        "Deployment \"web\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when "
        "strategy `type` is 'Recreate'"]


def test_switching_to_recreate_with_the_parameters_dropped_rolls_out_by_recreate():
    c = run(node("n1", cpu="16") + deployment("web", replicas=2) + 'scenario "s" {\n'
            '  at 1m: update deployment web { strategy: "Recreate"  maxSurge: none  maxUnavailable: none }\n'
            f'  at 2m: {NEW_IMAGE}\n}}\n')
    assert c.writes(verb="refused") == []
    assert len(c.writes(rule="recreate_scale_down_old")) == 1
    assert images(live(c.pods("web"))) == ["web:2"] * 2


def test_an_empty_strategy_type_is_defaulted_to_rolling_update():
    # SetDefaults_Deployment: `if strategy.Type == "" { strategy.Type = RollingUpdate }`, then 25%/25%.
    c = run(node("n1") + deployment("web").replace("deployment web {", 'deployment web { strategy: ""'))
    d = c.get("Deployment", "web")
    assert (d["strategy"], d["maxSurge"], d["maxUnavailable"]) == ("RollingUpdate", "25%", "25%")


def test_a_spec_reapplied_to_a_data_directory_switches_a_stored_deployment_to_recreate(tmp_path, capsys):
    # The stored deployment carries the server's 25%/25%; the spec's explicit `none`s clear them, as
    # a null in an applied configuration does (kubectl apply's retainKeys clears rollingUpdate).
    from engine.cli import main

    spec = tmp_path / "web.konv"
    spec.write_text(node("n1", cpu="16") + deployment("web", replicas=2))
    data = str(tmp_path / "data")
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(node("n1", cpu="16") + deployment("web", replicas=2).replace(
        "deployment web {", 'deployment web { strategy: "Recreate"  maxSurge: none  maxUnavailable: none'))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["get", "deployment", "web", "--data-dir", data, "-o", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["strategy"], d.get("maxSurge"), d.get("maxUnavailable")) == ("Recreate", None, None)


def test_describe_shows_a_stored_deployment_without_a_strategy_as_the_rolling_update_it_was():
    # A deployment stored before the strategy field existed: describe still prints kubectl's lines.
    from engine.kube.tables import _deployment_shape

    shown = {"replicas": 2, "maxSurge": "25%", "maxUnavailable": "25%"}
    after = _deployment_shape({"kind": "Deployment", "name": "web"}, shown, [])
    assert shown["strategy"] == "RollingUpdate"
    assert after["strategy"] == [("MinReadySeconds", "0"),
                                 ("RollingUpdateStrategy", "25% max unavailable, 25% max surge")]
