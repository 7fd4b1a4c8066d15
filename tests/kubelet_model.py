"""A second opinion on the kubelet (admission, container restarts) and the node lifecycle
controller (heartbeats, NoExecute taints, taint-based eviction), in plain Python.

Written from Kubernetes' sources (1.33–1.35), not from rules/kubelet.konv, rules/node_lifecycle.konv
or rules/faults.konv, so that properties can set the two side by side (tests/test_k8s_kubelet.py,
tests/test_k8s_node_lifecycle.py). It follows:

- pkg/kubelet/kubelet.go HandlePodAdditions: pods are admitted oldest first
  (PodsByCreationTime), each against the node's active pods, those admitted before it and not
  terminal; a pod already terminating is never admitted, only stopped. rejectPod records a Warning
  event (reason, message) and sets phase Failed, that reason, and "Pod was rejected: " + message;
- pkg/kubelet/lifecycle/predicate.go Admit / generalFilter, and the scheduler's AdmissionCheck:
  noderesources.Fits first (pod count "Too many pods" with requested 1, used = active pods,
  capacity = allowed pods; then cpu and memory, each only if the pod requests it, when the request
  exceeds allocatable − requested), then required node affinity (nodeSelector); the first failure
  names the rejection: InsufficientResourceError → "OutOf" + resource and "Node didn't have enough
  resource: %s, requested: %d, used: %d, capacity: %d" (cpu in millicores, memory in bytes),
  PredicateFailureError → "NodeAffinity" and "Predicate NodeAffinity failed: node(s) didn't match
  Pod's node affinity/selector";
- pkg/kubelet/kuberuntime/kuberuntime_manager.go doBackOff with client-go flowcontrol.Backoff, as
  kubelet.go sets it up (newCrashLoopBackOff: initial 10 s, max 300 s; HasExpiredFunc: an entry
  expires when the container finishes more than 600 s after the entry's last update). A container
  that exits is restarted at once if it has no back-off entry or the entry expired (Next then
  starts the entry at 10 s); otherwise it waits until its finish time + the entry's back-off, and
  the restart doubles the entry (capped at 300 s). So the first restart is immediate, the second
  waits 10 s, then 20, 40, … 300; a container that ran more than 10 minutes restarts at once again.
  kl.backOff.GC() (HandlePodCleanups, every housekeeping period of 2 s) deletes an entry once it is
  more than 600 s past its last update (the same HasExpiredFunc, against now), even while the
  container waits out its back-off: the container then restarts at once and Next starts the entry
  again at 10 s;
  While it waits, the container is Waiting with reason CrashLoopBackOff and a "Back-off restarting
  failed container NAME in pod NAME_NAMESPACE(UID)" BackOff event;
- pkg/kubelet/kubelet_pods.go getPhase (restartPolicy Always: Running while restarting; Never:
  Failed once every container stopped with one failure; OnFailure: Running while a failed
  container restarts), pkg/kubelet/status/generate.go (Ready = every container ready; without
  probes a running container is ready); kubelet.go syncLoop: while the container runtime is down
  ("Skipping pod synchronization") the kubelet syncs no pod at all;
- pkg/controller/nodelifecycle/node_lifecycle_controller.go monitorNodeHealth / tryUpdateNodeHealth:
  no heartbeat for the grace period → Ready Unknown; processTaintBaseEviction keeps exactly one of
  node.kubernetes.io/unreachable (Unknown) or node.kubernetes.io/not-ready (False) NoExecute,
  swapped in one update and stamped with the time it was added, none when Ready is True;
  MarkPodsNotReady and the controller's NodeNotReady event only when the controller itself turns a
  node that was Ready=True not ready (observed True, current not True) — a kubelet that reports
  Ready=False (runtime down) keeps its pods' Ready as it was;
- pkg/controller/tainteviction/taint_eviction.go handleNodeUpdate / processPodOnNode /
  getMinTolerationTime: on every change of the node's NoExecute taints, each pod is evicted at once
  if some taint is not tolerated, never (scheduled eviction cancelled) if every used toleration
  has no seconds, else at now + the smallest tolerationSeconds (≤ 0 counting as 0) — unless an
  eviction is already scheduled, which is kept as it is; no NoExecute taint cancels it;
- plugin/pkg/admission/defaulttolerationseconds: a pod without a toleration of not-ready
  (resp. unreachable) — key that one or empty, effect NoExecute or empty — gets
  {key, Exists, NoExecute, 300 s}, not-ready first.

Adjusted only for Konverge's documented differences: the grace period is 40 s and counts from the
kubelet's failure (heartbeats are implied while it runs), and the engine's strict deadline fires
1 s after it; the back-off GC runs on that deadline too, 601 s after the entry's last update (upstream
within 2 s after 600 s); the kubelet reports Ready (True or False) as soon as its runtime changes; a crashing
container exits 1 s after it starts (exit code 1); termination is immediate (a terminating pod is
removed as soon as its kubelet syncs: it runs and its runtime is up); eviction is not rate limited
and marks the pod terminating; a lifecycle taint swapped for the other counts the pods' toleration afresh (`eviction_time`'s
`swap_restarts`); no probes; no NoSchedule lifecycle taints; pods carry no UID, so the kubelet
names a pod NAME_NAMESPACE.
A request of 0 stands for a missing one. Pods made at the same time are taken by name (creation
timestamps tie; the pods here share one namespace, the rules' next tie-break).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from tests.scheduler_model import Taint, Toleration, tolerates  # the taint-toleration match is the scheduler's

# ---- admission ----------------------------------------------------------------------------

REJECTED = "Pod was rejected: "


@dataclass(frozen=True)
class Node:
    name: str
    cpu: Fraction  # allocatable, cores
    memory: int  # allocatable, bytes
    pods: int = 110
    labels: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    name: str
    node: str
    cpu: Fraction = Fraction(0)  # the sum of its containers' requests
    memory: int = 0
    node_selector: dict = field(default_factory=dict)
    phase: str = "Pending"
    deleting: bool = False
    created: Fraction = Fraction(0)


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str  # the event's; the pod's status message is REJECTED + this

    @property
    def status_message(self) -> str:
        return REJECTED + self.message


def millis(q) -> int:
    return math.ceil(Fraction(q) * 1000)


def insufficient(resource: str, requested: int, used: int, capacity: int) -> Rejection:
    return Rejection("OutOf" + resource, f"Node didn't have enough resource: {resource}, requested: {requested}, "
                                         f"used: {used}, capacity: {capacity}")


def admit(pod: Pod, node: Node, active: list[Pod]) -> Rejection | None:
    """predicate.go Admit over generalFilter: the first failing predicate, None to admit."""
    if len(active) + 1 > node.pods:
        return insufficient("pods", 1, len(active), node.pods)
    used_cpu = sum(millis(p.cpu) for p in active)
    if millis(pod.cpu) > 0 and millis(pod.cpu) > millis(node.cpu) - used_cpu:
        return insufficient("cpu", millis(pod.cpu), used_cpu, millis(node.cpu))
    used_memory = sum(p.memory for p in active)
    if pod.memory > 0 and pod.memory > node.memory - used_memory:
        return insufficient("memory", pod.memory, used_memory, node.memory)
    if not all(node.labels.get(k) == v for k, v in pod.node_selector.items()):
        return Rejection("NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node "
                                         "affinity/selector")
    return None


def admit_node(node: Node, pods: list[Pod]) -> dict[str, Rejection | None]:
    """HandlePodAdditions for the pods bound to one node: the verdict on each pending pod that is not
    terminating (oldest first, ties by name), against the pods admitted before it."""
    active: list[Pod] = []
    verdicts: dict[str, Rejection | None] = {}
    for pod in sorted(pods, key=lambda p: (p.created, p.name)):
        if pod.node != node.name or pod.phase != "Pending" or pod.deleting:
            continue
        verdicts[pod.name] = verdict = admit(pod, node, active)
        if verdict is None:
            active.append(pod)
    return verdicts


# ---- container restarts -------------------------------------------------------------------

BACKOFF_INITIAL = 10
BACKOFF_MAX = 300
BACKOFF_EXPIRY = 600  # HasExpiredFunc: finished more than this after the entry's last update
BACKOFF_GC = BACKOFF_EXPIRY + 1  # GC() deletes the entry this long after its last update (Konverge)
RUNS_FOR = 1  # Konverge: a crashing container exits 1 s after it starts


@dataclass
class ContainerRun:
    """One container's life until `horizon`: the times it crashed and was restarted, and its state then."""
    crashes: list = field(default_factory=list)
    restarts: list = field(default_factory=list)
    state: str = "Running"  # Running, or Terminated (exited, restarting later or never)
    backing_off: bool = False  # waiting out a CrashLoopBackOff (Waiting, reason CrashLoopBackOff)
    next_restart: Fraction | None = None
    backoff_until: Fraction | None = None  # the last exit + its entry's back-off (GC may restart sooner)


