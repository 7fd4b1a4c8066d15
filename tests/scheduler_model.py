"""A second opinion on where pods land: kube-scheduler's default profile in plain Python.

Written from Kubernetes' sources, not from rules/scheduler.konv, so that a property can set the
two side by side (tests/test_k8s_scheduler.py). It covers what the property generates — nodes
with cpu, memory and pod capacity, labels, taints and `unschedulable`; standalone pods with
labels, container requests (init containers and sidecars among them), a nodeSelector, required and preferred node affinity, tolerations,
topology spread constraints and required and preferred pod (anti-)affinity terms, some already
bound (one maybe terminating) — and follows, in pkg/scheduler (framework/plugins/…, framework/types.go,
apis/config/v1/default_plugins.go):

- requests as PodRequests works them out (component-helpers/resource/helpers.go,
  AggregateContainerRequests): app containers and sidecars summed, each init container beside the
  sidecars before it, the larger taken;
- filters in the default profile's order, each node reporting its first failing plugin:
  NodeUnschedulable, TaintToleration (FindMatchingUntoleratedTaint over NoSchedule and NoExecute
  taints), NodeAffinity (nodeSelector AND the required terms), NodeResourcesFit (fitsRequest:
  pod count, then cpu and memory, a zero request never short), PodTopologySpread
  (podtopologyspread/filtering.go: calPreFilterState and Filter, over the DoNotSchedule
  constraints; common.go: filterTopologySpreadConstraints' defaults, matchNodeInclusionPolicies,
  nodeLabelsMatchSpreadConstraints, countPodsMatchSelector), InterPodAffinity
  (interpodaffinity/filtering.go: the PreFilter counts, satisfyPodAffinity,
  satisfyPodAntiAffinity, satisfyExistingPodsAntiAffinity);
- scores, each 0–100 times its weight: NodeResourcesFit LeastAllocated ×1 (integer maths, over
  the non-zero requests: a container without a request counts 100m cpu and 200Mi memory),
  NodeResourcesBalancedAllocation ×1 (the requests as they are; skipped for a pod that requests
  nothing), TaintToleration ×3 and NodeAffinity ×2 (each normalised by DefaultNormalizeScore,
  the first reversed), PodTopologySpread ×2 (podtopologyspread/scoring.go: initPreScoreState,
  PreScore, Score, NormalizeScore over the ScheduleAnyway constraints) and InterPodAffinity ×2
  (interpodaffinity/scoring.go: existing pods' required affinity terms that select the incoming
  pod, at hardPodAffinityWeight 1, preferred terms of the incoming pod and of existing pods at
  their weights, and NormalizeScore). ImageLocality scores every node alike
  for these pods (no images on nodes), so it is left out;
- FitError.Error's message: "0/N nodes are available: " and the sorted "count reason" strings.

Adjusted only for Konverge's documented differences: ties go to the first node by name (upstream
picks at random) and there is no preemption (no "preemption: …" suffix). Pod (anti-)affinity
terms have no namespaces or namespaceSelector (the kinds have none). Spread constraints keep minDomains 1 and the node
inclusion policies' defaults (nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore): the model reads
them as upstream does, but Konverge cannot express other values, so they are never varied and
that reading is not covered. A request of 0 stands for a missing one, as a Konverge
container cannot tell the two apart. There is no system default spreading to adjust for: upstream
builds default constraints only from the services and sets that select a pod, and these pods are
standalone, with no service.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

MAX_NODE_SCORE = 100
# schedutil.DefaultMilliCPURequest and DefaultMemoryRequest (GetNonzeroRequests).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
HOSTNAME = "kubernetes.io/hostname"  # v1.LabelHostname, which PodTopologySpread's score treats apart
# The other labels the kubelet registers its node with (kubelet_node_status.go initialNode).
KUBELET_LABELS = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}
# The default profile's score weights (apis/config/v1/default_plugins.go).
WEIGHT_FIT, WEIGHT_BALANCED, WEIGHT_TAINT, WEIGHT_AFFINITY = 1, 1, 3, 2
WEIGHT_SPREAD, WEIGHT_POD_AFFINITY = 2, 2
HARD_POD_AFFINITY_WEIGHT = 1  # InterPodAffinityArgs' default
# PodTopologySpread's filter reasons (podtopologyspread/plugin.go).
SPREAD_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
SPREAD_LABEL_MISSING = SPREAD_NOT_MATCH + " (missing required label)"
# InterPodAffinity's filter reasons (interpodaffinity/filtering.go).
AFFINITY_NOT_MATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_NOT_MATCH = "node(s) didn't satisfy existing pods anti-affinity rules"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    seconds: int | None = None  # tolerationSeconds: how long a NoExecute taint is tolerated (taint eviction)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    name: str
    milli_cpu: int
    memory: int  # bytes
    pods: int = 110
    labels: dict = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False


@dataclass(frozen=True)
class Selector:
    """A metav1.LabelSelector: matchLabels and matchExpressions, ANDed. Where a selector may be
    null (a term's, a constraint's), None stands for null."""
    match_labels: dict = field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class SpreadConstraint:
    """A v1.TopologySpreadConstraint; the policies and minDomains as filterTopologySpreadConstraints
    defaults them when unset. Konverge's kinds have no such fields, so the property never sets them
    and they always hold those defaults: `match_node_inclusion` and `min_match_num` follow upstream
    for other values too, but nothing here checks that they do, nor that Konverge would."""
    max_skew: int
    topology_key: str
    when_unsatisfiable: str  # DoNotSchedule or ScheduleAnyway
    selector: Selector | None
    min_domains: int = 1
    node_affinity_policy: str = "Honor"
    node_taints_policy: str = "Ignore"


@dataclass(frozen=True)
class AffinityTerm:
    """A v1.PodAffinityTerm, required or preferred: its namespaces are its pod's own."""
    selector: Selector | None
    topology_key: str


