"""ReplicaSet and Deployment controllers (rules/controllers.konv): self-healing, scale-down
order, adoption, rolling updates."""

from tests.kube import deployment, node, run

RS = """
replicaset rs {{
  replicas: {replicas}
  selector {{ app: "rs" }}
  template {{ labels {{ app: "rs" }}  container main {{ image: "rs:1"  cpu: 100m  memory: 64Mi }} }}
}}
"""


def owned_pod(name, extra="", container_extra=""):
    return (f'pod {name} {{ labels {{ app: "rs" }} owner {{ kind: "ReplicaSet"  name: "rs" }} {extra}\n'
            f'  container main {{ image: "rs:1"  cpu: 100m  memory: 64Mi {container_extra} }} }}\n')


def deletion_order(c):
    return [w.name for w in c.writes(verb="update", kind="Pod", rule="delete_extra")]


def live(pods):
    return [p for p in pods if not p["deleting"] and p["phase"] not in ("Succeeded", "Failed")]


def test_deployment_creates_a_replicaset_with_the_pod_template_hash_and_its_pods():
    c = run(node("n1") + deployment("web", replicas=3))
    [rs] = c.of("ReplicaSet")
    h = rs["labels"]["pod-template-hash"]
    assert rs["name"] == "web-" + h and rs["owner"] == {"kind": "Deployment", "name": "web"}
    assert rs["selector"] == {"app": "web", "pod-template-hash": h}
    assert rs["replicas"] == 3 and rs["readyReplicas"] == 3
    pods = c.pods("web")
    assert len(pods) == 3 and all(p["ready"] and p["owner"]["name"] == rs["name"] for p in pods)
    assert all(p["labels"]["pod-template-hash"] == h for p in pods)


def test_a_replicaset_creates_the_pods_it_misses_in_one_step_up_to_burst_replicas():
    # manageReplicas sends every missing pod in one sync, at most burstReplicas (500) of them.
    c = run("".join(node(f"n{i}", cpu="64", memory="256Gi") for i in range(6))
            + RS.format(replicas=600).replace("100m", "10m"))
    steps = {}
    for w in c.writes(verb="create", kind="Pod", rule="create_missing"):
        steps[w.step] = steps.get(w.step, 0) + 1
    assert sorted(steps.values(), reverse=True) == [500, 100]
    assert len({p["name"] for p in c.of("Pod") if p["ready"]}) == 600


def test_deployment_replicas_default_to_one():
    c = run(node("n1") + 'deployment solo { template { labels { app: "solo" } '
            'container main { image: "solo:1" } } }')
    assert len(c.pods("solo")) == 1


def test_deleted_pod_is_replaced():
    spec = node("n1") + RS.format(replicas=2) + owned_pod("rs-a") + owned_pod("rs-b") + """
scenario "kill one" { at 1m: kill pod rs-a }
"""
    c = run(spec)
    assert c.get("Pod", "rs-a") is None
    pods = c.pods("rs")
    assert len(pods) == 2 and all(p["ready"] for p in pods)
    assert "rs-b" in [p["name"] for p in pods]


def test_failed_pod_is_replaced():
    # restartPolicy Never and a crashing container: the pod fails, and a new one takes its place.
    c = run(node("n1") + RS.format(replicas=1)
            + owned_pod("rs-doomed", extra='restartPolicy: "Never"', container_extra="crashing: true"))
    doomed = c.get("Pod", "rs-doomed")
    assert doomed["phase"] == "Failed"
    replacement = [p for p in c.pods("rs") if p["name"] != "rs-doomed"]
    assert len(replacement) == 1 and replacement[0]["ready"]


def test_pod_matching_the_selector_without_owner_is_adopted():
    c = run(node("n1") + RS.format(replicas=2) + 'pod stray { labels { app: "rs" } container main { image: "x" } }')
    assert c.get("Pod", "stray")["owner"] == {"kind": "ReplicaSet", "name": "rs"}
    assert len(c.pods("rs")) == 2  # the adopted pod counts: only one is created


