"""A workload's selector never changes (rules/admission.konv): the apps/v1 strategies' ValidateUpdate
(pkg/registry/apps/{deployment,replicaset,daemonset}/strategy.go) refuse a new spec.selector with
apivalidation.ValidateImmutableField, as kubectl shows it: `The Deployment "web" is invalid:
spec.selector: Invalid value: v1.LabelSelector{…}: field is immutable`."""

import pytest

from engine.cli import main
from tests.kube import node, run

CONTAINER = 'container main { image: "web:1"  cpu: 100m  memory: 64Mi }'

WORKLOADS = {
    "deployment": f'deployment web {{ replicas: 2  selector {{ app: "web" }}\n'
                  f'  template {{ labels {{ app: "web"  tier: "fe" }}  {CONTAINER} }} }}\n',
    "replicaset": f'replicaset web {{ replicas: 2  selector {{ app: "web" }}\n'
                  f'  template {{ labels {{ app: "web"  tier: "fe" }}  {CONTAINER} }} }}\n',
    "daemonset": f'daemonset web {{ selector {{ app: "web" }}\n'
                 f'  template {{ labels {{ app: "web"  tier: "fe" }}  {CONTAINER} }} }}\n',
}
KIND = {"deployment": "Deployment", "replicaset": "ReplicaSet", "daemonset": "DaemonSet"}
TEMPLATE = 'template: {labels: {app: "web", tier: "fe"}, containers: [{name: "main", image: "web:2", cpu: 100m, memory: 64Mi}]}'


def immutable(value: str) -> str:
    return f"spec.selector: Invalid value: {value}: field is immutable"


NARROWED = immutable('v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"fe"}, '
                     'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}')
EXPRESSION = immutable('v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:'
                       '[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"Exists", '
                       'Values:[]string(nil)}}}')


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
@pytest.mark.parametrize("change, message", [
    ('selector: {app: "web", tier: "fe"}', NARROWED),
    ('matchExpressions: [{key: "tier", operator: "Exists"}]', EXPRESSION),
])
def test_a_changed_selector_is_refused_and_the_workload_kept(kind, change, message):
    # ValidateImmutableField compares the whole LabelSelector: matchLabels and matchExpressions.
    c = run(node("n1") + WORKLOADS[kind] + f'scenario "s" {{ at 1m: update {kind} web {{ {change} }} }}\n')
    [refused] = c.writes(verb="refused", kind=KIND[kind])
    assert refused.message == f'{KIND[kind]} "web" is invalid: {message}'
    w = c.get(KIND[kind], "web")
    assert (w["selector"], w["matchExpressions"]) == ({"app": "web"}, [])


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_the_template_may_change_under_the_same_selector(kind):
    c = run(node("n1") + WORKLOADS[kind] + f'scenario "s" {{ at 1m: update {kind} web {{ {TEMPLATE} }} }}\n')
    assert not c.writes(verb="refused")
    assert c.get(KIND[kind], "web")["template"]["containers"][0]["image"] == "web:2"


def test_a_selector_left_out_may_be_written_out_as_the_templates_labels():
    # A Deployment's selector left out is its template's labels (selector_of): writing them out is
    # no change; anything else is.
    spec = node("n1") + 'deployment web { template { labels { app: "web" }  ' + CONTAINER + ' } }\n'
    c = run(spec + 'scenario "s" {\n  at 1m: update deployment web { selector: {app: "web"} }\n'
                   f'  at 2m: update deployment web {{ selector: {{app: "web", tier: "fe"}}  {TEMPLATE} }}\n}}\n')
    [refused] = c.writes(verb="refused", kind="Deployment")
    assert refused.clock == 120 and NARROWED in refused.message
    assert c.get("Deployment", "web")["selector"] == {"app": "web"}


def test_a_reapplied_spec_may_not_change_a_deployments_selector(tmp_path, capsys):
    # kubectl apply of a changed selector over a running cluster: the API server's 422, exit 1,
    # and the stored deployment keeps its selector; the same spec with its old selector applies.
    spec, data = tmp_path / "s.konv", str(tmp_path / "data")
    spec.write_text(node("n1") + WORKLOADS["deployment"])
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0
    spec.write_text(node("n1") + WORKLOADS["deployment"].replace('selector { app: "web" }',
                                                                 'selector { app: "web"  tier: "fe" }'))
    capsys.readouterr()
    assert main(["reconcile", str(spec), "--data-dir", data]) == 1
    assert f'error[E200]: Deployment "web" is invalid: {NARROWED}' in capsys.readouterr().err
    spec.write_text(node("n1") + WORKLOADS["deployment"].replace("replicas: 2", "replicas: 3"))
    assert main(["reconcile", str(spec), "--data-dir", data]) == 0


MANIFEST = """apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector:
    matchLabels: {{app: agent}}
{extra}  template:
    metadata: {{labels: {{app: agent, tier: node}}}}
    spec:
      containers: [{{name: a, image: "agent:1"}}]
"""


def test_a_reapplied_manifest_may_not_change_a_daemonsets_selector(tmp_path, capsys):
    manifest, data = tmp_path / "agent.yaml", str(tmp_path / "data")
    (tmp_path / "n.konv").write_text(node("n1"))
    manifest.write_text(MANIFEST.format(extra=""))
    assert main(["reconcile", str(tmp_path / "n.konv"), str(manifest), "--data-dir", data]) == 0
    manifest.write_text(MANIFEST.format(extra="    matchExpressions: [{key: tier, operator: In, values: [node]}]\n"))
    capsys.readouterr()
    assert main(["reconcile", str(tmp_path / "n.konv"), str(manifest), "--data-dir", data]) == 1
    err = capsys.readouterr().err
    assert ('DaemonSet "agent" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
            'map[string]string{"app":"agent"}, MatchExpressions:[]v1.LabelSelectorRequirement{'
            'v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"node"}}}}: field is immutable'
            in err)
    assert "agent.yaml:" in err