def will_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or policy == "OnFailure" and exit_code != 0


def run_container(started: Fraction, policy: str, crashing_from: Fraction | None, horizon: Fraction,
                  entry: tuple | None = None) -> ContainerRun:
    """doBackOff and flowcontrol.Backoff for a container started at `started` that exits with code 1
    1 s after each start from `crashing_from` on (never if None); `entry`, its back-off entry
    (backoff, lastUpdate) if it has one already."""
    run = ContainerRun()
    start = Fraction(started)
    while crashing_from is not None:
        finish = max(start + RUNS_FOR, Fraction(crashing_from))
        if finish > horizon:
            break
        run.crashes.append(finish)
        run.state = "Terminated"
        if not will_restart(policy, 1):
            break
        if entry is None or finish - entry[1] > BACKOFF_EXPIRY:
            restart, backoff = finish, BACKOFF_INITIAL  # not in back-off: Next starts the entry
            run.backoff_until = finish
        elif entry[1] + BACKOFF_GC <= finish + entry[0]:
            # GC deletes the entry before the back-off is over: restarted then, Next starts it again
            restart, backoff = entry[1] + BACKOFF_GC, BACKOFF_INITIAL
            run.backoff_until = finish + entry[0]
        else:
            restart, backoff = finish + entry[0], min(2 * entry[0], BACKOFF_MAX)
            run.backoff_until = restart
        if restart > horizon:
            run.backing_off, run.next_restart = restart > finish, restart
            break
        run.restarts.append(restart)
        run.state = "Running"
        entry = (backoff, restart)
        start = restart
    return run


