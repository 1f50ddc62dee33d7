# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""primary_backup: one node holds every VIP and forwards; conntrackd keeps the others ready.

The lowest node id is the preferred primary. One VRRP instance per segment,
bound in one sync group, so that the primary holds every VIP at once; on a
transition conntrackd commits its external cache (the peers' flows) into the
kernel, and the new primary carries the flows on.
"""

from __future__ import annotations

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import routes, rules, stateful, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import Architecture, Capabilities
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import Table


class PrimaryBackup(Architecture):
    name = "primary_backup"
    claims = routes.CLAIMS  # the networks behind a segment's router
    capabilities = Capabilities(planned_switchover="addresses")

    def role(self, cluster, node):
        # The lowest id is the preferred primary; preemption decides whether it takes the VIPs back.
        return "primary" if node.node_id == cluster.nodes[0].node_id else "backup"

    def successor(self, cluster, node):
        # The peer keepalived elects next: the highest priority (lowest id) among the others.
        return [other for other in cluster.nodes if other is not node][0]

    def keepalived(self, cluster, node):
        """One VRRP instance per segment, bound in one sync group: the primary holds every VIP."""
        instances = [vrrp.segment_instance(cluster, node, segment, "%s_%s" % (cluster.name, segment.name),
                                           vrrp.priority(node.node_id), cluster.vrrp["preempt"])
                     for segment in cluster.segments.values()]
        # A dual-stack segment's IPv6 VIP: an instance of its own in the same sync group.
        instances.extend(vrrp.segment_instance6(cluster, node, segment, "%s_%s_v6" % (cluster.name, segment.name),
                                                vrrp.priority(node.node_id), cluster.vrrp["preempt"])
                         for segment in cluster.segments.values() if segment.vip6 is not None)
        # keepalived refuses (`keepalived -t` exits non-zero) a sync group of one
        # instance: a single-segment cluster notifies from the instance itself.
        sync_group = None
        if len(instances) > 1:
            sync_group = {"name": cluster.name, "instances": [instance["name"] for instance in instances]}
        return {
            "router_id": node.name,
            "sync_group": sync_group,
            "instances": instances,
        }

    def ruleset(self, cluster, node):
        return [
            Table("filter", rules.FILTER_POLICIES,
                  stateful.filter_input_rules(cluster, node) + stateful.filter_forward_rules(cluster, node)),
            Table("nat", rules.NAT_POLICIES, stateful.nat_rules(cluster, node)),
        ]

    def ruleset6(self, cluster, node):
        """IPv6 is routed, not translated: the filter table alone."""
        return [Table("filter", rules.FILTER_POLICIES,
                      stateful.filter_input_rules(cluster, node, rules.IPV6)
                      + stateful.filter_forward_rules(cluster, node, family=rules.IPV6), family=rules.IPV6)]
