"""Calico IPAM (rules/ipam.konv): /26 blocks per node from 192.168.0.0/16."""

from ipaddress import ip_address, ip_network

import pytest

from tests.kube import deployment, node, run


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


def test_a_node_claims_at_most_20_blocks_then_borrows_a_free_address_of_another_nodes_block():
    # /32 blocks: one address each. n2's pod leaves a free address in n2's block at 1 min.
    c = run("ippool a-tiny { cidr: 10.20.0.0/24  blockSize: 32 }\n" + node("n1", extra='labels { role: "big" }')
            + node("n2") + 'pod first { node: "n2" container main { image: "x" } }\n'
            + deployment("web", replicas=21, cpu="1m", memory="1Mi", extra='nodeSelector { role: "big" }')
            + 'scenario "free an address on n2" { at 1m: kill pod first }')
    own = [ip_network(b["cidr"]) for b in c.of("IPBlock") if b["node"] == "n1"]
    [theirs] = [ip_network(b["cidr"]) for b in c.of("IPBlock") if b["node"] == "n2"]
    web = c.pods("web")
    assert len(own) == 20 and len(web) == 21 and all(p["ip"] for p in web)
    borrowed = [p for p in web if ip_address(p["ip"]) in theirs]
    assert len(borrowed) == 1


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


def test_block_of_a_removed_node_is_released():
    c = run(node("n1") + node("n2") + 'pod a { node: "n2" container main { image: "x" } }\n'
            'scenario "remove n2" { at 1m: delete node n2 }')
    assert c.get("Pod", "a") is None  # pod GC: bound to a node that is gone
    assert [b["node"] for b in c.of("IPBlock")] == []
