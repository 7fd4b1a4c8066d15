"""The Job controller (rules/job.konv), after upstream's pkg/controller/job/job_controller_test.go
(TestControllerSyncJob, TestSyncJobPastDeadline, TestJobBackoff, TestJobBackoffForOnFailure,
TestJobPodsCreationBackoff…) and backoff_utils_test.go: completion, parallelism, the pod failure
back-off, backoffLimit and activeDeadlineSeconds, OnFailure restarts, Indexed jobs, a work queue,
deletion and TTL, a job whose pod's node is lost; the containers' `runFor` (and `crashing`) the
kubelet ends them by; ValidateJob's refusals and the manifest import."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests.kube import node, run

JOB = """
job {name} {{
  {extra}
  template {{
    labels {{ app: "{name}" }}
    restartPolicy: "{policy}"
    container main {{ image: "work:1"  cpu: 100m  memory: 64Mi  {container} }}
  }}
}}
"""


def job(name="work", extra="", policy="Never", container="runFor: 30s"):
    return JOB.format(name=name, extra=extra, policy=policy, container=container)


def conditions(j):
    return [(c["type"], c["status"], c["reason"], c["message"]) for c in j["conditions"]]


def test_a_job_completes_with_its_status_condition_and_completion_time():
    # TestControllerSyncJob "job finish": one pod runs its 30 s and succeeds.
    c = run(node("n1") + job())
    j = c.get("Job", "work")
    [p] = c.pods("work")
    assert p["phase"] == "Succeeded" and p["owner"] == {"kind": "Job", "name": "work"}
    assert p["containers"][0]["exitCode"] == 0 and p["containers"][0]["state"] == "Terminated"
    assert (j["active"], j["succeeded"], j["failed"]) == (0, 1, 0)
    assert conditions(j) == [("Complete", "True", "", "")]
    assert (j["startTime"], j["completionTime"]) == (0, 30)


def test_the_api_server_generates_the_selector_and_the_job_name_labels():
    # generateSelector: the template carries both job-name labels, the selector the generated one.
    c = run(node("n1") + job())
    j = c.get("Job", "work")
    assert j["selector"] == {"batch.kubernetes.io/job-name": "work"}
    assert j["template"]["labels"] == {"app": "work", "batch.kubernetes.io/job-name": "work", "job-name": "work"}
    assert c.pods("work")[0]["labels"]["job-name"] == "work"


def test_parallelism_and_completions_keep_the_right_number_of_pods_active():
    # TestControllerSyncJob "too few active pods": min(parallelism, completions - succeeded) run.
    c = run(node("n1") + job(extra="completions: 5  parallelism: 2", container="runFor: 1m"), history=True)
    most = max(sum(1 for o in objs if o["kind"] == "Pod" and o["phase"] in ("Pending", "Running")
                   and not o["deleting"]) for _, objs in c.states())
    assert most == 2
    pods = c.pods("work")
    assert len(pods) == 5 and all(p["phase"] == "Succeeded" for p in pods)
    assert sorted(p["createdAt"] for p in pods) == [0, 0, 60, 60, 120]
    j = c.get("Job", "work")
    assert (j["succeeded"], j["completionTime"]) == (5, 180)


def test_a_failed_pod_is_replaced_after_the_backoff_and_the_job_fails_past_backoff_limit():
    # TestJobBackoff / getRemainingTimeForFailuresCount: the replacement waits 10 s after the first
    # failure, 20 s after the second; a third failure is more than backoffLimit 2.
    c = run(node("n1") + job(extra="backoffLimit: 2", container="runFor: 5s  crashing: true"))
    pods = c.pods("work")
    assert sorted(p["createdAt"] for p in pods) == [0, 15, 40]
    assert all(p["phase"] == "Failed" for p in pods)
    j = c.get("Job", "work")
    assert conditions(j) == [("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    assert (j["failed"], j["active"], j["completionTime"]) == (3, 0, None)
    assert j["conditions"][0]["lastTransitionTime"] == 45


def test_the_failure_backoff_doubles_up_to_ten_minutes():
    # backoff_utils_test.go: 10 s, 20 s, 40 s, … capped at MaxJobPodFailureBackOff (10 min).
    c = run(node("n1") + job(extra="backoffLimit: 8", container="runFor: 0s  crashing: true"))
    created = sorted(p["createdAt"] for p in c.pods("work"))
    assert created == [0, 10, 30, 70, 150, 310, 630, 1230, 1830]


def test_a_success_resets_the_failure_backoff():
    # newBackoffRecord: a success clears failuresAfterLastSuccess.
    c = run(node("n1") + job(extra="completions: 2", container="runFor: 10s"))
    assert c.get("Job", "work")["failuresAfterLastSuccess"] == 0


def test_on_failure_restarts_count_toward_backoff_limit():
    # TestJobBackoffForOnFailure / pastBackoffLimitOnFailure: the container restarts in place
    # (at once, then after 10 s); two restarts reach backoffLimit 2 and the job fails, its pod
    # deleted and counted as failed.
    c = run(node("n1") + job(extra="backoffLimit: 2", policy="OnFailure", container="runFor: 5s  crashing: true"))
    j = c.get("Job", "work")
    assert conditions(j)[0][:3] == ("Failed", "True", "BackoffLimitExceeded")
    assert j["conditions"][0]["lastTransitionTime"] == 20
    assert j["failed"] == 1 and c.pods("work") == []


def test_on_failure_a_zero_exit_completes_the_pod():
    c = run(node("n1") + job(policy="OnFailure", container="runFor: 20s"))
    j = c.get("Job", "work")
    assert conditions(j)[0][0] == "Complete" and c.pods("work")[0]["phase"] == "Succeeded"


def test_active_deadline_fails_the_job_and_deletes_its_pods():
    # TestSyncJobPastDeadline: DeadlineExceeded at activeDeadlineSeconds after startTime.
    c = run(node("n1") + job(extra="activeDeadlineSeconds: 30", container="runFor: 5m"))
    j = c.get("Job", "work")
    assert conditions(j) == [("Failed", "True", "DeadlineExceeded", "Job was active longer than specified deadline")]
    assert j["conditions"][0]["lastTransitionTime"] == 30
    assert c.pods("work") == [] and j["failed"] == 1


def test_a_container_without_run_for_keeps_its_job_running():
    c = run(node("n1") + job(container=""))
    j = c.get("Job", "work")
    assert j["conditions"] == [] and (j["active"], j["ready"]) == (1, 1)


def test_deleting_the_job_deletes_its_pods():
    # The garbage collector's background propagation: the pods' owner is gone.
    spec = node("n1") + job(container="runFor: 5m") + 'scenario "s" { at 10s: delete job work }'
    c = run(spec)
    assert c.get("Job", "work") is None and c.pods("work") == []


def test_ttl_after_finished_deletes_the_finished_job():
    # ttlafterfinished: deleted ttlSecondsAfterFinished after it finished, its pods with it.
    c = run(node("n1") + job(extra="ttlSecondsAfterFinished: 60", container="runFor: 10s"), history=True)
    assert c.get("Job", "work") is None and c.pods("work") == []
    [delete] = c.writes(verb="delete", kind="Job")
    assert delete.clock == 70


def test_indexed_job_gives_each_pod_its_completion_index():
    # Indexed completion mode: JOB-INDEX-xxxxx, the index label, every index succeeded once.
    c = run(node("n1") + job(extra='completions: 3  parallelism: 3  completionMode: "Indexed"'))
    pods = c.pods("work")
    assert sorted(p["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1", "2"]
    assert all(p["name"].startswith(f"work-{p['labels']['batch.kubernetes.io/job-completion-index']}-")
               for p in pods)
    assert c.get("Job", "work")["succeeded"] == 3


def test_a_work_queue_job_is_done_once_a_pod_succeeded_and_none_is_active():
    # completions unset: parallelism pods; no new one after the first success.
    c = run(node("n1") + job(extra="completions: none  parallelism: 2", container="runFor: 10s"))
    j = c.get("Job", "work")
    assert conditions(j)[0][0] == "Complete" and j["succeeded"] == 2 and len(c.pods("work")) == 2


def test_a_suspended_job_makes_no_pods():
    c = run(node("n1") + job(extra="suspend: true"))
    j = c.get("Job", "work")
    assert c.pods("work") == [] and j["startTime"] is None and j["conditions"] == []


def test_a_job_whose_pod_is_on_a_lost_node_starts_a_new_one_elsewhere():
    # The pod on the failed node is evicted (not-ready/unreachable toleration, 300 s) and, being
    # terminating, no longer active: the job creates a replacement, which completes on n2.
    spec = (node("n1") + node("n2", extra="unschedulable: true") + job(container="runFor: 10m")
            + 'scenario "s" { at 1m: fail node n1\n at 1m: uncordon node n2 }')
    c = run(spec)
    j = c.get("Job", "work")
    assert conditions(j)[0][0] == "Complete"
    done = [p for p in c.pods("work") if p["phase"] == "Succeeded"]
    assert [p["node"] for p in done] == ["n2"]
    assert [p["node"] for p in c.pods("work") if p["deleting"]] == ["n1"]


@pytest.mark.parametrize("extra, policy, message", [
    ("", "Always", 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'),
    ("completions: -1", "Never", "spec.completions: Invalid value: -1: must be greater than or equal to 0"),
    ("parallelism: -2", "Never", "spec.parallelism: Invalid value: -2: must be greater than or equal to 0"),
    ("backoffLimit: -1", "Never", "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
    ('completionMode: "Sometimes"', "Never",
     'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    ('manualSelector: true  selector { app: "other" }', "Never",
     "`selector` does not match template `labels`"),
])
def test_validate_job_refuses_what_upstream_refuses(extra, policy, message):
    # pkg/apis/batch/validation: ValidateJob.
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + job(extra=extra, policy=policy))
    assert message in str(e.value)


def test_a_manifest_job_is_read_with_its_counts_and_its_containers_exit_at_once():
    text = """apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: default}
