"""Preferred pod affinity and anti-affinity: InterPodAffinity's score (rules/scheduler.konv),
after upstream's interpodaffinity/scoring.go (PreScore's processExistingPod, Score, NormalizeScore)."""

import subprocess
import sys

import pytest

from engine.errors import KonvergeError
from engine.kube.manifests import loads
from tests.kube import deployment, memo_keeps, node, run

HOST = "kubernetes.io/hostname"


def pod(name, cpu="100m", memory="64Mi", extra="", labels='app: "p"', namespace=None):
    where = f" in {namespace}" if namespace else ""
    return (f'pod {name}{where} {{ labels {{ {labels} }} {extra}\n'
            f'  container main {{ image: "x"  cpu: {cpu}  memory: {memory} }} }}\n')


def term(app: str, key: str = HOST, weight: int = 100) -> str:
    return f'{{weight: {weight}, podAffinityTerm: {{labelSelector: {{app: "{app}"}}, topologyKey: "{key}"}}}}'


def soft_anti(*terms: str) -> str:
    return f"affinity: {{preferredPodAntiAffinity: [{', '.join(terms)}]}}"


def soft(*terms: str) -> str:
    return f"affinity: {{preferredPodAffinity: [{', '.join(terms)}]}}"


# One big host and two small ones: on resources alone every pod goes to the big one.
BIG_AND_SMALL = node("big", cpu="32", memory="64Gi") + node("small-1") + node("small-2")


def test_soft_anti_affinity_spreads_replicas_across_hosts():
    c = run(BIG_AND_SMALL + deployment("cache", replicas=3, extra=soft_anti(term("cache"))))
    assert sorted(p["node"] for p in c.pods("cache")) == ["big", "small-1", "small-2"]
    # Without the term, LeastAllocated packs them on the big host.
    c = run(BIG_AND_SMALL + deployment("cache", replicas=3))
    assert [p["node"] for p in c.pods("cache")] == ["big"] * 3


def test_soft_anti_affinity_does_not_block_when_every_host_has_a_replica():
    # Unlike a required term, a preferred one never keeps a pod Pending: with two hosts, the third
    # and fourth replicas still run, one beside each of the first two.
    hosts = node("h1") + node("h2")
    c = run(hosts + deployment("cache", replicas=4, extra=soft_anti(term("cache"))))
    assert sorted(p["node"] for p in c.pods("cache")) == ["h1", "h1", "h2", "h2"]
    required = 'affinity: {podAntiAffinity: [{labelSelector: {app: "cache"}, topologyKey: "kubernetes.io/hostname"}]}'
    c = run(hosts + deployment("cache", replicas=4, extra=required))
    assert sorted(str(p["node"]) for p in c.pods("cache")) == ["None", "None", "h1", "h2"]


def test_soft_anti_affinity_prefers_an_empty_zone():
    # Zone a has the big node, but a replica already runs there.
    zones = (node("a-big", cpu="32", memory="64Gi", extra='labels { zone: "a" }')
             + node("b-small", extra='labels { zone: "b" }'))
    c = run(zones + pod("first", labels='app: "web"', extra='node: "a-big"')
            + pod("second", labels='app: "web"', extra=soft_anti(term("web", "zone"))))
    assert c.get("Pod", "second")["node"] == "b-small"


def test_soft_affinity_colocates_with_the_target_pods_zone():
    zones = (node("a-big", cpu="32", memory="64Gi", extra='labels { zone: "a" }')
             + node("b-1", extra='labels { zone: "b" }') + node("b-2", cpu="8", memory="16Gi", extra='labels { zone: "b" }'))
    db = pod("db", labels='app: "db"', extra='node: "b-1"')
    c = run(zones + db + deployment("api", replicas=2, extra=soft(term("db", "zone"))))
    # Both go to zone b (its roomier node, beside no db pod: the zone is the domain), not to the
    # big node of zone a.
    assert [p["node"] for p in c.pods("api")] == ["b-2", "b-2"]
    c = run(zones + db + deployment("api", replicas=2))
    assert [p["node"] for p in c.pods("api")] == ["a-big"] * 2