@dataclass(frozen=True)
class Pod:
    name: str
    containers: tuple[tuple[int, int], ...]  # (milli cpu, memory bytes) requests; 0 is no request
    node_selector: dict = field(default_factory=dict)
    required_terms: tuple[tuple[Requirement, ...], ...] = ()  # ORed terms of ANDed requirements
    preferred_terms: tuple[tuple[int, tuple[Requirement, ...]], ...] = ()  # (weight, requirements)
    tolerations: tuple[Toleration, ...] = ()
    labels: dict = field(default_factory=dict)
    namespace: str = "default"
    spread: tuple[SpreadConstraint, ...] = ()
    affinity: tuple[AffinityTerm, ...] = ()  # podAffinity's required terms
    anti_affinity: tuple[AffinityTerm, ...] = ()  # podAntiAffinity's required terms
    # podAffinity's and podAntiAffinity's preferred terms: (weight, term), a WeightedPodAffinityTerm
    preferred_affinity: tuple[tuple[int, AffinityTerm], ...] = ()
    preferred_anti_affinity: tuple[tuple[int, AffinityTerm], ...] = ()
    node_name: str | None = None  # spec.nodeName: bound from the start, never scheduled
    deleting: bool = False  # metadata.deletionTimestamp set

    # (milli cpu, memory bytes, sidecar) requests of the init containers, in order; a sidecar is
    # one with restartPolicy Always.
    init_containers: tuple[tuple[int, int, bool], ...] = ()

    def requests(self) -> tuple[int, int]:
        return pod_requests(self, (0, 0))

    def nonzero_requests(self) -> tuple[int, int]:
        """PodRequests with NonMissingContainerRequests: a missing container request counts as the default."""
        return pod_requests(self, (DEFAULT_MILLI_CPU, DEFAULT_MEMORY))


def pod_requests(pod: Pod, non_missing: tuple[int, int]) -> tuple[int, int]:
    """component-helpers/resource/helpers.go AggregateContainerRequests, per resource: the app
    containers summed, each sidecar added to that sum and to the running sidecar total, each init
    container's step (its request plus the sidecars before it, or for a sidecar the sidecar total)
    kept at its maximum, and the larger of the sum and that maximum taken. `non_missing` fills a
    request of 0 (applyNonMissing), for app and init containers alike."""
    out = []
    for r in range(2):
        def req(c):
            return c[r] or non_missing[r]
        reqs = sum(req(c) for c in pod.containers)
        restartable = init = 0
        for c in pod.init_containers:
            if c[2]:
                reqs += req(c)
                restartable += req(c)
                step = restartable
            else:
                step = req(c) + restartable
            init = max(init, step)
        out.append(max(reqs, init))
    return out[0], out[1]


