"""A second opinion on the ReplicaSet and Deployment controllers, in plain Python.

Written from Kubernetes' sources, not from rules/controllers.konv, so that properties can set the
two side by side (tests/test_k8s_replicaset.py). It follows:

- pkg/controller/replicaset/replica_set.go: manageReplicas (create the missing pods, at most
  burstReplicas = 500; delete the surplus chosen by getPodsToDelete, all of it in one sync),
  getPodsRankedByRelatedPodsOnSameNode (a pod's rank is the number of active *related* pods on its
  node, the related pods being those of every ReplicaSet with the same controller,
  getIndirectlyRelatedPods; a ReplicaSet without a controller has none, so every rank is 0);
- pkg/controller/controller_utils.go: IsPodActive (not Succeeded, not Failed, no deletion
  timestamp) and ActivePodsWithRanks.Less: unassigned < assigned; Pending < Unknown < Running; not
  ready < ready; lower pod-deletion-cost first; higher rank first; both ready: the more recently
  ready first, compared on LogarithmicScaleDown's scale (floor(log2) of the age in nanoseconds,
  a tie broken by UID, i.e. arbitrarily); more restarts first, restarts being the *highest* count
  of one container (maxContainerRestarts); the newer first, on the same logarithmic scale;
- pkg/controller/deployment/rolling.go: rolloutRolling (scale the new set up if it can, and stop;
  else scale old sets down: cleanupUnhealthyReplicas, oldest first, within
  maxScaledDown = allPods - minAvailable - newRSUnavailable, then
  scaleDownOldReplicaSetsForRollingUpdate, oldest first, by available - minAvailable);
- pkg/controller/deployment/util/deployment_util.go: ResolveFenceposts (surge rounded up,
  unavailable rounded down, both 0 -> unavailable 1), MaxUnavailable (0 for 0 replicas, at most
  replicas), NewRSNewReplicas (grow the new set while all sets stay within replicas + maxSurge).

Ties are reported as ties (`deletion_key` equal), since Kubernetes breaks them by UID. Konverge
has no UIDs, minReadySeconds or pod-template-hash collisions; "available" is "ready" here, as
upstream with minReadySeconds 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

BURST_REPLICAS = 500
PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
NS = 10 ** 9


@dataclass(frozen=True)
class Pod:
    name: str
    node: str | None
    phase: str
    ready: bool
    ready_since: Fraction | None  # seconds
    created: Fraction  # seconds
    restarts: tuple[int, ...]  # one count per container
    deletion_cost: int = 0


def active(phase: str, deleting: bool) -> bool:
    return phase not in ("Succeeded", "Failed") and not deleting


def _log_rank(t: Fraction, now: Fraction) -> int:
    """logarithmicRankDiff's per-time half: floor(log2(now - t in ns)), -1 when not in the past."""
    d = (now - t) * NS
    return int(math.log2(float(d))) if d > 0 else -1


def deletion_key(p: Pod, rank: int, now: Fraction) -> tuple:
    """ActivePodsWithRanks.Less as a sort key: the smaller is deleted first; equal keys are the
    ties Less leaves to the UID. Where LogarithmicScaleDown finds two times alike but not equal,
    upstream lets the UID decide at once; the key goes on to the next criteria instead, as
    Konverge does (README): outcomes upstream allows, but fewer of them. Criterion 6 applies only when both pods are ready, and readiness
    is compared before it, so a not-ready pod's ready time is a constant here."""
    if p.ready:
        # afterOrZero: a zero ready time first; else the more recent (smaller log rank) first.
        ready_time = (0, 0) if p.ready_since is None else (1, _log_rank(p.ready_since, now))
    else:
        ready_time = (0, 0)
    return (
        p.node is not None,
        PHASE_ORDINAL.get(p.phase, 3),
        p.ready,
        p.deletion_cost,
        -rank,
        ready_time,
        -max(p.restarts, default=0),
        _log_rank(p.created, now),
    )


