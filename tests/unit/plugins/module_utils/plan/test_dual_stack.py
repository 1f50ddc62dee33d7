"""IPv6 beside IPv4 on a cluster's segments: what the model reads, and what it refuses."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.tests.unit import examples


def dual_stack(example):
    cluster, nodes = example
    examples.dual_stack(cluster, nodes)
    return cluster, nodes


def test_a_dual_stack_cluster_plans_both_families(example):
    plan = build_plan(*dual_stack(example))
    inside = plan["segments"]["inside"]
    assert (inside["vip"], inside["vip6"], inside["vip6_address"], inside["network6"], inside["prefix6"]) == \
        ("10.10.1.254/24", "2001:db8:1::fe/64", "2001:db8:1::fe", "2001:db8:1::/64", 64)
    assert plan["nodes"]["pb-fw1"]["addresses"]["inside"] == "10.10.1.1/24"
    assert plan["nodes"]["pb-fw2"]["addresses6"] == {"inside": "2001:db8:1::2/64", "outside": "2001:db8:2::2/64"}
    assert plan["vip_addresses"] == ["10.10.1.254", "2001:db8:1::fe", "203.0.113.254", "2001:db8:2::fe"]


def test_a_dual_stack_segment_has_an_ipv6_vrrp_instance_in_the_sync_group(example):
    keepalived = build_plan(*dual_stack(example))["nodes"]["pb-fw2"]["keepalived"]
    v6 = [instance for instance in keepalived["instances"] if instance["family"] == "ipv6"]
    assert [(i["name"], i["vrid"], i["vips"], i["unicast_src"], i["unicast_peers"]) for i in v6] == [
        ("edge_inside_v6", 51, ["fe80::1:33/64", "2001:db8:1::fe/64"], "2001:db8:1::2", ["2001:db8:1::1"]),
        ("edge_outside_v6", 52, ["fe80::1:34/64", "2001:db8:2::fe/64"], "2001:db8:2::2", ["2001:db8:2::1"]),
    ]
    assert keepalived["sync_group"]["instances"] == ["edge_inside", "edge_outside", "edge_inside_v6",
                                                     "edge_outside_v6"]
    assert v6[0]["priority"] == [i for i in keepalived["instances"] if i["name"] == "edge_inside"][0]["priority"]


def test_an_ipv4_cluster_has_no_ipv6_fields(example):
    plan = build_plan(*example)
    assert "vip6" not in plan["segments"]["inside"]
    assert plan["nodes"]["pb-fw1"]["addresses6"] == {}


def test_one_dual_stack_segment_beside_an_ipv4_one(example):
    cluster, nodes = dual_stack(example)
    cluster["fwcluster_segments"]["outside"]["vip"] = "203.0.113.254/24"
    for host_vars in nodes.values():
        host_vars["fwcluster_addresses"]["outside"] = host_vars["fwcluster_addresses"]["outside"][0]
    plan = build_plan(cluster, nodes)
    assert "vip6" in plan["segments"]["inside"] and "vip6" not in plan["segments"]["outside"]
    assert list(plan["nodes"]["pb-fw1"]["addresses6"]) == ["inside"]


def refusal(cluster, nodes):
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    return caught.value


def test_ipv6_networks_of_two_segments_must_not_overlap(example):
    cluster, nodes = dual_stack(example)
    cluster["fwcluster_segments"]["outside"]["vip"][1] = "2001:db8:1:0:1::fe/80"
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster edge", "fwcluster_segments.outside.vip")
    assert error.rule == "network 2001:db8:1:0:1::/80 overlaps segment inside (2001:db8:1::/64)"


@pytest.mark.parametrize("address, fragment", [
    ("10.10.1.1/24", "segment inside has VIPs 10.10.1.254/24, 2001:db8:1::fe/64: this node needs one address of "
                     "each of their families, got 10.10.1.1/24"),
    (["10.10.1.1/24", "2001:db8:9::1/64"], "2001:db8:9::1 is outside segment inside's subnet 2001:db8:1::/64"),
    (["10.10.1.1/24", "2001:db8:1::1/80"], "2001:db8:1::1/80 must have the VIP's prefix /64"),
    (["10.10.1.1/24", "2001:db8:1::fe/64"], "2001:db8:1::fe is the VIP of segment inside"),
    (["10.10.1.1/24", "2001:db8:1::/64"], "2001:db8:1:: is the Subnet-Router anycast address of 2001:db8:1::/64"),
    # pb-fw1 (node id 0) is read first: pb-fw2 is the one refused
    (["10.10.1.1/24", "2001:db8:1::2/64"], "2001:db8:1::2 is already the address of pb-fw1"),
    (["10.10.1.1/24", "fe80::1/64"], "fe80::1 is a link-local address"),
    (["2001:db8:1::1/64", "10.10.1.1/24"], None),   # the order of the families is free
])
def test_a_node_address_per_family_of_its_segment(example, address, fragment):
    cluster, nodes = dual_stack(example)
    nodes["pb-fw1"]["fwcluster_addresses"]["inside"] = address
    if fragment is None:
        assert build_plan(cluster, nodes)["nodes"]["pb-fw1"]["addresses6"]["inside"] == "2001:db8:1::1/64"
        return
    error = refusal(cluster, nodes)
    host = "pb-fw2" if "already" in fragment else "pb-fw1"
    assert (error.host, error.variable) == (host, "fwcluster_addresses.inside" + (
        "[1]" if "link-local" in fragment else "")), str(error)
    assert fragment in error.rule, str(error)


def test_a_dual_stack_cluster_admits_management_over_both_families_by_default(example):
    ipv4_only = build_plan(*copy.deepcopy(example))
    plan = build_plan(*dual_stack(example))
    assert any("--dport 22" in rule for rule in plan["nodes"]["pb-fw1"]["ruleset_ipv6"][0]["rules"])
    assert plan["nodes"]["pb-fw1"]["sysctls"]["net.ipv6.conf.all.forwarding"] == "1"
    assert "net.ipv6.conf.all.forwarding" not in ipv4_only["nodes"]["pb-fw1"]["sysctls"]


def test_an_entry_of_one_family_filters_that_family_only(example):
    cluster, nodes = dual_stack(example)
    cluster["fwcluster_policy"] = [
        {"name": "v6 dns", "from": "inside", "to": "outside", "proto": "udp", "ports": [53],
         "destination": "2001:db8:2::53", "action": "accept"},
        {"name": "v4 ntp", "from": "inside", "to": "outside", "proto": "udp", "ports": [123],
         "source": "10.10.1.0/24", "action": "accept"},
        {"name": "both ping", "from": "inside", "to": "outside", "proto": "icmp", "action": "accept"},
    ]
    node = build_plan(cluster, nodes)["nodes"]["pb-fw1"]
    ipv4 = [rule for table in node["ruleset"] for rule in table["rules"] if "FORWARD" in rule and "comment" in rule]
    ipv6 = [rule for rule in node["ruleset_ipv6"][0]["rules"] if "FORWARD" in rule and "comment" in rule]
    assert [rule.split('--comment "')[1].split('"')[0] for rule in ipv4] == ["v4 ntp", "both ping"]
    assert [rule.split('--comment "')[1].split('"')[0] for rule in ipv6] == ["v6 dns", "both ping"]
    assert "-p icmp " in ipv4[1] and "-p ipv6-icmp " in ipv6[1]


@pytest.mark.parametrize("change, host, variable, fragment", [
    (lambda c: c["fwcluster_policy"].append(
        {"from": "inside", "to": "outside", "source": "10.10.1.0/24", "destination": "2001:db8:2::/64",
         "action": "accept"}),
     "cluster edge", "fwcluster_policy[2].destination",
     "2001:db8:2::/64 is IPv6 but source 10.10.1.0/24 is IPv4; an entry filters one family"),
    (lambda c: c.update(fwcluster_management={"sources": ["fd00::/8", "host bits::1/64"]}),
     "cluster edge", "fwcluster_management.sources[1]", "'host bits::1/64' is not a network or an address"),
])
def test_dual_stack_refusals(example, change, host, variable, fragment):
    cluster, nodes = dual_stack(example)
    change(cluster)
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == (host, variable), str(error)
    assert fragment in error.rule, str(error)


@pytest.mark.parametrize("change, variable, fragment", [
    (lambda c: c["fwcluster_policy"].append(
        {"from": "inside", "to": "outside", "destination": "2001:db8:2::/64", "action": "accept"}),
     "fwcluster_policy[2].destination", "2001:db8:2::/64 is IPv6, and no segment of cluster edge carries an IPv6 VIP"),
    (lambda c: c.update(fwcluster_management={"sources": ["::/0"]}),
     "fwcluster_management.sources[0]", "::/0 is IPv6, and no segment of cluster edge carries an IPv6 VIP"),
])
def test_ipv6_where_no_segment_carries_it_is_refused(example, change, variable, fragment):
    cluster, nodes = example
    change(cluster)
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster edge", variable), str(error)
    assert fragment in error.rule, str(error)


def test_a_hash_cluster_on_iptables_refuses_an_ipv6_vip(hash_example):
    cluster, nodes = hash_example[:2]
    examples.dual_stack(cluster, nodes, examples.HASH_PREFIXES)
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster mesh", "fwcluster_segments.inside.vip")
    assert error.rule == (
        "2001:db8:20:1::fe/64: an IPv6 VIP of a hash cluster needs fwcluster_backend: nftables (this cluster's is "
        "iptables): the iptables cluster match hashes only the first 32 bits of an IPv6 source (every client of a "
        "/32 would land on one node), and ip6tables cannot give the VIP's neighbour advertisements the cluster MAC")


@pytest.fixture
def hash_dual_stack(hash_example):
    """The hash example dual stack, on nftables."""
    cluster, nodes = hash_example[:2]
    examples.dual_stack(cluster, nodes, examples.HASH_PREFIXES)
    cluster["fwcluster_backend"] = "nftables"
    return cluster, nodes


def test_hash_dual_stack_owns_ipv6_flows_by_the_same_node_ids(hash_dual_stack):
    plan = build_plan(*hash_dual_stack)
    owner = "jhash ct original %s saddr mod 3 seed 0x5eed1234 %d meta pkttype set host counter meta mark set meta mark " \
            "& 0xbfffffff ^ 0x40000000 comment \"fwcluster node id %d\""
    assert plan["hash"]["families"] == [
        {"family": "ipv4", "backend_chain": "ip fwcluster mangle_FWCLUSTER-OWN",
         "owner_specs": [owner % ("ip", k, k) for k in range(3)]},
        {"family": "ipv6", "backend_chain": "ip6 fwcluster mangle_FWCLUSTER-OWN",
         "owner_specs": [owner % ("ip6", k, k) for k in range(3)]},
    ]
    ipv6 = plan["nodes"]["hs-fw2"]["ruleset_ipv6"]
    mangle = [table for table in ipv6 if table["table"] == "fwcluster"][0]
    prerouting = [chain for chain in mangle["chains"] if chain["name"] == "mangle_prerouting"][0]["rules"]
    assert prerouting[:7] == [
        'ip6 daddr 2001:db8:20:1::2/128 iifname "eth1" accept',
        'ip6 daddr fe80::/10 iifname "eth1" accept',
        'ip6 daddr ff00::/8 iifname "eth1" accept',
        'iifname "eth1" meta l4proto ipv6-icmp icmpv6 type nd-neighbor-solicit meta pkttype set host accept',
        'iifname "eth1" meta l4proto ipv6-icmp icmpv6 type nd-neighbor-advert meta pkttype set host accept',
        'iifname "eth1" jump mangle_FWCLUSTER-OWN',
        'iifname "eth1" meta mark & 0x40000000 != 0x40000000 drop',
    ]
    assert [chain["name"] for chain in mangle["chains"]].count("mangle_FWCLUSTER-OWN") == 1


def test_hash_dual_stack_links_hold_the_ipv6_vips_and_rewrite_their_neighbour_discovery(hash_dual_stack):
    node = build_plan(*hash_dual_stack)["nodes"]["hs-fw1"]["hash"]
    assert [(link["interface"], link["vip6"]) for link in node["links"]] == [
        ("eth1", "2001:db8:20:1::fe/64"), ("eth2", "2001:db8:20:2::fe/64")]
    lines = node["neighbours"]["lines"]
    assert node["neighbours"]["command"] == "nft -f -"
    assert lines[:2] == ["table ip6 fwcluster_nd", "delete table ip6 fwcluster_nd"]
    rewrite = ("@th,48,16 0 @th,192,16 %s @th,208,48 OWN_MAC_HEX(eth1) @th,208,48 set 0x01005e1401fe "
               "@th,48,16 set ND_WORD(eth1) counter")
    # the NA's target: the VIP as one 128-bit number
    assert ('\t\toifname "eth1" icmpv6 type nd-neighbor-advert @th,64,128 0x20010db80020000100000000000000fe '
            + rewrite % "0x0201") in lines
    assert ('\t\toifname "eth1" icmpv6 type nd-neighbor-solicit ip6 saddr 2001:db8:20:1::fe '
            + rewrite % "0x0101") in lines


def test_an_ipv4_hash_cluster_has_no_neighbour_rewrite(hash_example):
    cluster, nodes = hash_example[:2]
    cluster["fwcluster_backend"] = "nftables"
    plan = build_plan(cluster, nodes)
    assert plan["nodes"]["hs-fw1"]["hash"]["neighbours"] is None
    assert [family["family"] for family in plan["hash"]["families"]] == ["ipv4"]


def test_multipath_dual_stack_has_an_ipv6_instance_per_segment_with_its_owner(duo):
    cluster, nodes = duo
    examples.dual_stack(cluster, nodes, examples.MULTIPATH_PREFIXES)
    plan = build_plan(cluster, nodes)
    for host, owned in (("mp-fw1", "inside"), ("mp-fw2", "outside")):
        instances = plan["nodes"][host]["keepalived"]["instances"]
        assert [(i["name"], i["vrid"], i["priority"], i["vips"][-1]) for i in instances if i["family"] == "ipv6"] == [
            ("duo_inside_v6", 61, 254 if owned == "inside" else 250, "2001:db8:30:1::fe/64"),
            ("duo_outside_v6", 62, 254 if owned == "outside" else 250, "2001:db8:30:2::fe/64")]
        assert plan["nodes"][host]["keepalived"]["sync_group"] is None


def test_multipath_dual_stack_filters_ipv6_in_stateless_pairs(duo):
    cluster, nodes = duo
    examples.dual_stack(cluster, nodes, examples.MULTIPATH_PREFIXES)
    cluster["fwcluster_policy"].append({"name": "v4 dns", "from": "inside", "to": "outside", "proto": "udp",
                                        "ports": [53], "destination": "10.30.2.53", "action": "accept"})
    node = build_plan(cluster, nodes)["nodes"]["mp-fw1"]
    tables = dict((table["table"], table) for table in node["ruleset_ipv6"])
    assert sorted(tables) == ["filter", "raw"]   # IPv6 is routed: no nat table
    forward = [rule for rule in tables["filter"]["rules"] if "fwcluster-re" in rule.split()[1]]
    names = [rule.split('--comment "')[1].split('"')[0] for rule in forward]
    # every entry of both families twice (request, reply), the IPv4-only one left out
    assert names == ["inside clients to the web service", "ping from inside", "inside clients to the time service",
                     "inside clients to the web service (reply)", "ping from inside (reply)",
                     "inside clients to the time service (reply)"]
    assert "-p ipv6-icmp" in forward[1] and "--icmpv6-type echo-request" in forward[1]
    assert "--icmpv6-type echo-reply" in forward[4]
    assert tables["raw"]["rules"] == ["-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack"]


@pytest.mark.parametrize("entry, variable", [
    ({"type": "masquerade", "out": "outside", "source": "2001:db8:1::/64"}, "fwcluster_nat[1].source"),
    ({"type": "snat", "out": "outside", "source": "10.10.1.0/24", "to": "2001:db8:2::fe"}, "fwcluster_nat[1].to"),
    ({"type": "dnat", "in": "outside", "port": 80, "to": "[2001:db8:1::10]:80"}, "fwcluster_nat[1].to"),
])
def test_nat66_is_refused_with_the_reason(example, entry, variable):
    cluster, nodes = dual_stack(example)
    cluster["fwcluster_nat"].append(entry)
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster edge", variable), str(error)
    assert "NAT is IPv4 only: a dual-stack cluster routes IPv6" in error.rule, str(error)
