"""The Job controller (rules/job.konv), after upstream's pkg/controller/job/job_controller_test.go
(TestControllerSyncJob, TestSyncJobPastDeadline, TestJobBackoff, TestJobBackoffForOnFailure,
TestJobPodsCreationBackoff…) and backoff_utils_test.go: completion, parallelism, the pod failure
back-off, backoffLimit and activeDeadlineSeconds, OnFailure restarts, Indexed jobs, a work queue,
deletion and TTL, a job whose pod's node is lost; the containers' `runFor` (and `crashing`) the
kubelet ends them by; ValidateJob's refusals and the manifest import."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from engine.cli import main
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
    # syncJob: the Suspended condition, True; startTime is set only once it runs.
    assert c.pods("work") == [] and j["startTime"] is None
    assert conditions(j) == [("Suspended", "True", "JobSuspended", "Job suspended")]


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
  successPolicy: {rules: []}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: "m:1"}]
"""
    m = loads(text, "t.yaml")
    assert any("spec.successPolicy" in d.message and d.code == "W302" for d in m.warnings)


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


def test_a_suspended_job_does_not_fail_on_its_deadline_and_its_timer_restarts_on_resume():
    # pastActiveDeadline is false while the job is suspended, and syncJob resets startTime on
    # resume ("the ActiveDeadlineSeconds timer shouldn't go off whilst the Job is still suspended").
    spec = (node("n1") + job(extra="activeDeadlineSeconds: 100", container="runFor: 1m")
            + 'scenario "s" { at 30s: update job work { suspend: true }\n at 5m: update job work { suspend: false } }')
    c = run(spec)
    j = c.get("Job", "work")
    assert conditions(j)[-1][0] == "Complete" and j["completionTime"] == 360
    assert j["startTime"] == 300
    assert ("Suspended", "False", "JobResumed", "Job resumed") in conditions(j)


@pytest.mark.parametrize("old, new, message", [
    # The API server's template checks, as a Deployment's (ValidatePodTemplateSpec).
    ("runFor: 30s", "port p { containerPort: 99999 }",
     "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 99999: must be between 1 and 65535"),
    ("cpu: 100m", "cpu: -1",
     'spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: "-1000m": must be greater than or equal to 0'),
    ('restartPolicy: "Never"', 'restartPolicy: "Never"  tolerations: [{key: "k", operator: "Maybe"}]',
     'spec.template.spec.tolerations[0].operator: Unsupported value: "Maybe"'),
    ('container main { image: "work:1"  cpu: 100m  memory: 64Mi  runFor: 30s }', "",
     'Job "work" is invalid: spec.template.spec.containers: Required value'),
    # ValidateGeneratedSelector: a selector given without manualSelector.
    ("template {", 'selector { app: "work" }  template {',
     'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"work", '
     '"batch.kubernetes.io/job-name":"work"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
     "`selector` not auto-generated"),
    # ValidateHasLabel: generateSelector keeps the user's label, validation refuses it.
    ('labels { app: "work" }', 'labels { app: "work"  "job-name": "other" }',
     "spec.template.metadata.labels[job-name]: Invalid value: map[string]string{"
     '"app":"work", "batch.kubernetes.io/job-name":"work", "job-name":"other"}: must be \'work\''),
    ("job work {", "job work in nowhere {", 'namespaces "nowhere" not found'),
])
def test_validate_job_judges_the_template_the_generated_selector_and_the_namespace(old, new, message):
    spec = job()
    assert old in spec
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + spec.replace(old, new))
    assert message in str(e.value)


def test_a_manifest_job_is_judged_as_a_spec_job(tmp_path, capsys):
    (tmp_path / "j.yaml").write_text("""apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: "m:1"}, {name: m, image: "m:2"}]
""")
    assert main(["reconcile", str(tmp_path / "j.yaml")]) == 1
    assert ('Job "migrate" is invalid: spec.template.spec.containers[1].name: Duplicate value: "m"'
            in capsys.readouterr().err)


@pytest.mark.parametrize("first, then, message", [
    ("completions: 3", "completions: 4", "spec.completions: Invalid value: 4: field is immutable"),
    ('completions: 3  parallelism: 3  completionMode: "Indexed"', 'completions: 4  completionMode: "Indexed"',
     "spec.completions: Invalid value: 4: can only be modified in tandem with spec.parallelism"),
    ("", "manualSelector: true", "spec.selector"),
])
def test_validate_job_update_refuses_a_changed_immutable_field(first, then, message, tmp_path, capsys):
    # ValidateJobSpecUpdate, on a re-apply to the data directory.
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(node("n1") + job(extra=first, container="") )
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    then_spec = job(extra=then, container="")
    if "manualSelector" in then:
        then_spec = then_spec.replace("template {", 'selector { app: "work" }\n  template {')
    spec.write_text(node("n1") + then_spec)
    capsys.readouterr()
    assert main(["reconcile", str(spec), "--data-dir", data]) == 1
    assert message in capsys.readouterr().err


def test_an_elastic_indexed_job_scales_completions_with_parallelism(tmp_path):
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(node("n1") + job(extra='completions: 2  parallelism: 2  completionMode: "Indexed"', container=""))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(node("n1") + job(extra='completions: 3  parallelism: 3  completionMode: "Indexed"', container=""))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0


