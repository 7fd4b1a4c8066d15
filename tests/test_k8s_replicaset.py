"""ReplicaSet and Deployment controllers (rules/controllers.konv): self-healing, scale-down
order, adoption, rolling updates."""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from tests import workload_model as model
from tests.kube import SICK_CONTAINER, deployment, node, run, sick_event, sick_node

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
    spec = (node("up") + node("down", extra="kubeletUp: false") + sick_node()
            + RS.format(replicas=4)
            + owned_pod("rs-ready", extra='node: "up"')
            + owned_pod("rs-notready", extra='node: "sick"', container_extra=SICK_CONTAINER)
            + owned_pod("rs-pending", extra='node: "down"')
            + owned_pod("rs-unassigned", extra='nodeSelector { nowhere: "x" }')
            + 'scenario "scale to zero" {\n' + sick_event()
            + "  at 10s: scale_replicaset replicaset rs replicas = 0\n}\n")
    c = run(spec)
    notready = c.get("Pod", "rs-notready")
    assert (notready["phase"], notready["ready"]) == ("Running", False)
    assert deletion_order(c) == ["rs-unassigned", "rs-pending", "rs-notready", "rs-ready"]


def test_scale_down_removes_lower_deletion_cost_first_and_the_costly_pod_last():
    spec = (node("a") + node("b") + RS.format(replicas=5)
            + owned_pod("rs-cheap-b", extra='node: "b" deletionCost: -5 createdAt: 0s')
            + owned_pod("rs-a1", extra='node: "a" createdAt: 0s')
            + owned_pod("rs-a2", extra='node: "a" createdAt: 1s')
            + owned_pod("rs-b-old", extra='node: "b" createdAt: 0s')
            + owned_pod("rs-precious", extra='node: "a" deletionCost: 100 createdAt: 5s'))
    scale = 'scenario "scale down" {{ at 10s: scale_replicaset replicaset rs replicas = {n} }}'
    assert deletion_order(run(spec + scale.format(n=4))) == ["rs-cheap-b"]
    c = run(spec + scale.format(n=1))
    assert sorted(deletion_order(c)) == ["rs-a1", "rs-a2", "rs-b-old", "rs-cheap-b"]
    assert [p["name"] for p in live(c.pods("rs"))] == ["rs-precious"]


def test_a_replicaset_deletes_its_surplus_in_one_step():
    # getPodsToDelete chooses every surplus pod in one sync, and manageReplicas deletes them at once.
    c = run(node("a") + RS.format(replicas=4) + "".join(owned_pod(f"rs-{i}", extra='node: "a"') for i in range(4))
            + 'scenario "scale down" { at 10s: scale_replicaset replicaset rs replicas = 1 }')
    assert len({w.step for w in c.writes(rule="delete_extra")}) == 1 and len(deletion_order(c)) == 3


def test_a_deployments_scale_down_removes_pods_from_crowded_nodes_ranked_once():
    # A Deployment's set ranks a pod by the active pods of the Deployment's sets on its node
    # (getPodsRankedByRelatedPodsOnSameNode), once for the whole surplus: 5 -> 3 with 3 pods on a
    # and 2 on b deletes two of a's, not one of a's and then, a and b now alike, one of b's.
    c = run(node("a", cpu="16") + node("b", cpu="16") + deployment("web", replicas=5)
            + 'scenario "scale down" { at 60s: scale deployment web replicas = 3 }')
    assert sorted(p["node"] for p in live(c.pods("web"))) == ["a", "b", "b"]


def test_a_standalone_replicaset_does_not_rank_its_pods_by_node():
    # A set without a controller has no related pods (getReplicaSetsWithSameController), so every
    # rank is 0: the crowded node does not count, and the more restarted pod goes first.
    spec = (node("a") + node("b") + RS.format(replicas=3)
            + owned_pod("rs-a1", extra='node: "a"') + owned_pod("rs-a2", extra='node: "a"')
            + owned_pod("rs-b", extra='node: "b"', container_extra="restarts: 2")
            + 'scenario "scale down" { at 10s: scale_replicaset replicaset rs replicas = 2 }')
    assert deletion_order(run(spec)) == ["rs-b"]


