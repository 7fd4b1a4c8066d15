"""The kubelet and container runtime (rules/kubelet.konv)."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import fixpoint
from engine.fixpoint import reconcile
from engine.kube.tables import pod_status
from engine.store import open_store
from engine.verify import result_culprits
from tests import kubelet_model as model
from tests.kube import Cluster, deployment, memo_keeps, node, program_of, run


def pod(name, node_name="n1", cpu="100m", memory="64Mi", extra="", container_extra=""):
    return (f'pod {name} {{ labels {{ app: "p" }} node: "{node_name}" {extra}\n'
            f'  container main {{ image: "x"  cpu: {cpu}  memory: {memory} {container_extra} }} }}\n')


def clocks(c, rule, name):
    return [w.clock for w in c.writes(rule=rule, name=name, verb="update")]


def test_bound_pod_starts_running_with_an_ip_and_becomes_ready():
    c = run(node("n1") + pod("p1"), history=True)
    p = c.get("Pod", "p1")
    assert p["phase"] == "Running" and p["ready"] and p["ip"] is not None
    assert p["containers"][0]["state"] == "Running" and p["containers"][0]["startedAt"] == 0
    # the sequence: scheduler (already bound here) → sandbox, IP, containers and, in the same status
    # update, readiness: without a readiness probe a running container is ready (prober_manager.go
    # UpdatePodStatus: "no readinessProbe -> always ready").
    rules = [w.rule for w in c.writes(kind="Pod", name="p1", verb="update")]
    assert rules == ["start_containers"]
    # Pending without an IP, then Running with one: the IP comes with the status update that starts it.
    seen = []
    for _, objects in c.states():
        p1 = next((o for o in objects if o["kind"] == "Pod" and o["name"] == "p1"), None)
        if p1 is not None and (not seen or seen[-1] != (p1["phase"], p1["ip"] is not None)):
            seen.append((p1["phase"], p1["ip"] is not None))
    assert seen == [("Pending", False), ("Running", True)]


def test_pod_that_does_not_fit_is_rejected_out_of_cpu():
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m"))
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running"
    assert b["phase"] == "Failed" and b["reason"] == "OutOfcpu" and b["ip"] is None
    assert b["message"].startswith("Pod was rejected: Node didn't have enough resource: cpu")


def test_pod_that_does_not_fit_is_rejected_out_of_memory():
    c = run(node("n1", memory="1Gi") + pod("a", memory="800Mi") + pod("b", memory="800Mi"))
    assert c.get("Pod", "b")["reason"] == "OutOfmemory" and c.get("Pod", "b")["phase"] == "Failed"


def test_a_pod_taking_an_address_makes_only_its_own_nodes_kubelet_look_again(monkeypatch):
    # The kubelet's admission reads the admitted pods of its node, looked up by node: never the
    # pods that have an address, which would be fewer than a node's while few pods run, and
    # whose every change would make every node's kubelet look again.
    read = {}
    evaluate = fixpoint.Engine.evaluate

    def spy(engine, inst, primary):
        outcome = evaluate(engine, inst, primary)
        read.setdefault(inst.rule.name, set()).update(outcome.reads)
        return outcome

    monkeypatch.setattr(fixpoint.Engine, "evaluate", spy)
    c = run(node("n1") + pod("a") + "".join(pod(f"b{i}", node_name="n2") for i in range(3)) + node("n2"))
    assert all(c.get("Pod", p)["phase"] == "Running" for p in ("a", "b0", "b1", "b2"))
    assert ("eq", "Pod", ("node",), "n2") in read["reject"]
    assert ("has", "Pod", ("ip",), True) not in read["reject"]


def test_kubelet_that_is_down_starts_nothing():
    c = run(node("n1", extra="kubeletUp: false") + pod("p1"), until=30)
    p = c.get("Pod", "p1")
    assert p["phase"] == "Pending" and p["ip"] is None and not p["ready"]


def test_crashing_container_restarts_at_once_then_backs_off_10_20_40_up_to_300s():
    # The kubelet has no back-off entry for a container's first exit: it restarts it at once.
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=1500)
    crashes = clocks(c, "crash", "crashy")
    restarts = clocks(c, "restart", "crashy")
    waits = [r - k for k, r in zip(crashes, restarts)]
    assert waits[:8] == [0, 10, 20, 40, 80, 160, 300, 300]
    assert all(k - r == 1 for r, k in zip(restarts, crashes[1:]))  # each run lasts 1 s
    p = c.get("Pod", "crashy")
    assert p["containers"][0]["restarts"] == len(restarts)


def test_container_in_back_off_has_reason_crash_loop_back_off_and_is_not_ready():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=5)
    p = c.get("Pod", "crashy")
    assert p["reason"] == "CrashLoopBackOff" and not p["ready"] and p["phase"] == "Running"
    # exited at 1 s, restarted at once, exited at 2 s: back-off until 12 s
    assert p["containers"][0]["state"] == "Terminated" and p["containers"][0]["backoffUntil"] == 12


def kubelet_clocks(c, rule, name):
    return [w.clock for w in c.writes(rule=rule, name=name, verb="update") if w.actor == "kubelet"]


def test_back_off_resets_after_10_minutes_running():
    # A container whose back-off reached 160 s: a crash more than 10 min after its last (re)start
    # finds the entry expired, restarts at once and starts again at 10 s; one after 5 min waits 160 s.
    base = node("n1") + pod("c", container_extra="backoff: 160s")
    late = run(base + 'scenario "crash" { at 12m: crash pod c }', until=12 * 60 + 30)
    crashes, restarts = kubelet_clocks(late, "crash", "c"), kubelet_clocks(late, "restart", "c")
    assert crashes[:2] == [720, 721] and restarts[:2] == [720, 731]
    early = run(base + 'scenario "crash" { at 5m: crash pod c }', until=5 * 60 + 400)
    crashes, restarts = kubelet_clocks(early, "crash", "c"), kubelet_clocks(early, "restart", "c")
    assert crashes[:2] == [300, 461] and restarts[:1] == [460]
    # exactly 10 min is not more than 10 min: still in back-off, until the GC removes the entry
    # just after (below)
    edge = run(base + 'scenario "crash" { at 10m: crash pod c }', until=10 * 60 + 200)
    assert kubelet_clocks(edge, "restart", "c")[:2] == [601, 612]


def test_back_off_entry_is_collected_10_minutes_after_the_last_restart_even_while_waiting():
    # kl.backOff.GC(): an entry more than 600 s past its last update (the restart at 0) is deleted
    # although the container, exited at 599 s, waits out 300 s: it restarts at 601 s, not 899 s,
    # and its back-off starts over at 10 s (Konverge's GC runs 1 s after the 600 s).
    c = run(node("n1") + pod("c", container_extra="backoff: 300s")
            + 'scenario "crash" { at 599s: crash pod c }', until=700)
    crashes, restarts = kubelet_clocks(c, "crash", "c"), kubelet_clocks(c, "restart", "c")
    assert crashes[:3] == [599, 602, 613] and restarts[:3] == [601, 612, 633]
    at_598 = run(node("n1") + pod("c", container_extra="backoff: 300s")
                 + 'scenario "crash" { at 599s: crash pod c }', until=600)
    p = at_598.get("Pod", "c")
    assert p["reason"] == "CrashLoopBackOff" and p["containers"][0]["backoffUntil"] == 899
    # the model agrees
    want = model.run_container(Fraction(0), "Always", Fraction(599), Fraction(700), (300, Fraction(0)))
    assert (want.crashes[:3], want.restarts[:3]) == (crashes[:3], restarts[:3])


def test_restart_policy_never_leaves_a_crashed_pod_failed():
    c = run(node("n1") + pod("once", extra='restartPolicy: "Never"', container_extra="crashing: true"))
    p = c.get("Pod", "once")
    assert p["phase"] == "Failed" and not p["ready"] and p["containers"][0]["restarts"] == 0
    assert p["containers"][0]["exitCode"] == 1
    # Nothing will restart it, so it is not in CrashLoopBackOff: kubectl shows the container's Error.
    assert p["reason"] == "" and pod_status(p) == "Error"


def test_restart_policy_on_failure_restarts_a_failed_container():
    c = run(node("n1") + pod("retry", extra='restartPolicy: "OnFailure"', container_extra="crashing: true"), until=40)
    assert c.get("Pod", "retry")["containers"][0]["restarts"] == 3  # at 1 s, 12 s and 33 s


def test_killed_pod_is_removed_and_its_ip_released():
    c = run(node("n1") + pod("old") + 'scenario "kill and replace" { at 1m: kill pod old\n'
            '  at 2m: create pod new { node: "n1"  container main { image: "x" } } }')
    assert c.get("Pod", "old") is None
    first_ip = next(w for w in c.writes(rule="start_containers", name="old"))
    assert first_ip is not None
    assert c.get("Pod", "new")["ip"] == "192.168.0.0"  # the released address is the lowest free again


def test_pod_on_a_failed_node_is_left_alone_by_its_kubelet():
    c = run(node("n1") + pod("p") + 'scenario "fail then kill" { at 30s: fail node n1\n at 40s: kill pod p }', until=200)
    p = c.get("Pod", "p")
    assert p is not None and p["deleting"]  # no kubelet to remove it


def test_crash_looping_pod_shows_crash_loop_back_off_in_its_status():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=5)
    assert pod_status(c.get("Pod", "crashy")) == "CrashLoopBackOff"


def test_on_failure_pod_in_back_off_shows_crash_loop_back_off():
    c = run(node("n1") + pod("retry", extra='restartPolicy: "OnFailure"', container_extra="crashing: true"), until=5)
    p = c.get("Pod", "retry")
    assert p["reason"] == "CrashLoopBackOff" and pod_status(p) == "CrashLoopBackOff"


def test_pod_beyond_the_node_pod_count_is_rejected_out_of_pods():
    c = run(node("n1", extra="pods: 1") + pod("a") + pod("b"))
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running"
    assert b["phase"] == "Failed" and b["reason"] == "OutOfpods" and b["ip"] is None
    assert b["message"] == "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1"
    assert pod_status(b) == "OutOfpods"


def test_pinned_pod_whose_node_selector_does_not_match_is_rejected_node_affinity():
    c = run(node("n1", extra='labels { zone: "a" }') + pod("wrong", extra='nodeSelector { zone: "b" }')
            + pod("right", extra='nodeSelector { zone: "a" }'))
    wrong = c.get("Pod", "wrong")
    assert wrong["phase"] == "Failed" and wrong["reason"] == "NodeAffinity" and wrong["ip"] is None
    assert wrong["message"] == ("Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's "
                                "node affinity/selector")
    assert c.get("Pod", "right")["phase"] == "Running"
    assert c.result.violations == ()


def test_pinned_pod_failing_required_node_affinity_is_rejected():
    c = run(node("n1", extra='labels { zone: "a" }') + pod("p", extra='affinity: {requiredNodeTerms: '
            '[{matchExpressions: [{key: "zone", operator: "In", values: ["b", "c"]}]}]}'))
    assert c.get("Pod", "p")["reason"] == "NodeAffinity"


def test_pinned_pod_runs_on_a_node_with_an_untolerated_no_schedule_taint():
    # nodeName skips the scheduler, and the kubelet does not check NoSchedule taints.
    c = run(node("n1", extra='taints: [{key: "k", value: "v", effect: "NoSchedule"}]') + pod("a"))
    assert c.get("Pod", "a")["phase"] == "Running" and c.get("Pod", "a")["ready"]
    assert c.result.violations == ()  # the standard invariants do not flag it


def test_kubelet_judges_its_pods_one_after_another_each_against_those_admitted_before():
    # HandlePodAdditions: p0 is admitted first, so p1 finds the node full (OutOfpods), not short of
    # the memory it alone asks for, as it would against the node before p0 was admitted.
    c = run(node("n1", memory="0", extra="pods: 1") + pod("p0", memory="0") + pod("p1", memory="64Mi"))
    assert c.get("Pod", "p0")["phase"] == "Running"
    assert (c.get("Pod", "p1")["reason"], c.get("Pod", "p1")["message"]) == (
        "OutOfpods", "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1")


def test_kubelet_admits_the_older_of_two_pods_that_do_not_both_fit():
    c = run(node("n1", cpu="1") + pod("a", cpu="800m", extra="createdAt: 10s") + pod("z", cpu="800m"))
    assert c.get("Pod", "z")["phase"] == "Running"
    assert c.get("Pod", "a")["reason"] == "OutOfcpu"


def test_pod_waiting_for_an_address_does_not_hold_back_the_judging_of_younger_pods():
    # A /30 pool: four addresses for six pods that fit. Upstream admission comes before the
    # sandbox's address, so the older pods waiting for one do not keep the younger `zbad`, which
    # no node matches, from being rejected; the next freed address goes to the oldest waiting pod.
    spec = ('ippool aaa-small { cidr: 10.0.0.0/30  blockSize: 30 }\n' + node("n1")
            + "".join(pod(f"p{i}", extra=f"createdAt: {i}s") for i in range(6))
            + pod("zbad", extra='createdAt: 10s nodeSelector { zone: "nowhere" }'))
    c = run(spec)
    assert [(p["name"], p["phase"], p["reason"]) for p in c.pods()] == [
        ("p0", "Running", ""), ("p1", "Running", ""), ("p2", "Running", ""), ("p3", "Running", ""),
        ("p4", "Pending", ""), ("p5", "Pending", ""), ("zbad", "Failed", "NodeAffinity")]
    c = run(spec + 'scenario "free one" { at 1m: kill pod p0 }')
    assert (c.get("Pod", "p4")["phase"], c.get("Pod", "p4")["ip"]) == ("Running", "10.0.0.0")
    assert c.get("Pod", "p5")["phase"] == "Pending"


def test_nodes_alike_in_content_and_admitted_use_share_the_kubelets_resource_verdict(monkeypatch):
    # Admission weighs a node's admitted use (`admitted_use`: a count and two sums), not its pods:
    # its verdict is memoised by the node's content and that use, so eight alike nodes starting
    # two pods each are judged for two uses (empty, one pod) rather than node by node.
    kept = memo_keeps(monkeypatch)
    c = run("".join(node(f"n{i}") + pod(f"a{i}", f"n{i}") + pod(f"b{i}", f"n{i}") for i in range(8)))
    assert all(p["phase"] == "Running" for p in c.pods()) and len(c.pods()) == 16
    assert kept.count("admitted_use") >= 16  # each start's own
    assert kept.count("out_of_use") == 2


def test_pending_pod_that_already_has_an_ip_starts_with_it():
    c = run(node("n1") + pod("p1", extra="ip: 192.168.0.7"))
    p = c.get("Pod", "p1")
    assert p["phase"] == "Running" and p["ready"] and p["ip"] == "192.168.0.7"


def test_pending_pod_that_already_has_an_ip_is_admitted_like_any_other():
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m", extra="ip: 192.168.0.7"))
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running"
    assert b["phase"] == "Failed" and b["reason"] == "OutOfcpu"


# ---- the kubelet's events ----------------------------------------------------------------------


def events_of(c, obj: str) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in c.of("Event") if e["object"] == obj]


def test_rejection_event_drops_only_the_leading_pod_was_rejected():
    # The event's message is the pod's without its leading "Pod was rejected: "; the text after it
    # is kept whole, and a message without it is the event's as it is.
    c = run(node("n1") + pod("a", extra='phase: "Failed" reason: "OutOfcpu" '
                                       'message: "Pod was rejected: see Pod was rejected: x"')
            + pod("b", extra='phase: "Failed" reason: "OutOfpods" message: "full"'))
    assert events_of(c, "Pod/default/a") == [("Warning", "OutOfcpu", "see Pod was rejected: x")]
    assert events_of(c, "Pod/default/b") == [("Warning", "OutOfpods", "full")]


def test_rejected_pod_has_the_kubelet_warning_event_while_it_stays_failed():
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m"))
    # rejectPod: the event has the predicate's message, the pod's status "Pod was rejected: " before it
    assert events_of(c, "Pod/default/b") == [
        ("Warning", "OutOfcpu", "Node didn't have enough resource: cpu, requested: 800, used: 800, capacity: 1000")]
    assert c.get("Pod", "b")["message"] == ("Pod was rejected: Node didn't have enough resource: cpu, "
                                            "requested: 800, used: 800, capacity: 1000")
    assert events_of(c, "Pod/default/a") == []
    # Deleted, the pod takes its event with it.
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m")
            + 'scenario "clean up" { at 1m: delete pod b }')
    assert c.of("Event") == []


def test_crash_looping_pod_has_a_back_off_event_until_it_runs_again():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=5)
    assert events_of(c, "Pod/default/crashy") == [
        ("Warning", "BackOff", "Back-off restarting failed container main in pod crashy_default")]
    # Restarted at 12 s, running until it crashes again at 13 s: no back-off, no event.
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=12.5)
    assert c.get("Pod", "crashy")["reason"] == "" and c.of("Event") == []


NODE_CPUS = ["0", "250m", "1"]
NODE_MEMORIES = ["0", "128Mi", "1Gi"]
POD_CPUS = ["0", "100m", "250m", "1"]
POD_MEMORIES = ["0", "64Mi", "1Gi"]


@st.composite
def crowded_nodes(draw):
    """Nodes (some of no capacity at all) and the pods pinned to them with nodeName, often more than
    fit: some finished already, some terminating, some whose nodeSelector the node does not match."""
    nodes = [{"name": f"n{i}", "cpu": draw(st.sampled_from(NODE_CPUS)),
              "memory": draw(st.sampled_from(NODE_MEMORIES)), "pods": draw(st.integers(0, 3)),
              "zone": draw(st.sampled_from("ab"))}
             for i in range(draw(st.integers(1, 3)))]
    pods = [{"name": f"p{i}", "node": draw(st.sampled_from(nodes))["name"],
             "cpu": draw(st.sampled_from(POD_CPUS)), "memory": draw(st.sampled_from(POD_MEMORIES)),
             "state": draw(st.sampled_from(["pending", "pending", "pending", "succeeded", "deleting"])),
             "zone": draw(st.sampled_from([None, None, "a", "b"]))}
            for i in range(draw(st.integers(1, 7)))]
    return nodes, pods


def crowded_spec(nodes, pods) -> str:
    extra = {"pending": "", "succeeded": 'phase: "Succeeded"', "deleting": "deleting: true"}
    return "".join(
        node(n["name"], cpu=n["cpu"], memory=n["memory"], extra=f'pods: {n["pods"]}  labels {{ zone: "{n["zone"]}" }}')
        for n in nodes
    ) + "".join(
        pod(p["name"], node_name=p["node"], cpu=p["cpu"], memory=p["memory"],
            extra=extra[p["state"]] + (f' nodeSelector {{ zone: "{p["zone"]}" }}' if p["zone"] else ""))
        for p in pods
    )


def first_failing(p, n, admitted):
    """The kubelet's verdict on a pending pod, by Kubernetes' predicates in their order: the
    rejection's reason, or None to admit it."""
    if len(admitted) + 1 > n["pods"]:
        return "OutOfpods"
    if sum(q["containers"][0]["cpu"] for q in admitted) + p["containers"][0]["cpu"] > n["cpu"]:
        return "OutOfcpu"
    if sum(q["containers"][0]["memory"] for q in admitted) + p["containers"][0]["memory"] > n["memory"]:
        return "OutOfmemory"
    if not all(n["labels"].get(k) == v for k, v in p["nodeSelector"].items()):
        return "NodeAffinity"
    return None


