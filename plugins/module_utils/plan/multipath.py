# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""multipath: two VRRP instances with opposite masters, stateless filtering.

Node id 0 masters the inside VIP (the gateway of the inside hosts: it
forwards what they send out), node id 1 the outside VIP (what comes in and
the replies to the inside hosts). A flow's two directions therefore cross
two different nodes, and neither node can keep its state: the ruleset is
stateless, and replication, NAT and policy entries that need state are
refused before any host is touched (the paper's verdict, as a rule).

Stateless filtering: forwarded packets are not tracked at all (raw table),
and each policy entry is matched twice, as a request (the direction the entry
names) and as a reply (the mirror: addresses, interfaces and ports swapped,
TCP without a bare SYN, ICMP echo-reply for echo-request).

Dual stack: each segment's IPv6 VIP has an instance of its own with the
same owner, and the IPv6 tables repeat the stateless pairs for the entries
of IPv6 (ICMPv6 echo for icmp), beside neighbour discovery on the nodes.
"""

from __future__ import annotations

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps sanity's import test quiet
    Mapping = dict

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import read, routes, rules, stateful, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import Architecture
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.model import POLICY_FIREWALL
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import Rule, Table

# The segment names carry the meaning: which VIP node 0 owns, which node 1.
OWNERS = (("inside", 0), ("outside", 1))  # segment -> node id of its preferred master
NODES = 2
# The standby priority decides how fast the survivor takes the other VIP
# (VRRPv3 skew = (256 - priority) / 256 x advert_int): keep it close to the top.
OWNER_PRIORITY = 254
STANDBY_PRIORITY = 250
ROLES = {0: "outbound", 1: "inbound"}  # node id -> what it forwards while both are up
REQUEST_CHAIN = "fwcluster-request"
REPLY_CHAIN = "fwcluster-reply"
REFUSE_CHAIN = "fwcluster-refuse"

WHY = ("multipath sends the two directions of a flow through two different nodes and filters "
       "statelessly: asynchronous replication would race the flow's own packets (the reply "
       "reaches the other node before the state does)")


class Multipath(Architecture):
    name = "multipath"
    claims = routes.CLAIMS  # the networks behind a segment's router
    vrrp_defaults = {"preempt": True}  # and the precheck refuses preempt: false

    def precheck(self, cluster, inventory):
        """Refuse what multipath cannot do as a whole, before the details of it are checked."""
        label = cluster.label
        cluster_vars = inventory.cluster_vars
        replication = cluster_vars.get("fwcluster_replication")
        if isinstance(replication, Mapping) and read.optional(replication, "enabled", True) is True:
            raise PlanError(label, "fwcluster_replication",
                            "%s. Remove fwcluster_replication or set enabled: false" % WHY)
        nat = cluster_vars.get("fwcluster_nat")
        if isinstance(nat, (list, tuple)) and nat:
            raise PlanError(label, "fwcluster_nat",
                            "multipath refuses NAT: a translation lives in the conntrack entry of the node that "
                            "saw the flow's first packet, and the replies cross the other node, which has none; "
                            "%s. Leave fwcluster_nat empty, or use primary_backup" % WHY)
        settings = cluster_vars.get("fwcluster_vrrp")
        if isinstance(settings, Mapping) and settings.get("preempt") is False:
            raise PlanError(label, "fwcluster_vrrp.preempt",
                            "multipath needs preemption: a returning node must take its own VIP back, or "
                            "the survivor keeps both and the traffic never splits again; remove the key "
                            "(multipath always preempts)")

    def check(self, cluster):
        """Two nodes, the segments inside and outside, and a policy that needs no state."""
        label = cluster.label
        if len(cluster.nodes) != NODES:
            raise PlanError(label, "fwcluster_name",
                            "multipath takes exactly %d nodes (node id 0 masters the inside VIP, node id 1 the "
                            "outside VIP); %d hosts carry fwcluster_name %s"
                            % (NODES, len(cluster.nodes), cluster.name))
        wanted = [name for name, _owner in OWNERS]
        if sorted(cluster.segments) != sorted(wanted):
            raise PlanError(label, "fwcluster_segments",
                            "multipath takes exactly two segments named inside and outside (node id 0 masters "
                            "the inside VIP and forwards what the inside hosts send; node id 1 masters the "
                            "outside VIP and forwards what comes back); got %s" % ", ".join(sorted(cluster.segments)))
        for entry in cluster.policy:
            if entry.target_segment == POLICY_FIREWALL or entry.action != "accept":
                continue  # traffic to the node itself is symmetric; refusals need no state
            variable = "fwcluster_policy[%d]" % entry.index
            if entry.proto == "all":
                raise PlanError(label, variable + ".proto",
                                "accepting proto all needs connection state: without it the replies cannot be "
                                "told from new traffic the other way, and everything would be open both ways; "
                                "%s. Name the protocol: tcp, udp with ports, or icmp" % WHY)
            if entry.proto == "udp" and not entry.ports:
                raise PlanError(label, variable + ".ports",
                                "accepting udp without ports needs connection state: the replies could only be "
                                "admitted as any udp the other way; %s. List the ports" % WHY)

    def role(self, cluster, node):
        return ROLES[node.node_id]

    def keepalived(self, cluster, node):
        """One instance per segment and family, no sync group: each VIP fails over on its own.

        A segment's IPv6 instance has its IPv4 instance's owner and priorities:
        both move when the node dies, and come back together.
        """
        instances = []
        for segment_name, owner in OWNERS:
            segment = cluster.segments[segment_name]
            priority = OWNER_PRIORITY if node.node_id == owner else STANDBY_PRIORITY
            # The owner preempts; so does the standby, harmlessly: the owner's priority is higher.
            instances.append(vrrp.segment_instance(cluster, node, segment, "%s_%s" % (cluster.name, segment_name),
                                                   priority, True))
            if segment.vip6 is not None:
                instances.append(vrrp.segment_instance6(cluster, node, segment,
                                                        "%s_%s_v6" % (cluster.name, segment_name), priority, True))
        return {"router_id": node.name, "sync_group": None, "instances": instances}

    def ruleset(self, cluster, node):
        chains, forward = forward_rules(cluster, node)
        return [
            # Forwarded packets are not tracked: a node sees one direction of a flow.
            # (A VIP counts as the node's own address while the node holds it.)
            Table("raw", rules.RAW_POLICIES, [rules.untracked_forwarding()]),
            # INPUT keeps the stateful rules: traffic to the node itself is symmetric.
            Table("filter", rules.FILTER_POLICIES, stateful.filter_input_rules(cluster, node) + forward,
                  user_chains=chains),
            # Empty, so that a node turned multipath loses any earlier translation.
            Table("nat", rules.NAT_POLICIES, []),
        ]

    def ruleset6(self, cluster, node):
        """The IPv4 tables' stateless pairs for the entries of IPv6; no NAT table (IPv6 is routed)."""
        chains, forward = forward_rules(cluster, node, rules.IPV6)
        return [
            Table("raw", rules.RAW_POLICIES, [rules.untracked_forwarding()], family=rules.IPV6),
            Table("filter", rules.FILTER_POLICIES, stateful.filter_input_rules(cluster, node, rules.IPV6) + forward,
                  user_chains=chains, family=rules.IPV6),
        ]


def entry_rule(node, entry, chain, verdict, reply, family=rules.IPV4):
    """An entry as a request (the direction it names) or as a reply (its mirror), in one family's tables.

    Counted: which node carries which direction is read from these rules'
    packet counters (nftables counts only the rules that ask for it).
    """
    from_interface = stateful.segment_interface(node, entry.source_segment)
    to_interface = stateful.segment_interface(node, entry.target_segment)
    accepted = entry.action == "accept"
    icmp_type = None
    if entry.proto == "icmp" and accepted:
        kind = rules.ICMP_REPLY if reply else rules.ICMP_REQUEST
        icmp_type = rules.icmp_type(kind) if family == rules.IPV4 else rules.icmpv6_type(kind)
    ports = entry.ports if entry.proto in ("tcp", "udp") else None
    if reply:
        return Rule(chain, [
            rules.in_interface(to_interface),
            rules.out_interface(from_interface),
            rules.source(entry.destination),
            rules.destination(entry.source),
            rules.protocol(entry.proto, family),
            # A reply never opens a connection: refusing a bare SYN keeps the
            # mirror of "tcp to port X" from admitting connections from port X.
            rules.tcp_not_syn() if entry.proto == "tcp" and accepted else None,
            rules.source_ports(ports),
            icmp_type,
        ], verdict, "%s (reply)" % entry.name, counted=True)
    return Rule(chain, [
        rules.in_interface(from_interface),
        rules.out_interface(to_interface),
        rules.source(entry.source),
        rules.destination(entry.destination),
        rules.protocol(entry.proto, family),
        rules.destination_ports(ports),
        icmp_type,
    ], verdict, entry.name, counted=True)


def forward_rules(cluster, node, family=rules.IPV4):
    """The policy without state: a packet passes when the policy accepts it as a request or as a reply.

    Each view keeps the policy's first-match order: an accept entry accepts,
    a drop or reject entry ends the view (RETURN). What neither view accepts
    meets the first drop/reject entry it matches (fwcluster-refuse, only
    rendered when the policy rejects), then the chain's DROP policy.
    """
    entries = [entry for entry in cluster.policy
               if entry.target_segment != POLICY_FIREWALL and entry.applies_to(stateful.VERSIONS[family])]
    chains = [REQUEST_CHAIN, REPLY_CHAIN]
    if any(entry.action == "reject" for entry in entries):
        chains.append(REFUSE_CHAIN)
    found = [Rule("FORWARD", verdict=rules.jump(chain)) for chain in chains]
    for reply, chain in ((False, REQUEST_CHAIN), (True, REPLY_CHAIN)):
        for entry in entries:
            verdict = rules.ACCEPT if entry.action == "accept" else rules.RETURN
            found.append(entry_rule(node, entry, chain, verdict, reply, family))
    if REFUSE_CHAIN in chains:
        for entry in entries:
            if entry.action != "accept":
                found.append(entry_rule(node, entry, REFUSE_CHAIN, rules.verdict_of(entry.action, entry.proto),
                                        reply=False, family=family))
    return chains, found