@pytest.mark.parametrize("weights, where", [((1, 100), "h2"), ((100, 1), "h1")])
def test_a_heavier_preferred_term_outweighs_a_lighter_one(weights, where):
    c = run(node("h1") + node("h2")
            + pod("a", labels='app: "a"', extra='node: "h1"') + pod("b", labels='app: "b"', extra='node: "h2"')
            + pod("p", extra=soft(term("a", weight=weights[0]), term("b", weight=weights[1]))))
    assert c.get("Pod", "p")["node"] == where


def test_an_existing_pods_preferred_anti_affinity_pushes_the_newcomer_away():
    # Symmetry: the incoming pod has no terms; the existing pod's preferred anti-affinity selects it.
    loner = pod("loner", labels='app: "loner"', extra=f'node: "big" {soft_anti(term("web"))}')
    c = run(BIG_AND_SMALL + loner + pod("web", labels='app: "web"'))
    assert c.get("Pod", "web")["node"] == "small-1"
    c = run(BIG_AND_SMALL + loner + pod("api", labels='app: "api"'))  # not selected: resources decide
    assert c.get("Pod", "api")["node"] == "big"


def test_an_existing_pods_preferred_affinity_draws_the_newcomer():
    fan = pod("fan", labels='app: "fan"', extra=f'node: "small-2" {soft(term("web"))}')
    c = run(BIG_AND_SMALL + fan + pod("web", labels='app: "web"'))
    assert c.get("Pod", "web")["node"] == "small-2"


def test_normalisation_runs_from_the_least_to_the_most_of_the_feasible_nodes():
    # Alike nodes with two pods each; p softly avoids app x: raw scores a −100, b −200, c −200.
    # NormalizeScore maps the least (−200) to 0 and the most (−100) to 100, not 0 to 100 (which
    # would give a 50): so a's 2×100 ties b's preferred node affinity (2×100), and the name decides.
    x, y = 'app: "x"', 'app: "y"'
    residents = (pod("a1", labels=x, extra='node: "a"') + pod("a2", labels=y, extra='node: "a"')
                 + pod("b1", labels=x, extra='node: "b"') + pod("b2", labels=x, extra='node: "b"')
                 + pod("c1", labels=x, extra='node: "c"') + pod("c2", labels=x, extra='node: "c"'))
    prefer_b = ('preferredNodeTerms: [{weight: 1, preference: {matchExpressions: '
                '[{key: "kubernetes.io/hostname", operator: "In", values: ["b"]}]}}]')
    affinity = (f"affinity: {{{prefer_b}, preferredPodAntiAffinity: "
                f'[{{weight: 100, podAffinityTerm: {{labelSelector: {{app: "x"}}, topologyKey: "{HOST}"}}}}]}}')
    c = run(node("a") + node("b") + node("c") + residents + pod("p", labels='app: "p"', extra=affinity))
    assert c.get("Pod", "p")["node"] == "a"


def test_all_alike_preferred_scores_leave_the_choice_to_the_other_scores():
    # Every node has one pod the term avoids: all score alike (0 after NormalizeScore), so the
    # preferred node affinity to c decides.
    residents = "".join(pod(f"x{n}", labels='app: "x"', extra=f'node: "{n}"') for n in "abc")
    prefer_c = ('preferredNodeTerms: [{weight: 1, preference: {matchExpressions: '
                '[{key: "kubernetes.io/hostname", operator: "In", values: ["c"]}]}}]')
    affinity = f"affinity: {{{prefer_c}, preferredPodAntiAffinity: [{term('x')}]}}"
    c = run(node("a") + node("b") + node("c") + residents + pod("p", extra=affinity))
    assert c.get("Pod", "p")["node"] == "c"


def test_normalisation_leaves_out_the_nodes_that_fail_the_filters():
    # NormalizeScore sees only the feasible nodes: p softly avoids app x (raw a −100, b −200, the
    # cordoned c 0), so a scores 100 and b 0, and b's preferred node affinity (2 × 100) only ties
    # it with a, the name deciding. Normalised over c's 0 as well, a would score 50 and p go to b.
    residents = (pod("x1", labels='app: "x"', extra='node: "a"') + pod("x2", labels='app: "x"', extra='node: "b"')
                 + pod("x3", labels='app: "x"', extra='node: "b"'))
    prefer_b = ('preferredNodeTerms: [{weight: 1, preference: {matchExpressions: '
                '[{key: "kubernetes.io/hostname", operator: "In", values: ["b"]}]}}]')
    affinity = f"affinity: {{{prefer_b}, preferredPodAntiAffinity: [{term('x')}]}}"
    c = run(node("a") + node("b") + node("c", extra="unschedulable: true") + residents + pod("p", extra=affinity))
    assert c.get("Pod", "p")["node"] == "a"