def pod_phase(policy: str, run: ContainerRun) -> str:
    """getPhase for a one-container pod that was started (its container exits with code 1)."""
    if run.state == "Running" or will_restart(policy, 1):
        return "Running"
    return "Failed"


def backoff_message(container: str, pod: str, namespace: str = "default") -> str:
    return f"Back-off restarting failed container {container} in pod {pod}_{namespace}"


# ---- node lifecycle -----------------------------------------------------------------------

GRACE = 40
STRICT = 1  # the engine fires a strict deadline (> grace) 1 s after it
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
DEFAULT_TOLERATION_SECONDS = 300


def default_tolerations(tolerations: list[Toleration]) -> list[Toleration]:
    """defaulttolerationseconds.Admit."""
    def has(key):
        return any(t.key in (key, "") and t.effect in ("NoExecute", "") for t in tolerations)
    out = list(tolerations)
    for key in (NOT_READY, UNREACHABLE):
        if not has(key):
            out.append(Toleration(key, "Exists", "", "NoExecute", DEFAULT_TOLERATION_SECONDS))
    return out


def min_toleration(taints: list[str], tolerations: list[Toleration]) -> Fraction | None | str:
    """GetMatchingTolerations + getMinTolerationTime: "now" if a taint is not tolerated, None if
    every used toleration lasts forever, else the smallest tolerationSeconds (≤ 0 → 0)."""
    used = []
    for key in taints:
        match = next((t for t in tolerations if tolerates(t, Taint(key, "", "NoExecute"))), None)
        if match is None:
            return "now"
        used.append(match)
    seconds = [t.seconds for t in used if t.seconds is not None]
    if not seconds:
        return None
    return Fraction(max(0, min(seconds)))


@dataclass
class NodeLife:
    """One node's Ready condition and lifecycle taint over time, and its pods' fate."""
    conditions: list = field(default_factory=list)  # (time, "True" | "False" | "Unknown")
    taints: list = field(default_factory=list)  # (time, key or None)
    marked_not_ready: list = field(default_factory=list)  # times MarkPodsNotReady ran
    syncing: list = field(default_factory=list)  # (time, bool): the kubelet syncs pods (up, runtime up)


