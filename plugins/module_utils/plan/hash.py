# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hash: every node active, one shared multicast MAC per segment, the cluster match decides who forwards.

Node id k (0..n-1) is xt_cluster node k+1, bit k of --cluster-local-nodemask.
Each node owns a set of ids; a packet on a segment interface is marked when
jhash(original source address, seed) % n is an owned id, and every unmarked
packet is dropped in mangle PREROUTING. keepalived runs one VRRP instance per
node id (node k is its master); the notify hook adds a node id to, or removes
it from, the node's chain CHAIN, one rule per owned id. The boot ruleset
owns nothing: a node forwards only what keepalived has made it master of, so
a returning node cannot forward flows that a survivor still owns.

IPv6 (nftables only): the same node ids own the IPv6 flows, by the same hash
of the full source address in the ip6 table's chain CHAIN (the hook writes
both families' chains in one transaction); the nodes' neighbour
advertisements for a VIP carry the cluster MAC (docs/hash-ipv6/).
"""

from __future__ import annotations

import ipaddress
import re
import zlib

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import read, routes, rules, stateful, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import (
    CLUSTER_VARIABLE,
    GATE_HOLDS_KEEPALIVED,
    SEGMENT_KEY,
    VRRP_KEY,
    Architecture,
    Capabilities,
    Claim,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.model import POLICY_FIREWALL
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import ARP, IPV6, Rule, Table

CHAIN = "FWCLUSTER-OWN"
# The mark bit of an owned packet. One bit, so other marks are left alone.
MARK = 0x40000000
# What the notify hook runs to change the owned ids (installed by the firewall role).
OWNER_COMMAND = "/usr/local/sbin/fwcluster-hash-owner"
# Each owner rule says which node id it owns (the hook finds its rules by it).
OWNER_COMMENT_PREFIX = "fwcluster node id "
OWNER_COMMENT = OWNER_COMMENT_PREFIX + "%d"
# A returning node waits this long on its own instance before taking its id
# back. Its flows are in by then: after a boot keepalived starts only once
# conntrackd's resync gate has opened (roles/conntrackd, the drop-ins).
PREEMPT_DELAY = 1.0
# 01:00:5e:00:00:xx maps 224.0.0.0/24, link-local control groups (VRRP's
# 224.0.0.18 among them); a cluster MAC there would collide with them.
_MULTICAST_MAC = re.compile(r"01:00:5e:([0-7][0-9a-f]):([0-9a-f]{2}):([0-9a-f]{2})")
REPLICATION_MODES = ("ftfw", "notrack")
MULTICAST = ipaddress.ip_network("224.0.0.0/4")
MULTICAST6 = ipaddress.ip_network("ff00::/8")
LINK_LOCAL6 = ipaddress.ip_network("fe80::/10")
# The backend that can hash and answer for an IPv6 VIP (docs/hash-ipv6/).
IPV6_BACKEND = "nftables"


class Settings(object):
    """What the hash architecture reads of its own keys."""

    def __init__(self, seed, preempt_delay, multicast_macs):
        self.seed = seed  # fwcluster_hash_seed, or derived from the cluster name
        self.preempt_delay = preempt_delay
        self.multicast_macs = multicast_macs  # segment -> cluster MAC


class Hash(Architecture):
    name = "hash"
    claims = (
        Claim(SEGMENT_KEY, "multicast_mac",
              "only the hash architecture uses a multicast MAC; this cluster is %(architecture)s"),
        Claim(VRRP_KEY, "preempt_delay",
              "only the hash architecture uses preempt_delay; this cluster is %(architecture)s"),
        Claim(CLUSTER_VARIABLE, "fwcluster_hash_seed"),
    ) + routes.CLAIMS  # the networks behind a segment's router
    vrrp_defaults = {"preempt": True}  # a returning node takes its own node id back
    # The architecture's default caches (COMMIT_ON_TRANSITION): the peers'
    # flows wait in conntrackd's external cache, and the notify hook commits
    # them to the kernel table before it takes a node id. Writing them into
    # every node's kernel as they come (peer_flows: kernel, DisableExternalCache
    # On) cost each node a kernel write and an event per peer flow
    # (docs/benchmark.md, "Where replication spends the session rate"), and
    # saves the commit at a takeover: a choice between the session rate and
    # the failover time, the inventory's.
    peer_flows = ("external_cache", "kernel")
    # A returning node's own instances preempt: keepalived starts once its flows are in.
    resync_gate_holds = GATE_HOLDS_KEEPALIVED
    capabilities = Capabilities(planned_switchover="node_ids", owned_ids=True)

    def caches(self, cluster):
        """No internal cache with notrack: a resync is answered from the kernel table.

        The kernel table holds what the internal cache would (the node's own
        flows), and the flows of the ids it took over too, with nothing to
        refill after a takeover; the copy of every flow in conntrackd cost the
        firewalls' CPU (docs/benchmark.md, "The hash session rate without the
        internal cache"). FTFW (two nodes) keeps it: its resync and
        retransmissions are made from it.
        """
        caches = super(Hash, self).caches(cluster)
        if cluster.replication.mode == "notrack":
            caches["internal_cache"] = False
        return caches

    def read_own(self, cluster, inventory):
        label = cluster.label
        seed = inventory.cluster_vars.get("fwcluster_hash_seed")
        if seed is not None:
            seed = read.integer(seed, 0, 0xFFFFFFFF, label, "fwcluster_hash_seed")
        else:
            # Derived from the cluster name: stable across runs.
            seed = zlib.crc32(cluster.name.encode("utf-8")) & 0xFFFFFFFF
        delay = PREEMPT_DELAY
        if "preempt_delay" in cluster.vrrp_options:
            delay = read.number(cluster.vrrp_options["preempt_delay"], 0, 1000, label, "fwcluster_vrrp.preempt_delay")
        macs = {}
        for segment in cluster.segments.values():
            mac = multicast_mac(segment, label)
            for other, other_mac in macs.items():
                if mac == other_mac:
                    raise PlanError(label, "fwcluster_segments.%s.multicast_mac" % segment.name,
                                    "%s is already the multicast MAC of segment %s; each segment needs its own "
                                    "(set multicast_mac on one of them)" % (mac, other))
            macs[segment.name] = mac
        return Settings(seed, delay, macs)

    def check(self, cluster):
        label = cluster.label
        first = vrrp_segment(cluster)
        count = len(cluster.nodes)
        if first.vrid + count - 1 > 255:
            raise PlanError(label, "fwcluster_segments.%s.vrid" % first.name,
                            "the hash architecture uses VRIDs %d..%d on segment %s (one per node id); "
                            "the last must be at most 255" % (first.vrid, first.vrid + count - 1, first.name))
        if not cluster.vrrp["preempt"]:
            raise PlanError(label, "fwcluster_vrrp.preempt",
                            "must be true (the default) in a hash cluster: a returning node takes its own node "
                            "id back, otherwise the survivor keeps forwarding for two ids for good")
        for segment in cluster.segments.values():
            if segment.vip6 is not None and cluster.backend != IPV6_BACKEND:
                raise PlanError(label, "fwcluster_segments.%s.vip" % segment.name,
                                "%s: an IPv6 VIP of a hash cluster needs fwcluster_backend: %s (this cluster's is "
                                "%s): the iptables cluster match hashes only the first 32 bits of an IPv6 source "
                                "(every client of a /32 would land on one node), and ip6tables cannot give the "
                                "VIP's neighbour advertisements the cluster MAC"
                                % (segment.vip6.with_prefixlen, IPV6_BACKEND, cluster.backend))
        replication = cluster.replication
        if replication is not None and replication.mode not in REPLICATION_MODES:
            raise PlanError(label, "fwcluster_replication.mode",
                            "%s cannot answer a resync request; a hash cluster's returning node asks its peers "
                            "for their flows (conntrackd -n) before it takes its node id back, which %s support"
                            % (replication.mode, " and ".join(REPLICATION_MODES)))
        for entry in cluster.nat:
            if entry.kind in ("masquerade", "snat"):
                raise PlanError(label, "fwcluster_nat[%d].type" % entry.index,
                                "%s is not supported by the hash architecture in this version: every node would "
                                "pick source ports from the same address, and two nodes can map two flows to one "
                                "tuple; route the inside networks instead (dnat is supported)" % entry.kind)

    def role(self, cluster, node):
        return "active"

    def successor(self, cluster, node):
        # The next node id: the backup with the highest priority on this node's own instance.
        return cluster.nodes[(node.node_id + 1) % len(cluster.nodes)]

    def keepalived(self, cluster, node):
        """One VRRP instance per node id, no VIPs: the instance's master owns that node id."""
        segment = vrrp_segment(cluster)
        tracked = [node.interfaces[name] for name in cluster.segments if name != segment.name]
        if cluster.replication is not None:
            tracked.append(node.replication_interface)
        delay = cluster.settings.preempt_delay
        instances = []
        for owner in cluster.nodes:
            own = owner is node
            # keepalived refuses an instance without a VIP; the segment VIPs are
            # on every node already. The instance carries a marker instead: a
            # host-scope loopback address only its master holds (never on the wire).
            instance = vrrp.instance(
                "%s_id%d" % (cluster.name, owner.node_id), segment.name, node.interfaces[segment.name],
                segment.vrid + owner.node_id,
                # Node owner_id is master of its instance; the others follow in id order after it.
                vrrp.priority((node.node_id - owner.node_id) % len(cluster.nodes)),
                cluster.vrrp["advert_int"],
                # Only the owner preempts, and only after preempt_delay: a survivor
                # keeps a dead node's id until the owner is back (and resynced: the gate).
                own, [marker(segment, owner)], vrrp.unicast_peers(cluster, node, segment.name))
            instance.update({
                "preempt_delay": delay if own else 0,
                "vip_interface": "lo",
                "vip_scope": "host",
                "track_interfaces": tracked,
                "node_id": owner.node_id,
                # notify argument lists: the hook takes or releases this node id.
                "notify": {
                    "master": "take %d" % owner.node_id,
                    "backup": "release %d" % owner.node_id,
                    "fault": "release %d" % owner.node_id,
                    "stop": "release %d" % owner.node_id,
                },
            })
            instances.append(instance)
        return {"router_id": node.name, "sync_group": None, "instances": instances}

    def ruleset(self, cluster, node):
        return [
            Table("filter", rules.FILTER_POLICIES,
                  stateful.filter_input_rules(cluster, node)
                  + stateful.filter_forward_rules(cluster, node, before_policy=reply_direction_drops(cluster, node))),
            Table("nat", rules.NAT_POLICIES, stateful.nat_rules(cluster, node)),
            # CHAIN starts empty: keepalived's notify hook fills it.
            Table("mangle", rules.MANGLE_POLICIES, mangle_rules(cluster, node), user_chains=[CHAIN]),
        ]

    def ruleset6(self, cluster, node):
        """The stateful IPv6 policy (routed, never translated) and the same ownership as IPv4."""
        return [
            Table("filter", rules.FILTER_POLICIES,
                  stateful.filter_input_rules(cluster, node, IPV6)
                  + stateful.filter_forward_rules(cluster, node, family=IPV6,
                                                  before_policy=reply_direction_drops(cluster, node, IPV6)),
                  family=IPV6),
            Table("mangle", rules.MANGLE_POLICIES, mangle_rules(cluster, node, IPV6), user_chains=[CHAIN], family=IPV6),
        ]

    def vrrp_fields(self, cluster):
        return {"preempt_delay": cluster.settings.preempt_delay}

    def plan_fields(self, cluster, backend):
        settings = cluster.settings
        owners = [owner_rule(cluster, node.node_id) for node in cluster.nodes]
        families = [rules.IPV4] + ([IPV6] if cluster.dual_stack else [])
        return {"hash": {
            "total_nodes": len(cluster.nodes),
            "seed": settings.seed,
            "seed_hex": "0x%08x" % settings.seed,
            "chain": CHAIN,
            "mark": "0x%x/0x%x" % (MARK, MARK),
            "owner_command": OWNER_COMMAND,
            # each owner rule's comment: this, then its node id
            "owner_comment": OWNER_COMMENT_PREFIX,
            "multicast_macs": dict(settings.multicast_macs),
            "vrrp_segment": vrrp_segment(cluster).name,
            # the chain as the backend's commands name it (nftables: ip fwcluster mangle_FWCLUSTER-OWN)
            "backend_chain": backend.chain_reference("mangle", CHAIN),
            # the chain as the backend's listing names it (nftables: mangle_FWCLUSTER-OWN)
            "listed_chain": backend.chain_name("mangle", CHAIN),
            # owner_rules[k]: the rule that owns node id k, as the backend lists it
            "owner_rules": [backend.rule_line(rule, "mangle") for rule in owners],
            # the same without its chain: iptables -C/-A/-D's arguments, the rule of nft add rule
            "owner_specs": [backend.rule_arguments(rule, "mangle") for rule in owners],
            # nftables: the chain of each family (ipv4, and ipv6 on a dual-stack
            # cluster) and each node id's rule in it, which the hook writes at once
            "families": [{
                "family": family,
                "backend_chain": backend.chain_reference("mangle", CHAIN, family),
                "owner_specs": [backend.rule_arguments(rule, "mangle", family) for rule in owners],
            } for family in families] if cluster.backend == "nftables" else [],
        }}

    def node_fields(self, cluster, node, backend):
        links = []
        neighbours = []
        arp = Table("mangle", {}, [], family=ARP)
        for segment in cluster.segments.values():
            interface = node.interfaces[segment.name]
            mac = cluster.settings.multicast_macs[segment.name]
            link_rules = [
                # ARP from the VIP (replies and requests) carries the cluster MAC,
                # so every host on the segment sends the VIP's traffic to all nodes.
                Rule("OUTPUT", [rules.out_interface(interface), rules.source(segment.vip.ip),
                                rules.arp_hardware_length(6)], rules.arp_source_mac(mac)),
                # ARP answers addressed to the cluster MAC are this node's too.
                Rule("INPUT", [rules.in_interface(interface), rules.arp_hardware_length(6),
                               rules.arp_destination_mac(mac)], rules.arp_target_mac(own_mac(interface))),
            ]
            arp.rules.extend(link_rules)
            link = {
                "segment": segment.name,
                "interface": interface,
                "vip": segment.vip.with_prefixlen,
                "multicast_mac": mac,
                # this link's ARP rules, as the backend's tool lists them
                "arp_rules": [backend.rule_line(rule, arp.name, ARP) for rule in link_rules],
            }
            if segment.vip6 is not None:
                link["vip6"] = segment.vip6.with_prefixlen
                neighbours.append((interface, segment.vip6.ip, mac))
            links.append(link)
        return {"hash": {
            "cluster_node": node.node_id + 1,  # xt_cluster numbers nodes from 1
            "own_mask": "0x%08x" % (1 << node.node_id),
            "links": links,
            # every link's ARP rules: the command that loads them and its input
            "arp": backend.arp_restore(arp),
            # the IPv6 VIPs' neighbour discovery with the cluster MAC (None on an IPv4 cluster;
            # a dual-stack one runs nftables, the backend that can rewrite it: check())
            "neighbours": backend.neighbour_rewrite(neighbours) if cluster.dual_stack else None,
        }}


