"""The routes script (roles/firewall/templates/fwcluster-routes.j2) run on a node, then again on a changed plan.

After each run the node's routes are the plan's: a route the plan no longer
names goes, a changed one is replaced, the routes the node had of its own (its
links', a route set by hand) stay, and traffic reaches a network behind the
segment's router.
"""

from __future__ import annotations

import json

from ansible_collections.fwcluster.netfilter.tests.netns import netns
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render

HOST = "pb-fw1"
PROTO = 157


def tagged(namespace):
    """{(family, destination, table): (gateway, device)} of the routes the script set (proto 157)."""
    found = {}
    for family in ("4", "6"):
        listed = json.loads(netns.run(namespace, "ip", "-" + family, "-j", "route", "show", "table", "all",
                                      "proto", str(PROTO)) or "[]")
        for entry in listed:
            found[(family, entry["dst"], entry.get("table", "main"))] = (entry.get("gateway"), entry["dev"])
    return found


def apply(lab, namespace, plan, action="apply"):
    script = lab.file("%s-routes" % HOST, render("firewall", "fwcluster-routes.j2", plan, HOST,
                                                 fwcluster_firewall_routes_proto=PROTO))
    netns.run(namespace, "sh", script, action)


def with_routes(inside, outside=None):
    def change(cluster, nodes):
        cluster["fwcluster_segments"]["inside"].update(inside)
        if outside:
            cluster["fwcluster_segments"]["outside"].update(outside)
    return change


def test_a_run_sets_the_plans_routes_and_a_later_run_removes_what_it_no_longer_names(lab):
    fw = lab.namespace("rt-fw")
    lab.host("rt-router", fw, "eth1", ["10.10.1.20/24", "2001:db8:1::20/64", "10.50.0.1/16"],
             routes=[("default", "10.10.1.1")])
    lab.host("rt-up", fw, "eth2", ["203.0.113.9/24"])
    netns.add_address(fw, "10.10.1.1/24", "eth1")
    netns.add_address(fw, "2001:db8:1::1/64", "eth1")
    netns.add_address(fw, "203.0.113.1/24", "eth2")
    # A route of the node's own, not the plan's: no run touches it.
    netns.run(fw, "ip", "route", "add", "10.70.0.0/16", "via", "203.0.113.9")

    plan = netns.plan_of("primary_backup", "nftables", with_routes(
        {"routes": ["10.50.0.0/16", "10.60.0.0/16", "2001:db8:28::/48"], "gateway": ["10.10.1.20", "2001:db8:1::20"]},
        {"routes": ["0.0.0.0/0"], "gateway": "203.0.113.9"}))
    apply(lab, fw, plan)
    assert tagged(fw) == {("4", "10.50.0.0/16", "main"): ("10.10.1.20", "eth1"),
                          ("4", "10.60.0.0/16", "main"): ("10.10.1.20", "eth1"),
                          ("6", "2001:db8:28::/48", "main"): ("2001:db8:1::20", "eth1"),
                          ("4", "default", "main"): ("203.0.113.9", "eth2")}
    # the network behind the router answers through it
    netns.run(fw, "ping", "-c", "1", "-W", "2", "10.50.0.1")
    before = tagged(fw)
    apply(lab, fw, plan)  # a second run changes nothing
    assert tagged(fw) == before

    # 10.60.0.0/16 and the IPv6 route taken out, the default route through another router.
    changed = netns.plan_of("primary_backup", "nftables", with_routes(
        {"routes": ["10.50.0.0/16"], "gateway": "10.10.1.20"}, {"routes": ["0.0.0.0/0"], "gateway": "203.0.113.10"}))
    apply(lab, fw, changed)
    assert tagged(fw) == {("4", "10.50.0.0/16", "main"): ("10.10.1.20", "eth1"),
                          ("4", "default", "main"): ("203.0.113.10", "eth2")}
    assert "10.70.0.0/16 via 203.0.113.9" in netns.run(fw, "ip", "route", "show", "10.70.0.0/16")

    # A plan without routes: the script removes every route it set, nothing else.
    apply(lab, fw, netns.plan_of("primary_backup", "nftables"))
    assert tagged(fw) == {}
    assert "10.70.0.0/16" in netns.run(fw, "ip", "route", "show", "10.70.0.0/16")
    assert "10.10.1.0/24" in netns.run(fw, "ip", "route", "show", "10.10.1.0/24")


def test_remove_takes_out_every_tagged_route_in_every_table(lab):
    fw = lab.namespace("rm-fw")
    lab.host("rm-in", fw, "eth1", ["10.10.1.20/24"])
    netns.add_address(fw, "10.10.1.1/24", "eth1")
    netns.run(fw, "ip", "route", "add", "10.80.0.0/16", "via", "10.10.1.20", "table", "101", "proto", str(PROTO))
    plan = netns.plan_of("primary_backup", "nftables", with_routes({"routes": ["10.50.0.0/16"], "gateway": "10.10.1.20"}))
    apply(lab, fw, plan)
    # a table the plan does not name: the route an earlier plan put there goes
    assert tagged(fw) == {("4", "10.50.0.0/16", "main"): ("10.10.1.20", "eth1")}
    apply(lab, fw, plan, "remove")
    assert tagged(fw) == {}
