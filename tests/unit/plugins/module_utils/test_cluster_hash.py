"""The cluster match's hash, in Python, against the kernel's own xt_cluster in a network namespace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_hash import flow_addresses, flow_source, node_id_of

SEED = 0x5EED1234
TOTAL = 3
SOURCES = ["10.77.0.%d" % host for host in range(10, 34)]


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def kernel_node_ids():
    """{source: node id} as xt_cluster decides: one ping from each source through a namespace whose
    mangle rules count, per source, the node id (1-based) the cluster match gives it."""
    here, there = "fwcluster-hash-a-%d" % os.getpid(), "fwcluster-hash-b-%d" % os.getpid()
    _run("ip", "netns", "add", here)
    _run("ip", "netns", "add", there)
    try:
        _run("ip", "-n", here, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", there)
        _run("ip", "-n", here, "link", "set", "veth0", "up")
        _run("ip", "-n", there, "link", "set", "veth1", "up")
        _run("ip", "-n", there, "addr", "add", "10.77.1.1/16", "dev", "veth1")
        for source in SOURCES:
            _run("ip", "-n", here, "addr", "add", source + "/16", "dev", "veth0")
        rules = ["*mangle"]
        for source in SOURCES:
            for node in range(1, TOTAL + 1):
                rules.append("-A PREROUTING -s %s/32 -m cluster --cluster-total-nodes %d --cluster-local-node %d "
                             "--cluster-hash-seed 0x%08x -m comment --comment %d" % (source, TOTAL, node, SEED, node))
        subprocess.run(["ip", "netns", "exec", there, "iptables-restore"], input="\n".join(rules + ["COMMIT", ""]),
                       text=True, check=True)
        for source in SOURCES:
            subprocess.run(["ip", "netns", "exec", here, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", source,
                            "10.77.1.1"], capture_output=True, check=False)
        saved = subprocess.run(["ip", "netns", "exec", there, "iptables-save", "-c", "-t", "mangle"],
                               capture_output=True, text=True, check=True).stdout
        owners = {}
        for packets, source, node in re.findall(r'^\[([0-9]+):[0-9]+\] -A PREROUTING -s ([0-9.]+)/32 .*--comment "?([0-9]+)',
                                                saved, re.M):
            if int(packets):
                owners.setdefault(source, []).append(int(node) - 1)
        return owners
    finally:
        subprocess.run(["ip", "netns", "delete", here], check=False)
        subprocess.run(["ip", "netns", "delete", there], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables-restore") is None,
                    reason="a network namespace with the cluster match needs root and iptables")
def test_the_hash_is_the_kernels(kernel_node_ids):
    assert sorted(kernel_node_ids) == sorted(SOURCES), "every source matched exactly one rule set"
    assert dict((source, node_id_of(source, SEED, TOTAL)) for source in SOURCES) == dict(
        (source, ids[0]) for source, ids in kernel_node_ids.items())
    assert all(len(ids) == 1 for ids in kernel_node_ids.values())
    assert len(set(node_id_of(source, SEED, TOTAL) for source in SOURCES)) == TOTAL


SOURCES6 = ["2001:db8:77::%x" % host for host in range(0x10, 0x28)]


@pytest.fixture
def kernel_node_ids6():
    """{source: node id} as nftables decides for IPv6 ("jhash ct original ip6 saddr", the owner rules' hash): one
    ping from each source through a namespace whose rules count, per source, each node id's match."""
    here, there = "fwcluster-hash6-a-%d" % os.getpid(), "fwcluster-hash6-b-%d" % os.getpid()
    _run("ip", "netns", "add", here)
    _run("ip", "netns", "add", there)
    try:
        _run("ip", "-n", here, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", there)
        _run("ip", "-n", here, "link", "set", "veth0", "up")
        _run("ip", "-n", there, "link", "set", "veth1", "up")
        _run("ip", "-n", there, "addr", "add", "2001:db8:77::1/64", "dev", "veth1", "nodad")
        for source in SOURCES6:
            _run("ip", "-n", here, "addr", "add", source + "/64", "dev", "veth0", "nodad")
        rules = ["table ip6 t {", "chain c {", "type filter hook prerouting priority 0;"]
        rules.extend("ip6 saddr %s icmpv6 type echo-request jhash ct original ip6 saddr mod %d seed 0x%08x %d counter"
                     % (source, TOTAL, SEED, node) for source in SOURCES6 for node in range(TOTAL))
        subprocess.run(["ip", "netns", "exec", there, "nft", "-f", "-"], input="\n".join(rules + ["}", "}", ""]),
                       text=True, check=True)
        for source in SOURCES6:
            subprocess.run(["ip", "netns", "exec", here, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", source,
                            "2001:db8:77::1"], capture_output=True, check=False)
        listed = subprocess.run(["ip", "netns", "exec", there, "nft", "list", "chain", "ip6", "t", "c"],
                                capture_output=True, text=True, check=True).stdout
        owners = {}
        for source, node, packets in re.findall(r"ip6 saddr (\S+) .* seed 0x[0-9a-f]+ ([0-9]+) counter packets ([0-9]+)",
                                                listed):
            if int(packets):
                owners.setdefault(source, []).append(int(node))
        return owners
    finally:
        subprocess.run(["ip", "netns", "delete", here], check=False)
        subprocess.run(["ip", "netns", "delete", there], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                    reason="a network namespace with nftables needs root and nft")
def test_the_ipv6_hash_is_nftables(kernel_node_ids6):
    assert sorted(kernel_node_ids6) == sorted(SOURCES6), "every source matched exactly one rule set"
    assert all(len(ids) == 1 for ids in kernel_node_ids6.values())
    assert dict((source, node_id_of(source, SEED, TOTAL)) for source in SOURCES6) == dict(
        (source, ids[0]) for source, ids in kernel_node_ids6.items())
    assert len(set(node_id_of(source, SEED, TOTAL) for source in SOURCES6)) == TOTAL


@pytest.mark.parametrize("key, source, destination", [
    ("tcp 10.20.1.105:40000>198.51.100.10:8080", "10.20.1.105", "198.51.100.10"),
    ("icmp 10.20.1.7>198.51.100.10", "10.20.1.7", "198.51.100.10"),
    ("tcp [2001:db8:20:1::105]:40000>[2001:db8:20:2::10]:8080", "2001:db8:20:1::105", "2001:db8:20:2::10"),
    ("icmpv6 2001:db8:20:1::7>2001:db8:20:2::10", "2001:db8:20:1::7", "2001:db8:20:2::10"),
])
def test_flow_addresses(key, source, destination):
    assert flow_addresses(key) == (source, destination)
    assert flow_source(key) == source


@pytest.mark.parametrize("key", ["tcp", "10.0.0.1:1>10.0.0.2:2", None])
def test_flow_source_refuses_what_is_not_a_flow_key(key):
    with pytest.raises(ValueError):
        flow_source(key)
    with pytest.raises(ValueError):
        flow_addresses(key)