@dataclass
class NodeInfo:
    """The snapshot's NodeInfo: the node, its pods and their requests summed, as they are and non-zero."""
    node: Node
    pods: list = field(default_factory=list)
    requested: tuple[int, int] = (0, 0)
    nonzero_requested: tuple[int, int] = (0, 0)

    def add(self, pod: Pod) -> None:
        self.pods.append(pod)
        self.requested = _plus(self.requested, pod.requests())
        self.nonzero_requested = _plus(self.nonzero_requested, pod.nonzero_requests())

    def remove(self, pod: Pod) -> None:
        self.pods.remove(pod)
        self.requested = _plus(self.requested, _minus(pod.requests()))
        self.nonzero_requested = _plus(self.nonzero_requested, _minus(pod.nonzero_requests()))


def _plus(a, b):
    return a[0] + b[0], a[1] + b[1]


def _minus(a):
    return -a[0], -a[1]


# ---- matching (k8s.io/api/core/v1 Toleration.ToleratesTaint, apimachinery labels.Requirement) ----

def tolerates(t: Toleration, taint: Taint) -> bool:
    """v1.Toleration.ToleratesTaint."""
    if t.effect and t.effect != taint.effect:
        return False
    if t.key and t.key != taint.key:
        return False
    if t.operator in ("", "Equal"):
        return t.value == taint.value
    return t.operator == "Exists"


def tolerated(tolerations, taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def _int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), None where it fails."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    return value if -2**63 <= value < 2**63 else None


def matches(r: Requirement, labels: dict) -> bool:
    has = r.key in labels
    if r.operator == "In":
        return has and labels[r.key] in r.values
    if r.operator == "NotIn":
        return not has or labels[r.key] not in r.values
    if r.operator == "Exists":
        return has
    if r.operator == "DoesNotExist":
        return not has
    if r.operator in ("Gt", "Lt"):
        value = _int64(labels[r.key]) if has else None
        if value is None:
            return False
        bound = int(r.values[0])
        return value > bound if r.operator == "Gt" else value < bound
    raise ValueError(r.operator)


def term_matches(term, labels: dict) -> bool:
    """A node selector term: an empty one selects no node."""
    return bool(term) and all(matches(r, labels) for r in term)


def selects(selector: Selector | None, labels: dict) -> bool:
    """metav1.LabelSelectorAsSelector(selector).Matches(labels): a null selector is labels.Nothing(),
    an empty one labels.Everything()."""
    if selector is None:
        return False
    return (all(labels.get(k) == v for k, v in selector.match_labels.items())
            and all(matches(r, labels) for r in selector.match_expressions))


def required_node_affinity(pod: Pod, node: Node) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match(node): the nodeSelector AND the required terms."""
    selector_ok = all(node.labels.get(k) == v for k, v in pod.node_selector.items())
    return selector_ok and (not pod.required_terms or any(term_matches(t, node.labels) for t in pod.required_terms))


def untolerated_hard_taint(pod: Pod, node: Node) -> Taint | None:
    """FindMatchingUntoleratedTaint over NoSchedule and NoExecute taints (DoNotScheduleTaintsFilterFunc)."""
    return next((t for t in node.taints
                 if t.effect in ("NoSchedule", "NoExecute") and not tolerated(pod.tolerations, t)), None)


# ---- filters ---------------------------------------------------------------------------

def filter_reasons(pod: Pod, info: NodeInfo, infos: list[NodeInfo]) -> list[str]:
    """The reasons of the first filter that rejects the node, in the default profile's order; [] if it
    fits. `infos` is every node of the snapshot, which PodTopologySpread and InterPodAffinity count
    pods over."""
    node = info.node
    if node.unschedulable and not tolerated(pod.tolerations, Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule")):
        return ["node(s) were unschedulable"]
    taint = untolerated_hard_taint(pod, node)
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"]
    if not required_node_affinity(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    return fits_request(pod, info) or spread_filter(pod, info, infos) or inter_pod_affinity_filter(pod, info, infos)


def fits_request(pod: Pod, info: NodeInfo) -> list[str]:
    """noderesources.fitsRequest: every resource short, pods first."""
    reasons = []
    if len(info.pods) + 1 > info.node.pods:
        reasons.append("Too many pods")
    cpu, memory = pod.requests()
    if cpu > 0 and cpu > info.node.milli_cpu - info.requested[0]:
        reasons.append("Insufficient cpu")
    if memory > 0 and memory > info.node.memory - info.requested[1]:
        reasons.append("Insufficient memory")
    return reasons


# ---- PodTopologySpread (podtopologyspread/common.go, filtering.go) ------------------------

def constraints_of(pod: Pod, action: str) -> list[SpreadConstraint]:
    """filterTopologySpreadConstraints: the pod's constraints whose whenUnsatisfiable is `action`."""
    return [c for c in pod.spread if c.when_unsatisfiable == action]