def own_mac(interface):
    """Stands for the interface's own MAC, which only the node knows (the links script reads it)."""
    return "OWN_MAC(%s)" % interface


def multicast_mac(segment, label):
    """The segment's cluster MAC: as set in the inventory, or 01:00:5e + the VIP's low 23 bits."""
    variable = "fwcluster_segments.%s.multicast_mac" % segment.name
    written = segment.options.get("multicast_mac")
    if written is not None:
        text = read.string(written, label, variable).lower()
        match = _MULTICAST_MAC.fullmatch(text)
        if not match:
            raise PlanError(label, variable, "%r is not an IPv4 multicast MAC 01:00:5e:00:00:00..01:00:5e:7f:ff:ff"
                            % str(written))
        value = int("".join(match.groups()), 16)
    else:
        # Two clusters on one LAN have different VIPs, so different MACs: the
        # low 23 bits of two addresses of one subnet (prefix >= 9) differ.
        value = int(segment.vip.ip) & 0x7FFFFF
    if value <= 0xFF:
        raise PlanError(label, variable, "01:00:5e:00:00:%02x is the MAC of link-local multicast group 224.0.0.%d; "
                        "set fwcluster_segments.%s.multicast_mac to another 01:00:5e:... address"
                        % (value, value, segment.name))
    return "01:00:5e:%02x:%02x:%02x" % ((value >> 16) & 0x7F, (value >> 8) & 0xFF, value & 0xFF)


