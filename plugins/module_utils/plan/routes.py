# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks behind a router: static routes of the nodes.

A segment of a primary_backup, multipath or hash cluster may lead to more
networks than its own, behind a router on it (an inside router with the
office networks behind it, an upstream router with the default route):

    fwcluster_segments:
      inside:
        vip: [10.20.1.254/24, "2001:db8:20:1::fe/64"]
        routes: [10.20.8.0/22, "2001:db8:28::/48"]
        gateway: [10.20.1.10, "2001:db8:20:1::10"]

Every node routes them through the gateway of their family, on its interface
of the segment (fwcluster-routes.service). A sandwich's firewalls route
through its balancers; the networks behind a side are that side's routes
(fwcluster_balancers).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import read
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import SEGMENT_KEY, Claim
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError

_SANDWICH = ("a %(architecture)s's firewalls route through its load balancers: the networks behind a side are "
             "that side's routes and gateway (fwcluster_balancers.<side>)")
# The segment keys of the architectures whose nodes route the segments' networks themselves.
CLAIMS = (
    Claim(SEGMENT_KEY, "routes", _SANDWICH),
    Claim(SEGMENT_KEY, "gateway", _SANDWICH),
)


def read_gateways(value, vips, label, variable, network_name):
    """The router(s) of `routes`: an address, or a list of one per family, each on its network (not the VIP)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or len(items) > 2:
        raise PlanError(label, variable, "must be an address on the %s network, or a list of one per family; "
                        "got %s" % (network_name, read.describe(value)))
    gateways = {}
    for index, item in enumerate(items):
        where = variable if isinstance(value, str) else "%s[%d]" % (variable, index)
        text = read.string(item, label, where)
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise PlanError(label, where, "%r is not an address" % text)
        if address.version in gateways:
            raise PlanError(label, where, "%s is a second IPv%d router; give one per family" % (address, address.version))
        vip = vips.get(address.version)
        if vip is None or address not in vip.network or address == vip.ip:
            raise PlanError(label, where, "%s must be a router on the %s network %s, not the VIP"
                            % (address, network_name, vip.network if vip is not None
                               else "(no IPv%d VIP)" % address.version))
        if address in (vip.network.network_address, vip.network.broadcast_address) and vip.network.prefixlen < 31:
            raise PlanError(label, where, "%s is the %s network's %s address, not a router"
                            % (address, network_name, "network" if address == vip.network.network_address
                               else "broadcast"))
        gateways[address.version] = address
    return gateways


def read_routes(value, vips, label, variable, side_name, remedy):
    """The networks behind a router: [IPv4Network | IPv6Network], each family with a VIP, each once.

    remedy: what gives the side (a segment, a sandwich's side) a VIP of the route's family."""
    found = []
    for index, item in enumerate(read.sequence(value, label, variable)):
        where = "%s[%d]" % (variable, index)
        network = read.ip_network(item, label, where)
        if network.version not in vips:
            raise PlanError(label, where, "%s is IPv%d and the %s has no IPv%d VIP: %s or leave the route out"
                            % (network, network.version, side_name, network.version, remedy))
        if network not in found:
            found.append(network)
    return found


def read_segment_routes(cluster):
    """Check every segment's routes and gateway; {segment name: (routes, {version: gateway})}.

    A route may not be a segment's or the replication link's network (or lie
    inside one: those are on the link), nor be routed through two segments;
    a wider one (the default route) is fine, the link's own route is longer.
    """
    label = cluster.label
    found = {}
    links = [vip.network for segment in cluster.segments.values() for vip in segment.vips.values()]
    if cluster.replication is not None:
        links.append(cluster.replication.network)
    nodes = set(address.ip for node in cluster.nodes
                for address in list(node.addresses.values()) + list(node.addresses6.values()))
    routed = {}
    for segment in cluster.segments.values():
        variable = "fwcluster_segments.%s" % segment.name
        value = segment.options.get("routes")
        if value is None:
            if segment.options.get("gateway") is not None:
                raise PlanError(label, variable + ".gateway", "routes nothing: name the networks behind it (routes)")
            continue
        networks = read_routes(value, segment.vips, label, variable + ".routes", "segment",
                               "give it one beside its IPv4 one (dual stack)")
        if not networks:
            continue
        if segment.options.get("gateway") is None:
            raise PlanError(label, variable + ".gateway", "is required with routes: the router on segment %s that "
                            "leads to them (one address per family of the routes)" % segment.name)
        gateways = read_gateways(segment.options["gateway"], segment.vips, label, variable + ".gateway",
                                 "segment %s's" % segment.name)
        for gateway in gateways.values():
            if gateway in nodes:
                raise PlanError(label, variable + ".gateway", "%s is a node's address: the router must be another host"
                                % gateway)
        for index, network in enumerate(networks):
            where = "%s.routes[%d]" % (variable, index)
            if network.version not in gateways:
                raise PlanError(label, variable + ".gateway", "has no IPv%d router for %s (routes): give one "
                                "address per family of the routes" % (network.version, network))
            for link in links:
                if link.version == network.version and network.subnet_of(link):
                    raise PlanError(label, where, "%s is on the cluster's link %s, which needs no route"
                                    % (network, link))
            if network in routed:
                raise PlanError(label, where, "%s is already routed through segment %s" % (network, routed[network]))
            routed[network] = segment.name
        found[segment.name] = (networks, gateways)
    return found


def node_routes(cluster, node):
    """The node's routes to the networks behind the segments' routers, in segment order."""
    return [route(network, gateways[network.version], node.interfaces[name])
            for name, (networks, gateways) in cluster.segment_routes.items() for network in networks]


def route(network, via, interface, table_id=None):
    """One route of fwcluster-routes.service: to (a network, or default), via, interface, table (None: main)."""
    return {
        "to": "default" if network.prefixlen == 0 and network.version == 4 else network.with_prefixlen,
        "via": str(via),
        "interface": interface,
        "table": table_id,
    }
