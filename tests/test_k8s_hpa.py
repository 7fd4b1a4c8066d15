"""The HorizontalPodAutoscaler (rules/controllers.konv)."""

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import KonvergeError

from tests import service_model as model
from tests.kube import deployment, node, run


def cluster(replicas=3, hpa="", scenario=""):
    return (node("n1", cpu="16", memory="32Gi") + deployment("api", replicas=replicas, cpu="500m")
            + f'horizontalpodautoscaler api {{ target: "api"  maxReplicas: 10 {hpa} }}\n' + scenario)


def scale_writes(c):
    """(clock, replicas) of every HPA scale of the deployment."""
    out = []
    states = {}
    for w in c.result.trace:
        if w.rule == "scale" and w.kind == "Deployment":
            out.append(w.clock)
    for revision, objects in c.states():
        for o in objects:
            if o["kind"] == "Deployment":
                states[revision] = o["replicas"]
    by_revision = {w.revision: w.clock for w in c.result.trace if w.rule == "scale" and w.kind == "Deployment"}
    return [(by_revision[r], states[r]) for r in sorted(by_revision)]


def replicas(c):
    return c.get("Deployment", "api")["replicas"]


def test_hpa_scales_to_ceil_of_current_times_ratio():
    # 3 pods × 500m, 1350m used: 90% of requests against a 60% target → ceil(3 × 90/60) = ceil(4.5) = 5,
    # after which 1350m over 5 pods is 54%, within 10% of 60%: it stays.
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1350m }'),
            history=True)
    assert scale_writes(c) == [(60, 5)]
    assert replicas(c) == 5 and len(c.ready_pods("api")) == 5
    assert c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] == 54


def test_default_target_is_80_percent_of_requests():
    # 4 pods × 500m at 2 cores: 100% against 80% → ceil(4 × 1.25) = 5.
    c = run(cluster(replicas=4, scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 2 }'))
    assert c.get("HorizontalPodAutoscaler", "api")["targetCPUUtilization"] == 80
    assert replicas(c) == 5


def test_no_change_within_10_percent_of_the_target():
    # 4 pods × 500m at 1720m: 86% against 80% is a ratio of 1.075.
    c = run(cluster(replicas=4, scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1720m }'))
    assert replicas(c) == 4 and c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] == 86


def test_just_beyond_the_tolerance_scales():
    # 90% against 80% is 1.125: ceil(4 × 1.125) = 5.
    c = run(cluster(replicas=4, scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1800m }'))
    assert replicas(c) == 5


def test_replicas_are_clamped_to_max_replicas():
    c = run(cluster(scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 20 }'))
    assert replicas(c) == 10


def test_replicas_are_clamped_to_min_replicas_default_one():
    c = run(cluster(scenario='scenario "idle" { at 1m: load horizontalpodautoscaler api cpu = 0 }'))
    assert c.get("HorizontalPodAutoscaler", "api")["minReplicas"] == 1
    assert replicas(c) == 1


def test_utilization_is_a_whole_percentage_rounded_down():
    # GetResourceUtilizationRatio: int32(metricsTotal × 100 / requestsTotal). 1000m over 3 × 500m
    # is 66.7%: 66, and 66/60 = 1.1 is within the tolerance, so no scale-up (67 would give 4).
    c = run(cluster(hpa="targetCPUUtilization: 60",
                    scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1000m }'))
    assert c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] == 66
    assert replicas(c) == 3


def test_pods_with_a_container_without_a_cpu_request_are_not_measured():
    # calculatePodRequestsFromContainers: "missing request for cpu in container …", no scaling.
    spec = cluster(scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 3 }').replace(
        'container main { image: "api:1"  cpu: 500m  memory: 64Mi  }',
        'container main { image: "api:1"  cpu: 500m  memory: 64Mi  }\n    container sidecar { image: "log:1" }')
    assert "sidecar" in spec
    c = run(spec)
    assert c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] is None and replicas(c) == 3


def test_the_ratio_and_its_rounding_up_are_float64_as_upstream():
    # 5075m over 7 × 500m is 145% of a 35% target: float64(145)/float64(35) × 7 is
    # 29.000000000000004, which math.Ceil makes 30 (exact arithmetic would give 29).
    c = run(node("n1", cpu="32", memory="32Gi") + deployment("api", replicas=7, cpu="500m")
            + 'horizontalpodautoscaler api { target: "api"  maxReplicas: 40  targetCPUUtilization: 35 }\n'
            + 'scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 5075m }')
    assert replicas(c) == 30


def test_a_scale_up_counts_pending_pods_as_using_nothing():
    # Room for two of the three pods: 1250m over the two running is 125% of 80%, but over all
    # three (the pending one using nothing) 83%, within the tolerance: GetResourceReplicas keeps 3.
    c = run(node("n1", cpu="1", memory="32Gi") + deployment("api", replicas=3, cpu="500m")
            + 'horizontalpodautoscaler api { target: "api"  maxReplicas: 10 }\n'
            + 'scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 1250m }')
    assert len(c.ready_pods("api")) == 2
    assert c.get("HorizontalPodAutoscaler", "api")["currentCPUUtilization"] == 125 and replicas(c) == 3


def test_a_deployment_scaled_to_zero_is_not_autoscaled():
    # horizontal.go: "scaling is disabled since the replica count of the target is zero", even
    # below minReplicas and under load.
    c = run(cluster(replicas=0, hpa="minReplicas: 2",
                    scenario='scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 3 }'))
    assert replicas(c) == 0 and c.pods("api") == []


def test_scale_down_uses_the_highest_recommendation_of_the_last_300s():
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario="""
scenario "spike and calm" {
  at 1m: load horizontalpodautoscaler api cpu = 3
  at 10m: load horizontalpodautoscaler api cpu = 600m
}
"""), history=True)
    # up at once to 10; the calm at 10 min wants 2, but 10 stays recommended until 15 min.
    assert scale_writes(c) == [(60, 10), (900, 2)]
    assert len(c.pods("api", live=True)) == 2