def test_a_finished_orphan_is_not_adopted():
    # ClaimPods sees only active pods: a stray that failed before the set came stays an orphan,
    # and the set creates both of its pods.
    c = run(node("n1")
            + 'pod done { labels { app: "rs" }  restartPolicy: "Never"  container main { image: "x"  crashing: true } }\n'
            + 'scenario "later" {\n  at 600s: create replicaset rs { replicas: 2  selector { app: "rs" }  '
              'template { labels { app: "rs" }  container main { image: "rs:1" } } }\n}\n')
    done = c.get("Pod", "done")
    assert done["phase"] == "Failed" and done["owner"] is None
    assert len([p for p in c.pods("rs") if p["owner"]]) == 2


def test_scale_down_removes_unassigned_then_pending_then_not_ready_pods_first():
    spec = (node("up") + node("down", extra="kubeletUp: false") + node("sick", extra="runtimeUp: false")
            + RS.format(replicas=4)
            + owned_pod("rs-ready", extra='node: "up"')
            + owned_pod("rs-notready", extra='node: "sick"')
            + owned_pod("rs-pending", extra='node: "down"')
            + owned_pod("rs-unassigned", extra='nodeSelector { nowhere: "x" }')
            + """
scenario "scale to zero" { at 10s: scale_replicaset replicaset rs replicas = 0 }
""")
    c = run(spec)
    assert deletion_order(c) == ["rs-unassigned", "rs-pending", "rs-notready", "rs-ready"]


def test_scale_down_removes_lower_deletion_cost_then_crowded_node_then_newer_pods_first():
    spec = (node("a") + node("b") + RS.format(replicas=5)
            + owned_pod("rs-cheap-b", extra='node: "b" deletionCost: -5 createdAt: 0s')
            + owned_pod("rs-a1", extra='node: "a" createdAt: 0s')
            + owned_pod("rs-a2", extra='node: "a" createdAt: 1s')
            + owned_pod("rs-b-old", extra='node: "b" createdAt: 0s')
            + owned_pod("rs-precious", extra='node: "a" deletionCost: 100 createdAt: 5s')
            + """
scenario "scale down" { at 10s: scale_replicaset replicaset rs replicas = 1 }
""")
    order = deletion_order(run(spec))
    # lowest cost first; then a (3 siblings) before b; on a, the newer first; the costly one last.
    assert order == ["rs-cheap-b", "rs-a2", "rs-a1", "rs-b-old"]


def test_scale_down_removes_more_restarted_pods_first():
    spec = (node("a") + RS.format(replicas=2)
            + owned_pod("rs-calm", extra='node: "a"')
            + owned_pod("rs-flappy", extra='node: "a"').replace("memory: 64Mi", "memory: 64Mi restarts: 7")
            + 'scenario "scale down" { at 10s: scale_replicaset replicaset rs replicas = 1 }')
    assert deletion_order(run(spec)) == ["rs-flappy"]


def test_deployment_scale_up_and_down_follows_replicas():
    c = run(node("n1") + deployment("web", replicas=2) + """
scenario "scale" {
  at 1m: scale deployment web replicas = 5
  at 2m: scale deployment web replicas = 1
}
""")
    assert len(live(c.pods("web"))) == 1
    assert len(c.of("ReplicaSet")) == 1 and c.of("ReplicaSet")[0]["replicas"] == 1


def rollout(maxima: str, replicas: int = 4):
    spec = node("n1", cpu="16") + deployment("web", replicas=replicas).replace("deployment web {",
                                                                          "deployment web { " + maxima)
    spec += """
scenario "new image" {
  at 1m: update deployment web {
    template { labels { app: "web" }  container main { image: "web:2"  cpu: 100m  memory: 64Mi } }
  }
}
"""
    return run(spec, history=True)


def rollout_bounds(c, start_revision):
    """(most pods at once, fewest ready pods at once) from the update on."""
    most, fewest = 0, 10 ** 9
    for revision, objects in c.states():
        if revision < start_revision:
            continue
        pods = [o for o in objects if o["kind"] == "Pod"]
        most = max(most, len(live(pods)))
        fewest = min(fewest, len([p for p in pods if p["ready"] and not p["deleting"]]))
    return most, fewest


def update_revision(c):
    return next(w.revision for w in c.result.trace if w.actor == "scenario")


