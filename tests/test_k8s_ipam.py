"""Calico IPAM (rules/ipam.konv): /26 blocks per node from 192.168.0.0/16."""

from ipaddress import ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import cluster_model as model
from tests.kube import deployment, node, run

# Half the profile's examples: each is a whole reconcile through a scenario (CI: 25, ~10 s).
HALF = max(10, settings.default.max_examples // 2)


def pods_on(c, n):
    return [p for p in c.pods() if p["node"] == n and p["ip"]]


def test_pod_ips_come_from_the_nodes_own_26_block():
    c = run(node("n1") + node("n2") + deployment("web", replicas=6, cpu="10m"))
    blocks = {b["node"]: b for b in c.of("IPBlock")}
    assert set(blocks) == {"n1", "n2"}
    for n, b in blocks.items():
        net = ip_network(b["cidr"])
        assert net.prefixlen == 26 and net.subnet_of(ip_network("192.168.0.0/16"))
        assert b["pool"] == "default-ipv4-ippool"
        assert pods_on(c, n) and all(ip_address(p["ip"]) in net for p in pods_on(c, n))


def test_pod_ips_are_unique():
    c = run(node("n1") + node("n2") + deployment("web", replicas=8, cpu="10m") + deployment("api", replicas=5, cpu="10m"))
    ips = [p["ip"] for p in c.pods()]
    assert len(ips) == 13 and len(set(ips)) == 13


def test_a_node_claims_a_second_block_when_its_first_is_full():
    # A pool with /30 blocks (4 addresses) shows the same with 5 pods; the pool first by name is used.
    c = run("ippool a-small { cidr: 10.20.0.0/24  blockSize: 30 }\n" + node("n1")
            + deployment("web", replicas=5, cpu="1m", memory="1Mi"))
    blocks = sorted(ip_network(b["cidr"]) for b in c.of("IPBlock"))
    assert [str(b) for b in blocks] == ["10.20.0.0/30", "10.20.0.4/30"]
    ips = [ip_address(p["ip"]) for p in c.pods("web")]
    assert len(set(ips)) == 5 and sum(ip in blocks[0] for ip in ips) == 4


def test_a_node_at_its_20_block_limit_gets_no_address_and_does_not_borrow():
    # /32 blocks: one address each. n2's pod leaves a free address in n2's block at 1 min, but the
    # pool has unclaimed blocks left: Calico's autoAssign returns ErrBlockLimit for the 21st pod
    # rather than hunting through other hosts' blocks (that is only for an exhausted pool).
    c = run("ippool a-tiny { cidr: 10.20.0.0/24  blockSize: 32 }\n" + node("n1", extra='labels { role: "big" }')
            + node("n2") + 'pod first { node: "n2" container main { image: "x" } }\n'
            + deployment("web", replicas=21, cpu="1m", memory="1Mi", extra='nodeSelector { role: "big" }')
            + 'scenario "free an address on n2" { at 1m: kill pod first }')
    own = [ip_network(b["cidr"]) for b in c.of("IPBlock") if b["node"] == "n1"]
    [theirs] = [ip_network(b["cidr"]) for b in c.of("IPBlock") if b["node"] == "n2"]
    web = c.pods("web")
    assert len(own) == 20 and len(web) == 21
    assert sorted(bool(p["ip"]) for p in web) == [False] + [True] * 20
    assert not any(p["ip"] and ip_address(p["ip"]) in theirs for p in web)
    [waiting] = [p for p in web if not p["ip"]]
    assert waiting["phase"] == "Pending"


def test_a_node_borrows_the_lowest_free_address_of_other_nodes_blocks_once_the_pool_is_exhausted():
    # Eight /31 blocks, claimed alternately by n1 (.0, .4, .8, .12) and n2 (.2, .6, .10, .14) and
    # filled; 10.20.0.2 and 10.20.0.10 are freed in n2's blocks; n1's next pod finds no block to
    # claim and borrows the lowest (by address, not by the blocks' names: "…10-31" < "…2-31").
    events = [f'at {10 * (i + 1)}s: create pod p{i:02d} {{ node: "n{1 + i % 2}" container main {{ image: "x" }} }}'
              for i in range(16)]
    spec = "ippool a-small { cidr: 10.20.0.0/28  blockSize: 31 }\n" + node("n1") + node("n2")
    full = run(spec + 'scenario "fill" {\n' + "\n".join(events) + "\n}\n")
    by_ip = {p["ip"]: p["name"] for p in full.pods()}
    assert len(by_ip) == 16 and {b["node"] for b in full.of("IPBlock") if b["cidr"] == "10.20.0.10/31"} == {"n2"}
    events += [f"at 200s: kill pod {by_ip['10.20.0.2']}", f"at 210s: kill pod {by_ip['10.20.0.10']}",
               'at 220s: create pod late { node: "n1" container main { image: "x" } }']
    c = run(spec + 'scenario "borrow" {\n' + "\n".join(events) + "\n}\n")
    assert c.get("Pod", "late")["ip"] == "10.20.0.2"
    assert {b["cidr"]: b["node"] for b in c.of("IPBlock")}["10.20.0.2/31"] == "n2"  # borrowed, not reclaimed


@pytest.mark.slow
def test_a_node_claims_a_second_26_block_after_64_pods():
    c = run(node("n1", extra="pods: 110") + deployment("web", replicas=70, cpu="1m", memory="1Mi"))
    blocks = sorted(ip_network(b["cidr"]) for b in c.of("IPBlock"))
    assert [str(b) for b in blocks] == ["192.168.0.0/26", "192.168.0.64/26"]
    ips = [ip_address(p["ip"]) for p in c.pods("web")]
    assert len(set(ips)) == 70
    assert sum(ip in blocks[0] for ip in ips) == 64  # the first block is used up before the second


def test_a_node_without_pods_claims_no_block():
    c = run(node("n1") + node("idle", extra='labels { role: "idle" }')
            + deployment("web", replicas=2, extra='nodeSelector { "kubernetes.io/hostname": "n1" }')
            .replace('nodeSelector { "kubernetes.io/hostname": "n1" }', ""))
    nodes_with_pods = {p["node"] for p in c.pods()}
    assert {b["node"] for b in c.of("IPBlock")} == nodes_with_pods


def test_deleted_pods_ip_is_reused():
    c = run(node("n1") + 'pod a { node: "n1" container main { image: "x" } }\n'
            'pod b { node: "n1" container main { image: "x" } }\n'
            'scenario "churn" { at 1m: kill pod a\n at 2m: create pod c { node: "n1" container main { image: "x" } } }')
    assert sorted(p["ip"] for p in c.pods()) == ["192.168.0.0", "192.168.0.1"]
    assert c.get("Pod", "b")["ip"] == "192.168.0.1" and c.get("Pod", "c")["ip"] == "192.168.0.0"


def test_a_freed_address_of_a_nodes_first_block_is_handed_out_before_its_second_blocks():
    # Two-address blocks: a and b fill the node's first block, c takes the second's lowest
    # address. Once a is gone, d gets a's address: the lowest free one of the node's blocks in
    # their order, not the second block's next.
    c = run("ippool a-small { cidr: 10.20.0.0/29  blockSize: 31 }\n" + node("n1")
            + "".join(f'pod {x} {{ node: "n1" container main {{ image: "x" }} }}\n' for x in "abc")
            + 'scenario "churn" { at 1m: kill pod a\n at 2m: create pod d { node: "n1" container main { image: "x" } } }')
    assert [c.get("Pod", x)["ip"] for x in "bcd"] == ["10.20.0.1", "10.20.0.2", "10.20.0.0"]
    assert [b["cidr"] for b in c.of("IPBlock")] == ["10.20.0.0/31", "10.20.0.2/31"]


def test_a_finished_pods_address_is_free_for_the_next_pod():
    # A pod that fails (restartPolicy Never) has its sandbox torn down: Calico releases its address
    # though the pod's status keeps showing it. Two pods after it fit the first /31 block.
    c = run("ippool a-small { cidr: 10.20.0.0/30  blockSize: 31 }\n" + node("n1")
            + 'scenario "a job" { at 10s: create pod a { node: "n1"  restartPolicy: "Never"  '
            'container main { image: "x"  crashing: true } }\n'
            ' at 20s: create pod b { node: "n1" container main { image: "x" } }\n'
            ' at 30s: create pod c { node: "n1" container main { image: "x" } } }')
    assert c.get("Pod", "a")["phase"] == "Failed" and c.get("Pod", "a")["ip"] == "10.20.0.0"
    assert sorted([c.get("Pod", "b")["ip"], c.get("Pod", "c")["ip"]]) == ["10.20.0.0", "10.20.0.1"]
    assert [b["cidr"] for b in c.of("IPBlock")] == ["10.20.0.0/31"]


def test_block_of_a_removed_node_is_released():
    c = run(node("n1") + node("n2") + 'pod a { node: "n2" container main { image: "x" } }\n'
            'scenario "remove n2" { at 1m: delete node n2 }')
    assert c.get("Pod", "a") is None  # pod GC: bound to a node that is gone
    assert [b["node"] for b in c.of("IPBlock")] == []


def test_an_address_a_pending_pod_came_with_is_not_handed_to_another_pod_of_its_node():
    # "z" is admitted after "b" (by name), but holds 192.168.0.0 from its spec all along.
    c = run(node("n1") + 'pod z { node: "n1"  ip: 192.168.0.0  container main { image: "x" } }\n'
            'pod b { node: "n1" container main { image: "x" } }\n')
    assert (c.get("Pod", "b")["ip"], c.get("Pod", "z")["ip"]) == ("192.168.0.1", "192.168.0.0")


def test_nodes_claim_the_pools_lowest_unclaimed_blocks_first_those_a_removed_node_released():
    # 128 one-address blocks: the pods of n1–n4 claim the lowest 68, past the first 64; n1 goes,
    # and its blocks with it; n5's 20 pods then claim the 17 it released, then the next 3.
    def pinned(name, n):
        return f'pod {name} {{ node: "{n}" container main {{ image: "x"  cpu: 1m  memory: 1Mi }} }}\n'
    spec = ("ippool a-tiny { cidr: 10.20.0.0/25  blockSize: 32 }\n" + "".join(node(f"n{i}") for i in range(1, 6))
            + "".join(pinned(f"p{i}-{j:02d}", f"n{i}") for i in range(1, 5) for j in range(17)))
    pool = [str(b) for b in ip_network("10.20.0.0/25").subnets(new_prefix=32)]
    before = {b["cidr"]: b["node"] for b in run(spec).of("IPBlock")}
    assert set(before) == set(pool[:68])
    late = "".join(f'at 2m: create pod late{j:02d} {{ node: "n5" container main {{ image: "x" }} }}\n'
                   for j in range(20))
    after = run(spec + 'scenario "n1 goes" {\nat 1m: delete node n1\n' + late + "}\n")
    kept = {cidr: n for cidr, n in before.items() if n != "n1"}
    assert len(kept) == 51
    free = [cidr for cidr in pool if cidr not in kept]
    assert {b["cidr"]: b["node"] for b in after.of("IPBlock")} == kept | {cidr: "n5" for cidr in free[:20]}


# ---- against the model (tests/cluster_model.py) -------------------------------------------------

# (pool cidr, blockSize): small pools, so that blocks fill, the pool runs out and hosts borrow.
POOLS = (("10.20.0.0/28", 30), ("10.20.0.0/29", 30), ("10.20.0.0/27", 30), ("10.20.0.0/28", 31),
         ("10.20.0.0/28", 31), ("10.20.0.0/28", 32), ("10.20.0.0/28", 32),
         ("10.20.0.0/27", 32))  # 32 one-address blocks: a node reaches Calico's 20-block limit


@st.composite
def ipam_histories(draw):
    """A pool, 1–3 nodes and up to 8 rounds 20 s apart, each of 1–4 steps 2 s apart: pods
    created on a node (the last maybe one that fails a second after it starts: restartPolicy
    Never), pods killed (graceful deletion), or now and then a node deleted (its pods are
    collected)."""
    pool = draw(st.sampled_from(POOLS))
    nodes = [f"n{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    steps, pods, alive, gone = [], 0, [], set()
    for round_ in range(draw(st.integers(1, 8))):
        choice = draw(st.integers(0, 9))
        live_nodes = [n for n in nodes if n not in gone]
        at = 20 * (round_ + 1)
        if choice < 6 or not alive:
            if not live_nodes:
                break
            n = draw(st.sampled_from(live_nodes))
            count = draw(st.integers(1, 4))
            failing = draw(st.integers(0, 3)) == 0
            for j in range(count):
                verb = "create-failing" if failing and j == count - 1 else "create"
                steps.append((at + 2 * j, verb, f"p{pods:02d}", n))
                alive.append((f"p{pods:02d}", n))
                pods += 1
        elif choice < 9:
            for j in range(min(len(alive), draw(st.integers(1, 2)))):
                name, n = draw(st.sampled_from(alive))
                steps.append((at + 2 * j, "kill", name, n))
                alive.remove((name, n))
        elif live_nodes:
            n = draw(st.sampled_from(live_nodes))
            steps.append((at, "delete-node", n, n))
            gone.add(n)
            alive = [(p, m) for p, m in alive if m != n]
    return pool, nodes, steps


def ipam_spec(pool, nodes, steps) -> str:
    cidr, size = pool
    text = [f"ippool a-small {{ cidr: {cidr}  blockSize: {size} }}\n"] + [node(n) for n in nodes]
    events = []
    for at, verb, name, n in steps:
        if verb == "create":
            events.append(f'at {at}s: create pod {name} {{ node: "{n}" container main {{ image: "x" }} }}')
        elif verb == "create-failing":
            events.append(f'at {at}s: create pod {name} {{ node: "{n}"  restartPolicy: "Never"  '
                          'container main { image: "x"  crashing: true } }')
        elif verb == "kill":
            events.append(f"at {at}s: kill pod {name}")
        else:
            events.append(f"at {at}s: delete node {n}")
    return "".join(text) + 'scenario "churn" {\n' + "\n".join(events) + "\n}\n"


def calico_replay(pool, steps) -> tuple[model.Calico, dict]:
    """The model through the same steps; a pod left without an address (the block limit, or no
    address anywhere) is retried, oldest first, as the kubelet retries its sandbox. A failing pod
    releases its address a second after it starts (no other step comes then), as its sandbox is
    torn down; its status keeps the address."""
    cidr, size = pool
    calico = model.Calico(ip_network(cidr), size)
    ips, waiting, failing, finished = {}, [], set(), set()
    node_of = dict(steps_nodes(steps))

    def retry():
        for name, n in list(waiting):
            if (ip := calico.auto_assign(n, name)) is not None:
                ips[name] = ip
                waiting.remove((name, n))
                if name in failing:
                    calico.release(ip)
                    finished.add(name)

    for _, verb, name, n in steps:
        if verb in ("create", "create-failing"):
            waiting.append((name, n))
            if verb == "create-failing":
                failing.add(name)
        elif verb == "kill":
            if name in ips and name not in finished:
                calico.release(ips[name])
            ips.pop(name, None)
            waiting[:] = [(p, m) for p, m in waiting if p != name]
        else:  # node deleted: kube-controllers releases its affinities, pod GC its pods
            calico.release_node(n)
            for p in [p for p in ips if node_of[p] == n]:
                if p not in finished:
                    calico.release(ips[p])
                del ips[p]
            waiting[:] = [(p, m) for p, m in waiting if m != n]
        retry()
    return calico, ips


def steps_nodes(steps):
    return [(name, n) for _, verb, name, n in steps if verb.startswith("create")]


@settings(max_examples=HALF)
@given(ipam_histories())
def test_pod_addresses_and_blocks_are_those_calico_hands_out(history):
    pool, nodes, steps = history
    c = run(ipam_spec(pool, nodes, steps))
    calico, ips = calico_replay(pool, steps)
    got = {p["name"]: p["ip"] for p in c.pods()}
    want = {name: (str(ips[name]) if name in ips else None) for name in got}
    assert got == want
    gone = {n for _, verb, n, _ in steps if verb == "delete-node"}
    assert set(got) == {name for name, n in steps_nodes(steps) if n not in gone} - {
        name for _, verb, name, _ in steps if verb == "kill"}
    # A block whose node is gone but which still holds a pod's address has no affinity upstream.
    live = set(nodes) - gone
    got_blocks = {b["cidr"]: (b["node"] if b["node"] in live else None) for b in c.of("IPBlock")}
    assert got_blocks == {str(b.cidr): b.host for b in calico.blocks.values()}


# ---- service cluster IPs against the model --------------------------------------------------------

# svc-6826's stable hash points into the lower band (10.96.0.146).
SERVICE_NAMES = [("default", f"s{i}") for i in range(3)] + [("default", "svc-6826")] + [("other", f"t{i}") for i in range(3)]


def konverge_start(namespace: str, name: str) -> int:
    """Where Konverge's documented stable hash starts a service's scan, as the offset into the
    allocator's upper band that stands for upstream's rand.Intn (the same address when the hash
    points into that band; its bottom when it points below)."""
    size = model.SERVICE_RANGE.num_addresses
    index = 2 + model.stable_hash(f"{namespace}/{name}") % (size - 3)  # kubernetes has index 1
    return max(0, index - 1 - model.range_offset(model.SERVICE_RANGE))


def hashed_ip(namespace: str, name: str):
    return model.ServiceIPs().address(model.range_offset(model.SERVICE_RANGE) + konverge_start(namespace, name))


def test_a_service_ip_comes_from_the_upper_band_the_lower_one_is_kept_for_fixed_addresses():
    # The allocator hands out addresses past the first 256 (10.96.0.1–10.96.1.0) while it can:
    # svc-6826's hash points at 10.96.0.146, so its scan goes on at the band's first address.
    c = run(node("n1") + 'service dns { clusterIP: 10.96.0.10  selector { app: "dns" } port p { port: 53 } }\n'
            'service svc-6826 { selector { app: "x" } port p { port: 80 } }\n')
    assert c.get("Service", "svc-6826")["clusterIP"] == "10.96.1.1"
    assert c.get("Service", "dns")["clusterIP"] == "10.96.0.10"
    assert c.get("Service", "kubernetes")["clusterIP"] == "10.96.0.1"


@st.composite
def service_histories(draw):
    """Up to 8 steps, one every 10 s: a service created (ClusterIP, ExternalName, or with a
    clusterIP chosen by hand: in the lower band, or the address another service's scan starts at,
    so that that one must look further) or deleted."""
    steps, alive = [], set()
    for _ in range(draw(st.integers(1, 8))):
        free = [k for k in SERVICE_NAMES if k not in alive]
        if alive and (not free or draw(st.integers(0, 3)) == 0):
            key = draw(st.sampled_from(sorted(alive)))
            steps.append(("delete", key, None))
            alive.discard(key)
            continue
        key = draw(st.sampled_from(free))
        how = draw(st.sampled_from(("auto", "auto", "auto", "external", "low", "steal")))
        ip = None
        if how == "low":
            ip = model.SERVICE_RANGE[draw(st.integers(2, 256))]
        elif how == "steal":
            ip = hashed_ip(*draw(st.sampled_from(SERVICE_NAMES)))
        steps.append(("create", key, "external" if how == "external" else ip))
        alive.add(key)
    return steps


def service_spec(steps) -> str:
    events = []
    for i, (verb, (ns, name), how) in enumerate(steps):
        at = f"at {10 * (i + 1)}s: "
        if verb == "delete":
            events.append(at + f"delete service {ns}/{name}")
        elif how == "external":
            events.append(at + f'create service {name} in {ns} {{ type: "ExternalName"  port p {{ port: 80 }} }}')
        else:
            fixed = f"clusterIP: {how}  " if how is not None else ""
            events.append(at + f'create service {name} in {ns} {{ {fixed}selector {{ app: "x" }} port p {{ port: 80 }} }}')
    return node("n1") + "namespace other {}\n" + 'scenario "services" {\n' + "\n".join(events) + "\n}\n"


@settings(max_examples=HALF)
@given(service_histories())
def test_cluster_ips_are_those_the_allocator_hands_out(steps):
    c = run(service_spec(steps))
    ips = model.ServiceIPs()
    assert ips.allocate_static("default/kubernetes", model.kubernetes_service_ip())
    want, refused = {}, set()
    for verb, (ns, name), how in steps:
        key = f"{ns}/{name}"
        if verb == "delete":
            if (ip := want.pop(key, None)) is not None:
                ips.release(ip)
        elif how == "external":
            want[key] = None
        elif how is not None:
            if ips.allocate_static(key, how):
                want[key] = how
            else:
                refused.add(key)  # "provided IP is already allocated"
        else:
            want[key] = ips.allocate(key, konverge_start(ns, name))
    got = {f'{s["namespace"]}/{s["name"]}': s["clusterIP"] for s in c.of("Service")}
    assert got.pop("default/kubernetes") == "10.96.0.1"
    assert got == {k: (str(ip) if ip is not None else None) for k, ip in want.items()}
    assert {f"{w.namespace}/{w.name}" for w in c.writes(verb="refused", kind="Service")} == refused