def test_scale_down_counts_the_most_restarted_container_not_the_pods_total():
    # maxContainerRestarts: [2, 2] has restarted less than [3].
    spec = (node("a") + RS.format(replicas=2)
            + 'pod rs-twice { labels { app: "rs" } owner { kind: "ReplicaSet"  name: "rs" } node: "a"\n'
              '  container main { image: "rs:1"  restarts: 2 }  container side { image: "rs:1"  restarts: 2 } }\n'
            + owned_pod("rs-thrice", extra='node: "a"', container_extra="restarts: 3")
            + 'scenario "scale down" { at 10s: scale_replicaset replicaset rs replicas = 1 }')
    assert deletion_order(run(spec)) == ["rs-thrice"]


def test_scale_down_compares_ready_times_on_a_logarithmic_scale():
    # LogarithmicScaleDown: ready 100 s and 96 s ago are alike (2^36 ns ≤ both < 2^37 ns); upstream
    # then lets the UIDs decide (at random), Konverge the restarts. A pod ready 40 s ago is in a
    # younger power of two, and goes first.
    def spec(later):
        return (node("a") + RS.format(replicas=1)
                + owned_pod("rs-old", extra='node: "a"', container_extra="restarts: 1")
                + f'scenario "scale" {{\n  at {later}s: scale_replicaset replicaset rs replicas = 2\n'
                  '  at 100s: scale_replicaset replicaset rs replicas = 1\n}\n')
    assert deletion_order(run(spec(later=4))) == ["rs-old"]
    assert deletion_order(run(spec(later=60))) != ["rs-old"]


def test_replicaset_adopts_orphans_before_it_creates_pods():
    # syncReplicaSet claims pods before manageReplicas counts them: no pod is created only to be
    # deleted as surplus once the orphans are adopted.
    c = run(node("n1") + RS.format(replicas=2) + 'pod stray1 { labels { app: "rs" } container main { image: "x" } }\n'
            'pod stray2 { labels { app: "rs" } container main { image: "x" } }\n')
    assert c.writes(rule="create_missing") == [] and c.writes(rule="delete_extra") == []
    assert sorted(p["name"] for p in c.pods("rs") if p["owner"]) == ["stray1", "stray2"]


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


def test_a_roll_over_removes_the_unhealthy_old_set_before_the_healthy_one():
    # cleanupUnhealthyReplicas: the stuck set's pods, never available, go first; the healthy set
    # keeps minAvailable (3 - 0) until the new set's pods are ready.
    stuck = 'template { labels { app: "web" }  nodeSelector { nowhere: "x" }  container main { image: "web:2" } }'
    fixed = 'template { labels { app: "web" }  container main { image: "web:3" } }'
    c = run(node("n1", cpu="16") + deployment("web", replicas=3).replace(
        "deployment web {", 'deployment web { maxSurge: "100%"  maxUnavailable: 0')
        + f'scenario "roll over" {{\n  at 60s: update deployment web {{ {stuck} }}\n'
          f'  at 200s: update deployment web {{ {fixed} }}\n}}\n', history=True)
    start = next(w.revision for w in c.result.trace if w.actor == "scenario" and w.clock == 200)
    assert rollout_bounds(c, start)[1] >= 3
    assert sorted(p["containers"][0]["image"] for p in live(c.pods("web"))) == ["web:3"] * 3


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


# ---- a second opinion: the model of tests/workload_model.py ----------------------------------

WHERE = ("a", "a", "b", "b", "down", "sick", None)  # "down": pods stay Pending; "sick": not ready (kube.sick_node)
SCALE_AT = 100


@st.composite
def replicaset_clusters(draw):
    """A standalone ReplicaSet with 1–6 declared pods (on a node, one that never starts them, one
    that never makes them ready, or none; with a deletion cost and restarts; a few orphans it
    adopts), scaled up at some instants (its newer pods, ready for less time), some pods killed
    (replaced), then scaled down."""
    pods = [dict(
        name=f"rs-p{i}",
        node=draw(st.sampled_from(WHERE)),
        cost=draw(st.sampled_from((0, 0, 0, -1, 5))),
        restarts=draw(st.lists(st.sampled_from((0, 0, 1, 2, 3)), min_size=1, max_size=2)),
        orphan=draw(st.integers(0, 5)) == 0,
    ) for i in range(draw(st.integers(1, 6)))]
    ups = draw(st.lists(st.tuples(st.sampled_from((4, 20, 60)), st.integers(1, 2)), max_size=2,
                        unique_by=lambda u: u[0]))
    killed = draw(st.lists(st.sampled_from([p["name"] for p in pods]), max_size=2, unique=True))
    total = len(pods) + sum(n for _, n in ups)
    return pods, sorted(ups), killed, draw(st.integers(0, total - 1))


