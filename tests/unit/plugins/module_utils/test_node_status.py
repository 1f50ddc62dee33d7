"""The readers of node_status.py on the daemons' own output formats."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_status import (
    StatusParseError,
    cluster_ownership,
    cluster_ownership_nft,
    conntrackd_flow_keys,
    conntrackd_stats,
    interface_addresses,
    keepalived_instances,
    replication_heard,
    replication_heard_nft,
    resync_gate_state,
)

# `conntrackd -s` of conntrack-tools 1.4.7 (layout kept, counters changed to be told apart).
CONNTRACKD_S = """cache internal:
current active connections:\t           4
connections created:\t\t           9\tfailed:\t           1
connections updated:\t\t          12\tfailed:\t           0
connections destroyed:\t\t           5\tfailed:\t           0

cache external:
current active connections:\t           3
connections created:\t\t           3\tfailed:\t           0
connections updated:\t\t           0\tfailed:\t           2
connections destroyed:\t\t           0\tfailed:\t           0

traffic processed:
                   0 Bytes                         0 Pckts

UDP traffic (active device=eth3):
                 816 Bytes sent                  624 Bytes recv
                  21 Pckts sent                   18 Pckts recv
                   4 Error send                    0 Error recv

message tracking:
                   0 Malformed msgs                    7 Lost msgs

"""


def test_conntrackd_stats():
    stats = conntrackd_stats(CONNTRACKD_S)
    assert stats["internal"] == 4 and stats["external"] == 3
    assert stats["errors"] == {"send": 4, "recv": 0, "malformed": 0, "lost": 7}
    assert stats["error_total"] == 11
    assert stats["cache_failures"] == 3


def test_conntrackd_stats_without_external_cache():
    internal_only = CONNTRACKD_S.split("cache external:", maxsplit=1)[0] + "traffic processed:\n"
    stats = conntrackd_stats(internal_only)
    assert stats["internal"] == 4 and stats["external"] is None


# conntrackd 1.4.7 with both caches disabled (a sandwich firewall: DisableInternalCache On,
# DisableExternalCache On), its whole answer.
CONNTRACKD_S_NO_CACHES = """internal bypass:
connections new:\t\t        1128
connections updated:\t\t        1128
connections destroyed:\t\t           0

external inject:
connections created:\t\t         512\tfailed:\t           2
connections updated:\t\t         640\tfailed:\t           0
connections destroyed:\t\t           0\tfailed:\t           0

traffic processed:
                   0 Bytes                         0 Pckts

UDP traffic (active device=eth3):
                  24 Bytes sent                    0 Bytes recv
                   2 Pckts sent                    0 Pckts recv
                   1 Error send                    0 Error recv

message tracking:
                   0 Malformed msgs                    0 Lost msgs