def node_labels_match(node: Node, constraints) -> bool:
    """nodeLabelsMatchSpreadConstraints: every constraint's topology key is on the node."""
    return all(c.topology_key in node.labels for c in constraints)


def match_node_inclusion(c: SpreadConstraint, pod: Pod, node: Node) -> bool:
    """topologySpreadConstraint.matchNodeInclusionPolicies."""
    if c.node_affinity_policy == "Honor" and not required_node_affinity(pod, node):
        return False
    if c.node_taints_policy == "Honor" and untolerated_hard_taint(pod, node) is not None:
        return False
    return True


def count_pods_match_selector(pods, selector: Selector | None, namespace: str) -> int:
    """countPodsMatchSelector: terminating pods and other namespaces' are not counted."""
    return sum(1 for q in pods if not q.deleting and q.namespace == namespace and selects(selector, q.labels))


def spread_prefilter(pod: Pod, constraints, infos: list[NodeInfo]) -> list[dict]:
    """calPreFilterState's TpValueToMatchNum: for each constraint, the matching pods of each domain,
    over the nodes that hold every constraint's key and pass the constraint's inclusion policies
    (a domain with none is still there, counting 0)."""
    counts = [{} for _ in constraints]
    for info in infos:
        if not node_labels_match(info.node, constraints):
            continue
        for i, c in enumerate(constraints):
            if not match_node_inclusion(c, pod, info.node):
                continue
            value = info.node.labels[c.topology_key]
            counts[i][value] = counts[i].get(value, 0) + count_pods_match_selector(info.pods, c.selector, pod.namespace)
    return counts


def min_match_num(domains: dict, c: SpreadConstraint) -> int:
    """preFilterState.minMatchNum: the global minimum, 0 while there are fewer domains than minDomains
    (the critical paths start at MaxInt32, so no domain at all reads 0 too, minDomains being ≥ 1)."""
    if len(domains) < c.min_domains:
        return 0
    return min(domains.values())


def spread_filter(pod: Pod, info: NodeInfo, infos: list[NodeInfo]) -> list[str]:
    """PodTopologySpread.Filter: the DoNotSchedule constraints in order, the first that fails giving
    the reason: its key missing on the node, or matchNum + selfMatch − minMatchNum > maxSkew."""
    constraints = constraints_of(pod, "DoNotSchedule")
    if not constraints:
        return []
    counts = spread_prefilter(pod, constraints, infos)
    for i, c in enumerate(constraints):
        if c.topology_key not in info.node.labels:
            return [SPREAD_LABEL_MISSING]
        self_match = 1 if selects(c.selector, pod.labels) else 0
        match_num = counts[i].get(info.node.labels[c.topology_key], 0)
        if match_num + self_match - min_match_num(counts[i], c) > c.max_skew:
            return [SPREAD_NOT_MATCH]
    return []


# ---- InterPodAffinity (interpodaffinity/filtering.go) ------------------------------------

def term_matches_pod(term: AffinityTerm, term_namespace: str, pod: Pod) -> bool:
    """AffinityTerm.Matches: the pod is in the term's namespaces (its owner's) and selected."""
    return pod.namespace == term_namespace and selects(term.selector, pod.labels)


def pod_matches_all_terms(terms, term_namespace: str, pod: Pod) -> bool:
    """podMatchesAllAffinityTerms: false for no terms."""
    return bool(terms) and all(term_matches_pod(t, term_namespace, pod) for t in terms)