def replicaset_spec(pods, ups, killed, scale_to) -> str:
    text = [node("a", cpu="16"), node("b", cpu="16"), node("down", extra="kubeletUp: false"),
            sick_node(), RS.format(replicas=len(pods))]
    for p in pods:
        owner = "" if p["orphan"] else 'owner { kind: "ReplicaSet"  name: "rs" }'
        where = f'node: "{p["node"]}"' if p["node"] else 'nodeSelector { nowhere: "x" }'
        crash = SICK_CONTAINER if p["node"] == "sick" else ""
        containers = "".join(f'  container c{j} {{ image: "rs:1"  cpu: 100m  memory: 64Mi  restarts: {r}  {crash} }}\n'
                             for j, r in enumerate(p["restarts"]))
        text.append(f'pod {p["name"]} {{ labels {{ app: "rs" }} {owner} {where}  deletionCost: {p["cost"]}\n'
                    f'{containers}}}\n')
    events, replicas = [sick_event().rstrip("\n")], len(pods)
    for at, n in ups:
        replicas += n
        events.append(f"  at {at}s: scale_replicaset replicaset rs replicas = {replicas}")
    events += [f"  at 80s: kill pod {name}" for name in killed]
    events.append(f"  at {SCALE_AT}s: scale_replicaset replicaset rs replicas = {scale_to}")
    return "".join(text) + 'scenario "scale down" {\n' + "\n".join(events) + "\n}\n"


def _model_pod(p: dict) -> model.Pod:
    return model.Pod(p["name"], p["node"], p["phase"], p["ready"],
                     None if p["readySince"] is None else Fraction(p["readySince"]),
                     Fraction(p["createdAt"]), tuple(c["restarts"] for c in p["containers"]), p["deletionCost"])


@given(replicaset_clusters())
def test_replicaset_adopts_replaces_and_scales_down_as_the_kubernetes_model_does(cluster):
    pods, ups, killed, scale_to = cluster
    c = run(replicaset_spec(pods, ups, killed, scale_to), history=True)
    # Orphans are adopted before the set counts its pods (claimPods, then manageReplicas), so
    # it creates only for its scale-ups and the killed pods (manageReplicas' diff), and deletes
    # nothing before it is scaled down.
    assert len(c.writes(rule="adopt_orphans")) == sum(p["orphan"] for p in pods)
    # (Pods on the nodes that are down or not ready are evicted after 300 s, and replaced.)
    creates = [w for w in c.writes(verb="create", kind="Pod", rule="create_missing") if w.clock <= SCALE_AT]
    assert len(creates) == sum(n for _, n in ups) + len(killed)
    assert all(w.clock < SCALE_AT for w in creates)
    assert all(w.clock == SCALE_AT for w in c.writes(rule="delete_extra"))
    # The scale-down deletes the pods getPodsToDelete chooses, from the pods as they were when
    # the set was scaled (a tie may go either way).
    scaled = next(w.revision for w in c.result.trace if w.actor == "scenario" and w.clock == SCALE_AT)
    before = [objects for revision, objects in c.states() if revision <= scaled][-1]
    owned = [_model_pod(o) for o in before
             if o["kind"] == "Pod" and o["owner"] and model.active(o["phase"], o["deleting"])]
    sure, tied = model.pods_to_delete(owned, [], len(owned) - scale_to, Fraction(SCALE_AT))
    deleted = {w.name for w in c.writes(rule="delete_extra")}
    assert len(deleted) == -model.manage_replicas(scale_to, len(owned))
    assert sure <= deleted <= sure | tied, (sorted(deleted), sorted(sure), sorted(tied))
    assert len([p for p in c.pods("rs", live=True) if p["owner"]]) == scale_to