@settings(max_examples=30)
@given(crowded_nodes())
def test_kubelet_admits_or_rejects_each_pod_of_a_crowded_node_as_its_admitted_pods_then_allow(cluster):
    # Each pod that leaves Pending is judged against the pods admitted to its node just before
    # (started: with an IP, not finished), whatever else is bound there (pending, finished or
    # terminating pods, a node of no capacity): started if it fits, else failed with the first
    # predicate's reason. Terminating pods are removed unstarted; the naive reference agrees.
    nodes, pods = cluster
    program = program_of(crowded_spec(nodes, pods))
    store = open_store(None)
    c = Cluster(reconcile(program, store=store), store)
    assert c.result.converged and c.objects == list(reconcile(program, naive=True).objects)
    by_node = {n["name"]: c.node(n["name"]) for n in nodes}
    judged, before = set(), {}
    for _, objects in c.states():
        now = {o["name"]: o for o in objects if o["kind"] == "Pod"}
        for name, p in now.items():
            was = before.get(name)
            if was is None or was["phase"] != "Pending" or p["phase"] == "Pending":
                continue
            admitted = [q for q in before.values() if q["node"] == was["node"] and q["ip"] is not None
                        and q["phase"] not in ("Pending", "Succeeded", "Failed")]
            verdict = first_failing(was, by_node[was["node"]], admitted)
            assert (p["phase"], p["reason"]) == (("Running", "") if verdict is None else ("Failed", verdict)), name
            assert (p["ip"] is None) == (verdict is not None), name
            judged.add(name)
        before = now
    for want in pods:
        p = c.get("Pod", want["name"])
        if want["state"] == "deleting":
            assert p is None and want["name"] not in judged  # stopped and removed, never started
        elif want["state"] == "succeeded":
            assert p["phase"] == "Succeeded" and p["ip"] is None
        else:
            assert want["name"] in judged


