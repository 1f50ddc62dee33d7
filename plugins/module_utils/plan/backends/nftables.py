# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables backend: rule intents as one table of the collection's own per address family.

The iptables backend replaces whole tables (filter, nat, ...) and with them
anyone else's rules; this one writes table TABLE of family ip, ip6 or arp,
which the rules file deletes and recreates in one transaction, leaving every
other table alone. Each iptables table/chain pair of the plan becomes one
chain of that table: a base chain (hook and priority of the iptables chain)
named <table>_<chain> in lower case, a user chain <table>_<CHAIN>.

Pure rendering, like backends/iptables.py: the plan's readers checked every
value; a kind of match this backend cannot spell is a programming error.

Where nftables differs from the xtables match it replaces (proven packet by
packet in tests/netns/):
- cluster_nodes: xt_cluster hashes jhash(original source address, seed)
  scaled to N and tests bit k of the node mask; "jhash ct original ip saddr
  mod N seed S" computes the same number (0..N-1, no offset), so node id k is
  the value k. xt_cluster also turns a packet sent to the cluster's multicast
  MAC into a host packet (or the stack would not forward it); here the owned
  packets get "meta pkttype set host" (the others are dropped anyway).
  An ICMP error is attached to the flow it is about: the same hash in both.
  xt_cluster hashes an expected connection (FTP data) on its master;
  nftables has no expression for the master, so it is hashed on its own
  source. Expected connections need a conntrack helper, which no rule of
  the plan assigns.