def affinity_prefilter(pod: Pod, infos: list[NodeInfo]) -> tuple[Counter, Counter, Counter]:
    """PreFilter's three maps of (topology key, value) → count: existing pods' anti-affinity terms
    that select the pod (getExistingAntiAffinityCounts), and the existing pods that match all the
    pod's affinity terms and each of its anti-affinity terms (getIncomingAffinityAntiAffinityCounts),
    each in the domain of the node it runs on, where that node has the term's key."""
    existing, affinity, anti = Counter(), Counter(), Counter()
    for info in infos:
        labels = info.node.labels
        for q in info.pods:
            for t in q.anti_affinity:
                if term_matches_pod(t, q.namespace, pod) and t.topology_key in labels:
                    existing[t.topology_key, labels[t.topology_key]] += 1
            if pod_matches_all_terms(pod.affinity, pod.namespace, q):
                for t in pod.affinity:
                    if t.topology_key in labels:
                        affinity[t.topology_key, labels[t.topology_key]] += 1
            for t in pod.anti_affinity:
                if term_matches_pod(t, pod.namespace, q) and t.topology_key in labels:
                    anti[t.topology_key, labels[t.topology_key]] += 1
    return existing, affinity, anti


def satisfy_pod_affinity(pod: Pod, affinity: Counter, labels: dict) -> bool:
    """satisfyPodAffinity: every term's key on the node, and matching pods in each term's domain; or,
    for the first pod of a group, no matching pod anywhere and the pod matching all its own terms."""
    pods_exist = True
    for t in pod.affinity:
        if t.topology_key not in labels:
            return False
        if affinity[t.topology_key, labels[t.topology_key]] <= 0:
            pods_exist = False
    if not pods_exist:
        return not +affinity and pod_matches_all_terms(pod.affinity, pod.namespace, pod)
    return True


def inter_pod_affinity_filter(pod: Pod, info: NodeInfo, infos: list[NodeInfo]) -> list[str]:
    """InterPodAffinity.Filter: the pod's affinity, then its anti-affinity, then existing pods' anti-affinity."""
    existing, affinity, anti = affinity_prefilter(pod, infos)
    labels = info.node.labels
    if not satisfy_pod_affinity(pod, affinity, labels):
        return [AFFINITY_NOT_MATCH]
    if any(t.topology_key in labels and anti[t.topology_key, labels[t.topology_key]] > 0 for t in pod.anti_affinity):
        return [ANTI_AFFINITY_NOT_MATCH]
    if any(existing[k, v] > 0 for k, v in labels.items()):
        return [EXISTING_ANTI_AFFINITY_NOT_MATCH]
    return []


# ---- scores ----------------------------------------------------------------------------

def least_allocated(pod: Pod, info: NodeInfo) -> int:
    """leastResourceScorer over cpu and memory, weight 1 each, in int64 arithmetic."""
    score = weights = 0
    requested = _plus(info.nonzero_requested, pod.nonzero_requests())
    for req, alloc in zip(requested, (info.node.milli_cpu, info.node.memory)):
        if alloc == 0:
            continue
        score += 0 if req > alloc else (alloc - req) * MAX_NODE_SCORE // alloc
        weights += 1
    return score // weights if weights else 0


def balanced_allocation(pod: Pod, info: NodeInfo) -> int:
    """balancedResourceScorer on the requests as they are (useRequested); a best-effort pod skips it."""
    if pod.requests() == (0, 0):
        return 0
    fractions = []
    requested = _plus(info.requested, pod.requests())
    for req, alloc in zip(requested, (info.node.milli_cpu, info.node.memory)):
        if alloc == 0:
            continue
        fractions.append(min(float(req) / float(alloc), 1.0))
    std = abs((fractions[0] - fractions[1]) / 2) if len(fractions) == 2 else 0.0
    return int((1 - std) * float(MAX_NODE_SCORE))


def intolerable_prefer_no_schedule(pod: Pod, node: Node) -> int:
    tolerations = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]
    return sum(1 for x in node.taints if x.effect == "PreferNoSchedule" and not tolerated(tolerations, x))


def preferred_affinity(pod: Pod, node: Node) -> int:
    return sum(w for w, term in pod.preferred_terms if w and term_matches(term, node.labels))