# ---- against the Kubernetes model (tests/kubelet_model.py) --------------------------------------


def model_node(n: dict) -> model.Node:
    return model.Node(n["name"], Fraction(n["cpu"]), int(n["memory"]), n["pods"], dict(n["labels"]))


@settings(max_examples=20)
@given(crowded_nodes())
def test_kubelet_admits_and_rejects_pods_as_the_kubernetes_model_does(cluster):
    # HandlePodAdditions in the model: each node's pending pods in creation order (all made at once
    # here, so by name), each judged by predicate.go against the pods admitted before it; a rejected
    # pod is Failed with "Pod was rejected: " + the predicate's message, and has a Warning event with
    # the bare message.
    nodes, pods = cluster
    c = run(crowded_spec(nodes, pods))
    got = {p["name"]: p for p in c.pods()}
    verdicts = {}
    for n in nodes:
        node_pods = [model.Pod(p["name"], p["node"], Fraction(got_or(got, p)["containers"][0]["cpu"]),
                               int(got_or(got, p)["containers"][0]["memory"]),
                               {"zone": p["zone"]} if p["zone"] else {},
                               "Succeeded" if p["state"] == "succeeded" else "Pending", p["state"] == "deleting")
                     for p in pods if p["node"] == n["name"]]
        verdicts.update(model.admit_node(model_node(c.node(n["name"])), node_pods))
    events = {e["object"]: e for e in c.of("Event")}
    for p in pods:
        pod_ = got.get(p["name"])
        if p["state"] == "deleting":
            assert pod_ is None, p["name"]
            continue
        if p["state"] == "succeeded":
            assert pod_["phase"] == "Succeeded"
            continue
        verdict = verdicts[p["name"]]
        event = events.get(f"Pod/default/{p['name']}")
        if verdict is None:
            assert (pod_["phase"], pod_["reason"], pod_["ready"]) == ("Running", "", True), p["name"]
            assert event is None
        else:
            assert (pod_["phase"], pod_["reason"], pod_["message"]) == (
                "Failed", verdict.reason, verdict.status_message), p["name"]
            assert pod_["ip"] is None and not pod_["ready"]
            assert (event["type"], event["reason"], event["message"]) == ("Warning", verdict.reason, verdict.message)