def test_a_running_jobs_template_is_immutable_in_a_scenario():
    spec = (node("n1") + job(container="runFor: 5m")
            + 'scenario "s" { at 1m: update job work { template: {labels: {app: "work"}, restartPolicy: "Never", '
              'containers: [{name: "main", image: "work:2", runFor: 5m}]} } }')
    c = run(spec, history=True)
    [refused] = c.writes(verb="refused", kind="Job")
    assert "spec.template: Invalid value: core.PodTemplateSpec{…}: field is immutable" in refused.message
    assert c.pods("work")[0]["containers"][0]["image"] == "work:1"


def test_a_never_started_suspended_jobs_node_selector_may_change():
    # validatePodTemplateUpdate with AllowMutableSchedulingDirectives: suspended, no startTime.
    spec = (node("n1", extra='labels { disk: "ssd" }') + job(extra="suspend: true", container="runFor: 10s")
            + 'scenario "s" { at 1m: update job work { template: {labels: {app: "work"}, restartPolicy: "Never", '
              'nodeSelector: {disk: "ssd"}, containers: [{name: "main", image: "work:1", cpu: 100m, '
              'memory: 64Mi, runFor: 10s}]} }\n'
              ' at 2m: update job work { suspend: false } }')
    c = run(spec, history=True)
    assert c.writes(verb="refused", kind="Job") == []
    assert conditions(c.get("Job", "work"))[-1][0] == "Complete"
    assert c.pods("work")[0]["nodeSelector"] == {"disk": "ssd"}


def test_suspending_a_running_job_deletes_its_active_pods():
    # manageJob with wantActive 0: the surplus, every active pod, is deleted.
    spec = node("n1") + job(container="runFor: 5m") + 'scenario "s" { at 1m: update job work { suspend: true } }'
    c = run(spec, history=True)
    j = c.get("Job", "work")
    assert c.pods("work") == [] and j["active"] == 0 and j["conditions"][0]["lastTransitionTime"] == 60
    assert [w.clock for w in c.writes(verb="delete", kind="Pod")] == [60]
    assert conditions(j) == [("Suspended", "True", "JobSuspended", "Job suspended")]


def test_lowering_parallelism_deletes_the_surplus_pods():
    spec = (node("n1") + job(extra="completions: 4  parallelism: 3", container="runFor: 5m")
            + 'scenario "s" { at 1m: update job work { parallelism: 1 } }')
    # The two surplus pods go at 1 m; the four completions then run one at a time.
    c = run(spec)
    j = c.get("Job", "work")
    assert (j["succeeded"], j["completionTime"]) == (4, 1200)


def test_a_work_queue_keeps_its_active_pods_after_the_first_success():
    # manageJob, completions unset: once a pod succeeded no new one starts, but the active ones
    # run on. The second pod waits (Pending) for room on the node until the first has succeeded.
    c = run(node("n1", cpu="150m") + job(extra="completions: none  parallelism: 2", container="runFor: 30s"))
    pods = c.pods("work")
    assert [p["phase"] for p in pods] == ["Succeeded", "Succeeded"] and not any(p["deleting"] for p in pods)
    assert c.get("Job", "work")["succeeded"] == 2


def test_an_indexed_job_runs_each_index_once():
    # firstPendingIndexes skips the succeeded indexes.
    c = run(node("n1") + job(extra='completions: 3  parallelism: 1  completionMode: "Indexed"', container="runFor: 10s"))
    pods = c.pods("work")
    assert sorted(p["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1", "2"]
    assert sorted(p["createdAt"] for p in pods) == [0, 10, 20]


def test_on_failure_with_backoff_limit_zero_fails_at_the_first_restart():
    # pastBackoffLimitOnFailure: with backoffLimit 0, any restart is past it.
    c = run(node("n1") + job(extra="backoffLimit: 0", policy="OnFailure", container="runFor: 5s  crashing: true"))
    j = c.get("Job", "work")
    assert conditions(j)[0][:3] == ("Failed", "True", "BackoffLimitExceeded")
    assert j["conditions"][0]["lastTransitionTime"] == 5


def test_a_job_of_zero_completions_completes_at_once_with_its_start_time():
    # syncJob sets startTime before it finds the job complete: DURATION 0s.
    j = run(node("n1") + job(extra="completions: 0")).get("Job", "work")
    assert conditions(j) == [("Complete", "True", "", "")] and (j["startTime"], j["completionTime"]) == (0, 0)


def test_a_negative_run_for_is_refused():
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + job(container="runFor: -5s"))
    assert 'spec.template.spec.containers[0].runFor: Invalid value: "-5s": must be greater than or equal to 0' \
        in str(e.value)


def test_describe_shows_a_work_queues_completions_unset(tmp_path, capsys):
    # describeJob: `Completions: <unset>` when spec.completions is nil.
    (tmp_path / "j.konv").write_text(node("n1") + job(extra="completions: none  parallelism: 2"))
    assert main(["describe", "job/work", str(tmp_path / "j.konv")]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("Completions:")] \
        == [["Completions:", "<unset>"]]


def test_the_suspend_fault_holds_a_running_job_and_resumes_it():
    # The fault `verify` draws for a Job (rules/faults.konv): suspending deletes its active pods,
    # resuming starts them again (and the deadline timer with them).
    spec = (node("n1") + job(container="runFor: 1m")
            + 'scenario "s" { at 30s: suspend job work suspended = true\n at 2m: suspend job work suspended = false }')
    c = run(spec)
    j = c.get("Job", "work")
    assert conditions(j)[-1][0] == "Complete" and j["startTime"] == 120 and j["completionTime"] == 180