def default_normalize(scores: list[int], reverse: bool) -> list[int]:
    """helper.DefaultNormalizeScore."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else list(scores)
    out = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in out] if reverse else out


def go_round(x: float) -> int:
    """math.Round: the nearest integer, halves away from zero, decided on the float's exact value
    (adding 0.5 in floats first would round 0.49999999999999994 up)."""
    whole, part = divmod(Fraction(abs(x)), 1)
    n = whole + (part >= Fraction(1, 2))
    return n if x >= 0 else -n


def spread_scores(pod: Pod, feasible: list[NodeInfo], infos: list[NodeInfo]) -> list[int]:
    """PodTopologySpread's PreScore, Score and NormalizeScore over the ScheduleAnyway constraints; 0
    for every node when the pod has none (PreScore skips the plugin)."""
    constraints = constraints_of(pod, "ScheduleAnyway")
    if not constraints:
        return [0] * len(feasible)
    # initPreScoreState: feasible nodes without every key are ignored; the others name the domains.
    ignored = {i.node.name for i in feasible if not node_labels_match(i.node, constraints)}
    domains = [{} for _ in constraints]
    for i in feasible:
        if i.node.name in ignored:
            continue
        for k, c in enumerate(constraints):
            if c.topology_key != HOSTNAME:
                domains[k].setdefault(i.node.labels[c.topology_key], 0)
    weights = [math.log((len(feasible) - len(ignored) if c.topology_key == HOSTNAME else len(domains[k])) + 2)
               for k, c in enumerate(constraints)]
    # PreScore: every node of the cluster adds its matching pods to its domain, where that domain is one.
    for i in infos:
        if not node_labels_match(i.node, constraints):
            continue
        for k, c in enumerate(constraints):
            if not match_node_inclusion(c, pod, i.node):
                continue
            value = i.node.labels[c.topology_key]
            if value in domains[k]:
                domains[k][value] += count_pods_match_selector(i.pods, c.selector, pod.namespace)
    raw = []
    for i in feasible:
        if i.node.name in ignored:
            raw.append(None)
            continue
        score = 0.0
        for k, c in enumerate(constraints):
            if c.topology_key == HOSTNAME:
                cnt = count_pods_match_selector(i.pods, c.selector, pod.namespace)
            else:
                cnt = domains[k][i.node.labels[c.topology_key]]
            score += float(cnt) * weights[k] + float(c.max_skew - 1)  # scoreForCount
        raw.append(go_round(score))
    # NormalizeScore: fewer is better, against the non-ignored nodes' least and most; ignored get 0.
    counted = [s for s in raw if s is not None]
    low, high = min(counted, default=0), max(counted, default=0)
    return [0 if s is None else MAX_NODE_SCORE if high == 0 else MAX_NODE_SCORE * (high + low - s) // high
            for s in raw]


def pod_affinity_scores(pod: Pod, feasible: list[NodeInfo], infos: list[NodeInfo]) -> list[int]:
    """InterPodAffinity's PreScore, Score and NormalizeScore. PreScore's processExistingPod, for every
    existing pod on every node (with labels) of the snapshot: the incoming pod's preferred affinity
    terms that select it add their weight to the domain of its node, its preferred anti-affinity
    terms subtract theirs; the existing pod's required affinity terms that select the incoming pod
    add hardPodAffinityWeight, its preferred affinity terms their weight, its preferred
    anti-affinity terms subtract theirs — each only where the node has the term's topology key.
    (Upstream looks at every pod when the incoming pod has preferred terms, else only at pods with
    affinity terms, which are the only ones that can add anything then.) Score sums a node's
    domains; NormalizeScore maps them between the feasible nodes' least and most, float64,
    truncated; all 0 when no term counted anywhere or all are alike."""
    topology: dict[tuple[str, str], int] = {}

    def process(term: AffinityTerm, weight: int, namespace: str, checked: Pod, labels: dict, multiplier: int):
        """scoreMap.processTerm."""
        if term_matches_pod(term, namespace, checked) and term.topology_key in labels:
            key = term.topology_key, labels[term.topology_key]
            topology[key] = topology.get(key, 0) + weight * multiplier

    for info in infos:
        labels = info.node.labels
        if not labels:
            continue
        for q in info.pods:
            for w, t in pod.preferred_affinity:
                process(t, w, pod.namespace, q, labels, 1)
            for w, t in pod.preferred_anti_affinity:
                process(t, w, pod.namespace, q, labels, -1)
            for t in q.affinity:
                process(t, HARD_POD_AFFINITY_WEIGHT, q.namespace, pod, labels, 1)
            for w, t in q.preferred_affinity:
                process(t, w, q.namespace, pod, labels, 1)
            for w, t in q.preferred_anti_affinity:
                process(t, w, q.namespace, pod, labels, -1)
    if not topology:
        return [0] * len(feasible)
    raw = [sum(n for (k, v), n in topology.items() if i.node.labels.get(k) == v) for i in feasible]
    low, high = min(raw), max(raw)
    return [int(float(MAX_NODE_SCORE) * (float(s - low) / float(high - low))) if high > low else 0 for s in raw]


def scores(pod: Pod, feasible: list[NodeInfo], infos: list[NodeInfo]) -> list[int]:
    """The weighted sum of the default profile's scores for each of the feasible nodes."""
    taint = default_normalize([intolerable_prefer_no_schedule(pod, i.node) for i in feasible], reverse=True)
    affinity = default_normalize([preferred_affinity(pod, i.node) for i in feasible], reverse=False)
    spread = spread_scores(pod, feasible, infos)
    pod_affinity = pod_affinity_scores(pod, feasible, infos)
    return [WEIGHT_FIT * least_allocated(pod, i) + WEIGHT_BALANCED * balanced_allocation(pod, i)
            + WEIGHT_TAINT * t + WEIGHT_AFFINITY * a + WEIGHT_SPREAD * s + WEIGHT_POD_AFFINITY * pa
            for i, t, a, s, pa in zip(feasible, taint, affinity, spread, pod_affinity)]