def test_scale_up_is_not_delayed_by_the_window():
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario="""
scenario "two spikes" {
  at 1m: load horizontalpodautoscaler api cpu = 1500m
  at 2m: load horizontalpodautoscaler api cpu = 3
}
"""), history=True)
    assert [s for s in scale_writes(c) if s[0] == 120] == [(120, 10)]


def test_short_dip_within_the_window_does_not_scale_down():
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario="""
scenario "dip" {
  at 1m: load horizontalpodautoscaler api cpu = 3
  at 10m: load horizontalpodautoscaler api cpu = 600m
  at 12m: load horizontalpodautoscaler api cpu = 3
}
"""), history=True)
    assert scale_writes(c) == [(60, 10)]
    assert replicas(c) == 10


# ---- a second opinion: the model of tests/service_model.py ------------------------------------

@st.composite
def autoscaled(draw):
    """A Deployment of 0–6 pods of 1–2 containers (a cpu request of 0 is none) under an HPA, on a
    node with room for all of them or only some (the rest stay Pending), and the load it meets."""
    requests = tuple(draw(st.lists(st.sampled_from((100, 250, 500, 0)), min_size=1, max_size=2)))
    node_cpu = draw(st.sampled_from((16000, 16000, 1000, 1500, 2000)))
    low = draw(st.integers(1, 3))
    a = model.Autoscaled(replicas=draw(st.integers(0, 6)), requests=requests, min_replicas=low,
                         max_replicas=draw(st.integers(low, 10)), target=draw(st.sampled_from((50, 60, 80, 100, 150))),
                         fit=node_cpu // sum(requests) if sum(requests) else None)
    load = draw(st.one_of(st.none(), st.integers(0, 100).map(lambda x: x * 50)))
    return a, node_cpu, load


def autoscaled_spec(a, node_cpu, load) -> str:
    containers = "".join(f'    container c{i} {{ image: "api:1"  cpu: {r}m  memory: 1Mi }}\n' for i, r in enumerate(a.requests))
    scenario = f'scenario "load" {{ at 1m: load horizontalpodautoscaler api cpu = {load}m }}\n' if load is not None else ""
    return (node("n1", cpu=f"{node_cpu}m", memory="64Gi")
            + f'deployment api {{\n  replicas: {a.replicas}\n  template {{\n    labels {{ app: "api" }}\n{containers}  }}\n}}\n'
            + f"horizontalpodautoscaler api {{ target: \"api\"  minReplicas: {a.min_replicas}  maxReplicas: {a.max_replicas}"
            + f"  targetCPUUtilization: {a.target} }}\n" + scenario)


@given(autoscaled())
def test_hpa_settles_where_the_kubernetes_replica_calculator_does(case):
    a, node_cpu, load = case
    want = model.settle(a, load)
    assume(want is not None)  # Kubernetes' HPA flaps on it
    c = run(autoscaled_spec(a, node_cpu, load), until=7200)
    h = c.get("HorizontalPodAutoscaler", "api")
    assert (replicas(c), h["currentCPUUtilization"]) == want


def test_a_declared_utilisation_of_pods_without_a_cpu_request_scales_nothing():
    # Pods without a cpu request are not measured: a figure given in the spec does not scale
    # them, and the pending pods are not divided over (review RM2: a division by zero).
    spec = (node("n1", cpu="16", memory="32Gi")
            + deployment("api", replicas=3, cpu="0", extra='nodeSelector { disk: "none" }')
            + 'horizontalpodautoscaler api { target: "api"  maxReplicas: 10  currentCPUUtilization: 150 }\n'
            + 'scenario "load" { at 1m: load horizontalpodautoscaler api cpu = 3 }\n')
    c = run(spec)
    assert c.result.converged and c.get("Deployment", "api")["replicas"] == 3
    # calculatePodRequests' error, as ScalingActive False FailedGetResourceMetric words it
    [active] = [x for x in c.get("HorizontalPodAutoscaler", "api")["conditions"] if x["type"] == "ScalingActive"]
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")
    assert active["message"].startswith("the HPA was unable to compute the replica count: failed to get cpu "
                                        "utilization: missing request for cpu in container main of Pod api-")


# ---- targets of other kinds: the scale subresource ---------------------------------------------

WORKLOADS = {
    "Deployment": 'deployment web {{ replicas: 3  template {{ labels {{ app: "web" }}\n'
                  '  container main {{ image: "web:1"  cpu: 1  memory: 64Mi }} }} }}\n',
    "ReplicaSet": 'replicaset web {{ replicas: 3  selector {{ app: "web" }}  template {{ labels {{ app: "web" }}\n'
                  '  container main {{ image: "web:1"  cpu: 1  memory: 64Mi }} }} }}\n',
    "StatefulSet": 'statefulset web {{ replicas: 3  serviceName: "web"  template {{ labels {{ app: "web" }}\n'
                   '  container main {{ image: "web:1"  cpu: 1  memory: 64Mi }} }} }}\n',
}


def scaled(kind: str, target: str | None = None, scenario: str = "") -> str:
    target = target if target is not None else (f"{kind}/web" if kind != "Deployment" else "web")
    return (node("n1", cpu="16", memory="32Gi") + WORKLOADS[kind].format()
            + f'horizontalpodautoscaler web {{ target: "{target}"  minReplicas: 2  maxReplicas: 6'
              f'  targetCPUUtilization: 30 }}\n' + scenario)


LOAD = 'scenario "load" { at 1m: load horizontalpodautoscaler web cpu = 1500m }\n'


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_hpa_scales_up_any_target_with_a_scale(kind):
    # horizontal_test.go's TestScaleUpDeployment and TestScaleUpReplicaSet (and a StatefulSet, which
    # horizontal.go scales through the same scale subresource): 3 pods requesting 1 cpu use 1500m,
    # 50% against a 30% target: ceil(3 × 50/30) = 5; 1500m over 5 pods is then 30%, on the target.
    c = run(scaled(kind, scenario=LOAD), history=True)
    assert c.get(kind, "web")["replicas"] == 5
    assert len(c.ready_pods("web")) == 5
    assert c.get("HorizontalPodAutoscaler", "web")["currentCPUUtilization"] == 30
    [write] = [w for w in c.writes(kind=kind, name="web") if w.actor == "horizontal_pod_autoscaler"]
    assert write.clock == 60 and write.verb == "update"


def test_an_ordered_statefulset_grows_one_ready_pod_at_a_time_under_its_hpa():
    # OrderedReady: the HPA raises spec.replicas at once, the StatefulSet controller then creates
    # web-3 and, once it is ready, web-4; the pods pending meanwhile count as using nothing
    # (GetResourceReplicas' rebalancing), which is no scale-up beyond 5.
    c = run(scaled("StatefulSet", scenario=LOAD), history=True)
    creates = [w.name for w in c.writes(verb="create", kind="Pod")]
    assert creates[-2:] == ["web-3", "web-4"]
    assert sorted(p["name"] for p in c.ready_pods("web")) == [f"web-{i}" for i in range(5)]


def test_a_bare_target_is_still_a_deployment_not_a_statefulset_of_that_name():
    # `target: "web"` names a Deployment, as every spec before KIND/NAME did: a StatefulSet named
    # web is left alone.
    c = run(scaled("StatefulSet", target="web", scenario=LOAD))
    assert c.get("StatefulSet", "web")["replicas"] == 3
    assert c.get("HorizontalPodAutoscaler", "web")["currentCPUUtilization"] is None


def test_a_target_of_a_kind_without_a_scale_scales_nothing():
    # Upstream lets any kind through validation; its controller then finds no scale to read.
    c = run(scaled("Deployment", target="DaemonSet/web", scenario=LOAD))
    assert c.result.converged and c.get("Deployment", "web")["replicas"] == 3


@pytest.mark.parametrize("target, message", [
    ("StatefulSet/", "spec.scaleTargetRef.name: Required value"),
    ("/web", "spec.scaleTargetRef.kind: Required value"),
    ("StatefulSet/web/0", "spec.scaleTargetRef.name: Invalid value: \"web/0\": may not contain '/'"),
    ("..", "spec.scaleTargetRef.name: Invalid value: \"..\": may not be '..'"),
])
def test_a_scale_target_reference_must_name_a_kind_and_a_valid_name(target, message):
    # ValidateCrossVersionObjectReference: kind and name required, each a valid path segment.
    with pytest.raises(KonvergeError) as e:
        run(scaled("StatefulSet", target=target))
    assert e.value.diagnostics[0].message == f'HorizontalPodAutoscaler "web" is invalid: {message}'


def test_get_hpa_shows_the_reference_as_kind_and_name(tmp_path, capsys):
    # printHorizontalPodAutoscaler: REFERENCE `StatefulSet/web`, REPLICAS the target's.
    spec = tmp_path / "s.konv"
    spec.write_text(scaled("StatefulSet", scenario=LOAD))
    assert main(["get", "hpa", str(spec), "--scenario", "load"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert out[1].split()[:7] == ["web", "StatefulSet/web", "cpu:", "30%/30%", "2", "6", "5"]
    assert main(["describe", "hpa/web", str(spec), "--scenario", "load"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines if line.startswith("Reference:")] == [["Reference:", "StatefulSet/web"]]
    assert [line.split() for line in lines if line.startswith("StatefulSet pods:")] == \
        [["StatefulSet", "pods:", "5", "current", "/", "5", "desired"]]


# ---- status: conditions and events (horizontal.go) ----------------------------------------------

def hpa_at(c, clock, name="api"):
    """The HPA as it was at `clock`: the last state written at or before it."""
    last = max(w.revision for w in c.result.trace if w.clock <= clock)
    seen = None
    for revision, objects in c.states():
        if revision > last:
            break
        seen = objects
    return next(o for o in seen if o["kind"] == "HorizontalPodAutoscaler" and o["name"] == name)


def conditions(h):
    """type → (status, reason, lastTransitionTime), in the order of the list, which is
    reconcileAutoscaler's: AbleToScale first, then ScalingActive, then ScalingLimited."""
    types = [c["type"] for c in h["conditions"]]
    assert types == [t for t in ("AbleToScale", "ScalingActive", "ScalingLimited") if t in types]
    return {c["type"]: (c["status"], c["reason"], c.get("lastTransitionTime")) for c in h["conditions"]}


@pytest.mark.parametrize("order", ["fixed", "random"])
def test_a_first_sync_that_rescales_lists_able_to_scale_first_in_any_order(order):
    # reconcileAutoscaler sets AbleToScale (SucceededGetScale) before computing the replicas, so
    # it leads a new HPA's list even when that first sync rescales (review RH: it came last, and
    # the -o json depended on the firing order).
    spec = cluster(replicas=2, hpa="currentCPUUtilization: 120  targetCPUUtilization: 60")
    for seed in (1, 2, 3):
        c = run(spec, order=order, seed=seed)
        h = c.get("HorizontalPodAutoscaler", "api")
        assert [x["type"] for x in h["conditions"]] == ["AbleToScale", "ScalingActive", "ScalingLimited"]
        assert replicas(c) == 10  # the declared utilisation stays: 2 → 4 → 8 → max


@pytest.mark.parametrize("bounds, message", [
    ("minReplicas: 5  maxReplicas: 3", "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"),
    ("minReplicas: 0  maxReplicas: 3", "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
    ("maxReplicas: 0", "spec.maxReplicas: Invalid value: 0: must be greater than 0"),
])
def test_replica_bounds_are_validated_as_kubernetes_validates_them(bounds, message):
    # ValidateHorizontalPodAutoscalerSpec: minReplicas >= 1 (without HPAScaleToZero), maxReplicas > 0
    # and >= minReplicas; max below min made the controller swing between the two (review RH).
    spec = (node("n1") + deployment("api", replicas=2)
            + f'horizontalpodautoscaler api {{ target: "api"  {bounds} }}\n')
    with pytest.raises(KonvergeError) as e:
        run(spec)
    assert e.value.diagnostics[0].message == f'HorizontalPodAutoscaler "api" is invalid: {message}'


def events(c, name="api"):
    return sorted((e["reason"], e["type"], e["message"], e["at"]) for e in c.of("Event")
                  if e["object"] == f"HorizontalPodAutoscaler/default/{name}")


def test_conditions_through_a_load_spike_and_calm():
    # reconcileAutoscaler, normalizeDesiredReplicas and convertDesiredReplicasWithRules, with
    # setConditionInList's transition times (the time moves only when the status does):
    # before any metric, ScalingActive is False (FailedGetResourceMetric); 4 cores over 3 × 500m at
    # 60% want 14 pods, held to 10 (ScalingLimited TooManyReplicas); the calm at 10 min wants 2,
    # held back by the 300 s window (ScaleDownStabilized); at 15 min the scale-down.
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario="""
scenario "spike and calm" {
  at 1m: load horizontalpodautoscaler api cpu = 4
  at 10m: load horizontalpodautoscaler api cpu = 600m
}
"""), history=True)
    before = hpa_at(c, 30)
    assert conditions(before) == {"AbleToScale": ("True", "SucceededGetScale", 0),
                                  "ScalingActive": ("False", "FailedGetResourceMetric", 0)}
    assert before["conditions"][1]["message"] == (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
        "metrics for resource cpu: no metrics returned from resource metrics API")
    # The sync that rescales: SucceededRescale, the count it read and the one it wrote.
    [scale] = [w.revision for w in c.result.trace if w.rule == "scale" and w.clock == 60
              and w.kind == "HorizontalPodAutoscaler"]
    rescaling = next(o for r, objects in c.states() if r == scale for o in objects
                     if o["kind"] == "HorizontalPodAutoscaler")
    assert conditions(rescaling)["AbleToScale"] == ("True", "SucceededRescale", 0)
    assert rescaling["conditions"][0]["message"] == "the HPA controller was able to update the target scale to 10"
    assert (rescaling["currentReplicas"], rescaling["desiredReplicas"]) == (3, 10)
    spike = hpa_at(c, 300)
    assert conditions(spike) == {"AbleToScale": ("True", "ReadyForNewScale", 0),
                                 "ScalingActive": ("True", "ValidMetricFound", 60),
                                 "ScalingLimited": ("True", "TooManyReplicas", 60)}
    assert spike["lastRescale"] == "New size: 10; reason: cpu resource utilization (percentage of request) above target"
    calm = hpa_at(c, 720)
    assert conditions(calm) == {"AbleToScale": ("True", "ScaleDownStabilized", 0),
                                "ScalingActive": ("True", "ValidMetricFound", 60),
                                "ScalingLimited": ("False", "DesiredWithinRange", 600)}
    end = c.get("HorizontalPodAutoscaler", "api")
    assert conditions(end) == {"AbleToScale": ("True", "ReadyForNewScale", 0),
                               "ScalingActive": ("True", "ValidMetricFound", 60),
                               "ScalingLimited": ("False", "DesiredWithinRange", 600)}
    assert (end["currentReplicas"], end["desiredReplicas"], replicas(c)) == (2, 2, 2)
    assert events(c) == [("SuccessfulRescale", "Normal", "New size: 2; reason: All metrics below target", 900)]


def test_a_target_below_min_replicas_is_raised_to_it_without_a_metric():
    # reconcileAutoscaler: "Current number of replicas below Spec.MinReplicas", before any metric.
    c = run(cluster(replicas=1, hpa="minReplicas: 3"))
    assert replicas(c) == 3
    assert events(c)[-1] == ("SuccessfulRescale", "Normal",
                             "New size: 3; reason: Current number of replicas below Spec.MinReplicas", 0)


@pytest.mark.parametrize("target, error", [
    # RESTMappings: a kind it does not know (NoKindMatchError; the group is apps here)
    ("statefulset/web", 'no matches for kind "statefulset" in group "apps"'),
    # a kind without a scale subresource: the API server's 404
    ("DaemonSet/web", "the server could not find the requested resource"),
    # scaleForResourceMappings: the object is missing
    ("StatefulSet/db", 'statefulsets.apps "db" not found'),
])
def test_a_target_without_a_scale_is_failed_get_scale(target, error):
    # reconcileAutoscaler's FailedGetScale: AbleToScale False, a Warning event, and no scaling.
    c = run(scaled("StatefulSet", target=target, scenario=LOAD))
    h = c.get("HorizontalPodAutoscaler", "web")
    assert h["conditions"] == [{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
                                "message": "the HPA controller was unable to get the target's current scale: " + error,
                                "lastTransitionTime": 0}]
    assert events(c, "web") == [("FailedGetScale", "Warning", error, 0)]
    assert c.get("StatefulSet", "web")["replicas"] == 3 and c.result.converged


def test_two_hpas_on_one_deployment_both_stop_on_an_ambiguous_selector():
    # validateAndParseSelector: the pods of the target's selector are controlled by more than one
    # HPA, so neither computes a metric (ScalingActive False AmbiguousSelector, a Warning event and
    # FailedComputeMetricsReplicas) and neither scales; the run converges where their rules fought.
    c = run(cluster(hpa="targetCPUUtilization: 60", scenario="""
horizontalpodautoscaler api-2 { target: "api"  maxReplicas: 8  targetCPUUtilization: 40 }
scenario "load" {
  at 1m: load horizontalpodautoscaler api cpu = 3
  at 1m: load horizontalpodautoscaler api-2 cpu = 3
}
"""))
    assert c.result.converged and replicas(c) == 3
    message = "pods by selector app=api are controlled by multiple HPAs: [default/api default/api-2]"
    for name in ("api", "api-2"):
        h = c.get("HorizontalPodAutoscaler", name)
        assert conditions(h) == {"AbleToScale": ("True", "SucceededGetScale", 0),
                                 "ScalingActive": ("False", "AmbiguousSelector", 0)}
        assert h["conditions"][1]["message"] == message and h["currentCPUUtilization"] is None
        assert events(c, name) == [("AmbiguousSelector", "Warning", message, 0),
                                   ("FailedComputeMetricsReplicas", "Warning", message, 0)]
        # the sync fails before stabilizeRecommendation: nothing is recorded (review RH)
        assert h["recommendations"] == []


def test_an_hpa_whose_target_selects_another_hpas_pods_is_ambiguous_and_a_disjoint_one_is_not():
    # The canary case: the stable deployment's selector (app=web) selects the canary's pods too, so
    # both HPAs see pods controlled by two; an HPA of other pods scales as usual.
    spec = (node("n1", cpu="16", memory="32Gi")
            + 'deployment stable {\n  replicas: 2\n  selector { app: "web" }\n  template {\n'
              '    labels { app: "web"  track: "stable" }\n'
              '    container main { image: "web:1"  cpu: 500m  memory: 64Mi }\n  }\n}\n'
            + deployment("canary", cpu="500m", labels='app: "web"  track: "canary"')
            + deployment("other", cpu="500m")
            + "".join(f'horizontalpodautoscaler {n} {{ target: "{n}"  maxReplicas: 10 }}\n'
                      for n in ("stable", "canary", "other"))
            + 'scenario "load" {\n' + "".join(f"  at 1m: load horizontalpodautoscaler {n} cpu = 3\n"
                                                for n in ("stable", "canary", "other")) + "}\n")
    c = run(spec)
    reasons = {h["name"]: conditions(h)["ScalingActive"][1] for h in c.of("HorizontalPodAutoscaler")}
    assert reasons == {"stable": "AmbiguousSelector", "canary": "AmbiguousSelector", "other": "ValidMetricFound"}
    assert c.get("HorizontalPodAutoscaler", "canary")["conditions"][1]["message"] == \
        "pods by selector app=web,track=canary are controlled by multiple HPAs: [default/canary default/stable]"
    assert [c.get("Deployment", n)["replicas"] for n in ("stable", "canary", "other")] == [2, 1, 8]


def test_describe_hpa_prints_kubectls_lines(capsys):
    # describeHorizontalPodAutoscalerV2: Reference, Metrics ( current / target ) with the cpu line,
    # Min/Max replicas, `Deployment pods: N current / N desired`, the Conditions table, Events.
    from tests.test_kube_cli import golden
    hpa = str(Path(__file__).parent.parent / "specs" / "hpa.konv")
    assert main(["describe", "hpa/api", hpa, "--scenario", "load spike and calm"]) == 0
    out = capsys.readouterr().out
    assert main(["describe", "hpa/api", hpa]) == 0
    golden("describe_hpa.txt", out + "\n" + capsys.readouterr().out)
