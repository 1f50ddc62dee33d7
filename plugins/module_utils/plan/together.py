# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clusters deployed together: what one cluster's checks cannot see alone."""

from __future__ import annotations

import ipaddress

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError


def check_plans_together(plans):
    """Refuse two clusters that claim one VRID or one VIP on a network they share.

    plans: {cluster name: plan} of the clusters one play deploys (validate_node_ids).
    Routers on one network tell VRRP adverts apart by the VRID alone, so two clusters
    with the same VRID on one network (or on networks that overlap) fight over mastership;
    a VIP claimed by both is one address with two owners. Each cluster was checked alone
    first; the later cluster (by name) is refused, naming the earlier one.
    """
    vrids = {}  # vrid -> _Networks of the clusters seen so far
    vips = {}  # VIP address -> (cluster, variable)
    for name in sorted(plans, key=str):
        label = "cluster %s" % name
        claims = _vrid_claims(plans[name])
        # Against the clusters before this one only: a cluster's own instances may share a network.
        for vrid, network, variable, what in claims:
            earlier = vrids[vrid].overlapping(network) if vrid in vrids else None
            if earlier is not None:
                other_network, other_name, other_variable = earlier
                raise _together_error(name, label, variable, "%s on network %s is already used by cluster %s on "
                                      "network %s (%s); clusters that share a network need VRIDs of their own"
                                      % (what, network, other_name, other_network, other_variable))
        for vrid, network, variable, what in claims:
            vrids.setdefault(vrid, _Networks()).add(network, (network, name, variable))
        for vip, variable in _vip_claims(plans[name]):
            if vip in vips:
                other_name, other_variable = vips[vip]
                raise _together_error(name, label, variable, "%s is already a VIP of cluster %s (%s); an address "
                                      "has one owner on a network" % (vip, other_name, other_variable))
            vips[vip] = (name, variable)


class _Networks(object):
    """Networks with what claimed each, searched for overlaps in time linear in the prefix length.

    Two CIDR networks overlap when one holds the other: a new network overlaps
    one seen before that lies inside it (found among the supernets recorded for
    every network added) or one of its own supernets (looked up one by one), so
    a fleet of clusters is checked in time linear in its size.
    """

    def __init__(self):
        self.exact = {}  # network -> its first claim
        self.inside = {}  # network -> the first claim of a network it holds (itself included)

    def add(self, network, claim):
        self.exact.setdefault(network, claim)
        for prefix in range(network.prefixlen + 1):
            self.inside.setdefault(network.supernet(new_prefix=prefix), claim)

    def overlapping(self, network):
        """The claim of a network that overlaps network, or None."""
        if network in self.inside:
            return self.inside[network]
        for prefix in range(network.prefixlen):
            claim = self.exact.get(network.supernet(new_prefix=prefix))
            if claim is not None:
                return claim
        return None


def _together_error(name, label, variable, rule):
    error = PlanError(label, variable, rule)
    error.cluster = name  # as validate_node_ids attaches it to a refusal of one cluster
    return error


def _vrid_claims(plan):
    """(vrid, network, variable, description) of every VRRP instance of a plan, once each.

    The network is the one the instance advertises on: its host's address on the
    instance's segment (a load balancer's "front" included). A VRID the plan derives
    (one per node id from the segment's vrid, say) says so in its description.
    """
    claims = []
    hosts = list(plan["nodes"].values()) + list((plan.get("balancers") or {}).values())
    for host in hosts:
        for instance in (host["keepalived"] or {}).get("instances", []):
            segment = instance["segment"]
            vrid = instance["vrid"]
            # an IPv6 instance advertises on the segment's IPv6 network (VRIDs are numbered per family)
            addresses = host.get("addresses6") if instance.get("family") == "ipv6" else host["addresses"]
            network = ipaddress.ip_interface(addresses[segment]).network
            if segment in plan["segments"]:
                variable = "fwcluster_segments.%s.vrid" % segment
                written = plan["segments"][segment]["vrid"]
            else:  # a load balancer's front network
                variable = "fwcluster_balancers.%s.vrid" % host["side"]
                written = vrid
            what = "VRID %d" % vrid if vrid == written else "VRID %d (derived from %s %d)" % (vrid, variable, written)
            claim = (vrid, network, variable, what)
            if claim not in claims:
                claims.append(claim)
    return claims


def _vip_claims(plan):
    """(VIP address, variable) of a plan: the segments' VIPs and the load balancers' front VIPs."""
    claims = [(ipaddress.ip_interface(segment["vip"]).ip, "fwcluster_segments.%s.vip" % name)
              for name, segment in plan["segments"].items()]
    sides = (plan.get("balancing") or {}).get("sides", {})
    claims.extend((ipaddress.ip_interface(side["front_vip"]).ip, "fwcluster_balancers.%s.vip" % name)
                  for name, side in sides.items())
    return claims