def got_or(got, p):
    """The pod as created (its requests), from the cluster; a terminating pod is gone, and its
    requests do not matter."""
    return got.get(p["name"]) or {"containers": [{"cpu": 0, "memory": 0}]}


@st.composite
def crash_scenarios(draw):
    policy = draw(st.sampled_from(["Always", "OnFailure", "Never"]))
    from_start = draw(st.booleans())
    crash_at = None if from_start else draw(st.sampled_from([2, 30, 300, 450, 599, 600, 601, 700]))
    backoff = draw(st.sampled_from([0, 0, 10, 160, 300]))  # a back-off entry from earlier crashes
    horizon = (crash_at or 0) + draw(st.integers(0, 1500)) + Fraction(1, 2)
    return policy, crash_at, backoff, horizon


@settings(max_examples=20, deadline=None)
@given(crash_scenarios())
def test_crashing_container_restarts_when_the_kubernetes_back_off_allows(scenario):
    # doBackOff with flowcontrol.Backoff in the model: the crash and restart times, the restart
    # count, the pod's phase, readiness and CrashLoopBackOff, and the BackOff event, at any moment.
    # A container with a back-off entry already (`backoff`) had it from a restart when it started.
    policy, crash_at, backoff, horizon = scenario
    extra = f'restartPolicy: "{policy}"'
    container_extra = f"backoff: {backoff}s" + (" crashing: true" if crash_at is None else "")
    spec = node("n1") + pod("c", extra=extra, container_extra=container_extra)
    if crash_at is not None:
        spec += f'scenario "crash" {{ at {crash_at}s: crash pod c }}'
    c = run(spec, until=horizon)
    want = model.run_container(Fraction(0), policy, Fraction(crash_at or 0), horizon,
                               (backoff, Fraction(0)) if backoff else None)
    kubelet = [w for w in c.writes(name="c", verb="update") if w.actor == "kubelet"]
    assert [w.clock for w in kubelet if w.rule == "crash"] == want.crashes
    assert [w.clock for w in kubelet if w.rule == "restart"] == want.restarts
    p = c.get("Pod", "c")
    container = p["containers"][0]
    assert container["restarts"] == len(want.restarts)
    assert container["state"] == want.state
    assert p["phase"] == model.pod_phase(policy, want)
    assert p["ready"] == (want.state == "Running")
    assert (p["reason"] == "CrashLoopBackOff") == want.backing_off
    if want.backing_off:
        assert container["backoffUntil"] == want.backoff_until
    assert events_of(c, "Pod/default/c") == (
        [("Warning", "BackOff", model.backoff_message("main", "c"))] if want.backing_off else [])


