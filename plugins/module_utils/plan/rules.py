# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules as data: what a rule means, not how a tool spells it.

An architecture says what its nodes filter, translate and mark as Table and
Rule objects; a backend (backends/iptables.py) spells them for its tool. A
match or a verdict is a tuple whose first item names it ("in_interface",
"destination_ports", "snat", ...); the constructors below are the only
place that builds them. Matches keep their order: it is the order a backend
writes them in. A constructor given nothing to match (no interface, the
whole address space, proto all) returns None, and Rule leaves it out.

The address family belongs to the table: "ipv4" and "ipv6" for the IP
tables, "arp" for ARP rules (a shared cluster MAC).
"""

from __future__ import annotations

import ipaddress

IPV4 = "ipv4"
IPV6 = "ipv6"
ARP = "arp"

FILTER_POLICIES = {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
NAT_POLICIES = {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "OUTPUT": "ACCEPT", "POSTROUTING": "ACCEPT"}
MANGLE_POLICIES = {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT",
                   "POSTROUTING": "ACCEPT"}
RAW_POLICIES = {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}

# VRRP has no name in the node image's /etc/protocols, so it is matched by number.
VRRP_PROTOCOL = "112"

# What a request of an accepted ICMP entry may be, and what its reply is.
ICMP_REQUEST = "echo-request"
ICMP_REPLY = "echo-reply"

# A policy entry's "icmp" in each family: ICMP for IPv4, ICMPv6 for IPv6.
ICMP_PROTOCOLS = {IPV4: "icmp", IPV6: "ipv6-icmp"}
# What an IPv6 node must receive to have neighbours at all (RFC 4890, 4.4.1):
# neighbour discovery (router and neighbour solicitations and advertisements)
# and multicast listener discovery (130-132, 143), which switches that snoop
# MLD need to forward VRRP's ff02::12 and the solicited-node groups. MLD comes
# from link-local addresses only.
NEIGHBOUR_DISCOVERY = ("router-solicitation", "router-advertisement", "neighbour-solicitation",
                       "neighbour-advertisement")
MULTICAST_LISTENER_DISCOVERY = ("130", "131", "132", "143")


class Rule(object):
    """One rule of a chain: matches in order, then a verdict; the comment names its origin.

    counted: something reads the rule's packet counter (by its comment). iptables
    counts every rule; nftables only those written with a counter.
    """

    def __init__(self, chain, matches=(), verdict=None, comment=None, counted=False):
        self.chain = chain
        self.matches = tuple(match for match in matches if match is not None)
        self.verdict = verdict
        self.comment = comment
        self.counted = counted

    def matches_of(self, kind):
        return [match[1:] for match in self.matches if match[0] == kind]

    def __repr__(self):
        return "Rule(%r, %r, %r, %r, counted=%r)" % (self.chain, self.matches, self.verdict, self.comment, self.counted)


class Table(object):
    """A table of one address family: built-in chain policies, user chains, rules in order."""

    def __init__(self, name, policies, rules, user_chains=(), family=IPV4):
        self.name = name
        self.family = family
        self.policies = dict(policies)
        self.user_chains = list(user_chains)
        self.rules = list(rules)


# --------------------------------------------------------------------------
# Matches
# --------------------------------------------------------------------------

def in_interface(name):
    return ("in_interface", name) if name else None


def out_interface(name):
    return ("out_interface", name) if name else None


def source(address):
    """An ipaddress network or address; None and 0.0.0.0/0 match anything and are left out."""
    return ("source", address) if _narrows(address) else None


def destination(address):
    return ("destination", address) if _narrows(address) else None


def _narrows(address):
    return address is not None and getattr(address, "prefixlen", 32) != 0


def protocol(name, family=IPV4):
    """tcp, udp, icmp (ICMPv6 in the ipv6 family), a protocol number; "all" is no match."""
    if name == "icmp":
        name = ICMP_PROTOCOLS[family]
    return ("protocol", name) if name != "all" else None


def tcp_not_syn():
    """A TCP packet that does not open a connection (not SYN without ACK)."""
    return ("tcp_not_syn",)


def destination_ports(ports):
    """Ports from the model (ints and (low, high) ranges); empty or None is no match."""
    return ("destination_ports", tuple(ports)) if ports else None


def source_ports(ports):
    return ("source_ports", tuple(ports)) if ports else None


def icmp_type(name):
    return ("icmp_type", name) if name else None


def icmpv6_type(name):
    return ("icmpv6_type", name)


def packet_length(length):
    """The packet's length at the IP layer, headers included."""
    return ("packet_length", length)


