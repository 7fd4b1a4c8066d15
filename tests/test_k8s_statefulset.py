"""The StatefulSet controller (rules/statefulset.konv), after upstream's
pkg/controller/statefulset/stateful_set_control_test.go and stateful_set_test.go: stable names and
ordinals, OrderedReady and Parallel pod management, scale down from the highest ordinal, failed
pods recreated under their name, at most one pod per identity through a node failure, rolling
updates with a partition, OnDelete, deletion, validation and manifest import."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests.kube import node, run

STS = """
statefulset db {{
  replicas: {replicas}
  serviceName: "db"
  {extra}
  template {{
    labels {{ app: "db" }}
    container pg {{ image: "postgres:{version}"  cpu: {cpu}  memory: 256Mi }}
  }}
}}
"""


def sts(replicas=3, extra="", version="16", cpu="250m"):
    return STS.format(replicas=replicas, extra=extra, version=version, cpu=cpu)


def names(pods):
    return sorted((p["name"] for p in pods), key=lambda n: int(n.rsplit("-", 1)[1]))


def creations(c):
    """The names of the pods the controller created, in the order it created them."""
    return [w.name for w in c.writes(verb="create", kind="Pod", rule="create_replica")]


def ready_at(c, name):
    """The first revision at which the pod is Running and Ready (needs history)."""
    for revision, objects in c.states():
        if any(o["kind"] == "Pod" and o["name"] == name and o["phase"] == "Running" and o["ready"] for o in objects):
            return revision
    return None


def created_at(c, name):
    return next(w.revision for w in c.writes(verb="create", kind="Pod", name=name))


def test_pods_are_named_by_ordinal_owned_and_labelled():
    # TestStatefulSetControlCreatesPods / newStatefulSetPod and updateIdentity: <set>-<ordinal>,
    # the pod-name and pod-index labels and the revision hash.
    c = run(node("n1") + node("n2") + sts())
    pods = c.pods("db", live=True)
    assert names(pods) == ["db-0", "db-1", "db-2"] and all(p["ready"] for p in pods)
    [s] = c.of("StatefulSet")
    for p in pods:
        assert p["owner"] == {"kind": "StatefulSet", "name": "db"}
        assert p["labels"]["statefulset.kubernetes.io/pod-name"] == p["name"]
        assert p["labels"]["apps.kubernetes.io/pod-index"] == p["name"].rsplit("-", 1)[1]
        assert p["labels"]["controller-revision-hash"] == s["updateRevision"]
    assert s["updateRevision"].startswith("db-") and s["currentRevision"] == s["updateRevision"]
    assert (s["createdReplicas"], s["readyReplicas"], s["currentReplicas"], s["updatedReplicas"],
            s["availableReplicas"]) == (3, 3, 3, 3, 3)


def test_ordered_ready_creates_each_pod_once_the_one_before_is_ready():
    # TestStatefulSetControl "monotonic": pod i+1 is created only after pod i is Running and Ready.
    c = run(node("n1") + node("n2") + sts(), history=True)
    assert creations(c) == ["db-0", "db-1", "db-2"]
    for i in range(2):
        assert ready_at(c, f"db-{i}") < created_at(c, f"db-{i + 1}")


def test_ordered_ready_waits_behind_a_pod_that_cannot_be_placed():
    # db-1 does not fit anywhere: it stays Pending, and db-2 is never created.
    c = run(node("n1", cpu="1") + sts(cpu="600m"))
    assert names(c.pods("db")) == ["db-0", "db-1"]
    assert c.get("Pod", "db-1")["node"] is None and c.of("StatefulSet")[0]["readyReplicas"] == 1


def test_parallel_creates_every_pod_at_once():
    # podManagementPolicy Parallel (allowsBurst): all pods are created without waiting, even
    # behind one that cannot be placed.
    c = run(node("n1", cpu="1") + sts(cpu="600m", extra='podManagementPolicy: "Parallel"'), history=True)
    assert names(c.pods("db")) == ["db-0", "db-1", "db-2"]
    assert max(created_at(c, f"db-{i}") for i in range(3)) < ready_at(c, "db-0")


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time():
    # TestStatefulSetControlScaleDown / processCondemned: highest ordinal first, each only once the
    # one before it is gone.
    c = run(node("n1") + node("n2") + sts(replicas=5) + """