def ranks(pods: list[Pod], related: list[Pod]) -> dict[str, int]:
    """getPodsRankedByRelatedPodsOnSameNode: `related` holds only active pods."""
    on_node: dict[str | None, int] = {}
    for q in related:
        on_node[q.node] = on_node.get(q.node, 0) + 1
    return {p.name: on_node.get(p.node, 0) for p in pods}


def pods_to_delete(pods: list[Pod], related: list[Pod], diff: int, now: Fraction) -> tuple[set, set]:
    """getPodsToDelete: (the pods surely deleted, the pods tied with the last one deleted). The
    `diff` pods deleted are the first set and, for the rest, any of the second (UIDs decide)."""
    r = ranks(pods, related)
    keyed = sorted(pods, key=lambda p: deletion_key(p, r[p.name], now))
    if diff >= len(pods):
        return {p.name for p in pods}, set()
    boundary = deletion_key(keyed[diff - 1], r[keyed[diff - 1].name], now) if diff > 0 else None
    sure = {p.name for p in keyed[:diff] if deletion_key(p, r[p.name], now) != boundary}
    tied = {p.name for p in keyed if deletion_key(p, r[p.name], now) == boundary}
    return sure, tied


def manage_replicas(replicas: int, active_count: int) -> int:
    """manageReplicas' diff: > 0 pods to create, < 0 pods to delete, each capped at burstReplicas."""
    diff = replicas - active_count
    return max(-BURST_REPLICAS, min(BURST_REPLICAS, diff))


# ---- Deployment -------------------------------------------------------------------------------

def scaled_value(v, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(v, str) and v.endswith("%"):
        x = Fraction(int(v[:-1]) * total, 100)
        return math.ceil(x) if round_up else math.floor(x)
    return int(v)


def resolve_fenceposts(max_surge, max_unavailable, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(replicas: int, max_surge, max_unavail) -> int:
    if replicas == 0:
        return 0
    return min(replicas, resolve_fenceposts(max_surge, max_unavail, replicas)[1])


@dataclass
class RS:
    name: str
    replicas: int
    available: int  # status.availableReplicas (ready, with minReadySeconds 0)
    created: tuple  # ReplicaSetsByCreationTimestamp: (creation time, name)


def new_rs_new_replicas(replicas: int, max_surge, all_rss: list[RS], new: RS) -> int:
    surge = resolve_fenceposts(max_surge, 0, replicas)[0]
    current = sum(r.replicas for r in all_rss)
    max_total = replicas + surge
    if current >= max_total:
        return new.replicas
    return new.replicas + min(max_total - current, replicas - new.replicas)


def reconcile_new(replicas: int, max_surge, all_rss: list[RS], new: RS) -> int:
    """reconcileNewReplicaSet: the new set's replicas after this sync."""
    if new.replicas >= replicas:
        return replicas
    return new_rs_new_replicas(replicas, max_surge, all_rss, new)


def reconcile_old(replicas: int, max_surge, max_unavail, old: list[RS], new: RS) -> dict[str, int]:
    """reconcileOldReplicaSets: each old set's replicas after this sync (the active old sets)."""
    old = sorted((r for r in old if r.replicas > 0), key=lambda r: r.created)
    result = {r.name: r.replicas for r in old}
    if sum(r.replicas for r in old) == 0:
        return result
    all_pods = sum(r.replicas for r in old) + new.replicas
    min_available = replicas - max_unavailable(replicas, max_surge, max_unavail)
    max_scaled_down = all_pods - min_available - (new.replicas - new.available)
    if max_scaled_down <= 0:
        return result
    cleaned = 0
    for r in old:  # cleanupUnhealthyReplicas
        if cleaned >= max_scaled_down:
            break
        if result[r.name] == 0 or result[r.name] == r.available:
            continue
        n = min(max_scaled_down - cleaned, result[r.name] - r.available)
        result[r.name] -= n
        cleaned += n
    # scaleDownOldReplicaSetsForRollingUpdate: status (available) is as before the cleanup.
    available = sum(r.available for r in old) + new.available
    if available <= min_available:
        return result
    budget, done = available - min_available, 0
    for r in old:
        if done >= budget:
            break
        if result[r.name] == 0:
            continue
        n = min(result[r.name], budget - done)
        result[r.name] -= n
        done += n
    return result