# ---- registration labels (kubelet_node_status.go initialNode; kubeadm's markcontrolplane) ----

def test_a_node_carries_the_labels_its_kubelet_registers_it_with():
    c = run(node("n1", extra='labels { zone: "a" }') + node("cp", extra="controlPlane: true"))
    assert c.get("Node", "n1", None)["labels"] == {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux",
        "zone": "a",
    }
    cp = c.get("Node", "cp", None)["labels"]
    assert cp["node-role.kubernetes.io/control-plane"] == ""
    assert cp["node.kubernetes.io/exclude-from-external-load-balancers"] == ""
    assert cp["kubernetes.io/hostname"] == "cp"


def test_a_label_the_spec_gives_wins_over_the_registered_one():
    # the kubelet's --node-labels (and --hostname-override) overwrite its defaults
    c = run(node("n1", extra='labels { "kubernetes.io/hostname": "host-1"  "kubernetes.io/arch": "arm64" }'))
    labels = c.get("Node", "n1", None)["labels"]
    assert labels["kubernetes.io/hostname"] == "host-1" and labels["kubernetes.io/arch"] == "arm64"
    assert labels["beta.kubernetes.io/arch"] == "amd64"


def test_well_known_labels_select_nodes_without_the_spec_setting_them():
    # A nodeSelector on the hostname pins a pod; a required anti-affinity on it keeps replicas apart.
    spec = (node("n1") + node("n2") + node("n3")
            + 'pod pinned { nodeSelector { "kubernetes.io/hostname": "n2" }\n'
              '  container main { image: "x"  cpu: 100m  memory: 64Mi } }\n'
            + deployment("cache", replicas=3, extra='affinity: {podAntiAffinity: [{labelSelector: {app: "cache"}, '
                                                     'topologyKey: "kubernetes.io/hostname"}]}'))
    c = run(spec)
    assert c.get("Pod", "pinned")["node"] == "n2"
    cache = [p for p in c.of("Pod") if p["labels"].get("app") == "cache"]
    assert sorted(p["node"] for p in cache) == ["n1", "n2", "n3"]