scenario "down" { at 1m: update statefulset db { replicas: 2 } }
""")
    assert names(c.pods("db")) == ["db-0", "db-1"]
    deletions = [w for w in c.writes(verb="update", kind="Pod", rule="scale_down")]
    assert [w.name for w in deletions] == ["db-4", "db-3", "db-2"]
    removals = {w.name: w.revision for w in c.writes(verb="delete", kind="Pod")}
    assert removals["db-4"] < deletions[1].revision and removals["db-3"] < deletions[2].revision


def test_scale_down_waits_while_a_lower_condemned_pod_is_unhealthy_too():
    # processCondemned: in OrderedReady only the first unhealthy pod (the lowest condemned one) may
    # go while unhealthy. db-3 and db-4 are on n2, which fails at 2m (not ready from 2m40s); the
    # scale down to 2 at 3m deletes nothing until n2 returns at 4m, then goes from db-4 down.
    c = run(node("n1") + node("n2", extra="unschedulable: true") + sts(replicas=3) + """
scenario "scale down behind two unhealthy pods" {
  at 1m: cordon node n1
  at 1m: uncordon node n2
  at 1m: update statefulset db { replicas: 5 }
  at 2m: fail node n2
  at 3m: update statefulset db { replicas: 2 }
  at 4m: recover node n2
}
""")
    assert {p["name"] for p in c.pods("db") if p["node"] == "n2"} <= {"db-3", "db-4"}
    assert {w.name for w in c.writes(rule="mark_pods_not_ready")} == {"db-3", "db-4"}
    deletions = c.writes(verb="update", kind="Pod", rule="scale_down")
    assert [w.name for w in deletions] == ["db-4", "db-3", "db-2"]
    assert min(w.clock for w in deletions) == 240
    assert names(c.pods("db")) == ["db-0", "db-1"]


def test_parallel_scale_down_deletes_every_condemned_pod_at_once():
    c = run(node("n1") + node("n2") + sts(replicas=4, extra='podManagementPolicy: "Parallel"') + """
scenario "down" { at 1m: update statefulset db { replicas: 1 } }
""")
    assert names(c.pods("db")) == ["db-0"]
    # all three are marked for deletion before the kubelet removes any of them
    marked = [w.revision for w in c.writes(verb="update", kind="Pod", rule="scale_down")]
    removed = [w.revision for w in c.writes(verb="delete", kind="Pod")]
    assert len(marked) == 3 and max(marked) < min(removed)


def test_scale_up_again_reuses_the_same_names():
    c = run(node("n1") + node("n2") + sts(replicas=3) + """
scenario "down and up" {
  at 1m: update statefulset db { replicas: 1 }
  at 2m: update statefulset db { replicas: 4 }
}
""")
    assert names(c.pods("db", live=True)) == ["db-0", "db-1", "db-2", "db-3"]


def test_a_failed_pod_is_deleted_and_recreated_under_its_name():
    # TestStatefulSetControlReplacesPods / processReplica: a failed pod is deleted, and a new pod of
    # the same name is created once it is gone.
    c = run(node("n1") + node("n2") + sts() + """
scenario "fail" { at 1m: update pod db-1 { phase: "Failed" } }
""")
    assert [w.name for w in c.writes(verb="update", kind="Pod", rule="delete_finished")] == ["db-1"]
    assert creations(c).count("db-1") == 2
    assert names(c.pods("db", live=True)) == ["db-0", "db-1", "db-2"]
    assert all(p["ready"] for p in c.pods("db"))


def test_a_pod_on_a_lost_node_stays_terminating_and_is_not_replaced_elsewhere():
    # At most one pod per identity: db-1, evicted from its lost node after 300 s, stays Terminating
    # (its kubelet cannot confirm) and the set creates no second db-1 on another node.
    c = run(node("n1") + node("n2") + sts(replicas=2) + """
