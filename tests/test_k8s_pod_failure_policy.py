"""A Job's podFailurePolicy and the DisruptionTarget pod condition (rules/job.konv,
rules/kinds.konv), after upstream's pkg/controller/job/pod_failure_policy_test.go
(TestMatchPodFailurePolicy), job_controller_test.go (TestSyncJobWithJobPodFailurePolicy:
"fail job based on OnExitCodes", "ignore pod failure based on OnPodConditions", "count pod
failure based on OnPodConditions"…), the taint manager's and the eviction API's conditions
(taint_eviction.go and eviction.go addConditionAndDeletePod) and ValidateJob's
validatePodFailurePolicy (pkg/apis/batch/validation/validation_test.go TestValidateJob)."""

from __future__ import annotations

import pytest

from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests.kube import node, run

JOB = """
job work {{
  backoffLimit: {backoff}
  {policy}
  template {{
    labels {{ app: "work" }}
    restartPolicy: "{restart}"
    container main {{ image: "work:1"  cpu: 100m  memory: 64Mi  {container} }}
  }}
}}
"""

IGNORE_DISRUPTION = """podFailurePolicy {
    rules: [{action: "Ignore", onPodConditions: [{type: "DisruptionTarget"}]}]
  }"""

# n2 is cordoned until the scenario uncordons it, so that the job's first pod lands on n1.
NODES = node("n1") + node("n2", extra="unschedulable: true")
LOST = 'scenario "s" { at 1m: fail node n1\n at 1m: uncordon node n2 }'
LOST_AND_BACK = 'scenario "s" { at 1m: fail node n1\n at 1m: uncordon node n2\n at 20m: recover node n1 }'
DRAINED = 'scenario "s" { at 1m: uncordon node n2\n at 2m: drain node n1 }'


def job(policy="", backoff=0, restart="Never", container="runFor: 10m"):
    return JOB.format(policy=policy, backoff=backoff, restart=restart, container=container)


def conditions(j):
    return [(c["type"], c["status"], c["reason"], c["message"]) for c in j["conditions"]]


def test_fail_job_on_an_exit_code_fails_the_job_at_once_with_upstreams_message():
    # TestSyncJobWithJobPodFailurePolicy "fail job based on OnExitCodes": the first pod exits 42,
    # matching the FailJob rule, and the job fails without retrying (backoffLimit 6 unused).
    policy = """podFailurePolicy {
    rules: [{action: "FailJob", onExitCodes: {containerName: "main", operator: "In", values: [5, 42]}}]
  }"""
    c = run(node("n1") + job(policy, backoff=6, container="runFor: 30s  crashing: true  crashCode: 42"))
    j = c.get("Job", "work")
    [p] = c.pods("work")
    assert p["phase"] == "Failed" and p["containers"][0]["exitCode"] == 42
    assert conditions(j) == [("Failed", "True", "PodFailurePolicy",
                              f"Container main for pod default/{p['name']} failed with exit code 42 "
                              "matching FailJob rule at index 0")]
    assert j["failed"] == 1 and j["lastFailureTime"] == 30


def test_an_exit_code_no_rule_matches_is_counted_towards_backoff_limit():
    # matchPodFailurePolicy without a match: the default handling (NotIn [1] does not match 1).
    policy = """podFailurePolicy {
    rules: [{action: "FailJob", onExitCodes: {operator: "NotIn", values: [1]}}]
  }"""
    c = run(node("n1") + job(policy, backoff=1, container="runFor: 5s  crashing: true"))
    j = c.get("Job", "work")
    assert conditions(j)[0][2] == "BackoffLimitExceeded" and j["failed"] == 2


def test_ignore_on_an_exit_code_replaces_the_pod_without_counting_it():
    # "ignore pod failure based on OnExitCodes": the failures never reach backoffLimit 0, so the
    # job keeps replacing its pod; stopped at 1 minute of virtual time.
    policy = """podFailurePolicy {
    rules: [{action: "Ignore", onExitCodes: {operator: "In", values: [3]}}]
  }"""
    c = run(node("n1") + job(policy, container="runFor: 5s  crashing: true  crashCode: 3"), until=60)
    j = c.get("Job", "work")
    assert j["conditions"] == [] and j["failed"] == 0
    assert len([p for p in c.pods("work") if p["phase"] == "Failed"]) > 1


def test_the_taint_manager_marks_the_pod_it_evicts_disruption_target():
    # taint_eviction.go: DeletionByTaintManager, as it deletes the pod: the node failed at 60 s is
    # Unknown and tainted past the 40 s grace (101 s), the default toleration lasts 300 s.
    c = run(NODES + job(IGNORE_DISRUPTION) + LOST)
    [p] = [p for p in c.pods("work") if p["deleting"]]
    assert p["conditions"] == [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                                "message": "Taint manager: deleting due to NoExecute taint",
                                "lastTransitionTime": 401}]


