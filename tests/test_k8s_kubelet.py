"""The kubelet and container runtime (rules/kubelet.konv)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import fixpoint
from engine.fixpoint import reconcile
from engine.kube.tables import pod_status
from engine.store import open_store
from tests.kube import Cluster, node, program_of, run


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
    # the sequence: scheduler (already bound here) → sandbox, IP and containers → readiness
    rules = [w.rule for w in c.writes(kind="Pod", name="p1", verb="update")]
    assert rules.index("start_containers") < rules.index("ready")
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

    def spy(engine, inst):
        outcome = evaluate(engine, inst)
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


def test_crashing_container_backs_off_10_20_40_up_to_300s():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=1500)
    crashes = clocks(c, "crash", "crashy")
    restarts = clocks(c, "restart", "crashy")
    waits = [r - k for k, r in zip(crashes, restarts)]
    assert waits[:7] == [10, 20, 40, 80, 160, 300, 300]
    assert all(k - r == 1 for r, k in zip(restarts, crashes[1:]))  # each run lasts 1 s
    p = c.get("Pod", "crashy")
    assert p["containers"][0]["restarts"] == len(restarts)


def test_container_in_back_off_has_reason_crash_loop_back_off_and_is_not_ready():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=5)
    p = c.get("Pod", "crashy")
    assert p["reason"] == "CrashLoopBackOff" and not p["ready"] and p["phase"] == "Running"
    assert p["containers"][0]["state"] == "Terminated" and p["containers"][0]["backoffUntil"] == 11


def test_back_off_resets_after_10_minutes_running():
    # a container that once backed off for 160 s: a crash after 12 min running waits 10 s again,
    # one after 5 min doubles to the 300 s cap.
    base = node("n1") + pod("c", container_extra="backoff: 160s")
    late = run(base + 'scenario "crash" { at 12m: crash pod c }', until=12 * 60 + 30)
    assert clocks(late, "restart", "c")[0] - clocks(late, "crash", "c")[0] == 10
    early = run(base + 'scenario "crash" { at 5m: crash pod c }', until=5 * 60 + 400)
    assert clocks(early, "restart", "c")[0] - clocks(early, "crash", "c")[0] == 300


def test_restart_policy_never_leaves_a_crashed_pod_failed():
    c = run(node("n1") + pod("once", extra='restartPolicy: "Never"', container_extra="crashing: true"))
    p = c.get("Pod", "once")
    assert p["phase"] == "Failed" and not p["ready"] and p["containers"][0]["restarts"] == 0
    assert p["containers"][0]["exitCode"] == 1
    # Nothing will restart it, so it is not in CrashLoopBackOff: kubectl shows the container's Error.
    assert p["reason"] == "" and pod_status(p) == "Error"


def test_restart_policy_on_failure_restarts_a_failed_container():
    c = run(node("n1") + pod("retry", extra='restartPolicy: "OnFailure"', container_extra="crashing: true"), until=40)
    assert c.get("Pod", "retry")["containers"][0]["restarts"] == 2  # at 11 s and at 32 s


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
    assert b["message"] == "Pod was rejected: Node didn't have enough resource: pods"
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


def test_rejected_pod_has_the_kubelet_warning_event_while_it_stays_failed():
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m"))
    assert events_of(c, "Pod/default/b") == [
        ("Warning", "OutOfcpu", "Pod was rejected: Node didn't have enough resource: cpu")]
    assert events_of(c, "Pod/default/a") == []
    # Deleted, the pod takes its event with it.
    c = run(node("n1", cpu="1") + pod("a", cpu="800m") + pod("b", cpu="800m")
            + 'scenario "clean up" { at 1m: delete pod b }')
    assert c.of("Event") == []


def test_crash_looping_pod_has_a_back_off_event_until_it_runs_again():
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=5)
    assert events_of(c, "Pod/default/crashy") == [
        ("Warning", "BackOff", "Back-off restarting failed container main in pod crashy_default")]
    # Restarted at 11 s, running until it crashes again at 12 s: no back-off, no event.
    c = run(node("n1") + pod("crashy", container_extra="crashing: true"), until=11.5)
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