def node_life(faults: list[tuple[Fraction, str]], horizon: Fraction) -> NodeLife:
    """The node's Ready condition, taints and MarkPodsNotReady calls until `horizon`, given its faults
    (time, "fail" | "recover" | "runtime_down"), at distinct times. The kubelet syncs pods while it
    runs and its runtime is up (syncLoop skips them while runtimeErrors reports the runtime down)."""
    life = NodeLife(conditions=[(Fraction(0), "True")], taints=[(Fraction(0), None)], syncing=[(Fraction(0), True)])
    kubelet, runtime, failed_at = True, True, None
    events = sorted(faults)
    i = 0

    def set_condition(when, status):
        before = life.conditions[-1][1]
        if status == before:
            return
        life.conditions.append((when, status))
        if status == "Unknown" and before == "True":
            life.marked_not_ready.append(when)  # the controller turned the node not ready
        key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status)
        if key != life.taints[-1][1]:
            life.taints.append((when, key))

    while True:
        unknown_at = failed_at + GRACE + STRICT if failed_at is not None and not kubelet else None
        next_fault = events[i][0] if i < len(events) else None
        if unknown_at is not None and life.conditions[-1][1] != "Unknown" and unknown_at <= horizon and \
                (next_fault is None or unknown_at < next_fault):
            set_condition(unknown_at, "Unknown")
            continue
        if next_fault is None or next_fault > horizon:
            break
        t, kind = events[i]
        i += 1
        if kind == "fail" and kubelet:
            kubelet, failed_at = False, t
        elif kind == "recover":
            kubelet, runtime, failed_at = True, True, None
        elif kind == "runtime_down":
            runtime = False
        if kubelet:
            set_condition(t, "True" if runtime else "False")
        syncing = kubelet and runtime
        if syncing != life.syncing[-1][1]:
            life.syncing.append((t, syncing))
    return life


def at(timeline: list, t: Fraction):
    """The value a (time, value) timeline holds at t (changes at t included)."""
    value = timeline[0][1]
    for when, v in timeline:
        if when <= t:
            value = v
    return value


def eviction_time(life: NodeLife, tolerations: list[Toleration], horizon: Fraction,
                  swap_restarts: bool = False) -> Fraction | None:
    """When the taint manager evicts a pod bound to the node since 0 (None: not by `horizon`).
    `swap_restarts`: a lifecycle taint swapped for the other counts the toleration from the new
    taint's time (Konverge; upstream keeps the eviction it scheduled)."""
    scheduled = None  # (createdAt, fireAt)
    changes = life.taints[1:]
    for n, (t, key) in enumerate(changes):
        until = changes[n + 1][0] if n + 1 < len(changes) else None
        if key is None:
            scheduled = None
            continue
        wait = min_toleration([key], tolerations)
        if wait == "now":
            return t
        if wait is None:
            scheduled = None
            continue
        if scheduled is None or swap_restarts or not scheduled[0] + wait < t + wait:
            scheduled = (t, t + wait)
        if scheduled[1] <= horizon and (until is None or scheduled[1] < until):
            return scheduled[1]
    return None


def pod_fate(life: NodeLife, evicted: Fraction | None, horizon: Fraction) -> tuple[bool, bool, bool]:
    """(exists, deleting, ready) at `horizon` for a pod started and ready at 0: evicted pods are
    removed by a syncing kubelet; the controller's MarkPodsNotReady makes a pod not ready, a kubelet
    that syncs again reports it ready."""
    ready = True
    moments = sorted([(t, "mark") for t in life.marked_not_ready]
                     + [(t, "sync") for t, syncing in life.syncing[1:] if syncing]
                     + ([(evicted, "evict")] if evicted is not None else []))
    deleting = False
    for t, what in moments:
        if t > horizon:
            break
        if what == "mark":
            ready = False
        elif what == "evict":
            deleting = True
            if at(life.syncing, t):
                return False, True, False
        elif deleting:
            return False, True, False
        else:
            ready = True
    return True, deleting, ready