scenario "lose n2" { at 10s: fail node n2 }
""")
    assert c.clock > 300
    [p] = [p for p in c.pods("db") if p["name"] == "db-1"]
    assert p["node"] == "n2" and p["deleting"] and not p["ready"]
    assert creations(c) == ["db-0", "db-1"]
    assert c.of("StatefulSet")[0]["readyReplicas"] == 1


def test_the_pod_is_recreated_once_its_node_returns():
    # Its kubelet removes the terminating pod when it is back; the set then creates db-1 again.
    c = run(node("n1") + node("n2") + sts(replicas=2) + """
scenario "lose and recover n2" {
  at 10s: fail node n2
  at 10m: recover node n2
}
""")
    assert creations(c) == ["db-0", "db-1", "db-1"]
    assert names(c.pods("db", live=True)) == ["db-0", "db-1"] and all(p["ready"] for p in c.pods("db"))


def test_the_pod_is_recreated_elsewhere_once_its_node_is_out_of_service():
    # pod GC's gcTerminating: a terminating pod on a node that is not ready and has the
    # out-of-service taint is deleted, and the set recreates db-1 on the other node.
    c = run(node("n1") + node("n2") + sts(replicas=2) + """
scenario "shut down n2" {
  at 10s: fail node n2
  at 10m: update node n2 { taints: [{key: "node.kubernetes.io/out-of-service", value: "nodeshutdown",
    effect: "NoExecute"}] }
}
""")
    assert [w.name for w in c.writes(verb="delete", kind="Pod", rule="terminating_out_of_service")] == ["db-1"]
    live = c.pods("db", live=True)
    assert names(live) == ["db-0", "db-1"] and {p["node"] for p in live} == {"n1"}


def test_the_out_of_service_taint_on_a_ready_node_deletes_no_terminating_pod():
    # gcTerminating takes only nodes that are not Ready: n2's kubelet stops at 10s and is back at
    # 30s, inside the 40 s grace period, so n2 stays Ready; db-1, killed meanwhile, is removed by
    # its kubelet once it is back, not by the pod GC.
    c = run(node("n1") + node("n2") + sts(replicas=2) + """
scenario "taint a ready node" {
  at 10s: fail node n2
  at 15s: kill pod db-1
  at 20s: update node n2 { taints: [{key: "node.kubernetes.io/out-of-service", value: "nodeshutdown",
    effect: "NoExecute"}] }
  at 30s: recover node n2
}
""")
    assert c.node("n2")["readyCondition"] == "True"
    assert not c.writes(rule="terminating_out_of_service")
    [removal] = c.writes(verb="delete", kind="Pod", name="db-1")
    assert (removal.rule, removal.clock) == ("remove_terminating", 30)
    assert names(c.pods("db", live=True)) == ["db-0", "db-1"]


def _roll(extra="", version="17"):
    return f"""