# ---- the scheduling cycle -----------------------------------------------------------------

def fit_error(pod: Pod, infos: list[NodeInfo]) -> str:
    """FitError.Error: each node's reasons counted, the "count reason" strings sorted."""
    reasons = Counter(r for info in infos for r in filter_reasons(pod, info, infos))
    counted = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    return f"0/{len(infos)} nodes are available: {counted}."


def schedule_one(pod: Pod, infos: list[NodeInfo]) -> NodeInfo | None:
    """The node the pod binds to: the best score, ties by name (Konverge's difference); None if none fits."""
    feasible = [i for i in infos if not filter_reasons(pod, i, infos)]
    if not feasible:
        return None
    ranked = zip(scores(pod, feasible, infos), feasible)
    return min(ranked, key=lambda si: (-si[0], si[1].node.name))[1]


@dataclass(frozen=True)
class Placement:
    node: str | None
    message: str = ""  # FailedScheduling's, for a pod that stays pending


def schedule(nodes: list[Node], pods: list[Pod], remove_terminating: bool = True) -> dict[str, Placement]:
    """Bind `pods` one at a time, each against the nodes as the earlier bindings left them: a pod
    with a node is bound there from the start and not scheduled; of the others, the first in the
    given order that fits somewhere binds, until none does. So a pod that did not fit is tried again
    once a later one has bound (another pod in its domain may let it in), before the pods after it,
    as Konverge's bind rule takes the pending pods whose inputs changed in its firing order. Once no
    pod binds, the first terminating pod left is removed (the kubelet's removal comes after the
    scheduler in the firing order), and the pending pods are tried again; until then it counts for
    InterPodAffinity, as upstream's snapshot holds it, but not for PodTopologySpread. A pod that fits
    nowhere stays pending, with the message of its attempt against the final bindings; a removed pod
    has no placement. With `remove_terminating` false, the placements are those before the first
    removal, the terminating pods still bound."""
    infos = [NodeInfo(n) for n in nodes]
    by_name = {i.node.name: i for i in infos}
    bound: dict[str, str] = {}
    for pod in pods:
        if pod.node_name is not None:
            by_name[pod.node_name].add(pod)
            bound[pod.name] = pod.node_name
    pending = [p for p in pods if p.node_name is None]
    gone: set[str] = set()
    while True:
        for pod in pending:
            info = schedule_one(pod, infos)
            if info is not None:
                info.add(pod)
                bound[pod.name] = info.node.name
                pending.remove(pod)
                break
        else:
            going = next(((i, q) for i in infos for q in i.pods if q.deleting), None)
            if going is None or not remove_terminating:
                break
            going[0].remove(going[1])
            gone.add(going[1].name)
    return {p.name: Placement(bound[p.name]) if p.name in bound else Placement(None, fit_error(p, infos))
            for p in pods if p.name not in gone}