def test_a_node_without_the_topology_key_scores_as_an_empty_domain():
    # Upstream counts a term only where the node has its key: a node without it scores 0, which
    # beats the zone whose pods the term avoids, and loses to the zone whose pods it seeks, however
    # much room it has.
    x = pod("x", labels='app: "x"', extra='node: "zoned"')
    small_bare = node("bare") + node("zoned", cpu="32", memory="64Gi", extra='labels { zone: "a" }')
    assert run(small_bare + x + pod("p", extra=soft_anti(term("x", "zone")))).get("Pod", "p")["node"] == "bare"
    big_bare = node("bare", cpu="32", memory="64Gi") + node("zoned", extra='labels { zone: "a" }')
    assert run(big_bare + x + pod("p", extra=soft(term("x", "zone")))).get("Pod", "p")["node"] == "zoned"


def test_preferred_terms_select_pods_of_their_own_namespace_only():
    c = run(BIG_AND_SMALL + "namespace other { }\n"
            + pod("web-1", labels='app: "web"', extra='node: "big"', namespace="other")
            + pod("web-2", labels='app: "web"', extra=soft_anti(term("web"))))
    assert c.get("Pod", "web-2")["node"] == "big"


def test_a_terminating_pod_still_repels_softly_until_it_is_gone():
    # Upstream's snapshot holds a terminating pod, and InterPodAffinity scores it (as it filters it).
    c = run(BIG_AND_SMALL + pod("old", labels='app: "web"', extra='node: "big" deleting: true')
            + pod("new", labels='app: "web"', extra=soft_anti(term("web"))), history=True)
    first = next(o["node"] for _, objects in c.states() for o in objects
                 if o["kind"] == "Pod" and o["name"] == "new" and o["node"])
    assert first == "small-1"


def test_a_nodes_score_sums_its_domains_of_every_key_and_every_pods_terms():
    # Raw scores: a +30 (zone z1: db's term for web) +20 (rack r1: cache, which p seeks) +1 (rack
    # r1: cache's required term for web, hardPodAffinityWeight); b +30 −50 (host b: x, which p
    # avoids; b has no rack); c +21 (rack r1, its pods on a; zone z2 holds nothing for web); d 0
    # (no zone, no rack). Normalised between −20 and 51: a 100, c 57, d 28, b 0. The rack alone
    # ties a with c, which has no pod and wins on resources: only the zone's share puts p on a.
    nodes = (node("a", extra='labels { zone: "z1"  rack: "r1" }') + node("b", extra='labels { zone: "z1" }')
             + node("c", extra='labels { zone: "z2"  rack: "r1" }') + node("d"))
    residents = (pod("db", labels='app: "db"', extra=f'node: "a" {soft(term("web", "zone", 30))}')
                 + pod("cache", labels='app: "cache"',
                       extra='node: "a" affinity: {podAffinity: [{labelSelector: {app: "web"}, topologyKey: "rack"}]}')
                 + pod("x", labels='app: "x"', extra='node: "b"'))
    terms = (f"affinity: {{preferredPodAffinity: [{term('cache', 'rack', 20)}], "
             f"preferredPodAntiAffinity: [{term('x', weight=50)}]}}")
    c = run(nodes + residents + pod("p", labels='app: "web"', extra=terms))
    assert c.get("Pod", "p")["node"] == "a"
    # Without db's term, a and c tie on the rack, and c, with no pod yet, wins on resources.
    residents = residents.replace(soft(term("web", "zone", 30)), "")
    assert run(nodes + residents + pod("p", labels='app: "web"', extra=terms)).get("Pod", "p")["node"] == "c"