scenario "roll" {{
  at 1m: update statefulset db {{ {extra} template: {{labels: {{app: "db"}},
    containers: [{{name: "pg", image: "postgres:{version}", cpu: 250m, memory: 256Mi}}]}} }}
}}
"""


def test_rolling_update_goes_from_the_highest_ordinal_down_one_at_a_time():
    # TestStatefulSetControlRollingUpdate: each pod is replaced in decreasing ordinal order, the
    # next only once the replaced one is Running and Ready again.
    c = run(node("n1") + node("n2") + sts() + _roll(), history=True)
    updates = c.writes(verb="update", kind="Pod", rule="roll_out")
    assert [w.name for w in updates] == ["db-2", "db-1", "db-0"]
    recreated = [w for w in c.writes(verb="create", kind="Pod") if w.revision > updates[0].revision]
    assert [w.name for w in recreated] == ["db-2", "db-1", "db-0"]
    assert recreated[0].revision < updates[1].revision and recreated[1].revision < updates[2].revision
    assert all(p["containers"][0]["image"] == "postgres:17" for p in c.pods("db"))
    [s] = c.of("StatefulSet")
    assert s["currentRevision"] == s["updateRevision"] and s["updatedReplicas"] == 3


def test_a_partition_keeps_the_lower_ordinals_on_the_old_template():
    # TestStatefulSetControlRollingUpdateWithPartition: only ordinals >= partition are updated,
    # and the current revision stays the old one.
    c = run(node("n1") + node("n2") + sts() + _roll(extra="partition: 2"))
    images = {p["name"]: p["containers"][0]["image"] for p in c.pods("db")}
    assert images == {"db-0": "postgres:16", "db-1": "postgres:16", "db-2": "postgres:17"}
    [s] = c.of("StatefulSet")
    assert s["currentRevision"] != s["updateRevision"]
    assert (s["currentReplicas"], s["updatedReplicas"]) == (2, 1)


def test_the_current_revision_stays_while_an_updated_pod_is_not_ready():
    # completeRollingUpdate: currentRevision moves only once every pod is updated and ready. The
    # new template's 600m fits n1 once: db-1 is replaced and runs, db-0 is replaced and stays
    # Pending, so both are updated and one is not ready.
    c = run(node("n1", cpu="1") + sts(replicas=2) + _roll().replace("cpu: 250m", "cpu: 600m"))
    assert [(p["name"], p["phase"]) for p in c.pods("db")] == [("db-0", "Pending"), ("db-1", "Running")]
    [s] = c.of("StatefulSet")
    assert (s["updatedReplicas"], s["readyReplicas"], s["currentReplicas"]) == (2, 1, 0)
    assert s["currentRevision"] != s["updateRevision"]


_BAD_THEN_FIXED = """
scenario "bad template, then fixed" {
  at 1m: update statefulset db { template: {labels: {app: "db"},
    containers: [{name: "pg", image: "postgres:17", cpu: 100, memory: 256Mi}]} }
  at 2m: update statefulset db { template: {labels: {app: "db"},
    containers: [{name: "pg", image: "postgres:18", cpu: 250m, memory: 256Mi}]} }
  %s
}
"""


def test_ordered_ready_stays_stuck_behind_a_bad_revision_after_the_template_is_fixed():
    # The forced rollback upstream documents: db-2, replaced by a pod that cannot be placed, blocks
    # OrderedReady (processReplica waits for it before any update), so fixing the template changes
    # nothing until db-2 is deleted by hand.
    c = run(node("n1") + node("n2") + sts() + _BAD_THEN_FIXED % "")
    pods = {p["name"]: (p["containers"][0]["image"], p["phase"]) for p in c.pods("db")}
    assert pods == {"db-0": ("postgres:16", "Running"), "db-1": ("postgres:16", "Running"),
                    "db-2": ("postgres:17", "Pending")}
    c = run(node("n1") + node("n2") + sts() + _BAD_THEN_FIXED % "at 3m: kill pod db-2")
    assert all(p["containers"][0]["image"] == "postgres:18" and p["ready"] for p in c.pods("db"))


def test_parallel_replaces_the_bad_revision_once_the_template_is_fixed():
    # Parallel does not wait for db-2 before updating: the Pending pod of the bad revision is
    # deleted, and the rollout completes.
    c = run(node("n1") + node("n2") + sts(extra='podManagementPolicy: "Parallel"') + _BAD_THEN_FIXED % "")
    assert names(c.pods("db")) == ["db-0", "db-1", "db-2"]
    assert all(p["containers"][0]["image"] == "postgres:18" and p["ready"] for p in c.pods("db"))
    [s] = c.of("StatefulSet")
    assert s["currentRevision"] == s["updateRevision"]


def test_on_delete_updates_only_the_pods_deleted():
    # TestStatefulSetControlOnDeleteUpdate: the template change alone replaces nothing; a deleted
    # pod comes back with the new template.
    c = run(node("n1") + node("n2") + sts(extra='updateStrategy: "OnDelete"') + """