def test_without_a_policy_a_pod_evicted_from_a_lost_node_counts_as_failed():
    # isPodFailed: a terminating pod that did not succeed is a failure; backoffLimit 0 fails the job.
    c = run(NODES + job() + LOST)
    j = c.get("Job", "work")
    assert conditions(j)[0][:3] == ("Failed", "True", "BackoffLimitExceeded") and j["failed"] == 1


def test_ignore_on_disruption_target_keeps_a_lost_nodes_job_from_failing():
    # "ignore pod failure based on OnPodConditions": not counted. With a podFailurePolicy the
    # replacement policy is Failed, so the job waits for the terminating pod to be gone (the
    # node's return), then starts a new one, which completes.
    c = run(NODES + job(IGNORE_DISRUPTION) + LOST)
    j = c.get("Job", "work")
    assert j["conditions"] == [] and j["failed"] == 0 and len(c.pods("work")) == 1
    c = run(NODES + job(IGNORE_DISRUPTION) + LOST_AND_BACK)
    j = c.get("Job", "work")
    assert conditions(j) == [("Complete", "True", "", "")] and j["failed"] == 0


def test_a_drained_pod_is_marked_by_the_eviction_api_and_counts_unless_ignored():
    # eviction.go addConditionAndDeletePod: EvictionByEvictionAPI; without a policy the drained
    # pod is a failure past backoffLimit 0; Ignore on DisruptionTarget lets the job finish on n2.
    c = run(NODES + job() + DRAINED, history=True)
    evicted = [o for _, objs in c.states() for o in objs if o["kind"] == "Pod" and o["deleting"]]
    assert evicted and evicted[0]["conditions"][0]["reason"] == "EvictionByEvictionAPI"
    assert evicted[0]["conditions"][0]["message"] == "Eviction API: evicting"
    j = c.get("Job", "work")
    assert conditions(j)[0][2] == "BackoffLimitExceeded" and j["failed"] == 1
    c = run(NODES + job(IGNORE_DISRUPTION) + DRAINED)
    j = c.get("Job", "work")
    assert conditions(j)[0][0] == "Complete" and j["failed"] == 0
    assert [p["node"] for p in c.pods("work")] == ["n2"]


def test_count_on_disruption_target_counts_the_drained_pod():
    # "count pod failure based on OnPodConditions": as without a rule.
    policy = """podFailurePolicy {
    rules: [{action: "Count", onPodConditions: [{type: "DisruptionTarget"}]}]
  }"""
    c = run(NODES + job(policy) + DRAINED)
    j = c.get("Job", "work")
    assert conditions(j)[0][2] == "BackoffLimitExceeded" and j["failed"] == 1


def test_fail_job_on_disruption_target_names_the_condition():
    # matchPodFailurePolicy's message for an onPodConditions rule.
    policy = """podFailurePolicy {
    rules: [{action: "FailJob", onPodConditions: [{type: "DisruptionTarget"}]}]
  }"""
    c = run(NODES + job(policy, backoff=6) + DRAINED, history=True)
    j = c.get("Job", "work")
    name = next(o["name"] for _, objs in c.states() for o in objs if o["kind"] == "Pod")
    assert conditions(j) == [("Failed", "True", "PodFailurePolicy",
                              f"Pod default/{name} has condition DisruptionTarget matching FailJob rule at index 0")]


@pytest.mark.parametrize("order_seed", [1, 2, 3, 4])
def test_a_drained_pod_is_counted_once_whatever_the_firing_order(order_seed):
    # The job-tracking finalizer: the kubelet waits for the job to count the pod.
    c = run(NODES + job() + DRAINED, order="random", seed=order_seed)
    j = c.get("Job", "work")
    assert j["failed"] == 1 and conditions(j)[0][2] == "BackoffLimitExceeded"


