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


def test_architectures_without_ipv6_refuse_an_ipv6_vip(hash_example):
    cluster, nodes = hash_example[:2]
    cluster["fwcluster_segments"]["inside"]["vip"] = [cluster["fwcluster_segments"]["inside"]["vip"], "fd00:1::fe/64"]
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster mesh", "fwcluster_segments.inside.vip")
    assert error.rule == ("fd00:1::fe/64: the hash architecture does not carry IPv6 yet (primary_backup and "
                          "multipath do); give this segment its IPv4 VIP only")


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