"""


def test_conntrackd_stats_without_any_cache():
    stats = conntrackd_stats(CONNTRACKD_S_NO_CACHES)
    assert stats["internal"] is None and stats["external"] is None
    assert stats["errors"] == {"send": 1, "recv": 0, "malformed": 0, "lost": 0}
    assert stats["cache_failures"] == 2


def test_conntrackd_stats_refuses_other_output():
    with pytest.raises(StatusParseError):
        conntrackd_stats("can't connect: is conntrackd running?")


def _dump(state, name="edge_inside"):
    return json.dumps([{"data": {"iname": name, "state": state, "vrid": 51, "ifp_ifname": "eth1",
                                 "base_priority": 254, "effective_priority": 254,
                                 "vips": ["10.10.1.254/24 dev eth1 scope global set"], "last_transition": 1.5,
                                 # keepalived 2.2.7's dump of an instance with a track_script block
                                 "track_ifp": ["eth2", "eth3"],
                                 "track_script": ["'/etc/keepalived/fwcluster-check-conntrackd.sh'"]},
                        "stats": {"become_master": 2}}])


@pytest.mark.parametrize("state, name", [(0, "INIT"), (1, "BACKUP"), (2, "MASTER"), (3, "FAULT"), (9, "UNKNOWN(9)")])
def test_keepalived_states(state, name):
    instance = keepalived_instances(_dump(state))[0]
    assert instance["state"] == name
    assert instance["vips"] == ["10.10.1.254/24"]
    assert instance["become_master"] == 2
    assert instance["track_interfaces"] == ["eth2", "eth3"]
    assert instance["track_scripts"] == ["/etc/keepalived/fwcluster-check-conntrackd.sh"]


def test_keepalived_without_tracking():
    dump = json.loads(_dump(2))
    del dump[0]["data"]["track_ifp"], dump[0]["data"]["track_script"]
    instance = keepalived_instances(json.dumps(dump))[0]
    assert instance["track_interfaces"] == [] and instance["track_scripts"] == []


@pytest.mark.parametrize("text", ["{not json", "{}", '[{"data": {}}]'])
def test_keepalived_refuses_other_output(text):
    with pytest.raises(StatusParseError):
        keepalived_instances(text)


def test_interface_addresses_of_both_families():
    text = json.dumps([{"ifname": "eth1", "addr_info": [{"family": "inet", "local": "10.10.1.1", "prefixlen": 24},
                                                        {"family": "inet", "local": "10.10.1.254", "prefixlen": 24},
                                                        {"family": "inet6", "local": "2001:db8:1::fe", "prefixlen": 64}]},
                       {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
                       {"ifname": "eth9", "addr_info": [{"family": "link"}]}])
    assert interface_addresses(text) == {"eth1": ["10.10.1.1/24", "10.10.1.254/24", "2001:db8:1::fe/64"],
                                         "lo": ["127.0.0.1/8"]}


def test_no_cluster_rules_is_none():
    assert cluster_ownership("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n") is None


MANGLE = """*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth1 -m cluster --cluster-total-nodes 3 --cluster-local-node 1 --cluster-hash-seed 0xdeadbeef -j MARK --set-xmark 0xffff/0xffffffff
-A PREROUTING -i eth1 -m cluster --cluster-total-nodes 3 --cluster-local-node 3 --cluster-hash-seed 0xdeadbeef -j MARK --set-xmark 0xffff/0xffffffff
-A PREROUTING -i eth1 -m mark ! --mark 0xffff -j DROP
COMMIT
"""


@pytest.mark.skipif(shutil.which("iptables-restore") is None or os.geteuid() != 0,
                    reason="needs iptables and root for a scratch namespace")
def test_cluster_ownership_from_real_iptables_save():
    """Rules written with --cluster-local-node come back from iptables-save as node masks."""
    name = "fwcluster-save-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "iptables-restore"], input=MANGLE, text=True, check=True)
        saved = subprocess.run(["ip", "netns", "exec", name, "iptables-save", "-t", "mangle"],
                               capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
    assert "--cluster-local-nodemask" in saved
    assert cluster_ownership(saved) == {"total_nodes": 3, "nodemask": "0x00000005", "node_ids": [0, 2]}


def test_cluster_ownership_of_written_rules():
    assert cluster_ownership(MANGLE)["node_ids"] == [0, 2]


# `conntrackd -e` lines as conntrackd 1.4.7 prints them.
FLOWS = """tcp      6 ESTABLISHED src=10.10.1.10 dst=203.0.113.10 sport=41234 dport=8080 src=203.0.113.10 \
dst=203.0.113.254 sport=8080 dport=41234 [ASSURED] mark=0 [active since 12s]
udp      17 src=10.10.1.10 dst=203.0.113.10 sport=5353 dport=53 src=203.0.113.10 dst=203.0.113.254 sport=53 \
dport=5353 mark=0 [active since 3s]
icmp     1 src=10.10.1.10 dst=203.0.113.10 type=8 code=0 id=7 src=203.0.113.10 dst=203.0.113.254 type=0 code=0 \
id=7 mark=0 [active since 1s]
tcp      6 ESTABLISHED src=2001:db8:1::10 dst=2001:db8:2::10 sport=41236 dport=8080 src=2001:db8:2::10 \
dst=2001:db8:1::10 sport=8080 dport=41236 [ASSURED] mark=0 [active since 9s]
icmpv6   58 src=2001:db8:1::10 dst=2001:db8:2::10 type=128 code=0 id=9 src=2001:db8:2::10 dst=2001:db8:1::10 \
type=129 code=0 id=9 mark=0 [active since 1s]
"""


def test_flow_keys_are_the_original_direction():
    assert conntrackd_flow_keys(FLOWS) == [
        "icmp 10.10.1.10>203.0.113.10",
        "icmpv6 2001:db8:1::10>2001:db8:2::10",
        "tcp 10.10.1.10:41234>203.0.113.10:8080",
        "tcp [2001:db8:1::10]:41236>[2001:db8:2::10]:8080",
        "udp 10.10.1.10:5353>203.0.113.10:53",
    ]
    assert conntrackd_flow_keys("") == []


# iptables-save -c -t raw (iptables v1.8.9) of the rules plan/stateful.py renders for pb-fw1
RAW_SAVE = """# Generated by iptables-save v1.8.9 (nf_tables) on Thu Dec  3 20:05:45 2026
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[37:2960] -A PREROUTING -s 192.168.100.2/32 -i eth3 -m comment --comment "fwcluster replication from pb-fw2" -j CT --notrack
[41:3280] -A OUTPUT -o eth3 -j CT --notrack
COMMIT
"""


def test_replication_heard():
    assert replication_heard(RAW_SAVE) == {"192.168.100.2": 37}


def _unshare_usable():
    if shutil.which("unshare") is None or shutil.which("iptables-restore") is None:
        return False
    return subprocess.run(["unshare", "-n", "iptables-save", "-t", "raw"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False).returncode == 0


@pytest.mark.skipif(not _unshare_usable(), reason="needs root, unshare and iptables")
def test_replication_heard_reads_what_iptables_saves_of_the_planned_rules(example):
    # the plan's raw rules restored in a network namespace of their own, saved back with counters
    from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
    raw = [table for table in build_plan(*example)["nodes"]["pb-fw1"]["ruleset"] if table["table"] == "raw"][0]
    restore = "*raw\n%s\nCOMMIT\n" % "\n".join(raw["rules"])
    saved = subprocess.run(["unshare", "-n", "sh", "-c", "iptables-restore && iptables-save -c -t raw"],
                           input=restore.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    assert replication_heard(saved.stdout.decode()) == {"192.168.100.2": 0}


def test_replication_heard_without_the_rules():
    assert replication_heard("*raw\n:PREROUTING ACCEPT [0:0]\n[5:300] -A PREROUTING -j CT --notrack\nCOMMIT\n") == {}


def test_resync_gate_state():
    # as the gate wrote it on the hash lab's returned node (molecule/hash/takeover.yml)
    line = ("opened_at=1796414757.632815363 peers_answered=192.168.101.1,192.168.101.3 flows_received=207 "
            "waited_s=8 settled=yes\n")
    assert resync_gate_state(line) == {"open": True, "opened_at": 1796414757.632815363,
                                       "peers_answered": ["192.168.101.1", "192.168.101.3"],
                                       "flows_received": 207, "settled": True}
    # nobody answered within the wait: opened without a resync
    alone = resync_gate_state("opened_at=1796414614.4 peers_answered= flows_received=0 waited_s=15 settled=yes")
    assert alone["peers_answered"] == [] and alone["open"]
    assert resync_gate_state(None) == {"open": False}
    with pytest.raises(StatusParseError, match="does not parse"):
        resync_gate_state("open at 12")


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="needs nft and root")
def test_nftables_ownership_and_heard_from_what_nft_lists_of_the_planned_rules():
    """The hash example's rules on nftables (dual stack), owner rules of ids 0 and 2 added as the hook adds them
    (IPv6: id 0 alone, a drift the status must see), listed back."""
    from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import nftables
    from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
    from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory
    cluster, nodes, _balancers = load_inventory("hash")
    plan = build_plan(dict(cluster, fwcluster_backend="nftables"), nodes)
    node = plan["nodes"]["hs-fw1"]
    ipv4, ipv6 = plan["hash"]["families"]
    script = nftables.table_text(node["ruleset"] + node["ruleset_ipv6"]) + "".join(
        "add rule %s %s\n" % (family["backend_chain"], family["owner_specs"][node_id])
        for family, node_id in ((ipv4, 0), (ipv4, 2), (ipv6, 0)))
    listed = subprocess.run(["unshare", "-n", "sh", "-c", "nft -f - && nft list table ip fwcluster && echo ==== "
                             "&& nft list table ip6 fwcluster"],
                            input=script, capture_output=True, text=True, check=True).stdout
    listed, listed6 = listed.split("====\n")
    chain = plan["hash"]["listed_chain"]
    assert cluster_ownership_nft(listed, chain) == {"total_nodes": 3, "nodemask": "0x00000005", "node_ids": [0, 2]}
    assert cluster_ownership_nft(listed, chain, listed6) == {
        "total_nodes": 3, "nodemask": "0x00000005", "node_ids": [0, 2], "node_ids_ipv6": [0]}
    # an IPv6 owner chain that owns nothing is an empty list; no IPv6 owner chain, no key
    empty6 = "table ip6 fwcluster {\n\tchain %s {\n\t}\n}\n" % chain
    assert cluster_ownership_nft(listed, chain, empty6)["node_ids_ipv6"] == []
    assert "node_ids_ipv6" not in cluster_ownership_nft(listed, chain, "table ip6 fwcluster {\n}\n")
    assert cluster_ownership_nft(listed, "no-such-chain") is None
    assert replication_heard_nft(listed) == {"192.168.101.2": 0, "192.168.101.3": 0}
