"""The deployed hash cluster's nodes, once each owns its own node id (verify.yml runs these).

Every node runs keepalived, conntrackd and the three boot units, routes the
network behind the inside router, has nf_conntrack_tcp_loose=0, holds every
VIP of both families, listens to every segment's multicast MAC, and its live
mangle table is the plan's plus exactly its own id's rule, as iptables-save
prints it (nftables: the owner chain of every family holds exactly its own
id's rule, and the neighbour rewrite table is loaded where the cluster has
IPv6 VIPs; the status compares the rest of its tables with rules.nft).
"""

from __future__ import annotations

import json
import re

import pytest

testinfra_hosts = ["ansible://mesh"]


@pytest.mark.parametrize("unit", ["keepalived", "conntrackd", "fwcluster-netfilter", "fwcluster-hash-links",
                                  "fwcluster-routes"])
def test_the_daemons_and_the_boot_units_are_active(unit_state, unit):
    assert unit_state(unit) == "active"


def test_tcp_loose_is_off(host):
    assert host.sysctl("net.netfilter.nf_conntrack_tcp_loose") == 0


def test_the_node_holds_every_vip(host, plan):
    held = [line.split()[3] for line in host.check_output("ip -o addr show").splitlines()]
    vips = [segment[key] for segment in plan["segments"].values() for key in ("vip", "vip6") if segment.get(key)]
    assert [vip for vip in vips if vip not in held] == []


def test_every_segment_interface_listens_to_its_multicast_mac(host, plan, name):
    for link in plan["nodes"][name]["hash"]["links"]:
        listening = [line.split()[1] for line in host.check_output("ip maddr show dev %s", link["interface"]).splitlines()
                     if line.split()[0] == "link"]
        assert link["multicast_mac"] in listening, "%s: %s" % (link["interface"], listening)


def test_neighbour_advertisements_are_rewritten_where_the_cluster_has_ipv6_vips(host, plan, name):
    listing = host.run("nft list table ip6 fwcluster_nd")
    if not plan["nodes"][name]["hash"]["neighbours"]:
        assert listing.rc != 0, "an IPv4-only node has no neighbour rewrite table"
        return
    for link in plan["nodes"][name]["hash"]["links"]:
        if link.get("vip6"):
            # the rewrite names the VIP; the links script filled in the interface's MAC
            assert link["vip6"].split("/")[0] in listing.stdout and "OWN_MAC" not in listing.stdout, listing.stdout


def test_the_node_routes_the_networks_behind_the_segments_routers(host, plan, name):
    """The plan's routes, tagged with the routes script's protocol number (157), and no other tagged route."""
    routes = plan["nodes"][name]["routes"]
    assert routes, "the example inventory routes a network behind the inside router"
    live = json.loads(host.check_output("ip -4 -j route show table all proto 157"))
    assert sorted((r["dst"], r["gateway"], r["dev"]) for r in live) == sorted(
        (r["to"], r["via"], r["interface"]) for r in routes)


def test_the_live_mangle_table_is_the_plans_with_exactly_this_nodes_id_rule(host, plan, name):
    node = plan["nodes"][name]
    if plan["backend"] == "nftables":
        for family in plan["hash"]["families"]:
            listing = host.check_output("nft list chain %s", family["backend_chain"])
            assert re.findall(r'comment "%s([0-9]+)"' % plan["hash"]["owner_comment"], listing) == [
                str(node["node_id"])], family["backend_chain"]
        return
    rendered = [table for table in node["ruleset"] if table["table"] == "mangle"][0]["rules"]
    live = [line for line in host.check_output("iptables-save -t mangle").splitlines() if line.startswith("-A")]
    assert live == rendered + [plan["hash"]["owner_rules"][node["node_id"]]]
