# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iptables building blocks for the cluster plan.

Pure rendering: every value reaching this module has been validated by
cluster_model, so nothing here raises on user input. Each function returns
rule lines in iptables-restore syntax (``-A CHAIN ...``), IPv4 only.
"""

from __future__ import annotations

import re

FILTER_POLICIES = {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
NAT_POLICIES = {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "OUTPUT": "ACCEPT", "POSTROUTING": "ACCEPT"}
MANGLE_POLICIES = {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT",
                   "POSTROUTING": "ACCEPT"}

# VRRP has no name in the node image's /etc/protocols, so it is matched by number.
VRRP_PROTOCOL = "112"

# xt_comment keeps at most 255 characters.
COMMENT_MAX = 255
_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/=+@()-]")


def table(name, policies, rules, user_chains=None):
    """One table of the plan's ruleset: built-in chain policies, user chains, -A lines."""
    return {
        "table": name,
        "chains": dict(policies),
        "user_chains": list(user_chains or []),
        "rules": list(rules),
    }


def sanitize_comment(text):
    """Reduce free text to characters that survive iptables-restore quoting unchanged."""
    cleaned = " ".join(str(text).split())  # newlines and tabs become single spaces
    cleaned = _COMMENT_UNSAFE.sub("_", cleaned)
    return cleaned[:COMMENT_MAX].strip()


def comment_match(text):
    return '-m comment --comment "%s"' % sanitize_comment(text)


def network_text(network):
    """An ipaddress network as iptables prints it; None for 'anywhere'."""
    if network is None or network.prefixlen == 0:
        return None
    return network.with_prefixlen


def port_text(port):
    """A port spec from the model: an int or a (low, high) range tuple."""
    if isinstance(port, tuple):
        return "%d:%d" % port
    return "%d" % port


def port_match(ports):
    """Destination port match for tcp/udp: --dport for one port or range, multiport otherwise."""
    if not ports:
        return None
    if len(ports) == 1:
        return "--dport " + port_text(ports[0])
    return "-m multiport --dports " + ",".join(port_text(port) for port in ports)


def stateful_prologue(chain):
    """The head of INPUT and FORWARD: drop what conntrack cannot place, pass known flows.

    A TCP packet that is NEW but not a SYN is a flow this node never saw begin;
    with nf_conntrack_tcp_loose=0 it is dropped here instead of being adopted.
    """
    return [
        "-A %s -m conntrack --ctstate INVALID -j DROP" % chain,
        "-A %s -p tcp ! --syn -m conntrack --ctstate NEW -j DROP" % chain,
        "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" % chain,
    ]


def _join(parts):
    return " ".join(part for part in parts if part)


def target(action, proto):
    if action == "accept":
        return "-j ACCEPT"
    if action == "drop":
        return "-j DROP"
    # reject: a TCP reset tells a client at once; others get port-unreachable.
    if proto == "tcp":
        return "-j REJECT --reject-with tcp-reset"
    return "-j REJECT"


def access_rule(chain, action, proto, ports=None, in_interface=None, out_interface=None,
                source=None, destination=None, comment=None, ctstate="NEW"):
    """A rule that admits (or refuses) the first packet of a flow."""
    source_text = network_text(source)
    destination_text = network_text(destination)
    return _join([
        "-A " + chain,
        "-i " + in_interface if in_interface else None,
        "-o " + out_interface if out_interface else None,
        "-s " + source_text if source_text else None,
        "-d " + destination_text if destination_text else None,
        "-p " + proto if proto != "all" else None,
        port_match(ports) if proto in ("tcp", "udp") else None,
        "-m conntrack --ctstate " + ctstate if ctstate else None,
        comment_match(comment) if comment else None,
        target(action, proto),
    ])


def vrrp_rule(interface):
    return "-A INPUT -i %s -p %s -j ACCEPT" % (interface, VRRP_PROTOCOL)


