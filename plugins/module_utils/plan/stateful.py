# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules every architecture that filters statefully shares: INPUT, FORWARD and NAT.

An architecture takes them as they are, leaves some out (no VRRP where the
firewalls hold no VIP), adds its own beside them, or keeps only INPUT (a
stateless forward path still has a node to protect).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import rules, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.model import POLICY_ANY, POLICY_FIREWALL
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import Rule

MANAGEMENT_COMMENT = "fwcluster management"
VERSIONS = {rules.IPV4: 4, rules.IPV6: 6}


def segment_interface(node, segment_name):
    """The node's interface on a policy entry's segment; None for any and firewall."""
    if segment_name in (POLICY_ANY, POLICY_FIREWALL):
        return None
    return node.interfaces[segment_name]


def access_rule(chain, action, proto, ports=None, in_interface=None, out_interface=None,
                source=None, destination=None, comment=None, ct_state="NEW", family=rules.IPV4):
    """A rule that admits (or refuses) the first packet of a flow."""
    return Rule(chain, [
        rules.in_interface(in_interface),
        rules.out_interface(out_interface),
        rules.source(source),
        rules.destination(destination),
        rules.protocol(proto, family),
        rules.destination_ports(ports) if proto in ("tcp", "udp") else None,
        rules.ct_state(ct_state) if ct_state else None,
    ], rules.verdict_of(action, proto), comment)


def vrrp_rule(interface):
    return Rule("INPUT", [rules.in_interface(interface), rules.protocol(rules.VRRP_PROTOCOL)], rules.ACCEPT)


def is_vrrp_rule(rule):
    return (rules.VRRP_PROTOCOL,) in rule.matches_of("protocol")


def management_rules(cluster, family=rules.IPV4):
    """Who may reach the nodes' own services (fwcluster_management), its sources of one family."""
    management = cluster.management
    if not management["tcp_ports"]:
        return []
    return [access_rule("INPUT", "accept", "tcp", ports=management["tcp_ports"], source=source,
                        comment=MANAGEMENT_COMMENT, family=family)
            for source in management["sources"] if source.version == VERSIONS[family]]


def replication_protocol(transport):
    """The IP protocol conntrackd's messages travel in: tcp for transport tcp, udp for udp and multicast."""
    return "tcp" if transport == "tcp" else "udp"


def replication_rules(interface, network, transport, port):
    """conntrackd messages and the link check's pings, only on the dedicated link.

    The link's traffic is untracked (replication_untracked): no ESTABLISHED
    state admits the answers, so they are admitted here. Over TCP each node
    both listens on the port and connects to its peers' port: a segment from
    the port answers this node's connection (its resets included).
    """
    proto = replication_protocol(transport)
    found = [Rule("INPUT", [rules.in_interface(interface), rules.source(network), rules.protocol(proto),
                            rules.destination_ports([port])], rules.ACCEPT)]
    if proto == "tcp":
        found.append(Rule("INPUT", [rules.in_interface(interface), rules.source(network), rules.protocol(proto),
                                    rules.source_ports([port])], rules.ACCEPT))
    found.extend(Rule("INPUT", [rules.in_interface(interface), rules.source(network), rules.protocol("icmp"),
                                rules.icmp_type(kind)], rules.ACCEPT)
                 for kind in (rules.ICMP_REQUEST, rules.ICMP_REPLY))
    return found


def replication_comment(peer):
    """The comment of the rule that counts what arrives from PEER on the replication link."""
    return "fwcluster replication from %s" % peer.name


def upstream_comment(peer):
    """The comment of the rule that counts PEER's upstream beacons (one per check while its upstream answers)."""
    return "fwcluster upstream from %s" % peer.name


def conntrackd_comment(peer):
    """The comment of the rule that counts PEER's conntrackd messages (one a second at least, when alive)."""
    return "fwcluster conntrackd from %s" % peer.name