def vrrp_segment(cluster):
    """The VRRP instances run on the first segment; the others are tracked."""
    return list(cluster.segments.values())[0]


def owner_rule(cluster, node_id):
    """The rule that makes a node own node id node_id.

    iptables-save prints --cluster-local-nodemask even where a rule was written
    with --cluster-local-node, so the plan, the hook's iptables -C checks and
    the verify step all use this one form. Counted: the packets each node
    took are its share of the traffic (nftables counts only where asked).
    """
    return Rule(CHAIN, [rules.cluster_nodes(1 << node_id, len(cluster.nodes), cluster.settings.seed)],
                rules.set_mark(MARK, MARK), OWNER_COMMENT % node_id, counted=True)


def marker(segment, owner):
    """127.254.<first VRID>.<node id + 1>/32: held on lo by the master of the node id's instance."""
    return "127.254.%d.%d/32" % (segment.vrid, owner.node_id + 1)


def reply_direction_drops(cluster, node, family=rules.IPV4):
    """NEW UDP shaped like the reply of an accepted UDP flow is dropped.

    A node that missed a UDP flow's first packet would otherwise take the
    reply for a new flow, hashed on the server's address: possibly to another
    node, which would then forward packets of a flow that already has an owner.
    """
    found = []
    for entry in cluster.policy:
        if entry.proto != "udp" or entry.action != "accept" or entry.target_segment == POLICY_FIREWALL:
            continue
        if not entry.applies_to(stateful.VERSIONS[family]):
            continue
        found.append(Rule("FORWARD", [
            rules.in_interface(stateful.segment_interface(node, entry.target_segment)),
            rules.out_interface(stateful.segment_interface(node, entry.source_segment)),
            rules.source(entry.destination),
            rules.destination(entry.source),
            rules.protocol("udp"),
            rules.source_ports(entry.ports),
            rules.ct_state("NEW"),
        ], rules.DROP, "%s (reply direction)" % entry.name))
    return found