- hash_mark: HMARK's hash is its own; "jhash" of the one address the plan
  names (ip saddr or ip daddr, each the same four bytes) is as symmetric and
  as NAT-proof, but picks other buckets: all balancers of a cluster must use
  one backend (the plan's backend is per cluster).
"""

from __future__ import annotations

import re

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import ARP, IPV4, IPV6

TABLE = "fwcluster"
FAMILIES = {IPV4: "ip", IPV6: "ip6", ARP: "arp"}

# nftables keeps at most 128 bytes of a rule's comment.
COMMENT_MAX = 128
_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/=+@()-]")

# (iptables table, chain) -> (nftables chain type, hook, priority): the
# priorities of the iptables tables, so that both backends order the same way.
_BASE_CHAINS = {
    ("raw", "PREROUTING"): ("filter", "prerouting", "-300"),
    ("raw", "OUTPUT"): ("filter", "output", "-300"),
    ("mangle", "PREROUTING"): ("filter", "prerouting", "-150"),
    ("mangle", "INPUT"): ("filter", "input", "-150"),
    ("mangle", "FORWARD"): ("filter", "forward", "-150"),
    # type route: a changed mark re-routes the packet, as iptables' mangle OUTPUT does
    ("mangle", "OUTPUT"): ("route", "output", "-150"),
    ("mangle", "POSTROUTING"): ("filter", "postrouting", "-150"),
    ("nat", "PREROUTING"): ("nat", "prerouting", "-100"),
    ("nat", "OUTPUT"): ("nat", "output", "-100"),
    ("nat", "INPUT"): ("nat", "input", "100"),
    ("nat", "POSTROUTING"): ("nat", "postrouting", "100"),
    ("filter", "INPUT"): ("filter", "input", "0"),
    ("filter", "FORWARD"): ("filter", "forward", "0"),
    ("filter", "OUTPUT"): ("filter", "output", "0"),
}
_ARP_HOOKS = {"INPUT": "input", "OUTPUT": "output"}

# ICMPv6 names as ip6tables spells them -> as nftables does.
_ICMPV6_TYPES = {
    "neighbour-solicitation": "nd-neighbor-solicit",
    "neighbour-advertisement": "nd-neighbor-advert",
    "router-advertisement": "nd-router-advert",
    "router-solicitation": "nd-router-solicit",
    "echo-request": "echo-request",
    "echo-reply": "echo-reply",
    # multicast listener discovery: ip6tables has no names for these, only numbers
    "130": "mld-listener-query",
    "131": "mld-listener-report",
    "132": "mld-listener-done",
    "143": "mld2-listener-report",
}
_PORT_PROTOCOLS = ("tcp", "udp")
_CT_STATUS = {"DNAT": "dnat", "SNAT": "snat"}


def sanitize_comment(text):
    """Reduce free text to characters that need no quoting inside nft's double quotes."""
    cleaned = " ".join(str(text).split())
    cleaned = _COMMENT_UNSAFE.sub("_", cleaned)
    return cleaned[:COMMENT_MAX].strip()


def chain_name(table, chain):
    """The nftables chain of an iptables table's chain: filter INPUT -> filter_input, mangle X-Y -> mangle_X-Y."""
    if (table, chain) in _BASE_CHAINS or chain in _ARP_HOOKS:
        return "%s_%s" % (table, chain.lower())
    return "%s_%s" % (table, chain)


def _address(family, side, address):
    text = address.with_prefixlen if hasattr(address, "prefixlen") else str(address)
    if family == ARP:
        return "arp %s ip %s" % (side, text)
    return "%s %s %s" % (FAMILIES[family], side, text)


def _port(port):
    return "%d-%d" % port if isinstance(port, tuple) else "%d" % port


def _ports(protocol, side, ports):
    prefix = "%s %s" % (protocol if protocol in _PORT_PROTOCOLS else "th", side)
    if len(ports) == 1:
        return "%s %s" % (prefix, _port(ports[0]))
    return "%s { %s }" % (prefix, ", ".join(_port(port) for port in ports))


def _protocol_of(rule):
    found = rule.matches_of("protocol")
    return found[0][0] if found else None


def _length(family, length):
    if family == IPV6:
        return "ip6 length %d" % (length - 40)  # ip6 length is the payload's
    return "ip length %d" % length


def _ct_state(states):
    """conntrack's states; DNAT and SNAT (iptables' virtual states) are conntrack status bits in nftables."""
    parts = []
    plain = [state.lower() for state in states if state not in _CT_STATUS]
    if plain:
        parts.append("ct state %s" % ",".join(plain))
    parts.extend("ct status %s" % _CT_STATUS[state] for state in states if state in _CT_STATUS)
    return " ".join(parts)


def _cluster(family, mask, total, seed):
    ids = [node_id for node_id in range(32) if mask & (1 << node_id)]
    value = "%d" % ids[0] if len(ids) == 1 else "{ %s }" % ", ".join("%d" % node_id for node_id in ids)
    return "jhash ct original %s saddr mod %d seed 0x%08x %s meta pkttype set host" % (
        FAMILIES[family], total, seed, value)


def _match(family, rule, match):
    kind, values = match[0], match[1:]
    if kind == "in_interface":
        return 'iifname "%s"' % values
    if kind == "out_interface":
        return 'oifname "%s"' % values
    if kind == "source":
        return _address(family, "saddr", values[0])
    if kind == "destination":
        return _address(family, "daddr", values[0])
    if kind == "protocol":
        return "meta l4proto %s" % values[0]
    if kind == "tcp_not_syn":
        return "tcp flags & (fin|syn|rst|ack) != syn"
    if kind == "destination_ports":
        return _ports(_protocol_of(rule), "dport", values[0])
    if kind == "source_ports":
        return _ports(_protocol_of(rule), "sport", values[0])
    if kind == "icmp_type":
        return "icmp type %s" % values[0]
    if kind == "icmpv6_type":
        return "icmpv6 type %s" % _ICMPV6_TYPES[values[0]]
    if kind == "packet_length":
        return _length(family, values[0])
    if kind == "ct_state":
        return _ct_state(values[0])
    if kind == "not_marked":
        return "meta mark & 0x%08x != 0x%08x" % (values[1], values[0])
    if kind == "not_local_destination":
        return "fib daddr type != local"
    if kind == "cluster_nodes":
        return _cluster(family, *values)
    if kind == "arp_hardware_length":
        return "arp hlen %d" % values
    if kind == "arp_destination_mac":
        return "arp daddr ether %s" % values
    raise KeyError(kind)


def _verdict(family, table, verdict):
    kind, values = verdict[0], verdict[1:]
    if kind in ("accept", "drop", "return", "notrack"):
        return kind
    if kind == "accept_as_host":
        return "meta pkttype set host accept"
    if kind == "reject":
        return "reject with tcp reset" if values[0] == "tcp-reset" else "reject"
    if kind == "jump":
        return "jump %s" % chain_name(table, values[0])
    if kind == "set_mark":
        # iptables' --set-xmark value/mask: (mark AND NOT mask) XOR value
        value, mask = values
        return "meta mark set meta mark & 0x%08x ^ 0x%08x" % (~mask & 0xFFFFFFFF, value)
    if kind == "snat":
        address, ports = values
        return "snat to %s%s" % (address, ":%d-%d" % ports if ports else "")
    if kind == "dnat":
        address, port = values
        return "dnat to %s%s" % (address, ":%d" % port if port else "")
    if kind == "hash_mark":
        on, buckets, offset, seed = values
        return "meta mark set jhash %s %s mod %d seed 0x%08x offset %d" % (
            FAMILIES[family], {"source": "saddr", "destination": "daddr"}[on], buckets, seed, offset)
    if kind == "arp_source_mac":
        return "arp saddr ether set %s" % values
    if kind == "arp_target_mac":
        return "arp daddr ether set %s" % values
    raise KeyError(kind)


def rule_text(rule, table="filter", family=IPV4):
    """A rule as it stands in its chain of an nft file (without "add rule ..." around it)."""
    parts = [_match(family, rule, match) for match in rule.matches]
    if rule.counted:
        parts.append("counter")
    if rule.verdict is not None:
        parts.append(_verdict(family, table, rule.verdict))
    if rule.comment:
        parts.append('comment "%s"' % sanitize_comment(rule.comment))
    return " ".join(parts)


def _base_declaration(table, chain, family, policy):
    if family == ARP:
        kind, hook, priority = "filter", _ARP_HOOKS[chain], "0"
    else:
        kind, hook, priority = _BASE_CHAINS[(table.name, chain)]
    return "type %s hook %s priority %s; policy %s;" % (kind, hook, priority, policy.lower())


def _chains(table):
    """One table's chains in nft form: base chains in the order of their policies, then user chains."""
    family = table.family
    names = list(table.policies) or sorted(set(rule.chain for rule in table.rules if rule.chain in _ARP_HOOKS))
    chains = []
    for chain in names:
        policy = table.policies.get(chain, "ACCEPT")
        chain_rules = [rule_text(rule, table.name, family) for rule in table.rules if rule.chain == chain]
        if not chain_rules and policy == "ACCEPT":
            continue  # an empty chain that accepts all changes nothing: leave the hook alone
        chains.append({"name": chain_name(table.name, chain),
                       "declaration": _base_declaration(table, chain, family, policy),
                       "rules": chain_rules})
    for chain in table.user_chains:
        chains.append({"name": chain_name(table.name, chain), "declaration": None,
                       "rules": [rule_text(rule, table.name, family) for rule in table.rules if rule.chain == chain]})
    return chains


def ruleset(tables, family=IPV4):
    """A node's tables of one family as one nftables table {family, table, chains: [{name, declaration, rules}]}."""
    chains = []
    for table in tables:
        if table.family == family:
            chains.extend(_chains(table))
    return [{"family": FAMILIES[family], "table": TABLE, "chains": chains}]


def table_text(tables):
    """ruleset()'s tables as an nft file: each table created, deleted and written again in one transaction."""
    lines = []
    for table in tables:
        head = "%s %s" % (table["family"], table["table"])
        lines.extend(["table %s" % head, "delete table %s" % head, "table %s {" % head])
        for chain in table["chains"]:
            lines.append("\tchain %s {" % chain["name"])
            if chain["declaration"]:
                lines.append("\t\t%s" % chain["declaration"])
            lines.extend("\t\t%s" % rule for rule in chain["rules"])
            lines.append("\t}")
        lines.append("}")
    return "\n".join(lines) + "\n"


# What plan fields of rules outside the ruleset carry (hash owner rules, ARP).

def counters_command(table, chain, family=IPV4):
    """What lists a chain's rules with their packet counters (a counted rule's line changes when it counts)."""
    return "nft list chain %s" % chain_reference(table, chain, family)


def chain_reference(table, chain, family=IPV4):
    """A chain as nft commands name it: "ip fwcluster mangle_FWCLUSTER-OWN"."""
    return "%s %s %s" % (FAMILIES[family], TABLE, chain_name(table, chain))


def rule_line(rule, table="mangle", family=IPV4):
    """A rule with its chain, as "nft add rule" takes it: "ip fwcluster <chain> <rule>"."""
    return "%s %s" % (chain_reference(table, rule.chain, family), rule_text(rule, table, family))


def rule_arguments(rule, table="mangle", family=IPV4):
    """What "nft add rule FAMILY TABLE CHAIN" takes after the chain."""
    return rule_text(rule, table, family)


def arp_restore(table):
    """An arp table as the command and input lines that load it (a MAC the node reads left as written)."""
    if table.family != ARP:
        raise ValueError("not an arp table: %s" % table.name)
    return {"command": "nft -f -", "lines": table_text(ruleset([table], ARP)).splitlines()}


# The hash cluster's IPv6 neighbour discovery (docs/hash-ipv6/): the
# neighbour advertisements a node sends for a VIP, and the solicitations it
# sends from one, carry the cluster MAC instead of the interface's own. nft
# fixes no checksum after a raw @th write, so each rule also writes the word
# that keeps the ICMPv6 sum unchanged into the message's reserved bytes 6-7
# (zero when sent, ignored by receivers: RFC 4861). Only a message that
# still carries the interface's own MAC and a zero word is rewritten.
NEIGHBOUR_TABLE = "fwcluster_nd"
_REWRITE = ("@th,48,16 0 @th,192,16 %(option)s @th,208,48 %(own)s "
            "@th,208,48 set %(cluster)s @th,48,16 set %(word)s counter")


def own_mac_hex(interface):
    """Stands for the interface's own MAC as one number (0x020000000001), read on the node."""
    return "OWN_MAC_HEX(%s)" % interface


def checksum_word(interface):
    """Stands for the word that keeps the checksum: onesum(own MAC) - onesum(cluster MAC), computed on the node."""
    return "ND_WORD(%s)" % interface


def neighbour_rewrite(links):
    """links: [(interface, IPv6 VIP, cluster MAC)]; the ip6 table that rewrites their ND, as command and lines.

    The table is deleted first and left out when there is no link: loading
    the lines always leaves what the links say.
    """
    found = []
    for interface, vip, mac in links:
        fields = {"own": own_mac_hex(interface), "cluster": "0x" + mac.replace(":", ""),
                  "word": checksum_word(interface)}
        # NA: the target (bytes 8-23) is the VIP, the first option the target link-layer address (type 2).
        found.append('oifname "%s" icmpv6 type nd-neighbor-advert @th,64,128 0x%032x ' % (interface, int(vip))
                     + _REWRITE % dict(fields, option="0x0201"))
        # NS from the VIP: the first option is the source link-layer address (type 1).
        found.append('oifname "%s" icmpv6 type nd-neighbor-solicit ip6 saddr %s ' % (interface, vip)
                     + _REWRITE % dict(fields, option="0x0101"))
    lines = ["table ip6 %s" % NEIGHBOUR_TABLE, "delete table ip6 %s" % NEIGHBOUR_TABLE]
    if found:
        lines.extend(["table ip6 %s {" % NEIGHBOUR_TABLE, "\tchain output {",
                      "\t\ttype filter hook output priority filter; policy accept;"]
                     + ["\t\t" + rule for rule in found] + ["\t}", "}"])
    return {"command": "nft -f -", "lines": lines}