def test_a_write_that_drops_registered_labels_gets_them_back():
    c = run(node("n1", extra='labels { team: "a" }')
            + 'scenario "relabel" { at 10s: update node n1 { labels { other: "y" } } }')
    labels = c.get("Node", "n1", None)["labels"]
    assert labels["other"] == "y" and "team" not in labels
    assert labels["kubernetes.io/hostname"] == "n1" and labels["kubernetes.io/os"] == "linux"


# ---- a runtime that is down: kubelet.go syncLoop skips every pod ("Skipping pod synchronization") ----

def test_pods_bound_to_a_node_whose_runtime_is_down_stay_pending_unjudged_until_it_recovers():
    # syncLoop skips HandlePodAdditions too: no pod is admitted, rejected or started while
    # runtimeErrors() reports the runtime down; once it is back the pods are judged oldest first.
    stay = 'tolerations: [{operator: "Exists"}]'  # not evicted for the not-ready taint meanwhile
    spec = (node("n1", cpu="1", extra="runtimeUp: false") + pod("a", cpu="800m", extra=stay + " createdAt: 0s")
            + pod("b", cpu="800m", extra=stay + " createdAt: 1s"))
    c = run(spec)
    for name in ("a", "b"):
        p = c.get("Pod", name)
        assert (p["phase"], p["ip"], p["ready"], p["reason"]) == ("Pending", None, False, ""), name
    assert not c.writes(kind="Pod", verb="update", rule="start_containers") and not c.writes(rule="reject")
    assert c.node("n1")["readyCondition"] == "False"  # node status goes on: Ready=False
    # Two pods bound beyond the node's cpu, neither admitted: the node is not over capacity, and no
    # Calico block is claimed for it before a sandbox asks (the CNI ADD comes from the runtime).
    assert c.result.violations == () and c.of("IPBlock") == []
    c = run(spec + 'scenario "recover" { at 2m: recover node n1 }')
    a, b = c.get("Pod", "a"), c.get("Pod", "b")
    assert a["phase"] == "Running" and a["ready"] and a["containers"][0]["startedAt"] == 120
    assert b["phase"] == "Failed" and b["reason"] == "OutOfcpu"
    assert clocks(c, "start_containers", "a") == [120] and clocks(c, "reject", "b") == [120]


