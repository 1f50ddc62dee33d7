"""The cluster model: the example inventory's plan, defaults, renderings and every refusal."""

from __future__ import annotations

import copy
import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render


def rules_of(plan, host, table_name):
    for entry in plan["nodes"][host]["ruleset"]:
        if entry["table"] == table_name:
            return entry["rules"]
    raise AssertionError("no table %s" % table_name)


def node_inputs(count, transport="multicast"):
    """A valid cluster of `count` nodes with multicast replication."""
    cluster = {
        "fwcluster_architecture": "primary_backup",
        "fwcluster_name": "big",
        "fwcluster_segments": {
            "inside": {"interface": "eth1", "vip": "10.0.0.254/16", "vrid": 10},
            "outside": {"interface": "eth2", "vip": "172.16.0.254/16", "vrid": 11},
        },
        # notrack: ftfw is refused beyond two nodes (one receive sequence for all peers)
        "fwcluster_replication": {"enabled": True, "interface": "eth3", "transport": transport,
                                  "mode": "notrack" if count > 2 else "ftfw"},
    }
    nodes = {}
    for node_id in range(count):
        nodes["fw%d" % node_id] = {
            "fwcluster_node_id": node_id,
            "fwcluster_addresses": {"inside": "10.0.1.%d/16" % (node_id + 1),
                                    "outside": "172.16.1.%d/16" % (node_id + 1)},
            "fwcluster_replication_address": "192.168.50.%d/24" % (node_id + 1),
        }
    return cluster, nodes


# ---------------------------------------------------------------- the example


def test_example_plan_top_level(example):
    plan = build_plan(*example)
    assert sorted(plan) == ["architecture", "backend", "capabilities", "name", "nodes", "replication", "segments",
                            "tracking", "vip_addresses", "vrrp"]
    assert plan["vip_addresses"] == ["10.10.1.254", "203.0.113.254"]
    assert plan["backend"] == "iptables"  # the default
    assert plan["name"] == "edge"
    assert plan["architecture"] == "primary_backup"
    assert plan["segments"]["inside"] == {"vip": "10.10.1.254/24", "vip_address": "10.10.1.254",
                                          "network": "10.10.1.0/24", "prefix": 24, "vrid": 51}
    assert plan["segments"]["outside"]["vip_address"] == "203.0.113.254"
    assert plan["segments"]["outside"]["vrid"] == 52
    assert plan["vrrp"] == {"advert_int": 1.0, "version": 3, "unicast": True, "preempt": False,
                            "failover_bound": 4.0}
    assert plan["replication"] == {"transport": "udp", "mode": "ftfw", "port": 3780,
                                   "network": "192.168.100.0/24", "multicast_group": None,
                                   "peer_flows": "external_cache"}
    assert list(plan["nodes"]) == ["pb-fw1", "pb-fw2"]


def test_example_plan_nodes(example):
    plan = build_plan(*example)
    fw1, fw2 = plan["nodes"]["pb-fw1"], plan["nodes"]["pb-fw2"]
    assert (fw1["node_id"], fw1["role"]) == (0, "primary")
    assert (fw2["node_id"], fw2["role"]) == (1, "backup")
    assert fw1["interfaces"] == {"inside": "eth1", "outside": "eth2"}
    assert fw2["addresses"] == {"inside": "10.10.1.2/24", "outside": "203.0.113.2/24"}
    assert fw1["replication"]["peers"] == ["192.168.100.2"]
    assert fw2["replication"]["peers"] == ["192.168.100.1"]
    assert fw1["replication"]["peer_hosts"] == {"192.168.100.2": "pb-fw2"}
    assert fw1["replication"]["interface"] == "eth3"
    assert (fw1["replication"]["address"], fw1["replication"]["prefix"]) == ("192.168.100.1", 24)
    # its own addresses, every node's management address (ansible_host), then the replication link's: its own
    # and the peer's
    assert fw1["conntrackd"]["ignore_addresses"] == ["127.0.0.1", "10.10.1.1", "203.0.113.1", "172.30.1.1",
                                                     "172.30.1.2", "192.168.100.1", "192.168.100.2"]
    assert "10.10.1.254" not in fw1["conntrackd"]["ignore_addresses"]
    assert fw1["sysctls"]["net.netfilter.nf_conntrack_tcp_loose"] == "0"
    assert fw1["sysctls"]["net.ipv4.ip_forward"] == "1"
    assert fw1["sysctls"]["net.netfilter.nf_conntrack_tcp_be_liberal"] == "0"


