"""A second opinion on services and autoscaling: the endpoints controller, kube-proxy's iptables
routing and the HorizontalPodAutoscaler's replica count, in plain Python.

Written from Kubernetes' sources, not from rules/endpoints.konv, rules/proxy.konv or
rules/controllers.konv, so that properties can set the two side by side (tests/test_k8s_endpoints.py,
tests/test_k8s_proxy.py, tests/test_k8s_hpa.py). It follows:

- pkg/controller/endpoint/endpoints_controller.go syncService: a Service with a nil selector is not
  managed; the namespace's pods the selector (matchLabels) selects, kept by
  endpointslice/util ShouldPodBeInEndpoints(pod, publishNotReadyAddresses) — not terminal (Failed or
  Succeeded), with an IP, and not terminating unless the service publishes not-ready addresses;
  then for each service port podutil.FindPort, a pod without the port skipped for that port, and
  addEndpointSubset: ready (or publishNotReadyAddresses) to addresses, the others to
  notReadyAddresses;
- pkg/api/v1/pod/util.go FindPort: a numeric targetPort as it is; a named one is the first container
  port with that name *and the service port's protocol*; targetPort left out is defaulted to the
  port (API defaulting, pkg/apis/core/v1/defaults.go SetDefaults_Service);
- pkg/proxy/endpointslicecache.go endpointsMapFromEndpointInfo: a service port's endpoints sorted
  by Endpoint.String(), the text "ip:port"; pkg/proxy/iptables/proxier.go: endpoint i of n is
  matched with `-m statistic --mode random --probability 1/(n-i)` (printed "%0.10f"), the last
  without one (probability 1); a port without endpoints is REJECTed; ClientIP affinity is kept;
  its node port ("Capture nodeports", CategorizeEndpoints): every node sends it to the same
  endpoints under externalTrafficPolicy Cluster, to the ready endpoints on that node under Local,
  DROPs it under Local where the node has none, and REJECTs it where the port has no endpoint;
- pkg/controller/podautoscaler/replica_calculator.go GetResourceReplicas and groupPods,
  metrics/utilization.go GetResourceUtilizationRatio (utilisation is an integer percentage,
  rounded down: int32(metricsTotal*100/requestsTotal)), Tolerances.isWithin (0.9 ≤ ratio ≤ 1.1,
  in float64), and horizontal.go reconcileAutoscaler / normalizeDesiredReplicas (a target at 0
  replicas is not autoscaled; replicas outside [min, max] are brought inside without metrics;
  the recommendation is stabilised over 300 s for scale-down and clamped to [min, max]).

Adjusted only for Konverge's documented differences: endpoints carry their port (a flattened
subset), so addresses are compared as sets; the HPA's scale-up is not rate limited (upstream:
max(2 × current, 4) a sync); and the workload's cpu use is one figure (`load`) spread over the
running pods, whose samples are taken as fresh (no cpu initialisation period). A request of 0
stands for a missing one, as a Konverge container cannot tell the two apart (as in
tests/scheduler_model.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.1
SESSION_AFFINITY_SECONDS = 10800


# ---- endpoints ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContainerPort:
    name: str
    number: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    """A pod as the endpoints controller sees it: its spec's labels and ports, its status."""
    name: str
    labels: dict
    ports: tuple[tuple[ContainerPort, ...], ...]  # per container
    namespace: str = "default"
    ip: str | None = None
    node: str = ""
    phase: str = "Pending"
    ready: bool = False
    deleting: bool = False


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target: int | str | None = None  # None: defaulted to `port`
    protocol: str = "TCP"


@dataclass(frozen=True)
class Service:
    name: str
    selector: dict  # {} stands for a nil selector: no endpoints are managed
    ports: tuple[ServicePort, ...]
    namespace: str = "default"
    publish_not_ready: bool = False
    session_affinity: str = "None"
    cluster_ip: str | None = None
    type: str = "ClusterIP"  # NodePort and LoadBalancer ports have node ports
    external_traffic_policy: str | None = None  # Cluster or Local, for those two types


@dataclass(frozen=True)
class Address:
    ip: str
    port: int
    pod: str
    node: str
    port_name: str


@dataclass
class Endpoints:
    addresses: set = field(default_factory=set)
    not_ready: set = field(default_factory=set)


def should_be_in_endpoints(pod: Pod, include_terminating: bool) -> bool:
    """endpointslice/util.ShouldPodBeInEndpoints."""
    if pod.phase in ("Failed", "Succeeded"):
        return False
    if not pod.ip:
        return False
    return include_terminating or not pod.deleting


def find_port(pod: Pod, sp: ServicePort) -> int | None:
    """podutil.FindPort, None where it fails ("no suitable port for manifest")."""
    target = sp.port if sp.target is None else sp.target
    if isinstance(target, int):
        return target
    for container in pod.ports:
        for cp in container:
            if cp.name == target and cp.protocol == sp.protocol:
                return cp.number
    return None


def endpoints(service: Service, pods: list[Pod]) -> Endpoints | None:
    """syncService: the Endpoints the controller writes for the service, None if it manages none."""
    if not service.selector:
        return None
    out = Endpoints()
    for pod in pods:
        if pod.namespace != service.namespace or any(pod.labels.get(k) != v for k, v in service.selector.items()):
            continue
        if not should_be_in_endpoints(pod, service.publish_not_ready):
            continue
        for sp in service.ports:
            port = find_port(pod, sp)
            if port is None:
                continue
            address = Address(pod.ip, port, pod.name, pod.node, sp.name)
            (out.addresses if service.publish_not_ready or pod.ready else out.not_ready).add(address)
    return out


