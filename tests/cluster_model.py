"""A second opinion on addresses and clean-up: Calico IPAM, the API server's service IP allocator,
and the namespace, service-account and garbage-collector controllers, in plain Python.

Written from the Calico and Kubernetes sources, not from rules/ipam.konv or rules/controllers.konv,
so that tests/test_k8s_ipam.py and tests/test_k8s_namespace.py can set the two side by side:

- `Calico` follows libcalico-go/lib/ipam: ipam.go autoAssign (the host's affine blocks first, in
  order; a new block claimed through findOrClaimBlock while the host owns fewer than
  maxBlocksPerHost — 20 when unset — else ErrBlockLimit and no address; only when the pool has no
  unclaimed block (noFreeBlocksError) the hunt through other hosts' blocks, StrictAffinity being
  false by default), ipam_block_reader_writer.go findUsableBlock (the pool's blocks walked from a
  starting block; an empty block of another host claimed at least EmptyBlockMinReclaimAge, 1 min,
  ago is reclaimed when no block is unclaimed), ipam_block.go (newBlock's Unallocated list holds
  the ordinals in order, autoAssign takes them from its front, release appends the freed ordinal
  to its back; releaseIPsFromBlock deletes a block only when it is empty and has no affinity) and
  kube-controllers on a node's deletion (releaseBlockAffinity for each of its blocks: an empty
  one is deleted, one still in use loses its affinity).
- `ServiceIPs` follows pkg/registry/core/service/ipallocator (Range: the network and broadcast
  addresses are never handed out, offset = min(max(16, size/16), 256)) and
  pkg/registry/core/service/allocator (randomScanStrategyWithOffset: a random start in the upper
  band [offset, max), scanning forward and wrapping in it, then the lower band); kube-apiserver
  takes the first address, 10.96.0.1, for `kubernetes` statically.
- `Namespaces` follows plugin/pkg/admission/namespace/lifecycle (creation refused in a missing or
  Terminating namespace; default, kube-system and kube-public may not be deleted),
  pkg/controller/namespace/deletion (Terminating: every object in it deleted — pods gracefully —
  and the namespace removed once it is empty), pkg/controller/serviceaccount (a `default` account
  in every Active namespace, re-created when deleted) and pkg/controller/garbagecollector
  (background propagation: a dependent whose owner is absent is deleted; a pod gracefully, so a
  running pod terminates first and stays Terminating on a node whose kubelet is down).

Adjusted only for Konverge's documented differences (rules/ipam.konv, rules/controllers.konv,
README "Where Konverge differs from Kubernetes"): where upstream picks at random — the first block
a host tries (randomBlockGenerator, seeded from the host name) and the service IP allocator's start —
Konverge's deterministic order is used: the pool's lowest block, and a stable hash of the service's
namespace/name; a block hands out its lowest free address (upstream: the front of Unallocated, so a
released address comes back last: `reuse_lowest`); a host does not reclaim another host's empty
block (`reclaim_empty`), and an empty block is not released while its node exists (kube-controllers'
timed release is left out). The upstream behaviours a flag stands for are implemented too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network

# ---- Calico IPAM -----------------------------------------------------------------------------

DEFAULT_MAX_BLOCKS_PER_HOST = 20  # ipam.go autoAssign: "Default to a reasonable limit"
EMPTY_BLOCK_MIN_RECLAIM_AGE = 60  # ipam_block_reader_writer.go EmptyBlockMinReclaimAge


@dataclass
class Block:
    cidr: IPv4Network
    host: str | None  # the affinity; None once released with addresses still in use
    claimed_at: int
    unallocated: list[int]
    allocations: dict[int, str] = field(default_factory=dict)  # ordinal → handle (the pod)

    def empty(self) -> bool:
        return not self.allocations


@dataclass
class Calico:
    pool: IPv4Network
    block_size: int
    max_blocks_per_host: int = DEFAULT_MAX_BLOCKS_PER_HOST
    strict_affinity: bool = False
    reuse_lowest: bool = True  # Konverge; upstream False (Unallocated is a FIFO)
    reclaim_empty: bool = False  # Konverge; upstream True
    blocks: dict[IPv4Network, Block] = field(default_factory=dict)

    def pool_blocks(self) -> list[IPv4Network]:
        # randomBlockGenerator walks every block once from a starting index and wraps; Konverge
        # starts at index 0 (the pool's lowest block).
        return list(self.pool.subnets(new_prefix=self.block_size))

    def affine(self, host: str) -> list[Block]:
        return sorted((b for b in self.blocks.values() if b.host == host), key=lambda b: b.cidr)

    def _take(self, b: Block, handle: str) -> IPv4Address | None:
        if not b.unallocated:
            return None
        ordinal = min(b.unallocated) if self.reuse_lowest else b.unallocated[0]
        b.unallocated.remove(ordinal)
        b.allocations[ordinal] = handle
        return b.cidr[ordinal]

    def _claim(self, cidr: IPv4Network, host: str, now: int) -> Block:
        b = Block(cidr, host, now, list(range(cidr.num_addresses)))
        self.blocks[cidr] = b
        return b

    def auto_assign(self, host: str, handle: str, now: int = 0) -> IPv4Address | None:
        """One IPv4 address for `handle` on `host` (ipam.go autoAssign with num=1), or None."""
        owned = self.affine(host)
        for b in owned:  # findOrClaimBlock: the host-affine blocks first
            if b.unallocated:
                return self._take(b, handle)
        if len(owned) >= self.max_blocks_per_host:
            return None  # ErrBlockLimit: no claim, and no hunt through other blocks either
        empties = []
        for cidr in self.pool_blocks():  # findUsableBlock
            b = self.blocks.get(cidr)
            if b is None:
                return self._take(self._claim(cidr, host, now), handle)
            if b.host != host and b.empty() and b.unallocated:
                empties.append(b)
        if self.reclaim_empty:
            for b in empties:
                if now - b.claimed_at >= EMPTY_BLOCK_MIN_RECLAIM_AGE:
                    del self.blocks[b.cidr]  # releaseBlockAffinity deletes an empty block
                    return self._take(self._claim(b.cidr, host, now), handle)
        if self.strict_affinity:
            return None
        for cidr in self.pool_blocks():  # noFreeBlocksError: the hunt through non-affine blocks
            b = self.blocks.get(cidr)
            if b is not None and b.unallocated:
                return self._take(b, handle)
        return None

    def release(self, ip: IPv4Address) -> None:
        """ReleaseIPs (the CNI's DEL as the pod goes): ipam_block.go release, releaseIPsFromBlock."""
        for b in list(self.blocks.values()):
            if ip in b.cidr:
                ordinal = int(ip) - int(b.cidr.network_address)
                if b.allocations.pop(ordinal, None) is not None:
                    b.unallocated.append(ordinal)
                if b.empty() and b.host is None:
                    del self.blocks[b.cidr]
                return

    def release_node(self, host: str) -> None:
        """kube-controllers on a node's deletion: releaseBlockAffinity for each of its blocks."""
        for b in list(self.blocks.values()):
            if b.host == host:
                if b.empty():
                    del self.blocks[b.cidr]
                else:
                    b.host = None


# ---- service cluster IPs ----------------------------------------------------------------------

SERVICE_RANGE = ip_network("10.96.0.0/12")


def stable_hash(text: str) -> int:
    """Konverge's documented stable hash (`hash` in the language: the first 4 bytes of the SHA-256
    of the value's repr), the start of a service's scan in place of upstream's random one."""
    return int.from_bytes(hashlib.sha256(repr(text).encode()).digest()[:4], "big")


def range_offset(cidr: IPv4Network) -> int:
    """ipallocator calculateRangeOffset: min(max(16, size/16), 256), 0 for a range of 16 or less."""
    size = cidr.num_addresses
    if size <= 16:
        return 0
    return min(max(16, size // 16), 256)


@dataclass
class ServiceIPs:
    cidr: IPv4Network = SERVICE_RANGE
    allocated: dict[IPv4Address, str] = field(default_factory=dict)  # address → namespace/name

    @property
    def max(self) -> int:
        return self.cidr.num_addresses - 2  # IPv4: neither the network nor the broadcast address

    def address(self, offset: int) -> IPv4Address:
        return self.cidr[1 + offset]  # Range.base is the network address + 1

    def allocate(self, key: str, start: int) -> IPv4Address | None:
        """AllocateNext with randomScanStrategyWithOffset, `start` standing for rand.Intn."""
        offset = range_offset(self.cidr)
        upper = self.max - offset
        for i in range(upper):
            ip = self.address(offset + (start + i) % upper)
            if ip not in self.allocated:
                self.allocated[ip] = key
                return ip
        for i in range(offset):
            ip = self.address((start + i) % offset)
            if ip not in self.allocated:
                self.allocated[ip] = key
                return ip
        return None

    def allocate_static(self, key: str, ip: IPv4Address) -> bool:
        if ip in self.allocated or not (self.cidr[1] <= ip <= self.cidr[-2]):
            return False
        self.allocated[ip] = key
        return True

    def release(self, ip: IPv4Address) -> None:
        self.allocated.pop(ip, None)


def kubernetes_service_ip(cidr: IPv4Network = SERVICE_RANGE) -> IPv4Address:
    """kube-apiserver's ServiceIPRange first address: GetIndexedIP(cidr, 1)."""
    return cidr[1]


# ---- namespaces, service accounts, garbage collection -----------------------------------------

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")  # NamespaceLifecycle
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


@dataclass
class Pod:
    namespace: str
    name: str
    owner: tuple[str, str] | None = None  # (kind, name) in the pod's namespace
    kubelet_up: bool = True  # whether its node's kubelet can finish a graceful deletion
    deleting: bool = False


@dataclass
class Workload:
    """A Deployment with its one ReplicaSet and `replicas` pods (the ReplicaSet controller's part
    is not modelled here: only whether the objects exist)."""
    namespace: str
    name: str
    replicas: int


@dataclass
class Namespaces:
    namespaces: dict[str, str] = field(default_factory=dict)  # name → phase
    accounts: set[tuple[str, str]] = field(default_factory=set)
    deployments: dict[tuple[str, str], Workload] = field(default_factory=dict)
    replicasets: set[tuple[str, str]] = field(default_factory=set)  # (namespace, deployment)
    services: set[tuple[str, str]] = field(default_factory=set)
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, namespace/name, why)
    nodes: set[str] = field(default_factory=set)

    def __post_init__(self):
        for ns in SYSTEM_NAMESPACES:
            self.namespaces.setdefault(ns, "Active")

    # -- admission (NamespaceLifecycle) --
    def admits_create(self, kind: str, namespace: str, name: str) -> bool:
        if namespace not in self.namespaces:
            self.refused.append((kind, f"{namespace}/{name}", "NotFound"))
            return False
        if self.namespaces[namespace] == "Terminating":
            self.refused.append((kind, f"{namespace}/{name}", "Forbidden"))
            return False
        return True

    # -- API operations a scenario makes --
    def create_namespace(self, name: str) -> None:
        self.namespaces.setdefault(name, "Active")
        self.settle()

    def create_deployment(self, w: Workload) -> None:
        if self.admits_create("Deployment", w.namespace, w.name):
            self.deployments[w.namespace, w.name] = w
            self.replicasets.add((w.namespace, w.name))
        self.settle()

    def create_service(self, namespace: str, name: str) -> None:
        if self.admits_create("Service", namespace, name):
            self.services.add((namespace, name))
        self.settle()

    def create_pod(self, pod: Pod) -> None:
        if self.admits_create("Pod", pod.namespace, pod.name):
            self.pods[pod.namespace, pod.name] = pod
        self.settle()

    def delete_namespace(self, name: str) -> None:
        if name not in self.namespaces:
            self.refused.append(("Namespace", name, "NotFound"))
        elif name in IMMORTAL_NAMESPACES:
            self.refused.append(("Namespace", name, "Forbidden"))  # "this namespace may not be deleted"
        else:
            self.namespaces[name] = "Terminating"  # the namespace finalizer holds it
        self.settle()

    def _delete(self, kind: str, objects, namespace: str, name: str) -> bool:
        if (namespace, name) not in objects:
            self.refused.append((kind, f"{namespace}/{name}", "NotFound"))
            return False
        return True

    def delete_deployment(self, namespace: str, name: str) -> None:
        if self._delete("Deployment", self.deployments, namespace, name):
            del self.deployments[namespace, name]
        self.settle()

    def delete_service(self, namespace: str, name: str) -> None:
        if self._delete("Service", self.services, namespace, name):
            self.services.discard((namespace, name))
        self.settle()

    def delete_account(self, namespace: str, name: str) -> None:
        if self._delete("ServiceAccount", self.accounts, namespace, name):
            self.accounts.discard((namespace, name))
        self.settle()

    def delete_pod(self, namespace: str, name: str) -> None:
        """Graceful deletion (`kubectl delete pod`): a deletionTimestamp, then the kubelet."""
        if self._delete("Pod", self.pods, namespace, name):
            self.pods[namespace, name].deleting = True
        self.settle()

    # -- the controllers, to their fixed point --
    def owner_exists(self, namespace: str, owner: tuple[str, str]) -> bool:
        """The GC's lookup of an owner: namespaced ones in the dependent's namespace, a
        cluster-scoped one (a Node) by name; a kind with no such object is absent."""
        kind, name = owner
        if kind == "Node":
            return name in self.nodes
        if kind == "Deployment":
            return (namespace, name) in self.deployments
        if kind == "ReplicaSet":
            return (namespace, name) in self.replicasets
        return False

    def settle(self) -> None:
        changed = True
        while changed:
            before = self.snapshot()
            # namespace deleter: everything in a Terminating namespace is deleted
            for ns, phase in self.namespaces.items():
                if phase != "Terminating":
                    continue
                for key in [k for k in self.deployments if k[0] == ns]:
                    del self.deployments[key]
                self.replicasets = {k for k in self.replicasets if k[0] != ns}
                self.services = {k for k in self.services if k[0] != ns}
                self.accounts = {k for k in self.accounts if k[0] != ns}
                for (pns, _), p in self.pods.items():
                    if pns == ns:
                        p.deleting = True
            # garbage collector: a ReplicaSet whose Deployment is gone, a pod whose owner is gone
            self.replicasets = {k for k in self.replicasets if k in self.deployments}
            for (ns, _), p in self.pods.items():
                if p.owner is not None and not self.owner_exists(ns, p.owner):
                    p.deleting = True
            # the kubelet finishes a graceful deletion; one that is down never does
            self.pods = {k: p for k, p in self.pods.items() if not (p.deleting and p.kubelet_up)}
            # the namespace goes once nothing is left in it
            for ns in [ns for ns, phase in self.namespaces.items() if phase == "Terminating"]:
                if not any(k[0] == ns for k in self.pods) and not any(k[0] == ns for k in self.deployments):
                    del self.namespaces[ns]
            # serviceaccount controller
            for ns, phase in self.namespaces.items():
                if phase == "Active":
                    self.accounts.add((ns, "default"))
            changed = self.snapshot() != before

    def snapshot(self):
        return (dict(self.namespaces), frozenset(self.accounts), frozenset(self.deployments),
                frozenset(self.replicasets), frozenset(self.services),
                frozenset((k, p.deleting) for k, p in self.pods.items()))