def test_a_pod_deleted_on_a_node_whose_runtime_is_down_stays_terminating_until_it_recovers():
    # The kubelet does not see the deletion (syncLoopIteration reads no config update), so the
    # pod keeps its status and stays Terminating; the endpoints drop it, and its ReplicaSet, for
    # which a terminating pod is not active (FilterActivePods), replaces it on the healthy node.
    spec = (node("n1") + node("n2", extra="unschedulable: true") + deployment("web")
            + 'service web { selector { app: "web" }  port http { port: 80  targetPort: 80 } }\n')
    [old] = run(spec).pods("web")
    events = f'at 30s: runtime_down node n1\n at 1m: kill pod {old["name"]}\n at 1m: uncordon node n2\n'
    c = run(spec + f'scenario "s" {{ {events} }}')
    gone = c.get("Pod", old["name"])
    assert gone["deleting"] and gone["phase"] == "Running" and gone["ready"]  # as it was when the runtime went
    assert pod_status(gone) == "Terminating"
    [new] = [p for p in c.pods("web") if p["name"] != old["name"]]
    assert new["node"] == "n2" and new["ready"] and not new["deleting"]
    assert [a["pod"] for a in c.get("Endpoints", "web")["addresses"]] == [new["name"]]
    assert c.get("Endpoints", "web")["notReadyAddresses"] == []
    c = run(spec + f'scenario "s" {{ {events} at 5m: recover node n1 }}')
    assert c.get("Pod", old["name"]) is None
    [removed] = c.writes(verb="delete", kind="Pod", name=old["name"])
    assert removed.rule == "remove_terminating" and removed.clock == 300