# ---- kube-proxy -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Backend:
    ip: str
    port: int
    probability: str  # as iptables is given it: "%0.10f", "" for the last rule (no statistic match)


@dataclass(frozen=True)
class Route:
    cluster_ip: str
    port: int
    protocol: str
    action: str  # DNAT or REJECT
    backends: tuple[Backend, ...]
    session_affinity: str


def _ip_port(address: Address) -> str:
    """Endpoint.String(): net.JoinHostPort for an IPv4 address."""
    return f"{address.ip}:{address.port}"


def probability(n: int) -> str:
    """Proxier.probability."""
    return "%0.10f" % (1.0 / n)


def route(service: Service, sp: ServicePort, eps: Endpoints | None) -> Route:
    """The KUBE-SVC chain for one service port: its ready endpoints sorted by "ip:port"."""
    ready = sorted((a for a in (eps.addresses if eps else ()) if a.port_name == sp.name), key=_ip_port)
    n = len(ready)
    backends = tuple(Backend(a.ip, a.port, probability(n - i) if i < n - 1 else "") for i, a in enumerate(ready))
    return Route(service.cluster_ip, sp.port, sp.protocol, "DNAT" if backends else "REJECT", backends,
                 service.session_affinity)


@dataclass(frozen=True)
class NodePortRoute:
    action: str  # DNAT, DROP or REJECT
    backends: tuple[Backend, ...]


def node_port_route(service: Service, sp: ServicePort, eps: Endpoints | None, node: str) -> NodePortRoute:
    """What `node` does with a request from outside the cluster to the port's node port: KUBE-EXT
    to the service chain (Cluster) or to KUBE-SVL, the node's own ready endpoints (Local)."""
    ready = sorted((a for a in (eps.addresses if eps else ()) if a.port_name == sp.name), key=_ip_port)
    if not ready:
        return NodePortRoute("REJECT", ())  # "… has no endpoints", on every node
    if service.external_traffic_policy == "Local":
        ready = [a for a in ready if a.node == node]
        if not ready:
            return NodePortRoute("DROP", ())  # "… has no local endpoints"
    n = len(ready)
    return NodePortRoute("DNAT", tuple(Backend(a.ip, a.port, probability(n - i) if i < n - 1 else "")
                                       for i, a in enumerate(ready)))


# ---- the HorizontalPodAutoscaler --------------------------------------------------------------

@dataclass(frozen=True)
class Autoscaled:
    """A Deployment under an HPA, on nodes with room for `fit` of its pods (None: for all)."""
    replicas: int
    requests: tuple[int, ...]  # each container's cpu request, millicores; 0 is no request
    min_replicas: int
    max_replicas: int
    target: int  # percent
    fit: int | None = None


def is_within(ratio: float) -> bool:
    """Tolerances.isWithin with the default 10% both ways."""
    return (1.0 - TOLERANCE) <= ratio <= (1.0 + TOLERANCE)


def utilization(load: int, pods: int, request: int) -> int:
    """GetResourceUtilizationRatio's currentUtilization: int64 maths, rounded down."""
    return load * 100 // (pods * request)


@dataclass(frozen=True)
class Metric:
    replicas: int | None  # None: the metric failed (no scaling on it)
    utilization: int | None


def resource_replicas(a: Autoscaled, current: int, load: int) -> Metric:
    """GetResourceReplicas for cpu: `current` pods, those beyond `fit` Pending, the running ones
    sharing `load` millicores."""
    running = current if a.fit is None else min(current, a.fit)
    unready = current - running  # Pending pods
    if current == 0 or running == 0:
        return Metric(None, None)  # "did not receive metrics for targeted pods"
    if any(r == 0 for r in a.requests):
        return Metric(None, None)  # "missing request for cpu in container …"
    request = sum(a.requests)
    util = utilization(load, running, request)
    ratio = float(util) / float(a.target)
    if not (unready > 0 and ratio > 1.0):
        if is_within(ratio):
            return Metric(current, util)
        return Metric(math.ceil(ratio * float(running)), util)
    # Scale-up with unready pods: they count as using nothing.
    new_ratio = float(utilization(load, running + unready, request)) / float(a.target)
    if is_within(new_ratio) or new_ratio < 1.0:
        return Metric(current, util)
    new = math.ceil(new_ratio * float(running + unready))
    return Metric(current if new < current else new, util)


def settle(a: Autoscaled, load: int | None, limit: int = 50) -> tuple[int, int | None] | None:
    """Where the Deployment ends (replicas, the HPA's last utilisation) once the HPA has synced
    long enough for every stabilisation window to pass: each scale-down waits 300 s for the
    recommendations to agree, and so ends at the new recommendation. None if it never rests."""
    current = a.replicas
    util = None
    seen = set()
    for _ in range(limit):
        if current == 0 and a.min_replicas != 0:
            return current, util  # "scaling is disabled since the replica count of the target is zero"
        if current > a.max_replicas:
            desired = a.max_replicas
        elif current < a.min_replicas:
            desired = a.min_replicas
        else:
            metric = resource_replicas(a, current, load) if load is not None else Metric(None, None)
            if metric.replicas is None:
                return current, util
            util = metric.utilization
            desired = min(max(metric.replicas, a.min_replicas), a.max_replicas)
        if desired == current:
            return current, util
        if (current, desired) in seen:
            return None
        seen.add((current, desired))
        current = desired
    return None