@pytest.mark.parametrize("policy, restart, message", [
    ('podFailurePolicy { rules: [{action: "Ignore", onPodConditions: [{type: "DisruptionTarget"}]}] }', "OnFailure",
     'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
     'podFailurePolicy is specified'),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "Within", values: [1]}}] }', "Never",
     'spec.podFailurePolicy.rules[0].onExitCodes.operator: Unsupported value: "Within": supported values: '
     '"In", "NotIn"'),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "In", values: [0, 1]}}] }', "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "In", values: [5, 3]}}] }', "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{5, 3}: must be ordered"),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "NotIn", values: [3, 3]}}] }', "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Duplicate value: 3"),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "In", values: []}}] }', "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{}: at least one value is required"),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {containerName: "x", operator: "In", '
     'values: [1]}}] }', "Never",
     'spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "x": must be one of the container '
     'or initContainer names in the pod template'),
    ('podFailurePolicy { rules: [{action: "FailIndex", onExitCodes: {operator: "In", values: [1]}}] }', "Never",
     'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be '
     'set'),
    ('podFailurePolicy { rules: [{action: "Retry", onExitCodes: {operator: "In", values: [1]}}] }', "Never",
     'spec.podFailurePolicy.rules[0].action: Unsupported value: "Retry": supported values: "Count", "FailIndex", '
     '"FailJob", "Ignore"'),
    ('podFailurePolicy { rules: [{action: "Ignore"}] }', "Never",
     "spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required"),
    ('podFailurePolicy { rules: [{action: "Ignore", onExitCodes: {operator: "In", values: [1]}, '
     'onPodConditions: [{type: "DisruptionTarget"}]}] }', "Never",
     "spec.podFailurePolicy.rules[0]: Invalid value: specifying both OnExitCodes and OnPodConditions is not "
     "supported"),
    ('podFailurePolicy { rules: [{action: "Ignore", onPodConditions: [{type: "DisruptionTarget", '
     'status: "Maybe"}]}] }', "Never",
     'spec.podFailurePolicy.rules[0].onPodConditions[0].status: Unsupported value: "Maybe": supported values: '
     '"False", "True", "Unknown"'),
])
def test_validate_job_refuses_a_pod_failure_policy_as_upstream_does(policy, restart, message):
    # TestValidateJob's podFailurePolicy cases (validatePodFailurePolicyRule and its requirements).
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + job(policy, restart=restart))
    assert message in str(e.value)


def test_a_manifest_job_with_a_pod_failure_policy_is_imported():
    # The documentation's job-pod-failure-policy-example.yaml, its rules as batch/v1 has them;
    # a pattern without a status is "True" (SetDefaults_Job).
    text = """apiVersion: batch/v1
kind: Job
metadata: {name: job-pod-failure-policy-example}
spec:
  completions: 12
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "docker.io/library/bash:5"}]
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
"""
    m = loads(text, "t.yaml")
    assert not m.warnings
    [(kind, body)] = m.objects
    assert body["podFailurePolicy"] == {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_describe_pod_shows_the_disruption_target_condition_and_no_conditions_section_without_one(capsys,
                                                                                                   tmp_path):
    # kubectl describePod prints Conditions only where the pod has some.
    from engine.cli import main
    spec = tmp_path / "spec.konv"
    spec.write_text(NODES + job(IGNORE_DISRUPTION) + LOST)
    assert main(["get", "pods", str(spec), "-o", "name"]) == 0
    name = capsys.readouterr().out.strip().split("/")[-1]
    assert main(["describe", "pod", name, str(spec), "--scenario", "s"]) == 0
    out = capsys.readouterr().out
    assert "Conditions:\n  -\n    Type:                 DisruptionTarget\n" in out
    assert "Reason:               DeletionByTaintManager" in out
    assert main(["describe", "pod", name, str(spec)]) == 0
    assert "Conditions:" not in capsys.readouterr().out


# ---- review RJ: a job disrupted again and again, and a drain that meets finished pods --------

TWICE = ('scenario "s" { at 1m: uncordon node n2\n at 2m: drain node n1\n at 3m: uncordon node n1\n'
         ' at 4m: drain node n2 }')


@pytest.mark.parametrize("extra", ["", 'completions: 1  completionMode: "Indexed"'])
@pytest.mark.parametrize("policy", ["", IGNORE_DISRUPTION])
def test_a_job_disrupted_twice_still_finds_a_name_for_its_next_pod(extra, policy):
    # Each judged pod's name stays taken (disruptedPods); the names a job looks at reach past
    # them, so the job replaces its pod each time, as upstream does until backoffLimit.
    spec = NODES + job(policy=policy, backoff=6).replace("backoffLimit: 6", "backoffLimit: 6\n  " + extra) + TWICE
    c = run(spec)
    [j] = c.of("Job")
    assert j["succeeded"] == 1 and j["conditions"][-1]["type"] == "Complete"
    assert len(j["disruptedPods"]) == 2


def test_a_failed_pod_a_drain_deletes_keeps_the_verdict_it_failed_with():
    # A pod that failed on its own was counted when it failed (upstream: its finalizer removed);
    # evicting it later must not judge it again as a disruption (Ignore would un-count it).
    crashing = job(policy=IGNORE_DISRUPTION, backoff=3, container="runFor: 5s  crashing: true")
    c = run(NODES + crashing + 'scenario "s" { at 40s: uncordon node n2\n at 41s: drain node n1 }')
    [j] = c.of("Job")
    assert [x["reason"] for x in j["conditions"]] == ["BackoffLimitExceeded"]  # it never failed
    # only the pod that was running is judged as disrupted; the failed ones are not
    assert list(j["disruptedPods"].values()) == ["Ignore"]
    assert not any(p["conditions"] for p in c.of("Pod") if p["phase"] == "Failed")
