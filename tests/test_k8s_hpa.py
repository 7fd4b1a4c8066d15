"""The HorizontalPodAutoscaler (rules/controllers.konv)."""

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