scenario "edit" {
  at 1m: update statefulset db { template: {labels: {app: "db"},
    containers: [{name: "pg", image: "postgres:17", cpu: 250m, memory: 256Mi}]} }
  at 2m: kill pod db-0
}
""")
    images = {p["name"]: p["containers"][0]["image"] for p in c.pods("db")}
    assert images == {"db-0": "postgres:17", "db-1": "postgres:16", "db-2": "postgres:16"}
    assert not c.writes(rule="roll_out")
    [s] = c.of("StatefulSet")
    assert (s["currentReplicas"], s["updatedReplicas"]) == (2, 1)


def test_deleting_the_statefulset_deletes_its_pods():
    # The garbage collector, owner kind StatefulSet.
    c = run(node("n1") + sts() + """
scenario "delete" { at 1m: delete statefulset db }
""")
    assert c.pods("db") == []


@pytest.mark.parametrize("extra, message", [
    ('podManagementPolicy: "Random"',
     "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"),
    ('updateStrategy: "Recreate"',
     "spec.updateStrategy: Invalid value: \"Recreate\": must be 'RollingUpdate' or 'OnDelete'"),
    ("partition: -1",
     "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"),
    ('selector { app: "other" }',
     "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"db\"}: "
     "`selector` does not match template `labels`"),
])
def test_invalid_statefulsets_are_refused(extra, message):
    # ValidateStatefulSetSpec.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + sts(extra=extra))
    assert f'StatefulSet "db" is invalid: {message}' in str(e.value)


def test_negative_replicas_and_a_restart_policy_other_than_always_are_refused():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + sts(replicas=-1))
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in str(e.value)
    never = sts().replace('labels { app: "db" }', 'labels { app: "db" }\n    restartPolicy: "Never"')
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + never)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"' in str(e.value)


MANIFEST = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 2
  podManagementPolicy: Parallel
  minReadySeconds: 10
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      partition: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
        - name: nginx
          image: registry.k8s.io/nginx-slim:0.24
  volumeClaimTemplates:
    - metadata:
        name: www
      spec:
        accessModes: ["ReadWriteOnce"]
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Delete
"""


def test_a_manifest_is_read_with_warnings_for_what_is_not_modelled():
    # The StatefulSet of the Kubernetes tutorial (a web StatefulSet with a claim template).
    m = loads(MANIFEST, "web.yaml")
    [(_, s)] = m.objects
    assert (s["name"], s["replicas"], s["serviceName"], s["podManagementPolicy"], s["updateStrategy"],
            s["partition"], s["selector"]) == ("web", 2, "nginx", "Parallel", "RollingUpdate", 1, {"app": "nginx"})
    warnings = [(d.code, d.message) for d in m.warnings]
    assert ("W302", "field `spec.minReadySeconds` is not supported by Konverge; ignored") in warnings
    assert [m for code, m in warnings if code == "W302" and "not modelled" in m] == [
        "`spec.volumeClaimTemplates` is not modelled: Konverge has no volumes or PersistentVolumeClaims, "
        "so the pods are created without their claims",
        "`spec.persistentVolumeClaimRetentionPolicy` is not modelled: Konverge has no volumes or "
        "PersistentVolumeClaims, so the pods are created without their claims",
    ]


def test_a_rolling_update_beside_on_delete_is_refused():
    # ValidateStatefulSetUpdateStrategy.
    with pytest.raises(KonvergeError) as e:
        loads(MANIFEST.replace("type: RollingUpdate", "type: OnDelete"), "web.yaml")
    assert ("web.yaml:13:7" in str(e.value) and "spec.updateStrategy.rollingUpdate: Invalid value: "
            "apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only "
            "allowed for updateStrategy 'RollingUpdate'" in str(e.value))


ON_DELETE_PARTITION = ("spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy"
                       "{Partition:5, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy "
                       "'RollingUpdate'")


