"""Networks behind a segment's router: the nodes' static routes (plan/routes.py)."""

from __future__ import annotations

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.tests.unit import examples


def refusal(cluster, nodes, balancers=None):
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes, balancers)
    return caught.value


def route(to, via, interface):
    return {"to": to, "via": via, "interface": interface, "table": None}


def test_every_node_routes_the_networks_behind_each_segment(example):
    cluster, nodes = example
    cluster["fwcluster_segments"]["inside"].update(routes=["10.50.0.0/16", "10.60.1.0/24"], gateway="10.10.1.20")
    cluster["fwcluster_segments"]["outside"].update(routes=["0.0.0.0/0"], gateway="203.0.113.1")
    nodes["pb-fw1"]["fwcluster_addresses"]["outside"] = "203.0.113.11/24"
    nodes["pb-fw2"]["fwcluster_interfaces"] = {"inside": "ens4"}
    plan = build_plan(cluster, nodes)
    assert plan["nodes"]["pb-fw1"]["routes"] == [
        route("10.50.0.0/16", "10.10.1.20", "eth1"), route("10.60.1.0/24", "10.10.1.20", "eth1"),
        route("default", "203.0.113.1", "eth2")]
    # each node on its own interface of the segment
    assert [r["interface"] for r in plan["nodes"]["pb-fw2"]["routes"]] == ["ens4", "ens4", "eth2"]


def test_without_routes_a_node_has_none(example, hash_example, duo):
    hash_example[0]["fwcluster_segments"]["inside"].pop("routes")  # the example routes 10.20.8.0/22
    hash_example[0]["fwcluster_segments"]["inside"].pop("gateway")
    for cluster, nodes in (example, hash_example[:2], duo[:2]):
        plan = build_plan(cluster, nodes)
        assert all(node["routes"] == [] for node in plan["nodes"].values())


def test_dual_stack_routes_take_the_router_of_their_family(hash_example):
    cluster, nodes = hash_example[:2]
    examples.dual_stack(cluster, nodes, examples.HASH_PREFIXES)
    cluster["fwcluster_backend"] = "nftables"
    cluster["fwcluster_segments"]["inside"].update(routes=["10.20.8.0/22", "2001:db8:28::/48"],
                                                   gateway=["10.20.1.10", "2001:db8:20:1::10"])
    plan = build_plan(cluster, nodes)
    assert plan["nodes"]["hs-fw3"]["routes"] == [route("10.20.8.0/22", "10.20.1.10", "eth1"),
                                                 route("2001:db8:28::/48", "2001:db8:20:1::10", "eth1")]


def test_multipath_routes_too(duo):
    cluster, nodes = duo[:2]
    segment = sorted(cluster["fwcluster_segments"])[0]
    vip = cluster["fwcluster_segments"][segment]["vip"]
    router = vip.rsplit(".", 1)[0] + ".20"
    cluster["fwcluster_segments"][segment].update(routes=["172.16.0.0/12"], gateway=router)
    plan = build_plan(cluster, nodes)
    assert all(node["routes"][0]["to"] == "172.16.0.0/12" and node["routes"][0]["via"] == router
               for node in plan["nodes"].values())


@pytest.mark.parametrize("inside, variable, fragment", [
    ({"routes": ["10.50.0.0/16"]}, "inside.gateway", "is required with routes"),
    ({"gateway": "10.10.1.20"}, "inside.gateway", "routes nothing"),
    ({"routes": ["10.50.0.0/16"], "gateway": "10.10.1.254"}, "inside.gateway", "not the VIP"),
    ({"routes": ["10.50.0.0/16"], "gateway": "10.10.2.20"}, "inside.gateway",
     "must be a router on the segment inside's network 10.10.1.0/24"),
    ({"routes": ["10.50.0.0/16"], "gateway": "10.10.1.1"}, "inside.gateway", "10.10.1.1 is a node's address"),
    ({"routes": ["10.50.0.0/16"], "gateway": "10.10.1.255"}, "inside.gateway", "broadcast address"),
    ({"routes": ["10.50.0.0/16"], "gateway": "router1"}, "inside.gateway", "'router1' is not an address"),
    ({"routes": ["10.50.0.0/16"], "gateway": ["10.10.1.20", "10.10.1.21"]}, "inside.gateway[1]",
     "a second IPv4 router"),
    ({"routes": ["10.10.1.128/25"], "gateway": "10.10.1.20"}, "inside.routes[0]",
     "10.10.1.128/25 is on the cluster's link 10.10.1.0/24"),
    ({"routes": ["192.168.100.0/24"], "gateway": "10.10.1.20"}, "inside.routes[0]", "on the cluster's link"),
    ({"routes": ["2001:db8:9::/48"], "gateway": "10.10.1.20"}, "inside.routes[0]",
     "2001:db8:9::/48 is IPv6 and the segment has no IPv6 VIP"),
    ({"routes": ["10.50.0.300/16"], "gateway": "10.10.1.20"}, "inside.routes[0]", "is not a network"),
    ({"routes": "10.50.0.0/16", "gateway": "10.10.1.20"}, "inside.routes", "must be a list"),
])
def test_refusals(example, inside, variable, fragment):
    cluster, nodes = example
    cluster["fwcluster_segments"]["inside"].update(inside)
    error = refusal(cluster, nodes)
    assert (error.host, error.variable) == ("cluster edge", "fwcluster_segments." + variable), str(error)
    assert fragment in error.rule, str(error)


def test_a_network_is_routed_through_one_segment(example):
    cluster, nodes = example
    cluster["fwcluster_segments"]["inside"].update(routes=["10.50.0.0/16"], gateway="10.10.1.20")
    cluster["fwcluster_segments"]["outside"].update(routes=["10.50.0.0/16"], gateway="203.0.113.20")
    error = refusal(cluster, nodes)
    assert error.variable == "fwcluster_segments.outside.routes[0]"
    assert error.rule == "10.50.0.0/16 is already routed through segment inside"


def test_an_ipv6_route_needs_an_ipv6_router(example):
    cluster, nodes = example
    examples.dual_stack(cluster, nodes)
    cluster["fwcluster_segments"]["inside"].update(routes=["10.50.0.0/16", "2001:db8:9::/48"], gateway="10.10.1.20")
    error = refusal(cluster, nodes)
    assert error.variable == "fwcluster_segments.inside.gateway"
    assert "has no IPv6 router for 2001:db8:9::/48" in error.rule


def test_a_sandwich_routes_through_its_balancers(sandwich):
    cluster, nodes, balancers = sandwich
    cluster["fwcluster_segments"]["inside"].update(routes=["10.50.0.0/16"], gateway="10.40.2.20")
    error = refusal(cluster, nodes, balancers)
    assert error.variable == "fwcluster_segments.inside.routes"
    assert "the networks behind a side are that side's routes and gateway (fwcluster_balancers.<side>)" in error.rule