spec:
  parallelism: 2
  backoffLimit: 1
  activeDeadlineSeconds: 60
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{name: m, image: "m:1"}]
"""
    m = loads(text, "t.yaml")
    [(kind, body)] = m.objects
    assert kind == "Job"
    assert (body["parallelism"], body["completions"], body["backoffLimit"], body["activeDeadlineSeconds"]) \
        == (2, None, 1, 60)
    assert body["template"]["containers"][0]["runFor"] == 0


def test_a_manifest_job_warns_about_what_konverge_does_not_model():
    text = """apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  podFailurePolicy: {rules: []}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: "m:1"}]
"""
    m = loads(text, "t.yaml")
    assert any("spec.podFailurePolicy" in d.message and d.code == "W302" for d in m.warnings)


@settings(max_examples=15, deadline=None)
@given(completions=st.integers(0, 4), parallelism=st.integers(1, 3),
       run_for=st.sampled_from(["0s", "10s", "1m"]))
def test_a_job_converges_to_its_completions_and_never_runs_more_than_parallelism(completions, parallelism,
                                                                                  run_for):
    # A promise of manageJob: at the fixed point succeeded == completions, and at no revision were
    # more than parallelism of its pods active.
    c = run(node("n1") + job(extra=f"completions: {completions}  parallelism: {parallelism}",
                             container=f"runFor: {run_for}"), history=True)
    j = c.get("Job", "work")
    assert j["succeeded"] == completions and conditions(j)[0][0] == "Complete"
    assert all(sum(1 for o in objs if o["kind"] == "Pod" and o["phase"] in ("Pending", "Running")
                   and not o["deleting"]) <= parallelism for _, objs in c.states())