def test_a_partition_beside_on_delete_is_refused_in_a_spec_too():
    # ValidateStatefulSetSpec: as a manifest's rollingUpdate beside OnDelete, a spec's partition is
    # refused rather than ignored, when the set is created or updated.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + sts(extra='updateStrategy: "OnDelete"  partition: 5'))
    assert e.value.diagnostics[0].message == f'StatefulSet "db" is invalid: {ON_DELETE_PARTITION}'
    c = run(node("n1") + sts(extra='updateStrategy: "OnDelete"') + """
scenario "partition" { at 1m: update statefulset db { partition: 5 } }
""")
    [refusal] = c.writes(verb="refused", kind="StatefulSet")
    assert ON_DELETE_PARTITION in refusal.message and c.of("StatefulSet")[0]["partition"] == 0


FORBIDDEN = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
             "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
             "forbidden")


@pytest.mark.parametrize("fields", [
    'podManagementPolicy: "Parallel"',
    'serviceName: "other"',
    'selector: {tier: "data"}  template: {labels: {app: "db", tier: "data"}, '
    'containers: [{name: "pg", image: "postgres:16", cpu: 250m, memory: 256Mi}]}',
    'matchExpressions: [{key: "app", operator: "In", values: ["db"]}]',
])
def test_updates_to_fields_other_than_replicas_template_and_strategy_are_refused(fields):
    # ValidateStatefulSetUpdate: the refused update leaves the set as it was.
    c = run(node("n1") + sts() + f"""
scenario "edit" {{ at 1m: update statefulset db {{ {fields} }} }}
""")
    [refusal] = c.writes(verb="refused", kind="StatefulSet")
    assert FORBIDDEN in refusal.message
    [s] = c.of("StatefulSet")
    assert (s["podManagementPolicy"], s["serviceName"], s["selector"], s["matchExpressions"]) == (
        "OrderedReady", "db", {}, [])


def test_replicas_template_and_strategy_may_change_and_a_selector_may_be_written_out():
    # The allowed half: replicas, template, updateStrategy and partition; and the selector left out
    # written out as the template's labels, which is no change to it.
    c = run(node("n1") + node("n2") + sts() + """
scenario "edit" {
  at 1m: update statefulset db { replicas: 2  updateStrategy: "OnDelete"  selector: {app: "db"} }
  at 2m: update statefulset db { updateStrategy: "RollingUpdate"  partition: 1 }
}
""")
    assert not c.writes(verb="refused")
    [s] = c.of("StatefulSet")
    assert (s["replicas"], s["updateStrategy"], s["partition"], s["selector"]) == (2, "RollingUpdate", 1, {"app": "db"})


def test_a_reapplied_spec_may_not_change_the_pod_management_policy(tmp_path, capsys):
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(node("n1") + sts())
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(node("n1") + sts(replicas=2, extra='podManagementPolicy: "Parallel"'))
    capsys.readouterr()
    assert main(["reconcile", str(spec), "--data-dir", data]) == 1
    assert f'error[E200]: StatefulSet "db" is invalid: {FORBIDDEN}' in capsys.readouterr().err
    spec.write_text(node("n1") + sts(replicas=2))  # replicas alone may change
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.integers(0, 5), then=st.integers(0, 5), parallel=st.booleans())
def test_the_pods_are_exactly_the_ordinals_below_replicas(first, then, parallel):
    # The promise: with room for every pod, at the fixed point after any scale change the set's pods
    # are db-0 … db-(n-1), each Running and Ready, whatever the policy.
    policy = 'podManagementPolicy: "Parallel"' if parallel else ""
    c = run(node("n1") + node("n2") + sts(replicas=first, extra=policy) + f"""
scenario "scale" {{ at 1m: update statefulset db {{ replicas: {then} }} }}
""")
    pods = c.pods("db")
    assert names(pods) == [f"db-{i}" for i in range(then)]
    assert all(p["ready"] and not p["deleting"] for p in pods)
    assert c.of("StatefulSet")[0]["readyReplicas"] == then