def test_a_container_that_exits_while_the_runtime_is_down_is_seen_to_exit_when_it_returns():
    # The PLEG cannot relist a runtime that is down, and the pod workers do not run, so the exit
    # is neither recorded nor acted on (the pod stays Running and Ready) until the runtime is back;
    # then it restarts at once (its first exit) and backs off as usual. Konverge takes the exit to
    # be at the recovery (upstream: its real finish time; the same here, with no back-off entry).
    spec = node("n1") + pod("c") + 'scenario "s" {\n at 30s: runtime_down node n1\n at 1m: crash pod c\n'
    down = run(spec + "}\n", until=170)
    p = down.get("Pod", "c")
    assert p["phase"] == "Running" and p["ready"] and p["containers"][0]["state"] == "Running"
    assert kubelet_clocks(down, "crash", "c") == [] and kubelet_clocks(down, "restart", "c") == []
    back = run(spec + " at 3m: recover node n1\n}\n", until=200)
    assert kubelet_clocks(back, "crash", "c") == [180, 181, 192] and kubelet_clocks(back, "restart", "c") == [180, 191]
    # a Never pod whose container exited is found Failed only then
    never = node("n1") + pod("c", extra='restartPolicy: "Never"')
    c = run(never + 'scenario "s" {\n at 30s: runtime_down node n1\n at 1m: crash pod c\n}\n')
    assert c.get("Pod", "c")["phase"] == "Running"
    c = run(never + 'scenario "s" {\n at 30s: runtime_down node n1\n at 1m: crash pod c\n at 3m: recover node n1\n}\n')
    assert c.get("Pod", "c")["phase"] == "Failed" and clocks(c, "finish", "c") == [180]


def test_a_running_pod_whose_node_lost_its_selector_label_breaks_the_fits_invariant_alone():
    # The invariant asks any_node first: the pod without a selector fits the relabelled node
    # without a call of matches_node_affinity, one whose selector the node still matches fits by
    # it, and the one whose selector the node lost does not (IgnoredDuringExecution: it keeps
    # running, and the at-rest invariant says so, of it alone).
    spec = (node("n1", extra='labels { disk: "ssd"  zone: "a" }') + pod("free")
            + pod("picky", extra='nodeSelector { disk: "ssd" }') + pod("zoned", extra='nodeSelector { zone: "a" }')
            + 'scenario "relabel" { at 10s: update node n1 { labels { disk: "hdd"  zone: "a" } } }')
    c = run(spec)
    assert [c.get("Pod", n)["phase"] for n in ("free", "picky", "zoned")] == ["Running"] * 3
    fits = "every bound pod fits its node's selectors and taints"
    assert result_culprits(program_of(spec), c.result, [fits]) == [("Pod", "default", "picky")]
    c = run(spec.replace('nodeSelector { disk: "ssd" }', ""))
    assert c.result.violations == ()
