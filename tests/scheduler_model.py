"""A second opinion on where pods land: kube-scheduler's default profile in plain Python.

Written from Kubernetes' sources, not from rules/scheduler.konv, so that a property can set the
two side by side (tests/test_k8s_scheduler.py). It covers what the property generates — nodes
with cpu, memory and pod capacity, labels, taints and `unschedulable`; standalone pods with
container requests, a nodeSelector, required and preferred node affinity and tolerations — and
follows, in pkg/scheduler (framework/plugins/…, framework/types.go, apis/config/v1/default_plugins.go):

- filters in the default profile's order, each node reporting its first failing plugin:
  NodeUnschedulable, TaintToleration (FindMatchingUntoleratedTaint over NoSchedule and NoExecute
  taints), NodeAffinity (nodeSelector AND the required terms), NodeResourcesFit (fitsRequest:
  pod count, then cpu and memory, a zero request never short);
- scores, each 0–100 times its weight: NodeResourcesFit LeastAllocated ×1 (integer maths, over
  the non-zero requests: a container without a request counts 100m cpu and 200Mi memory),
  NodeResourcesBalancedAllocation ×1 (the requests as they are; skipped for a pod that requests
  nothing), TaintToleration ×3 and NodeAffinity ×2 (each normalised by DefaultNormalizeScore,
  the first reversed). PodTopologySpread, InterPodAffinity and ImageLocality score every node
  alike for these pods (no constraints, no pod affinity, no images on nodes), so they are left out;
- FitError.Error's message: "0/N nodes are available: " and the sorted "count reason" strings.

Adjusted only for Konverge's documented differences: ties go to the first node by name (upstream
picks at random) and there is no preemption (no "preemption: …" suffix). A request of 0 stands
for a missing one, as a Konverge container cannot tell the two apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_NODE_SCORE = 100
# schedutil.DefaultMilliCPURequest and DefaultMemoryRequest (GetNonzeroRequests).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# The default profile's score weights (apis/config/v1/default_plugins.go).
WEIGHT_FIT, WEIGHT_BALANCED, WEIGHT_TAINT, WEIGHT_AFFINITY = 1, 1, 3, 2


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
class Pod:
    name: str
    containers: tuple[tuple[int, int], ...]  # (milli cpu, memory bytes) requests; 0 is no request
    node_selector: dict = field(default_factory=dict)
    required_terms: tuple[tuple[Requirement, ...], ...] = ()  # ORed terms of ANDed requirements
    preferred_terms: tuple[tuple[int, tuple[Requirement, ...]], ...] = ()  # (weight, requirements)
    tolerations: tuple[Toleration, ...] = ()

    def requests(self) -> tuple[int, int]:
        return sum(c for c, _ in self.containers), sum(m for _, m in self.containers)

    def nonzero_requests(self) -> tuple[int, int]:
        """PodRequests with NonMissingContainerRequests: a missing container request counts as the default."""
        return (sum(c or DEFAULT_MILLI_CPU for c, _ in self.containers),
                sum(m or DEFAULT_MEMORY for _, m in self.containers))


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


def _plus(a, b):
    return a[0] + b[0], a[1] + b[1]


# ---- matching (k8s.io/api/core/v1 Toleration.ToleratesTaint, apimachinery labels.Requirement) ----

def tolerates(t: Toleration, taint: Taint) -> bool:
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


# ---- filters ---------------------------------------------------------------------------

def filter_reasons(pod: Pod, info: NodeInfo) -> list[str]:
    """The reasons of the first filter that rejects the node, in the default profile's order; [] if it fits."""
    node = info.node
    if node.unschedulable and not tolerated(pod.tolerations, Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule")):
        return ["node(s) were unschedulable"]
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerated(pod.tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"]
    selector_ok = all(node.labels.get(k) == v for k, v in pod.node_selector.items())
    if not selector_ok or pod.required_terms and not any(term_matches(t, node.labels) for t in pod.required_terms):
        return ["node(s) didn't match Pod's node affinity/selector"]
    return fits_request(pod, info)


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


def scores(pod: Pod, infos: list[NodeInfo]) -> list[int]:
    """The weighted sum of the default profile's scores for each of the feasible nodes `infos`."""
    taint = default_normalize([intolerable_prefer_no_schedule(pod, i.node) for i in infos], reverse=True)
    affinity = default_normalize([preferred_affinity(pod, i.node) for i in infos], reverse=False)
    return [WEIGHT_FIT * least_allocated(pod, i) + WEIGHT_BALANCED * balanced_allocation(pod, i)
            + WEIGHT_TAINT * t + WEIGHT_AFFINITY * a
            for i, t, a in zip(infos, taint, affinity)]


# ---- the scheduling cycle -----------------------------------------------------------------

def fit_error(pod: Pod, infos: list[NodeInfo]) -> str:
    """FitError.Error: each node's reasons counted, the "count reason" strings sorted."""
    reasons = Counter(r for info in infos for r in filter_reasons(pod, info))
    counted = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    return f"0/{len(infos)} nodes are available: {counted}."


def schedule_one(pod: Pod, infos: list[NodeInfo]) -> NodeInfo | None:
    """The node the pod binds to: the best score, ties by name (Konverge's difference); None if none fits."""
    feasible = [i for i in infos if not filter_reasons(pod, i)]
    if not feasible:
        return None
    ranked = zip(scores(pod, feasible), feasible)
    return min(ranked, key=lambda si: (-si[0], si[1].node.name))[1]


@dataclass(frozen=True)
class Placement:
    node: str | None
    message: str = ""  # FailedScheduling's, for a pod that stays pending


def schedule(nodes: list[Node], pods: list[Pod]) -> dict[str, Placement]:
    """Schedule `pods` one at a time in the given order, each against the nodes as the earlier
    bindings left them. A pod that fits nowhere stays pending; its message is its last attempt's,
    after every other pod was placed (the queue retries it; binding more pods never makes it fit)."""
    infos = [NodeInfo(n) for n in nodes]
    bound: dict[str, str] = {}
    for pod in pods:
        info = schedule_one(pod, infos)
        if info is not None:
            info.add(pod)
            bound[pod.name] = info.node.name
    return {p.name: Placement(bound[p.name]) if p.name in bound else Placement(None, fit_error(p, infos))
            for p in pods}