def test_the_scale_statefulset_fault_scales_it_down_from_the_top():
    # The fault `verify` draws for a StatefulSet (rules/faults.konv), as a scenario writes it.
    c = run(node("n1") + node("n2") + sts(replicas=3)
            + 'scenario "s" { at 1m: scale_statefulset statefulset db replicas = 1 }')
    assert names(c.pods("db", live=True)) == ["db-0"]
    [s] = c.of("StatefulSet")
    assert s["replicas"] == 1 and s["readyReplicas"] == 1


# ---- spec.ordinals.start (StatefulSetStartOrdinal, GA in 1.31) ---------------------------------

def test_the_pods_are_numbered_from_the_start_ordinal():
    # TestStatefulSetControlWithStartOrdinal (CreatesPodsWithStartOrdinal): replicas are
    # start … start+replicas-1 (getStartOrdinal, getEndOrdinal), each pod's
    # apps.kubernetes.io/pod-index its ordinal; created in that order under OrderedReady.
    c = run(node("n1") + sts(extra="startOrdinal: 5"), history=True)
    assert names(c.pods("db")) == ["db-5", "db-6", "db-7"]
    assert creations(c) == ["db-5", "db-6", "db-7"]
    assert [p["labels"]["apps.kubernetes.io/pod-index"] for p in c.pods("db")] == ["5", "6", "7"]
    assert c.of("StatefulSet")[0]["readyReplicas"] == 3


def test_a_new_start_ordinal_condemns_the_pods_outside_the_range():
    # podInOrdinalRange (KEP-3335's migration of a set's ordinals): pods outside
    # start … start+replicas-1 are condemned, highest first, once the new replicas are Running
    # and Ready.
    c = run(node("n1") + node("n2") + sts(extra="startOrdinal: 2")
            + 'scenario "shift" { at 1m: update statefulset db { startOrdinal: 0 } }\n', history=True)
    assert names(c.pods("db", live=True)) == ["db-0", "db-1", "db-2"]
    assert creations(c)[-2:] == ["db-0", "db-1"]
    deleted = [w.name for w in c.writes(kind="Pod", rule="scale_down")]
    assert deleted == ["db-4", "db-3"]


def test_the_partition_counts_replicas_from_the_start_ordinal():
    # updateStatefulSet rolls replicas[partition:] out: with start 5 and partition 1, db-6 and db-7.
    c = run(node("n1") + node("n2") + sts(extra="startOrdinal: 5  partition: 1") + """
scenario "roll" { at 1m: update statefulset db { template: {labels: {app: "db"}, containers: [
  {name: "pg", image: "postgres:17", cpu: 250m, memory: 256Mi}]} } }
""")
    images = {p["name"]: p["containers"][0]["image"] for p in c.pods("db", live=True)}
    assert images == {"db-5": "postgres:16", "db-6": "postgres:17", "db-7": "postgres:17"}


def test_a_negative_start_ordinal_is_refused():
    # ValidateStatefulSetSpec: ValidateNonnegativeField(spec.ordinals.start).
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + sts(extra="startOrdinal: -1"))
    assert e.value.diagnostics[0].message == (
        'StatefulSet "db" is invalid: spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0')


@pytest.mark.parametrize("extra, path", [
    ("startOrdinal: 2147483648", "spec.ordinals.start"),
    ("partition: 2147483648", "spec.updateStrategy.rollingUpdate.partition"),
])
def test_a_start_ordinal_or_partition_beyond_32_bits_is_refused(extra, path):
    # StatefulSetOrdinals.Start and RollingUpdateStatefulSetStrategy.Partition are int32: upstream
    # refuses a larger one as it decodes the request; here it is invalid, as a replica count is.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + sts(extra=extra))
    assert e.value.diagnostics[0].message == (
        f'StatefulSet "db" is invalid: {path}: Invalid value: 2147483648: must be less than or equal to 2147483647')


def test_a_manifests_ordinals_start_is_read():
    m = loads(MANIFEST.replace("  replicas: 2\n", "  replicas: 2\n  ordinals:\n    start: 3\n"), "web.yaml")
    [(_, s)] = m.objects
    assert s["startOrdinal"] == 3
    assert not [d for d in m.warnings if "ordinals" in d.message]