def replication_untracked(cluster, node):
    """The replication link's own traffic is not tracked, so never replicated: raw rules, one per peer.

    Tracked, each peer's messages were flows of their own, replicated in turn
    (a multicast group is nobody's own address), and a restarted peer dropped
    the stale TCP connection's segments as INVALID instead of resetting it.
    Untracked, they reach the link's INPUT rules as they are. Rules of each
    peer count what is received from it: its conntrackd's messages (the
    tracking's proof that a peer can take over), its upstream beacons where
    upstream hosts are tracked (proof that its upstream answers), and
    everything (the link's heartbeat). CT is not a final verdict: a packet
    passes all that match.
    """
    if cluster.replication is None:
        return []
    interface = node.replication_interface
    replication = cluster.replication
    proto = replication_protocol(replication.transport)
    found = []
    for peer in cluster.nodes:
        if peer is node:
            continue
        # conntrackd sends its peers its messages to the port (over TCP, on
        # the connection it opened): FTFW an ALIVE a second at least, NOTRACK
        # whenever its flows change. This counter is the peer's conntrackd
        # alive; the next, its node.
        found.append(Rule("PREROUTING", [rules.in_interface(interface), rules.source(peer.replication_address.ip),
                                         rules.protocol(proto), rules.destination_ports([replication.port])],
                          rules.NOTRACK, conntrackd_comment(peer), counted=True))
        if cluster.tracking.get("upstream"):
            # A peer whose upstream hosts answer says so with a ping of its own length on every check.
            found.append(Rule("PREROUTING", [rules.in_interface(interface), rules.source(peer.replication_address.ip),
                                             rules.protocol("icmp"), rules.icmp_type(rules.ICMP_REQUEST),
                                             rules.packet_length(vrrp.UPSTREAM_BEACON_LENGTH)],
                              rules.NOTRACK, upstream_comment(peer), counted=True))
        found.append(Rule("PREROUTING", [rules.in_interface(interface), rules.source(peer.replication_address.ip)],
                          rules.NOTRACK, replication_comment(peer), counted=True))
    found.append(Rule("OUTPUT", [rules.out_interface(interface)], rules.NOTRACK))
    return found


def filter_input_rules(cluster, node, family=rules.IPV4):
    """What may reach the node itself: VRRP, conntrackd, management, `to: firewall` policy.

    family ipv6: the segments with an IPv6 VIP carry VRRP for it, neighbour
    discovery is admitted, and the replication link (IPv4) is left out.
    """
    found = [Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT)] + rules.stateful_prologue("INPUT")
    if family == rules.IPV6:
        found.extend(rules.neighbour_discovery())
    for segment in cluster.segments.values():
        if VERSIONS[family] in segment.vips:
            found.append(vrrp_rule(node.interfaces[segment.name]))
    replication = cluster.replication
    if replication is not None and family == rules.IPV4:
        found.extend(replication_rules(node.replication_interface, replication.network,
                                       replication.transport, replication.port))
    found.extend(management_rules(cluster, family))
    for entry in cluster.policy:
        if entry.target_segment == POLICY_FIREWALL and entry.applies_to(VERSIONS[family]):
            found.append(access_rule(
                "INPUT", entry.action, entry.proto, ports=entry.ports,
                in_interface=segment_interface(node, entry.source_segment),
                source=entry.source, destination=entry.destination, comment=entry.name, family=family))
    return found


def filter_forward_rules(cluster, node, before_policy=(), family=rules.IPV4):
    """What may cross the node: published (DNAT) services first, then the policy in order.

    DNAT accepts come first so that a catch-all drop/reject at the end of the
    policy cannot hide a service the inventory publishes on purpose. IPv6 is
    routed without translation: its rules are the policy's entries of both
    families and its own.
    """
    found = rules.stateful_prologue("FORWARD")
    for entry in cluster.nat:
        if entry.kind != "dnat" or family != rules.IPV4:
            continue
        target_segment = cluster.segment_of_address(entry.to_address)
        found.append(access_rule(
            "FORWARD", "accept", entry.proto, ports=[entry.to_port or entry.port],
            in_interface=node.interfaces[entry.segment],
            out_interface=node.interfaces[target_segment] if target_segment else None,
            source=entry.source, destination=ipaddress.ip_network(entry.to_address),
            # ctstate DNAT: only flows that came through this translation, not direct connections.
            ct_state="DNAT", comment=entry.name))
    found.extend(before_policy)
    for entry in cluster.policy:
        if entry.target_segment == POLICY_FIREWALL or not entry.applies_to(VERSIONS[family]):
            continue
        found.append(access_rule(
            "FORWARD", entry.action, entry.proto, ports=entry.ports,
            in_interface=segment_interface(node, entry.source_segment),
            out_interface=segment_interface(node, entry.target_segment),
            source=entry.source, destination=entry.destination, comment=entry.name, family=family))
    return found


def nat_rules(cluster, node):
    """DNAT on the VIP, SNAT (masquerade resolved to the VIP while reading) on the way out."""
    found = []
    for entry in cluster.nat:
        if entry.kind == "dnat":
            segment = cluster.segments[entry.segment]
            found.append(Rule("PREROUTING", [
                rules.in_interface(node.interfaces[entry.segment]),
                rules.source(entry.source),
                rules.destination(segment.vip.ip),
                rules.protocol(entry.proto),
                rules.destination_ports([entry.port]),
            ], rules.dnat(entry.to_address, entry.to_port), entry.name))
        else:
            found.append(Rule("POSTROUTING", [
                rules.out_interface(node.interfaces[entry.segment]),
                rules.source(entry.source),
            ], rules.snat(entry.to_address), entry.name))
    return found