def test_a_node_relabelled_into_a_zone_brings_its_pods_into_the_zones_score():
    # The first replica goes to the big node a, whose zone holds no x. Then c, where x runs, joins
    # a's zone: the second replica, alike in content to the first (so it may share what was worked
    # out for it), must see x in zone z1 now and take b.
    nodes = (node("a", cpu="32", memory="64Gi", extra='labels { zone: "z1" }')
             + node("b", extra='labels { zone: "z2" }') + node("c", extra='labels { zone: "z3" }'))
    x = pod("x", labels='app: "x"', extra='node: "c"')
    spec = (nodes + x + deployment("web", replicas=1, extra=soft_anti(term("x", "zone")))
            + 'scenario "move" {\n  at 1m: update node c { labels { zone: "z1" } }\n'
            + '  at 2m: scale deployment web replicas = 2\n}\n')
    assert sorted(p["node"] for p in run(spec).pods("web")) == ["a", "b"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_soft_terms_place_a_workload_alike_in_any_firing_order(seed):
    # The replicas are alike, so where they land (as a multiset) follows from the terms alone,
    # whichever is bound first. (Pods of two workloads that interleave may land differently in
    # another order, as without preferred terms: README, verify's "orders agree".)
    fan = pod("fan", labels='app: "fan"', extra=f'node: "small-2" {soft(term("cache", weight=30))}')
    spec = BIG_AND_SMALL + fan + deployment("cache", replicas=5, extra=soft_anti(term("cache")))

    def placement(c):
        return sorted(p["node"] for p in c.pods("cache"))
    assert placement(run(spec, order="random", seed=seed)) == placement(run(spec)) == \
        ["big", "big", "small-1", "small-2", "small-2"]


def test_a_pod_that_no_term_concerns_skips_the_inter_pod_affinity_score(monkeypatch):
    # The gate (`has_pod_constraints`) stays shut for a pod that has no term and that no existing
    # pod's term selects: its InterPodAffinity score is never worked out. One that an existing
    # pod's preferred term selects takes the path.
    kept = memo_keeps(monkeypatch)
    loner = pod("loner", labels='app: "loner"', extra=f'node: "big" {soft_anti(term("web"))}')
    run(BIG_AND_SMALL + loner + pod("api", labels='app: "api"'))
    assert "attraction" not in kept and "has_pod_filters" not in kept
    kept.clear()
    run(BIG_AND_SMALL + loner + pod("web", labels='app: "web"'))
    assert "attraction" in kept


# ---- manifests ------------------------------------------------------------------------------

POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: x}]
  affinity:
"""


def test_manifest_preferred_pod_affinity_and_anti_affinity_are_read():
    m = loads(POD + """    podAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 40
          podAffinityTerm: {labelSelector: {matchLabels: {app: db}}, topologyKey: zone}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            labelSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
            topologyKey: kubernetes.io/hostname
""", "t.yaml")
    assert m.warnings == ()
    [(kind, p)] = m.objects
    assert p["affinity"] == {
        "podAntiAffinity": [{"labelSelector": {"app": "web"}, "topologyKey": HOST}],
        "preferredPodAffinity": [{"weight": 40, "podAffinityTerm": {"labelSelector": {"app": "db"},
                                                                     "topologyKey": "zone"}}],
        "preferredPodAntiAffinity": [{"weight": 100, "podAffinityTerm": {
            "labelSelector": {}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}],
            "topologyKey": HOST}}],
    }


def test_manifest_soft_anti_affinity_spreads_a_deployment(tmp_path):
    nodes = "".join(f"""---
apiVersion: v1
kind: Node
metadata: {{name: {name}}}
status: {{capacity: {{cpu: "{cpu}", memory: 64Gi}}}}
""" for name, cpu in (("big", 32), ("small-1", 4), ("small-2", 4)))
    (tmp_path / "c.yaml").write_text(nodes + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache}
spec:
  replicas: 3
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: c, image: redis, resources: {requests: {cpu: 100m, memory: 64Mi}}}]
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                labelSelector: {matchLabels: {app: cache}}
                topologyKey: kubernetes.io/hostname
""")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "get", "pods", str(tmp_path / "c.yaml"), "-o", "wide"],
                         capture_output=True, text=True, check=True).stdout
    assert sorted(line.split()[6] for line in out.splitlines()[1:]) == ["big", "small-1", "small-2"]


