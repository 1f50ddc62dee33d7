# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The xtables backend: rule intents as iptables-restore, ip6tables-restore and arptables-restore lines.

Pure rendering: every value reaching this module was validated by the plan's
readers, so nothing here raises on user input. A kind of match or verdict
this backend cannot spell is a programming error (KeyError), not a refusal.
"""

from __future__ import annotations

import re

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import ARP, IPV4

# xt_comment keeps at most 255 characters.
COMMENT_MAX = 255
_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/=+@()-]")


def sanitize_comment(text):
    """Reduce free text to characters that survive iptables-restore quoting unchanged."""
    cleaned = " ".join(str(text).split())  # newlines and tabs become single spaces
    cleaned = _COMMENT_UNSAFE.sub("_", cleaned)
    return cleaned[:COMMENT_MAX].strip()


def address_text(address):
    """A network with its prefix (10.10.1.0/24), a single address as written (10.10.1.254)."""
    return address.with_prefixlen if hasattr(address, "prefixlen") else str(address)


def port_text(port):
    """A port from the model: an int or a (low, high) range."""
    if isinstance(port, tuple):
        return "%d:%d" % port
    return "%d" % port


def _ports(side, ports):
    if len(ports) == 1:
        return "--%sport %s" % (side, port_text(ports[0]))
    return "-m multiport --%sports %s" % (side, ",".join(port_text(port) for port in ports))


_MATCHES = {
    "in_interface": lambda name: "-i " + name,
    "out_interface": lambda name: "-o " + name,
    "source": lambda address: "-s " + address_text(address),
    "destination": lambda address: "-d " + address_text(address),
    "protocol": lambda name: "-p " + name,
    "tcp_not_syn": lambda: "! --syn",
    "destination_ports": lambda ports: _ports("d", ports),
    "source_ports": lambda ports: _ports("s", ports),
    "icmp_type": lambda name: "--icmp-type " + name,
    "icmpv6_type": lambda name: "--icmpv6-type " + name,
    "packet_length": lambda length: "-m length --length %d" % length,
    "ct_state": lambda states: "-m conntrack --ctstate " + ",".join(states),
    "not_marked": lambda value, mask: "-m mark ! --mark 0x%x/0x%x" % (value, mask),
    "not_local_destination": lambda: "-m addrtype ! --dst-type LOCAL",
    "cluster_nodes": lambda mask, total, seed: ("-m cluster --cluster-local-nodemask 0x%08x --cluster-total-nodes %d "
                                                "--cluster-hash-seed 0x%08x" % (mask, total, seed)),
    "arp_hardware_length": lambda length: "--h-length %d" % length,
    "arp_destination_mac": lambda mac: "--destination-mac " + mac,
}

_VERDICTS = {
    "accept": lambda: "-j ACCEPT",
    "drop": lambda: "-j DROP",
    "return": lambda: "-j RETURN",
    "reject": lambda reset: "-j REJECT --reject-with " + reset if reset else "-j REJECT",
    "jump": lambda chain: "-j " + chain,
    "notrack": lambda: "-j CT --notrack",
    # iptables-save prints --set-xmark whichever of --set-mark/--set-xmark was written.
    "set_mark": lambda value, mask: "-j MARK --set-xmark 0x%x/0x%x" % (value, mask),
    "snat": lambda address, ports: "-j SNAT --to-source %s%s" % (address, ":%d-%d" % ports if ports else ""),
    "dnat": lambda address, port: "-j DNAT --to-destination %s%s" % (address, ":%d" % port if port else ""),
    "hash_mark": lambda on, buckets, offset, seed: (
        "-j HMARK --hmark-tuple %s --hmark-mod %d --hmark-offset %d --hmark-rnd 0x%08x"
        % ({"source": "src", "destination": "dst"}[on], buckets, offset, seed)),
    "arp_source_mac": lambda mac: "-j mangle --mangle-mac-s " + mac,
    "arp_target_mac": lambda mac: "-j mangle --mangle-mac-d " + mac,
}


def counters_command(table, chain, family=None):
    """What lists a chain's rules with their packet counters: iptables-save -c of its whole table."""
    return "iptables-save -c -t %s" % table


def chain_name(table, chain):
    """A chain as iptables-save lists it: the same name in every table."""
    return chain


def chain_reference(table, chain, family=None):
    """A chain as iptables -t TABLE names it."""
    return chain


def rule_arguments(rule, table=None):
    """A rule without its "-A CHAIN": the arguments of iptables -C/-A/-D."""
    parts = [_MATCHES[match[0]](*match[1:]) for match in rule.matches]
    if rule.comment:
        parts.append('-m comment --comment "%s"' % sanitize_comment(rule.comment))
    if rule.verdict is not None:
        parts.append(_VERDICTS[rule.verdict[0]](*rule.verdict[1:]))
    return " ".join(parts)


def rule_line(rule, table=None, family=None):
    """A rule as iptables-save prints it (-A CHAIN ...)."""
    arguments = rule_arguments(rule)
    return "-A %s %s" % (rule.chain, arguments) if arguments else "-A %s" % rule.chain


def ruleset(tables, family=IPV4):
    """A node's tables of one family (iptables-restore for ipv4, ip6tables-restore for ipv6) as the plan holds them."""
    return [{
        "table": table.name,
        "chains": dict(table.policies),
        "user_chains": list(table.user_chains),
        "rules": [rule_line(rule) for rule in table.rules],
    } for table in tables if table.family == family]


def arp_restore(table):
    """An arp table as the command and input lines that load it (a MAC the node reads left as written).

    arptables has one table, filter; the rules' mangle targets live in it.
    """
    if table.family != ARP:
        raise ValueError("not an arp table: %s" % table.name)
    return {"command": "arptables-restore",
            "lines": ["*filter", ":INPUT ACCEPT", ":OUTPUT ACCEPT"] + [rule_line(rule) for rule in table.rules]
            + ["COMMIT"]}