FENCEPOST = st.sampled_from((None, 0, 1, 2, "10%", "25%", "50%", "100%"))  # None: left out (25%)


@st.composite
def rollouts(draw):
    """A Deployment of 1–6 replicas with random maxSurge and maxUnavailable, whose template is
    changed at 60 s, perhaps to one whose pods never schedule (the rollout is stuck) and then at
    200 s to a third one (a roll-over: two old sets, one of them unhealthy)."""
    surge, unavailable = draw(FENCEPOST), draw(FENCEPOST)
    if surge == 0 and unavailable == 0:  # validation refuses both 0
        unavailable = None
    return (draw(st.integers(1, 6)), surge, unavailable, draw(st.booleans()),
            draw(st.sampled_from((None, None, 1, 4))))


def _template(image: str, stuck: bool) -> str:
    where = 'nodeSelector { nowhere: "x" }' if stuck else ""
    return (f'template {{ labels {{ app: "web" }} {where}  '
            f'container main {{ image: "{image}"  cpu: 100m  memory: 64Mi }} }}')


def rollout_spec(replicas, surge, unavailable, stuck, rescale) -> str:
    fenceposts = "".join(f' {k}: {v!r}'.replace("'", '"') for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable))
                         if v is not None)
    spec = node("a", cpu="16") + node("b", cpu="16") + deployment("web", replicas=replicas).replace(
        "deployment web {", "deployment web {" + fenceposts)
    events = [f"  at 60s: update deployment web {{ {_template('web:2', stuck)} }}"]
    if rescale is not None:
        events.append(f"  at 60s: scale deployment web replicas = {rescale}")
    if stuck:
        events.append(f"  at 200s: update deployment web {{ {_template('web:3', False)} }}")
    return spec + 'scenario "roll out" {\n' + "\n".join(events) + "\n}\n"


def _sets(objects, d):
    """(the new set, the old sets) as model.RS, the new one being the set of d's template."""
    new, old = None, []
    for o in objects:
        if o["kind"] != "ReplicaSet":
            continue
        rs = model.RS(o["name"], o["replicas"], min(o["replicas"], o["readyReplicas"]), (o["revision"], o["name"]))
        if o["template"]["containers"] == d["template"]["containers"] and \
                o["template"]["nodeSelector"] == d["template"]["nodeSelector"]:
            new = rs
        else:
            old.append(rs)
    return new, old


@given(rollouts())
def test_rolling_updates_scale_the_sets_as_the_kubernetes_model_does(case):
    replicas, surge, unavailable, stuck, rescale = case
    c = run(rollout_spec(replicas, surge, unavailable, stuck, rescale), history=True)
    surge = "25%" if surge is None else surge
    unavailable = "25%" if unavailable is None else unavailable
    states = list(c.states())
    scalings = [w for w in c.result.trace if w.rule in ("scale_new", "clean_up_unhealthy_old", "scale_down_old")]
    for w in scalings:
        # Each write scales a set as rolloutRolling would from the state it was made in.
        before = [objects for revision, objects in states if revision < w.revision][-1]
        after = next(objects for revision, objects in states if revision == w.revision)
        d = next(o for o in before if o["kind"] == "Deployment")
        new, old = _sets(before, d)
        got = next(o["replicas"] for o in after if o["kind"] == "ReplicaSet" and o["name"] == w.name)
        if w.rule == "scale_new":
            want = model.reconcile_new(d["replicas"], surge, old + [new], new)
        else:
            want = model.reconcile_old(d["replicas"], surge, unavailable, old, new)[w.name]
        assert got == want, (w.rule, w.name, got, want, new, old)
    # The end: the last template's set has every replica, ready; the old ones none.
    final = rescale if rescale is not None else replicas
    d = c.get("Deployment", "web")
    new, old = _sets(c.objects, d)
    assert new.replicas == final and all(r.replicas == 0 for r in old)
    pods = c.pods("web", live=True)
    assert len(pods) == final and all(p["ready"] for p in pods)
    assert {p["containers"][0]["image"] for p in pods} <= {"web:3" if stuck else "web:2"}