def ct_state(*states):
    return ("ct_state", states)


def not_marked(value, mask):
    return ("not_marked", value, mask)


def not_local_destination():
    """A packet the node forwards (its destination is none of the node's addresses)."""
    return ("not_local_destination",)


def cluster_nodes(mask, total, seed):
    """The cluster match: the packet hashes to one of the node ids in mask (bit k is node id k)."""
    return ("cluster_nodes", mask, total, seed)


def arp_hardware_length(length):
    return ("arp_hardware_length", length)


def arp_destination_mac(mac):
    return ("arp_destination_mac", mac)


def stateful_prologue(chain):
    """The head of INPUT and FORWARD: drop what conntrack cannot place, pass known flows.

    A TCP packet that is NEW but not a SYN is a flow this node never saw begin;
    with nf_conntrack_tcp_loose=0 it is dropped here instead of being adopted.
    """
    return [
        Rule(chain, [ct_state("INVALID")], DROP),
        Rule(chain, [protocol("tcp"), tcp_not_syn(), ct_state("NEW")], DROP),
        Rule(chain, [ct_state("RELATED", "ESTABLISHED")], ACCEPT),
    ]


def neighbour_discovery():
    """INPUT rules of an IPv6 node's own links: neighbour discovery, and MLD from link-local sources."""
    link_local = ipaddress.ip_network("fe80::/10")
    return ([Rule("INPUT", [protocol("ipv6-icmp"), icmpv6_type(kind)], ACCEPT) for kind in NEIGHBOUR_DISCOVERY]
            + [Rule("INPUT", [source(link_local), protocol("ipv6-icmp"), icmpv6_type(kind)], ACCEPT)
               for kind in MULTICAST_LISTENER_DISCOVERY])


def ipv6_closed():
    """IPv6 while the cluster filters IPv4 only: nothing forwarded, the node keeps its own links working."""
    return [Table("filter", FILTER_POLICIES, [
        Rule("INPUT", [in_interface("lo")], ACCEPT),
        Rule("INPUT", [ct_state("INVALID")], DROP),
        Rule("INPUT", [ct_state("RELATED", "ESTABLISHED")], ACCEPT),
    ] + [Rule("INPUT", [protocol("ipv6-icmp"), icmpv6_type(kind)], ACCEPT)
         for kind in ("neighbour-solicitation", "neighbour-advertisement", "router-advertisement")],
        family=IPV6)]


def untracked_forwarding():
    """Packets not addressed to the node itself (a VIP counts while the node holds it) are not tracked."""
    return Rule("PREROUTING", [not_local_destination()], NOTRACK)


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------

ACCEPT = ("accept",)
DROP = ("drop",)
RETURN = ("return",)
NOTRACK = ("notrack",)


def reject(proto):
    """A TCP reset tells a client at once; others get port-unreachable."""
    return ("reject", "tcp-reset" if proto == "tcp" else None)


def verdict_of(action, proto):
    """The verdict of a policy action (accept, drop, reject) for a protocol."""
    if action == "accept":
        return ACCEPT
    if action == "drop":
        return DROP
    return reject(proto)


def jump(chain):
    return ("jump", chain)


def set_mark(value, mask):
    return ("set_mark", value, mask)


def snat(address, port_range=None):
    """Translate the source to address, its port into port_range (low, high) when given."""
    return ("snat", address, port_range)


def dnat(address, port=None):
    return ("dnat", address, port)


def hash_mark(on, buckets, offset, seed):
    """Mark a packet offset + hash(address) % buckets; on: "source" or "destination" address."""
    return ("hash_mark", on, buckets, offset, seed)


def accept_as_host():
    """Accept a packet sent to a multicast MAC as if to the node's own (nftables: meta pkttype set host)."""
    return ("accept_as_host",)


def arp_source_mac(mac):
    """Rewrite an ARP packet's sender MAC (OWN_MAC: the interface's own, read on the node)."""
    return ("arp_source_mac", mac)


def arp_target_mac(mac):
    return ("arp_target_mac", mac)