def mangle_rules(cluster, node, family=rules.IPV4):
    """The PREROUTING layout of the mangle table, per segment (IPv6: per segment with an IPv6 VIP).

    The node's own address (management, its own connections) is never hashed,
    nor multicast to the node itself (VRRP adverts; IPv6: link-local traffic too).
    IPv6's neighbour discovery is nobody's flow: a neighbour's unicast
    solicitation or advertisement sent to the cluster MAC reaches every node
    and is untracked, so the hash (on the flow's original source) cannot take
    it. Every other packet meets the owner chain (which also turns the cluster
    MAC's PACKET_MULTICAST into PACKET_HOST); unowned ones are dropped.
    """
    ipv6 = family == IPV6
    found = []
    for segment in cluster.segments.values():
        if ipv6 and segment.vip6 is None:
            continue
        interface = node.interfaces[segment.name]
        own = ipaddress.ip_network((node.addresses6 if ipv6 else node.addresses)[segment.name].ip)
        found.extend(Rule("PREROUTING", [rules.destination(network), rules.in_interface(interface)], rules.ACCEPT)
                     for network in ((own, LINK_LOCAL6, MULTICAST6) if ipv6 else (own, MULTICAST)))
        if ipv6:
            found.extend(Rule("PREROUTING", [rules.in_interface(interface), rules.protocol("ipv6-icmp", IPV6),
                                             rules.icmpv6_type(kind)], rules.accept_as_host())
                         for kind in ("neighbour-solicitation", "neighbour-advertisement"))
        found.extend([Rule("PREROUTING", [rules.in_interface(interface)], rules.jump(CHAIN)),
                      Rule("PREROUTING", [rules.in_interface(interface), rules.not_marked(MARK, MARK)], rules.DROP)])
    return found