def test_deployment_template_change_rolls_out_within_max_surge_and_unavailable():
    c = rollout("")  # 25% of 4: surge 1 (rounded up), unavailable 1 (rounded down)
    assert sorted(p["containers"][0]["image"] for p in live(c.pods("web"))) == ["web:2"] * 4
    assert all(p["ready"] for p in live(c.pods("web")))
    old, new = sorted(c.of("ReplicaSet"), key=lambda r: r["revision"])
    assert (old["replicas"], new["replicas"], new["revision"]) == (0, 4, 2)
    assert c.get("Deployment", "web")["revision"] == 2
    most, fewest = rollout_bounds(c, update_revision(c))
    assert most <= 5 and fewest >= 3
    assert most == 5  # the surge is used


def test_rollout_with_zero_surge_and_zero_unavailable_uses_unavailable_one():
    c = rollout("maxSurge: 0  maxUnavailable: 0")
    assert sorted(p["containers"][0]["image"] for p in live(c.pods("web"))) == ["web:2"] * 4
    most, fewest = rollout_bounds(c, update_revision(c))
    assert most <= 4 and fewest >= 3


def test_rollout_percentages_round_surge_up_and_unavailable_down():
    # 10 replicas: 25% surge is 3 (2.5 up), 25% unavailable is 2 (2.5 down).
    c = rollout("", replicas=10)
    most, fewest = rollout_bounds(c, update_revision(c))
    assert most <= 13 and fewest >= 8


def test_deleting_a_deployment_deletes_its_replicasets_and_pods():
    c = run(node("n1") + deployment("web", replicas=2) + 'scenario "delete" { at 1m: delete deployment web }')
    assert c.of("ReplicaSet") == [] and c.pods("web") == []


# ---- full label selectors ---------------------------------------------------------------

def test_replicaset_selector_expressions_decide_which_orphans_are_adopted():
    # NotIn holds for a pod without the key; a canary is left alone.
    spec = RS.format(replicas=2).replace(
        'selector { app: "rs" }', 'selector { app: "rs" }  matchExpressions: [{key: "track", operator: "NotIn", '
        'values: ["canary"]}]')
    c = run(node("n1") + spec + 'pod stray { labels { app: "rs" } container main { image: "x" } }\n'
            'pod canary { labels { app: "rs"  track: "canary" } container main { image: "x" } }\n')
    assert c.get("Pod", "stray")["owner"] == {"kind": "ReplicaSet", "name": "rs"}
    assert c.get("Pod", "canary")["owner"] is None
    assert len([p for p in c.pods("rs") if p["owner"]]) == 2  # the adopted pod and one created


def test_replicaset_selecting_by_expressions_alone_adopts_by_them():
    c = run(node("n1") + 'replicaset rs {\n  replicas: 2\n'
            '  matchExpressions: [{key: "app", operator: "In", values: ["rs", "legacy"]}]\n'
            '  template { labels { app: "rs" }  container main { image: "rs:1" } }\n}\n'
            'pod old { labels { app: "legacy" } container main { image: "x" } }\n'
            'pod other { labels { app: "other" } container main { image: "x" } }\n')
    # Whether the set creates its pods before it adopts `old` depends on the firing order (a
    # surplus is then deleted again); that it adopts it, and not `other`, does not.
    assert [w.name for w in c.writes(rule="adopt_orphans")] == ["old"]
    assert c.get("Pod", "other")["owner"] is None
    assert len(live([p for p in c.pods() if p["owner"]])) == 2


def test_deployment_selector_expressions_are_carried_to_its_replicaset():
    # The matchLabels gain the pod-template-hash; the expressions are copied as they are.
    c = run(node("n1") + deployment("web", replicas=2).replace(
        "deployment web {", 'deployment web { selector { app: "web" }  matchExpressions: [{key: "track", '
        'operator: "DoesNotExist"}]'))
    [rs] = c.of("ReplicaSet")
    assert rs["matchExpressions"] == [{"key": "track", "operator": "DoesNotExist", "values": []}]
    assert rs["selector"] == {"app": "web", "pod-template-hash": rs["labels"]["pod-template-hash"]}
    assert len(c.ready_pods("web")) == 2


# ---- releasing pods the selector no longer selects (ClaimPods) ------------------------------------

def owned_by_rs(pods, name="rs"):
    return [p for p in live(pods) if p["owner"] == {"kind": "ReplicaSet", "name": name}]