def test_example_keepalived(example):
    plan = build_plan(*example)
    for host, priority, own, peer in (("pb-fw1", 254, "1", "2"), ("pb-fw2", 250, "2", "1")):
        keepalived = plan["nodes"][host]["keepalived"]
        assert keepalived["router_id"] == host
        assert keepalived["sync_group"] == {"name": "edge", "instances": ["edge_inside", "edge_outside"]}
        inside, outside = keepalived["instances"]
        assert inside["name"] == "edge_inside"
        assert inside["priority"] == outside["priority"] == priority
        assert inside["state"] == "BACKUP"
        assert inside["vips"] == ["10.10.1.254/24"]
        assert outside["vips"] == ["203.0.113.254/24"]
        assert (inside["vrid"], outside["vrid"]) == (51, 52)
        assert (inside["interface"], outside["interface"]) == ("eth1", "eth2")
        # unicast: each instance adverts from the node's segment address to the peer's
        assert (inside["unicast_src"], inside["unicast_peers"]) == ("10.10.1." + own, ["10.10.1." + peer])
        assert (outside["unicast_src"], outside["unicast_peers"]) == ("203.0.113." + own, ["203.0.113." + peer])
        assert inside["preempt"] is False and inside["advert_int"] == 1.0


def test_example_ruleset(example):
    plan = build_plan(*example)
    ruleset = plan["nodes"]["pb-fw1"]["ruleset"]
    assert [entry["table"] for entry in ruleset] == ["raw", "filter", "nat"]
    assert ruleset[0] == {"table": "raw", "chains": {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}, "user_chains": [],
                          "rules": ['-A PREROUTING -i eth3 -s 192.168.100.2 -p udp --dport 3780 '
                                    '-m comment --comment "fwcluster conntrackd from pb-fw2" -j CT --notrack',
                                    # the peer's upstream beacon: a 128-byte ping
                                    '-A PREROUTING -i eth3 -s 192.168.100.2 -p icmp --icmp-type echo-request '
                                    '-m length --length 128 -m comment --comment "fwcluster upstream from pb-fw2" '
                                    '-j CT --notrack',
                                    '-A PREROUTING -i eth3 -s 192.168.100.2 '
                                    '-m comment --comment "fwcluster replication from pb-fw2" -j CT --notrack',
                                    "-A OUTPUT -o eth3 -j CT --notrack"]}
    ruleset = ruleset[1:]
    assert ruleset[0]["chains"] == {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
    assert ruleset[0]["user_chains"] == []
    rules = ruleset[0]["rules"]
    assert rules[:4] == [
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate INVALID -j DROP",
        "-A INPUT -p tcp ! --syn -m conntrack --ctstate NEW -j DROP",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    assert "-A INPUT -i eth1 -p 112 -j ACCEPT" in rules
    assert "-A INPUT -i eth2 -p 112 -j ACCEPT" in rules
    assert "-A INPUT -i eth3 -s 192.168.100.0/24 -p udp --dport 3780 -j ACCEPT" in rules
    assert "-A INPUT -i eth3 -s 192.168.100.0/24 -p icmp --icmp-type echo-request -j ACCEPT" in rules
    assert "-A INPUT -i eth3 -s 192.168.100.0/24 -p icmp --icmp-type echo-reply -j ACCEPT" in rules
    assert ('-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "fwcluster management" '
            '-j ACCEPT') in rules
    forward = [rule for rule in rules if rule.startswith("-A FORWARD")]
    assert forward == [
        "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A FORWARD -p tcp ! --syn -m conntrack --ctstate NEW -j DROP",
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        '-A FORWARD -i eth1 -o eth2 -p tcp --dport 8080 -m conntrack --ctstate NEW '
        '-m comment --comment "inside clients to the web service" -j ACCEPT',
        '-A FORWARD -i eth1 -o eth2 -p icmp -m conntrack --ctstate NEW -m comment --comment "ping from inside" '
        '-j ACCEPT',
    ]
    assert ruleset[1]["chains"] == {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "OUTPUT": "ACCEPT",
                                    "POSTROUTING": "ACCEPT"}
    assert ruleset[1]["rules"] == ["-A POSTROUTING -o eth2 -s 10.10.1.0/24 -j SNAT --to-source 203.0.113.254"]


def test_plan_is_plain_json(example):
    import json
    plan = build_plan(*example)
    assert json.loads(json.dumps(plan)) == plan


def test_inputs_are_not_modified(example):
    before = copy.deepcopy(example)
    build_plan(*example)
    assert example == before


# ---------------------------------------------------------------- defaults and variants


def test_replication_absent_or_disabled(example):
    cluster, nodes = example
    cluster.pop("fwcluster_tracking")  # its upstream hosts need replication
    for replication in (None, {"enabled": False, "interface": "eth3"}):
        if replication is None:
            cluster.pop("fwcluster_replication")
        else:
            cluster["fwcluster_replication"] = replication
        plan = build_plan(cluster, nodes)
        assert plan["replication"] is None
        node = plan["nodes"]["pb-fw1"]
        assert node["replication"] is None and node["conntrackd"] is None
        assert not any("eth3" in rule for rule in rules_of(plan, "pb-fw1", "filter"))


@pytest.mark.parametrize("transport", ["udp", "multicast", "tcp"])
def test_the_replication_links_own_traffic_is_untracked_and_not_replicated(transport):
    # Tracked, a peer's multicast messages were flows to a group that is nobody's
    # own address, replicated in turn; a restarted peer dropped a stale TCP
    # connection's segments as INVALID instead of resetting it.
    cluster, nodes = node_inputs(3 if transport == "multicast" else 2, transport)  # udp, tcp: point to point
    plan = build_plan(cluster, nodes)
    node = plan["nodes"]["fw1"]
    peers = [name for name in plan["nodes"] if name != "fw1"]
    raw = rules_of(plan, "fw1", "raw")
    # two rules per peer, named after it: the counters are what arrived from its conntrackd, and from it
    port = plan["replication"]["port"]
    proto = "tcp" if transport == "tcp" else "udp"
    expected = []
    for peer in peers:
        address = plan["nodes"][peer]["replication"]["address"]
        expected += ['-A PREROUTING -i eth3 -s %s -p %s --dport %d -m comment --comment "fwcluster conntrackd from %s" '
                     '-j CT --notrack' % (address, proto, port, peer),
                     '-A PREROUTING -i eth3 -s %s -m comment --comment "fwcluster replication from %s" -j CT --notrack'
                     % (address, peer)]
    assert raw == expected + ["-A OUTPUT -o eth3 -j CT --notrack"]
    link = [rule for rule in rules_of(plan, "fw1", "filter") if "-i eth3" in rule]
    expected = ["-A INPUT -i eth3 -s 192.168.50.0/24 -p %s --dport %d -j ACCEPT"
                % ("tcp" if transport == "tcp" else "udp", port)]
    if transport == "tcp":  # each node also connects to its peers' port: their answers and resets
        expected.append("-A INPUT -i eth3 -s 192.168.50.0/24 -p tcp --sport %d -j ACCEPT" % port)
    expected += ["-A INPUT -i eth3 -s 192.168.50.0/24 -p icmp --icmp-type echo-request -j ACCEPT",
                 "-A INPUT -i eth3 -s 192.168.50.0/24 -p icmp --icmp-type echo-reply -j ACCEPT"]
    assert link == expected
    ignored = node["conntrackd"]["ignore_addresses"]
    for name in plan["nodes"]:
        assert plan["nodes"][name]["replication"]["address"] in ignored
    assert (plan["replication"]["multicast_group"] in ignored) == (transport == "multicast")


@pytest.mark.parametrize("ansible_host, management", [
    ("172.30.1.1", ["172.30.1.1"]),      # an address: every node ignores it
    ("10.10.1.1", ["10.10.1.1"]),        # pb-fw1's own inside address: pb-fw1 lists it once
    ("pb-fw1.example.net", []),          # a name: nothing to list
    (None, []),                          # not set
])
def test_the_management_address_is_ignored_once_and_only_when_an_address(example, ansible_host, management):
    cluster, nodes = example
    for host_vars in nodes.values():
        host_vars.pop("ansible_host", None)
    if ansible_host is not None:
        nodes["pb-fw1"]["ansible_host"] = ansible_host
    plan = build_plan(cluster, nodes)
    for name, node in plan["nodes"].items():
        own = [address.split("/")[0] for address in node["addresses"].values()]
        link = [node["replication"]["address"]] + node["replication"]["peers"]
        expected = ["127.0.0.1"] + own + [address for address in management if address not in own] + link
        assert node["conntrackd"]["ignore_addresses"] == expected


def test_no_replication_no_raw_rules(example):
    cluster, nodes = example
    cluster["fwcluster_replication"]["enabled"] = False
    cluster.pop("fwcluster_tracking")  # its upstream hosts need replication
    plan = build_plan(cluster, nodes)
    assert [entry["table"] for entry in plan["nodes"]["pb-fw1"]["ruleset"]] == ["filter", "nat"]


def test_replication_defaults(example):
    cluster, nodes = example
    cluster["fwcluster_replication"] = {"interface": "eth3"}  # enabled by being there
    plan = build_plan(cluster, nodes)
    assert plan["replication"]["transport"] == "udp"
    assert plan["replication"]["mode"] == "ftfw"
    assert plan["replication"]["port"] == 3780


def test_vrrp_and_policy_defaults(example):
    cluster, nodes = example
    for name in ("fwcluster_vrrp", "fwcluster_policy", "fwcluster_nat"):
        cluster.pop(name)
    plan = build_plan(cluster, nodes)
    assert plan["vrrp"]["advert_int"] == 1.0 and plan["vrrp"]["unicast"] is False
    assert plan["vrrp"]["preempt"] is False
    forward = [rule for rule in rules_of(plan, "pb-fw1", "filter") if rule.startswith("-A FORWARD")]
    assert len(forward) == 3  # the stateful prologue only
    assert rules_of(plan, "pb-fw1", "nat") == []


def test_multicast_many_nodes():
    plan = build_plan(*node_inputs(5))
    assert plan["replication"]["multicast_group"] == "225.0.0.50"
    assert [plan["nodes"]["fw%d" % i]["keepalived"]["instances"][0]["priority"] for i in range(5)] == \
        [254, 250, 246, 242, 238]
    assert plan["nodes"]["fw2"]["replication"]["peers"] == \
        ["192.168.50.1", "192.168.50.2", "192.168.50.4", "192.168.50.5"]
    assert plan["nodes"]["fw0"]["replication"]["multicast_group"] == "225.0.0.50"
    assert "-A INPUT -i eth3 -s 192.168.50.0/24 -p udp --dport 3780 -j ACCEPT" in rules_of(plan, "fw0", "filter")


def test_ftfw_is_refused_beyond_two_nodes():
    cluster, nodes = node_inputs(3)
    cluster["fwcluster_replication"]["mode"] = "ftfw"
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_replication.mode"
    assert "use notrack" in caught.value.rule


def test_thirty_two_nodes_fit():
    plan = build_plan(*node_inputs(32))
    assert plan["nodes"]["fw31"]["keepalived"]["instances"][0]["priority"] == 254 - 4 * 31


def test_tcp_transport_rule(example):
    cluster, nodes = example
    cluster["fwcluster_replication"]["transport"] = "tcp"
    plan = build_plan(cluster, nodes)
    assert "-A INPUT -i eth3 -s 192.168.100.0/24 -p tcp --dport 3780 -j ACCEPT" in rules_of(plan, "pb-fw2", "filter")


def test_unicast_vrrp(example):
    cluster, nodes = example
    cluster["fwcluster_vrrp"] = {"advert_int": 0.5, "unicast": True, "preempt": True}
    plan = build_plan(cluster, nodes)
    instance = plan["nodes"]["pb-fw2"]["keepalived"]["instances"][1]
    assert instance["unicast_src"] == "203.0.113.2"
    assert instance["unicast_peers"] == ["203.0.113.1"]
    assert instance["preempt"] is True and instance["advert_int"] == 0.5
    assert plan["vrrp"]["failover_bound"] == 2.5


def test_host_interface_overrides(example):
    cluster, nodes = example
    nodes["pb-fw2"]["fwcluster_interfaces"] = {"inside": "ens4", "replication": "ens6"}
    plan = build_plan(cluster, nodes)
    fw2 = plan["nodes"]["pb-fw2"]
    assert fw2["interfaces"] == {"inside": "ens4", "outside": "eth2"}
    assert fw2["replication"]["interface"] == "ens6"
    assert fw2["keepalived"]["instances"][0]["interface"] == "ens4"
    rules = rules_of(plan, "pb-fw2", "filter")
    assert "-A INPUT -i ens4 -p 112 -j ACCEPT" in rules
    assert "-A INPUT -i ens6 -s 192.168.100.0/24 -p udp --dport 3780 -j ACCEPT" in rules
    assert any(rule.startswith("-A FORWARD -i ens4 -o eth2 -p tcp --dport 8080") for rule in rules)
    assert plan["nodes"]["pb-fw1"]["interfaces"]["inside"] == "eth1"


def test_management_sources_and_opt_out(example):
    cluster, nodes = example
    cluster["fwcluster_management"] = {"sources": ["10.10.1.0/24", "192.0.2.7"], "tcp_ports": [22, 9100]}
    rules = rules_of(build_plan(cluster, nodes), "pb-fw1", "filter")
    assert ('-A INPUT -s 10.10.1.0/24 -p tcp -m multiport --dports 22,9100 -m conntrack --ctstate NEW '
            '-m comment --comment "fwcluster management" -j ACCEPT') in rules
    assert any(rule.startswith("-A INPUT -s 192.0.2.7/32 -p tcp") for rule in rules)
    cluster["fwcluster_management"] = {"tcp_ports": []}
    rules = rules_of(build_plan(cluster, nodes), "pb-fw1", "filter")
    assert not any("management" in rule for rule in rules)


RICH_POLICY = [
    {"name": "web", "from": "inside", "to": "outside", "proto": "tcp", "ports": [80, 443], "action": "accept"},
    {"name": "dns", "from": "any", "to": "outside", "proto": "udp", "ports": [53], "action": "accept",
     "destination": "203.0.113.53"},
    {"name": "high ports", "from": "inside", "to": "any", "proto": "tcp", "ports": ["8000:8100", 9000],
     "source": "10.10.1.0/25", "action": "accept"},
    {"name": "snmp to fw", "from": "inside", "to": "firewall", "proto": "udp", "ports": [161], "action": "accept"},
    {"name": "no telnet; \"quoted\" $(x)", "from": "outside", "to": "inside", "proto": "tcp", "ports": [23],
     "action": "reject"},
    {"from": "outside", "to": "any", "action": "drop"},
    {"name": "catch-all", "from": "any", "to": "any", "proto": "all", "action": "reject"},
]
RICH_NAT = [
    {"type": "masquerade", "out": "outside", "source": "10.10.1.0/24"},
    {"type": "snat", "out": "inside", "to": "10.10.1.254", "name": "to inside"},
    {"type": "dnat", "in": "outside", "port": 443, "to": "10.10.1.10:8443", "name": "publish web"},
    {"type": "dnat", "in": "outside", "proto": "udp", "port": 53, "to": "10.10.1.53", "source": "198.51.100.0/24"},
]


def test_rich_policy_rendering(example):
    cluster, nodes = example
    cluster["fwcluster_policy"] = RICH_POLICY
    cluster["fwcluster_nat"] = RICH_NAT
    plan = build_plan(cluster, nodes)
    rules = rules_of(plan, "pb-fw1", "filter")
    assert ('-A FORWARD -i eth1 -o eth2 -p tcp -m multiport --dports 80,443 -m conntrack --ctstate NEW '
            '-m comment --comment "web" -j ACCEPT') in rules
    assert ('-A FORWARD -o eth2 -d 203.0.113.53/32 -p udp --dport 53 -m conntrack --ctstate NEW '
            '-m comment --comment "dns" -j ACCEPT') in rules
    assert ('-A FORWARD -i eth1 -s 10.10.1.0/25 -p tcp -m multiport --dports 8000:8100,9000 '
            '-m conntrack --ctstate NEW -m comment --comment "high ports" -j ACCEPT') in rules
    assert ('-A INPUT -i eth1 -p udp --dport 161 -m conntrack --ctstate NEW -m comment --comment "snmp to fw" '
            '-j ACCEPT') in rules
    assert ('-A FORWARD -i eth2 -o eth1 -p tcp --dport 23 -m conntrack --ctstate NEW '
            '-m comment --comment "no telnet_ _quoted_ _(x)" -j REJECT --reject-with tcp-reset') in rules
    assert ('-A FORWARD -i eth2 -m conntrack --ctstate NEW -m comment --comment "policy 6" -j DROP') in rules
    assert rules[-1] == '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "catch-all" -j REJECT'
    # published services come before the policy, so the catch-all cannot hide them
    dnat_accept = ('-A FORWARD -i eth2 -o eth1 -d 10.10.1.10/32 -p tcp --dport 8443 -m conntrack --ctstate DNAT '
                   '-m comment --comment "publish web" -j ACCEPT')
    assert rules.index(dnat_accept) < rules.index(rules[-1])
    assert ('-A FORWARD -i eth2 -o eth1 -s 198.51.100.0/24 -d 10.10.1.53/32 -p udp --dport 53 '
            '-m conntrack --ctstate DNAT -j ACCEPT') in rules
    assert rules_of(plan, "pb-fw1", "nat") == [
        "-A POSTROUTING -o eth2 -s 10.10.1.0/24 -j SNAT --to-source 203.0.113.254",
        '-A POSTROUTING -o eth1 -m comment --comment "to inside" -j SNAT --to-source 10.10.1.254',
        '-A PREROUTING -i eth2 -d 203.0.113.254 -p tcp --dport 443 -m comment --comment "publish web" '
        '-j DNAT --to-destination 10.10.1.10:8443',
        "-A PREROUTING -i eth2 -s 198.51.100.0/24 -d 203.0.113.254 -p udp --dport 53 "
        "-j DNAT --to-destination 10.10.1.53",
    ]


def _iptables_restore_usable():
    if shutil.which("iptables-restore") is None:
        return False
    probe = subprocess.run(["iptables-restore", "--test"], input=b"*filter\nCOMMIT\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _iptables_restore_usable(), reason="iptables-restore --test needs iptables and root")
@pytest.mark.parametrize("variant", ["example", "rich", "multicast", "tcp_unicast"])
def test_rules_pass_iptables_restore_test(example, variant):
    cluster, nodes = example
    if variant == "rich":
        cluster["fwcluster_policy"] = RICH_POLICY
        cluster["fwcluster_nat"] = RICH_NAT
        cluster["fwcluster_management"] = {"sources": ["10.10.1.0/24", "192.0.2.7"], "tcp_ports": [22, "9000:9100"]}
    elif variant == "multicast":
        cluster, nodes = node_inputs(3)
    elif variant == "tcp_unicast":
        cluster["fwcluster_replication"]["transport"] = "tcp"
        cluster["fwcluster_vrrp"] = {"unicast": True}
    plan = build_plan(cluster, nodes)
    for host, node in plan["nodes"].items():
        text = render("firewall", "rules.v4.j2", plan, host)
        result = subprocess.run(["iptables-restore", "--test"], input=text.encode(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        assert result.returncode == 0, "%s:\n%s\n%s" % (host, text, result.stderr.decode())
        # every rule also passes on its own, so no line hides behind another's error
        for table in node["ruleset"]:
            for rule in table["rules"]:
                single = "*%s\n%s\nCOMMIT\n" % (table["table"], rule)
                result = subprocess.run(["iptables-restore", "--test"], input=single.encode(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
                assert result.returncode == 0, "%s: %s" % (rule, result.stderr.decode())


def test_replication_links(example):
    plan = build_plan(*example)
    assert plan["replication"]["network"] == "192.168.100.0/24"
    assert plan["nodes"]["pb-fw2"]["replication"]["peers"] == ["192.168.100.1"]
    assert plan["nodes"]["pb-fw2"]["replication"]["peer_hosts"] == {"192.168.100.1": "pb-fw1"}
    assert plan["nodes"]["pb-fw1"]["replication"]["interface"] == "eth3"
    cluster, nodes = example
    cluster["fwcluster_replication"]["enabled"] = False
    cluster.pop("fwcluster_tracking")  # its upstream hosts need replication
    plan = build_plan(cluster, nodes)
    assert plan["replication"] is None
    assert [node["replication"] for node in plan["nodes"].values()] == [None, None]


def test_plan_error_text():
    error = PlanError("pb-fw2", "fwcluster_node_id", "is required")
    assert str(error) == "pb-fw2: fwcluster_node_id: is required"
    assert (error.host, error.variable, error.rule) == ("pb-fw2", "fwcluster_node_id", "is required")
    import pickle
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_a_huge_integer_is_out_of_range_not_an_overflow(example):
    # math.isfinite would raise OverflowError on an int beyond a float: ints are finite anyway.
    cluster, nodes = example
    cluster["fwcluster_vrrp"]["advert_int"] = 10 ** 400
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.rule.startswith("must be in 0.01..40.95, got 1000000")


@pytest.mark.parametrize("host", ["fw1.example.com", "10.0.0.1", "fw_1", "FW-2", "node:1", "a" * 253])
def test_usual_host_names_are_accepted(example, host):
    cluster, nodes = example
    nodes[host] = nodes.pop("pb-fw1")
    plan = build_plan(cluster, nodes)
    assert plan["nodes"][host]["keepalived"]["router_id"] == host


def test_a_contribution_never_replaces_what_the_build_made(example, monkeypatch):
    """An architecture adds fields; one that would overwrite a shared field stops the build."""
    from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.registry import ARCHITECTURES

    monkeypatch.setattr(type(ARCHITECTURES["primary_backup"]), "node_fields",
                        lambda self, cluster, node, backend: {"role": "imposter"})
    with pytest.raises(ValueError) as caught:
        build_plan(*example)
    assert "role is built once" in str(caught.value)