@pytest.mark.parametrize("terms, message", [
    ("""    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 0, podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: zone}}
""", "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
     "Invalid value: 0: must be in the range 1-100"),
    ("""    podAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 1, podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: zone}}
        - {weight: 101, podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: zone}}
""", "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[1].weight: "
     "Invalid value: 101: must be in the range 1-100"),
    ("""    podAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: zone}}
""", "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
     "Invalid value: 0: must be in the range 1-100"),
    ("""    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 10, podAffinityTerm: {labelSelector: {matchLabels: {app: web}}}}
""", "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm."
     "topologyKey: Required value: can not be empty"),
    ("""    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {labelSelector: {matchLabels: {app: web}}}
""", "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
     "Required value: can not be empty"),
    ("""    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 10, podAffinityTerm: {labelSelector: {matchExpressions: [{key: app, operator: In}]},
                                         topologyKey: zone}}
""", "error[E302]: spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm."
     "labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
])
def test_manifest_preferred_terms_are_validated_with_upstreams_messages(tmp_path, terms, message):
    (tmp_path / "p.yaml").write_text("""apiVersion: v1
kind: Node
metadata: {name: n1, labels: {zone: a}}
status: {capacity: {cpu: "4", memory: 8Gi}}
---
""" + POD + terms)
    done = subprocess.run([sys.executable, "-m", "engine.cli", "reconcile", str(tmp_path / "p.yaml")],
                          capture_output=True, text=True)
    # A selector is judged as the manifest is read (E302); the rest by admission (E200).
    assert (message if message.startswith("error[") else f'Pod "p" is invalid: {message}') in done.stderr, \
        done.stderr
    assert "Traceback" not in done.stderr


def test_manifest_term_namespaces_are_warned_about():
    m = loads(POD + """    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 5
          podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: zone, namespaces: [other]}
""", "t.yaml")
    [warning] = m.warnings
    assert "podAffinityTerm.namespaces` is not supported by Konverge" in str(warning)


# ---- .konv admission ------------------------------------------------------------------------

def refusal(body: str) -> str:
    """The API server's message for an invalid object declared in a spec (refused at load)."""
    with pytest.raises(KonvergeError) as e:
        run(node("n1") + body)
    [d] = e.value.diagnostics
    return d.message


PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


@pytest.mark.parametrize("body, message", [
    (f'pod p {{ {soft_anti(term("web", weight=0))} container c {{ image: "x" }} }}',
     f'Pod "p" is invalid: spec.affinity.podAntiAffinity.{PREFERRED}[0].weight: Invalid value: 0: '
     "must be in the range 1-100"),
    (f'deployment d {{ template {{ labels {{ a: "d" }} {soft(term("web"), term("db", weight=101))} '
     'container c { image: "x" } } }',
     f'Deployment "d" is invalid: spec.template.spec.affinity.podAffinity.{PREFERRED}[1].weight: Invalid value: '
     "101: must be in the range 1-100"),
    ('pod p { affinity: {preferredPodAffinity: [{weight: 5, podAffinityTerm: {matchExpressions: '
     '[{key: "a", operator: "Exists", values: ["b"]}], topologyKey: "zone"}}]} container c { image: "x" } }',
     f'Pod "p" is invalid: spec.affinity.podAffinity.{PREFERRED}[0].podAffinityTerm.labelSelector.'
     "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    (f'pod p {{ {soft_anti(term("web", key=""))} container c {{ image: "x" }} }}',
     f'Pod "p" is invalid: spec.affinity.podAntiAffinity.{PREFERRED}[0].podAffinityTerm.topologyKey: '
     "Required value: can not be empty"),
    # The required terms first, as validatePodAntiAffinity checks them.
    ('pod p { affinity: {podAntiAffinity: [{labelSelector: {a: "b"}, topologyKey: "a b"}], '
     f'preferredPodAntiAffinity: [{term("web", weight=0)}]}} container c {{ image: "x" }} }}',
     'Pod "p" is invalid: spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].'
     'topologyKey: Invalid value: "a b": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', '
     "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
     "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
])
def test_invalid_preferred_pod_terms_are_refused_with_upstreams_messages(body, message):
    assert refusal(body) == message