def test_pod_relabelled_out_of_the_selector_is_released_and_replaced():
    c = run(node("n1") + RS.format(replicas=2) + owned_pod("rs-a") + owned_pod("rs-b")
            + 'scenario "edit" { at 1m: relabel pod rs-a labels = {app: "debug"} }')
    released = c.get("Pod", "rs-a")
    assert released["owner"] is None and released["labels"] == {"app": "debug"}
    assert released["ready"] and not released["deleting"]  # released, not deleted
    assert [w.name for w in c.writes(rule="release_unselected")] == ["rs-a"]
    pods = owned_by_rs(c.pods("rs"))
    assert len(pods) == 2 and "rs-b" in [p["name"] for p in pods] and all(p["ready"] for p in pods)
    assert c.get("ReplicaSet", "rs")["readyReplicas"] == 2


def test_pod_relabelled_against_a_selector_expression_is_released():
    spec = RS.format(replicas=2).replace(
        'selector { app: "rs" }', 'selector { app: "rs" }  matchExpressions: [{key: "track", operator: "NotIn", '
        'values: ["canary"]}]')
    c = run(node("n1") + spec + owned_pod("rs-a") + owned_pod("rs-b")
            + 'scenario "edit" { at 1m: relabel pod rs-b labels = {track: "canary"} }')
    assert c.get("Pod", "rs-b")["owner"] is None
    assert len(owned_by_rs(c.pods("rs"))) == 2


def test_pod_relabelled_back_is_adopted_again_and_the_surplus_deleted():
    c = run(node("n1") + RS.format(replicas=2) + owned_pod("rs-a") + owned_pod("rs-b") + """
scenario "edit and undo" {
  at 1m: relabel pod rs-a labels = {app: "debug"}
  at 2m: relabel pod rs-a labels = {app: "rs"}
}
""")
    assert c.get("Pod", "rs-a")["owner"] == {"kind": "ReplicaSet", "name": "rs"}
    assert len(owned_by_rs(c.pods("rs"))) == 2 and len(c.writes(rule="delete_extra")) == 1


def test_deployment_pod_relabelled_out_of_its_selector_is_released_and_replaced():
    spec = node("n1") + deployment("web", replicas=3)
    name = run(spec).pods("web")[0]["name"]
    c = run(spec + f'scenario "debug one" {{ at 1m: relabel pod {name} labels = {{app: "debug"}} }}')
    [rs] = c.of("ReplicaSet")
    assert c.get("Pod", name)["owner"] is None and c.get("Pod", name)["ready"]
    pods = owned_by_rs(c.pods("web"), rs["name"])
    assert len(pods) == 3 and name not in [p["name"] for p in pods] and all(p["ready"] for p in pods)


# ---- schedulerName and serviceAccountName ------------------------------------------------------

def test_replicaset_pods_carry_the_templates_service_account_and_scheduler():
    c = run(node("n1") + "serviceaccount bot {}\n"
            + deployment("web", replicas=2, extra='serviceAccountName: "bot"  schedulerName: "default-scheduler"'))
    assert [(p["serviceAccountName"], p["schedulerName"], p["ready"]) for p in c.pods("web")] == \
        [("bot", "default-scheduler", True)] * 2


def test_pods_default_to_the_default_service_account():
    c = run(node("n1") + deployment("web"))
    assert [p["serviceAccountName"] for p in c.pods("web")] == ["default"]


def test_a_template_naming_another_service_account_is_another_template():
    def rs_name(extra):
        c = run(node("n1") + "serviceaccount bot {}\n" + deployment("web", extra=extra))
        return c.of("ReplicaSet")[0]["name"]

    # The defaults, given or not, hash alike; another account is another pod-template-hash.
    assert rs_name("") == rs_name('serviceAccountName: "default"') != rs_name('serviceAccountName: "bot"')


def test_missing_service_account_creates_no_pod_and_a_failed_create_event_until_it_exists():
    spec = node("n1") + deployment("web", replicas=2, extra='serviceAccountName: "ghost"')
    c = run(spec)
    [rs] = c.of("ReplicaSet")
    assert c.pods("web") == []
    [event] = c.of("Event")
    assert (event["type"], event["reason"], event["object"]) == ("Warning", "FailedCreate", f"ReplicaSet/default/{rs['name']}")
    assert event["message"] == (f'Error creating: pods "{rs["name"]}-" is forbidden: error looking up service account '
                                'default/ghost: serviceaccount "ghost" not found')
    c = run(spec + 'scenario "the account arrives" { at 1m: create serviceaccount ghost {} }')
    assert len(c.ready_pods("web")) == 2 and c.of("Event") == []