def replication_rules(interface, network, transport, port):
    """conntrackd messages and the link check's pings, only on the dedicated link."""
    proto = "tcp" if transport == "tcp" else "udp"
    return [
        "-A INPUT -i %s -s %s -p %s --dport %d -j ACCEPT" % (interface, network.with_prefixlen, proto, port),
        "-A INPUT -i %s -s %s -p icmp --icmp-type echo-request -j ACCEPT" % (interface, network.with_prefixlen),
    ]


def snat_rule(out_interface, source, to_address, comment=None):
    source_text = network_text(source)
    return _join([
        "-A POSTROUTING -o " + out_interface,
        "-s " + source_text if source_text else None,
        comment_match(comment) if comment else None,
        "-j SNAT --to-source %s" % to_address,
    ])


def dnat_rule(in_interface, vip_address, proto, port, to_address, to_port, source=None, comment=None):
    source_text = network_text(source)
    destination = str(to_address) if to_port is None else "%s:%d" % (to_address, to_port)
    return _join([
        "-A PREROUTING -i " + in_interface,
        "-s " + source_text if source_text else None,
        "-d %s" % vip_address,
        "-p %s --dport %d" % (proto, port),
        comment_match(comment) if comment else None,
        "-j DNAT --to-destination " + destination,
    ])


def restore_text(tables):
    """The whole ruleset as one iptables-restore file (what the firewall role writes)."""
    lines = []
    for entry in tables:
        lines.append("*" + entry["table"])
        for chain, policy in entry["chains"].items():
            lines.append(":%s %s [0:0]" % (chain, policy))
        for chain in entry["user_chains"]:
            lines.append(":%s - [0:0]" % chain)
        lines.extend(entry["rules"])
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Stateless building blocks (multipath)
#
# A multipath node sees one direction of most flows, so nothing in its forward
# path may depend on conntrack. Forwarded packets are not tracked at all (raw
# table), and each policy entry is matched twice: as a request (the direction
# the entry names) and as a reply (the mirror: addresses, interfaces and ports
# swapped, TCP without a bare SYN, ICMP echo-reply for echo-request).
# --------------------------------------------------------------------------

RAW_POLICIES = {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}

# Packets not addressed to the node itself (a VIP counts while the node holds
# it) are forwarded: conntrack would see one direction of their flows only.
NOTRACK_FORWARDED = "-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack"

# What a request of an accepted ICMP entry may be, and what its reply is.
ICMP_REQUEST = "echo-request"
ICMP_REPLY = "echo-reply"


def directed_port_match(ports, side):
    """Port match on the destination ('d') or source ('s') side: one port or range, or multiport."""
    if not ports:
        return None
    if len(ports) == 1:
        return "--%sport %s" % (side, port_text(ports[0]))
    return "-m multiport --%sports %s" % (side, ",".join(port_text(port) for port in ports))


def stateless_rule(chain, jump, proto, ports=None, port_side="d", in_interface=None, out_interface=None,
                   source=None, destination=None, not_syn=False, icmp_type=None, comment=None):
    """One forward-path rule without any conntrack match.

    ports are matched on port_side ('d' destination, 's' source); not_syn
    refuses a TCP packet that opens a connection (SYN without ACK); icmp_type
    narrows an ICMP match to one type.
    """
    source_text = network_text(source)
    destination_text = network_text(destination)
    return _join([
        "-A " + chain,
        "-i " + in_interface if in_interface else None,
        "-o " + out_interface if out_interface else None,
        "-s " + source_text if source_text else None,
        "-d " + destination_text if destination_text else None,
        "-p " + proto if proto != "all" else None,
        "! --syn" if proto == "tcp" and not_syn else None,
        directed_port_match(ports, port_side) if proto in ("tcp", "udp") else None,
        "--icmp-type " + icmp_type if proto == "icmp" and icmp_type else None,
        comment_match(comment) if comment else None,
        jump,
    ])
