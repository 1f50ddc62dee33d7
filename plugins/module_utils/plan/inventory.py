# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared reader: what every cluster's inventory holds, checked once for every architecture.

read_cluster() turns one cluster's inventory into a model.Cluster: name and
architecture first (every later message names the cluster), then the nodes,
segments, interfaces, addresses, replication, VRRP, policy, NAT and management.
Keys only some architectures read are claimed by them (plan/architecture.py,
Claim): the reader knows every claimed key, refuses one that the cluster's
architecture does not claim, and leaves the reading of the others to it.
"""

from __future__ import annotations

import ipaddress

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps sanity's import test quiet
    Mapping = dict

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import read, routes
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import (
    BALANCER_HOSTS,
    CLUSTER_VARIABLE,
    SEGMENT_KEY,
    VRRP_KEY,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.model import (
    POLICY_ANY,
    POLICY_FIREWALL,
    Cluster,
    Inventory,
    NatEntry,
    Node,
    PolicyEntry,
    Replication,
    Segment,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.registry import (
    ARCHITECTURES,
    claimed_keys,
    claims,
)

MAX_NODES = 32  # xt_cluster's node mask has 32 bits; every architecture keeps to it
MIN_NODES = 2
TRANSPORTS = ("udp", "multicast", "tcp")
POINT_TO_POINT_TRANSPORTS = ("udp", "tcp")
REPLICATION_MODES = ("ftfw", "notrack", "alarm")
# Where a node keeps its peers' flows (DisableExternalCache Off / On); an architecture allows some.
PEER_FLOWS = ("external_cache", "kernel")
POLICY_PROTOCOLS = ("tcp", "udp", "icmp", "all")
POLICY_ACTIONS = ("accept", "drop", "reject")
NAT_TYPES = ("masquerade", "snat", "dnat")
VRRP_MULTICAST_GROUP = ipaddress.IPv4Address("224.0.0.18")
VIP_EXAMPLE = '10.10.1.254/24 or [10.10.1.254/24, "2001:db8:1::fe/64"]'

REPLICATION_DEFAULTS = {
    "transport": "udp",
    "mode": "ftfw",
    "port": 3780,
    "multicast_group": "225.0.0.50",
}
VRRP_DEFAULTS = {"advert_int": 1, "unicast": False, "preempt": False}
# Health tracking: keepalived runs the checks every interval seconds; fall
# failures in a row put the node in FAULT, rise successes take it out. An
# upstream host that answers again counts only after hold_down seconds of
# answers, so a flapping uplink cannot pull the VIPs back and forth.
TRACKING_DEFAULTS = {"interval": 1, "fall": 3, "rise": 3, "hold_down": 60}
MANAGEMENT_DEFAULTS = {"sources": ["0.0.0.0/0"], "tcp_ports": [22]}

# Known keys of each mapping: a typo must be refused, not silently defaulted.
SEGMENT_KEYS = ("interface", "vip", "vrid")
REPLICATION_KEYS = ("enabled", "interface", "transport", "mode", "port", "multicast_group", "peer_flows")
VRRP_KEYS = ("advert_int", "unicast", "preempt")
TRACKING_KEYS = ("conntrackd", "interval", "fall", "rise", "upstream", "hold_down")
UPSTREAM_KEYS = ("host", "segment")
MANAGEMENT_KEYS = ("sources", "tcp_ports")
POLICY_KEYS = ("name", "from", "to", "proto", "ports", "source", "destination", "action")
NAT_KEYS = {
    "masquerade": ("type", "name", "out", "source"),
    "snat": ("type", "name", "out", "source", "to"),
    "dnat": ("type", "name", "in", "proto", "port", "to", "source"),
}

# Names that have a meaning of their own where segments are named.
REPLICATION_INTERFACE_KEY = "replication"
RESERVED_SEGMENT_NAMES = (POLICY_ANY, POLICY_FIREWALL, REPLICATION_INTERFACE_KEY)

# The inventory variables every architecture reads; the architectures claim the
# others (registry.CLUSTER_VARIABLES has them all).
SHARED_CLUSTER_VARIABLES = (
    "fwcluster_architecture",
    "fwcluster_name",
    "fwcluster_segments",
    "fwcluster_replication",
    "fwcluster_vrrp",
    "fwcluster_tracking",
    "fwcluster_policy",
    "fwcluster_nat",
    "fwcluster_management",
    "fwcluster_backend",
)
# What spells the rules on the nodes (plan/backends/): iptables-restore and
# arptables, or one nftables table per address family.
BACKENDS = ("iptables", "nftables")
DEFAULT_BACKEND = "iptables"
NODE_VARIABLES = (
    "fwcluster_node_id",
    "fwcluster_addresses",
    "fwcluster_replication_address",
    "fwcluster_interfaces",
)
# Ansible's own variables the plan reads, never refuses and does not specify:
# a node's management address, when ansible_host is an IPv4 address (a name
# is legitimate and simply not used).
CONNECTION_VARIABLES = ("ansible_host",)


def _read_identity(cluster_vars):
    """Name and architecture come first: every later message names the cluster."""
    read.mapping(cluster_vars, "cluster (unnamed)", "group variables")
    name = cluster_vars.get("fwcluster_name")
    if name is None:
        raise PlanError("cluster (unnamed)", "fwcluster_name", "is required")
    written = name
    name = read.string(name, "cluster (unnamed)", "fwcluster_name")
    if not read.CLUSTER_NAME.fullmatch(name):
        # A name that cannot be printed as it is (a newline inside) is shown escaped.
        raise PlanError("cluster %s" % (name if name.isprintable() else repr(name)), "fwcluster_name",
                        "must start with a letter and hold at most 32 letters, digits, _ or -")
    if written != name:
        # The filter groups hosts by the name as written: "edge" and "edge\n" would be two
        # clusters that both build plans (VRRP instances, files) named edge.
        raise PlanError("cluster %s" % name, "fwcluster_name",
                        "%r has white space around the name; hosts are grouped by the name as written and it "
                        "becomes VRRP instance names and file contents: write %r" % (str(written), name))
    label = "cluster %s" % name
    architecture = cluster_vars.get("fwcluster_architecture")
    valid = ", ".join(ARCHITECTURES)
    if architecture is None:
        raise PlanError(label, "fwcluster_architecture", "is required; one of: %s" % valid)
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise PlanError(label, "fwcluster_architecture",
                        "unknown architecture %s; valid values: %s" % (read.describe(architecture), valid))
    return Cluster(name, ARCHITECTURES[architecture])


def _read_node_ids(cluster, nodes_vars):
    label = cluster.label
    if not isinstance(nodes_vars, Mapping):
        raise PlanError(label, "fwcluster_name",
                        "the members must be a mapping of inventory host to host variables, got %s"
                        % read.describe(nodes_vars))
    count = len(nodes_vars)
    if count < MIN_NODES:
        raise PlanError(label, "fwcluster_name",
                        "a cluster needs at least %d nodes; %d host(s) carry fwcluster_name %s"
                        % (MIN_NODES, count, cluster.name))
    if count > MAX_NODES:
        raise PlanError(label, "fwcluster_name",
                        "a cluster has at most %d nodes (the xt_cluster node mask); %d hosts carry fwcluster_name %s"
                        % (MAX_NODES, count, cluster.name))
    owners = {}
    nodes = []
    for host, host_vars in nodes_vars.items():
        if not isinstance(host, str) or not host:
            raise PlanError(label, "fwcluster_name", "member names must be inventory host names, got %s"
                            % read.describe(host))
        host = read.host_name(host)
        read.mapping(host_vars, host, "host variables")
        node_id = host_vars.get("fwcluster_node_id")
        if node_id is None:
            raise PlanError(host, "fwcluster_node_id", "is required: a unique integer in 0..%d" % (count - 1))
        if not read.is_integer(node_id):
            raise PlanError(host, "fwcluster_node_id", "must be an integer in 0..%d, got %s"
                            % (count - 1, read.describe(node_id)))
        if not 0 <= node_id < count:
            raise PlanError(host, "fwcluster_node_id",
                            "must be in 0..%d (ids are exactly 0..n-1 for the %d nodes), got %d"
                            % (count - 1, count, node_id))
        if node_id in owners:
            raise PlanError(host, "fwcluster_node_id",
                            "node id %d is already used by %s; ids must be unique" % (node_id, owners[node_id]))
        owners[node_id] = host
        nodes.append(Node(host, int(node_id)))
    # n distinct ids in 0..n-1 are exactly 0..n-1: no gap is possible past this point.
    cluster.nodes = sorted(nodes, key=lambda node: node.node_id)


def _read_segments(cluster, cluster_vars):
    label = cluster.label
    raw = cluster_vars.get("fwcluster_segments")
    if raw is None:
        raise PlanError(label, "fwcluster_segments", "is required: the networks the cluster joins, by name")
    raw = read.mapping(raw, label, "fwcluster_segments")
    if not raw:
        raise PlanError(label, "fwcluster_segments", "must name at least one segment")
    vrid_owner = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not read.SEGMENT_NAME.fullmatch(name):
            raise PlanError(label, "fwcluster_segments",
                            "segment name %s must start with a letter and hold letters, digits, _ or -"
                            % read.describe(name))
        variable = "fwcluster_segments.%s" % name
        if name in RESERVED_SEGMENT_NAMES:
            raise PlanError(label, variable, "%r is reserved (%s); choose another segment name"
                            % (name, ", ".join(RESERVED_SEGMENT_NAMES)))
        spec = read.mapping(spec, label, variable)
        read.known_keys(spec, SEGMENT_KEYS + claimed_keys(SEGMENT_KEY), label, variable)
        interface = spec.get("interface")
        if interface is not None:
            interface = read.interface_name(interface, label, variable + ".interface")
        if spec.get("vip") is None:
            raise PlanError(label, variable + ".vip", "is required: the virtual address with prefix, e.g. 10.10.1.254/24, "
                            "or one per family, e.g. [10.10.1.254/24, \"2001:db8:1::fe/64\"]")
        vips = read.interfaces_by_family(spec["vip"], label, variable + ".vip", VIP_EXAMPLE)
        if 4 not in vips:
            raise PlanError(label, variable + ".vip", "%s: a segment needs an IPv4 VIP, its IPv6 VIP beside it; "
                            "IPv6-only segments are not supported yet" % vips[6].with_prefixlen)
        for vip in vips.values():
            read.refuse_network_or_broadcast(vip, label, variable + ".vip")
        vip = vips[4]
        if spec.get("vrid") is None:
            raise PlanError(label, variable + ".vrid", "is required: the VRRP virtual router id, 1..255")
        vrid = read.integer(spec["vrid"], 1, 255, label, variable + ".vrid")
        if vrid in vrid_owner:
            raise PlanError(label, variable + ".vrid", "VRID %d is already used by segment %s; VRIDs must differ"
                            % (vrid, vrid_owner[vrid]))
        vrid_owner[vrid] = name
        for other in cluster.segments.values():
            for version, own in vips.items():
                theirs = other.vips.get(version)
                if theirs is not None and own.network.overlaps(theirs.network):
                    raise PlanError(label, variable + ".vip", "network %s overlaps segment %s (%s)"
                                    % (own.network, other.name, theirs.network))
        options = dict((key, spec[key]) for key in claimed_keys(SEGMENT_KEY) if spec.get(key) is not None)
        cluster.segments[str(name)] = Segment(str(name), interface, vip, vrid, options, vip6=vips.get(6))


def _read_management_addresses(cluster, nodes_vars):
    for node in cluster.nodes:
        value = nodes_vars[node.name].get("ansible_host")
        try:
            node.management_address = ipaddress.IPv4Address(value) if isinstance(value, str) else None
        except ValueError:
            node.management_address = None


def _read_node_interfaces(cluster, nodes_vars):
    known = list(cluster.segments) + [REPLICATION_INTERFACE_KEY]
    for node in cluster.nodes:
        raw = read.optional(nodes_vars[node.name], "fwcluster_interfaces", {})
        raw = read.mapping(raw, node.name, "fwcluster_interfaces")
        for key in raw:
            if key not in known:
                raise PlanError(node.name, "fwcluster_interfaces.%s" % key,
                                "names no segment of cluster %s; known: %s" % (cluster.name, ", ".join(known)))
        for key, value in raw.items():
            if value is not None:
                raw_name = read.interface_name(value, node.name, "fwcluster_interfaces.%s" % key)
                node.own_interfaces.add(key)
                if key == REPLICATION_INTERFACE_KEY:
                    node.replication_interface = raw_name
                else:
                    node.interfaces[key] = raw_name
        users = {}
        for segment in cluster.segments.values():
            if segment.name not in node.interfaces:
                if segment.interface is None:
                    raise PlanError(node.name, "fwcluster_interfaces.%s" % segment.name,
                                    "segment %s has no interface: set fwcluster_segments.%s.interface "
                                    "or this host's fwcluster_interfaces.%s"
                                    % (segment.name, segment.name, segment.name))
                node.interfaces[segment.name] = segment.interface
            interface = node.interfaces[segment.name]
            if interface in users:
                host, variable = _interface_source(cluster, node, segment.name)
                raise PlanError(host, variable, "interface %s already carries segment %s on %s; "
                                "each segment needs its own interface" % (interface, users[interface], node.name))
            users[interface] = segment.name


def _interface_source(cluster, node, key):
    """Who set the interface of a segment (or replication) on a node: the host or the group."""
    if key in node.own_interfaces:
        return node.name, "fwcluster_interfaces.%s" % key
    if key == REPLICATION_INTERFACE_KEY:
        return cluster.label, "fwcluster_replication.interface"
    return cluster.label, "fwcluster_segments.%s.interface" % key


def _read_node_addresses(cluster, nodes_vars):
    segment_names = list(cluster.segments)
    owners = {}
    for node in cluster.nodes:
        raw = nodes_vars[node.name].get("fwcluster_addresses")
        if raw is None:
            raise PlanError(node.name, "fwcluster_addresses",
                            "is required: this node's own address with prefix on every segment (%s)"
                            % ", ".join(segment_names))
        raw = read.mapping(raw, node.name, "fwcluster_addresses")
        read.known_keys(raw, segment_names, node.name, "fwcluster_addresses")
        for segment in cluster.segments.values():
            variable = "fwcluster_addresses.%s" % segment.name
            if raw.get(segment.name) is None:
                raise PlanError(node.name, variable, "is required: this node's own address on segment %s, e.g. %s"
                                % (segment.name, _example_address(segment)))
            addresses = read.addresses_on(raw[segment.name], segment.vips, node.name, variable,
                                          _example_address(segment), "segment %s" % segment.name, "node")
            for _version, address in sorted(addresses.items()):
                if address.ip in owners:
                    raise PlanError(node.name, variable, "%s is already the address of %s"
                                    % (address.ip, owners[address.ip]))
                owners[address.ip] = node.name
            node.addresses[segment.name] = addresses[4]
            if 6 in addresses:
                node.addresses6[segment.name] = addresses[6]


def _example_address(segment):
    """An address of each of the segment's families, as the inventory would write them."""
    examples = []
    for vip in segment.vips.values():
        examples.append("%s/%d" % (next(vip.network.hosts()), vip.network.prefixlen))
    return examples[0] if len(examples) == 1 else "[%s]" % ", ".join(examples)


def _read_replication(cluster, cluster_vars, nodes_vars):
    label = cluster.label
    raw = cluster_vars.get("fwcluster_replication")
    if raw is None:
        return
    raw = read.mapping(raw, label, "fwcluster_replication")
    read.known_keys(raw, REPLICATION_KEYS, label, "fwcluster_replication")
    # The mapping being there means replication is wanted unless it says enabled: false.
    if not read.boolean(read.optional(raw, "enabled", True), label, "fwcluster_replication.enabled"):
        return
    interface = raw.get("interface")
    if interface is not None:
        interface = read.interface_name(interface, label, "fwcluster_replication.interface")
    transport = read.choice(read.optional(raw, "transport", REPLICATION_DEFAULTS["transport"]), TRANSPORTS,
                            label, "fwcluster_replication.transport")
    mode = read.choice(read.optional(raw, "mode", REPLICATION_DEFAULTS["mode"]), REPLICATION_MODES,
                       label, "fwcluster_replication.mode")
    port = read.integer(read.optional(raw, "port", REPLICATION_DEFAULTS["port"]), 1, 65535,
                        label, "fwcluster_replication.port")
    group = None
    if transport == "multicast":
        group = read.ipv4_address(read.optional(raw, "multicast_group", REPLICATION_DEFAULTS["multicast_group"]),
                                  label, "fwcluster_replication.multicast_group")
        if not group.is_multicast:
            raise PlanError(label, "fwcluster_replication.multicast_group",
                            "%s is not a multicast address (224.0.0.0/4)" % group)
        if group == VRRP_MULTICAST_GROUP:
            raise PlanError(label, "fwcluster_replication.multicast_group",
                            "%s is VRRP's own group; choose another, e.g. 225.0.0.50" % group)
    elif raw.get("multicast_group") is not None:
        raise PlanError(label, "fwcluster_replication.multicast_group",
                        "only applies to transport multicast; this cluster uses %s" % transport)
    if transport in POINT_TO_POINT_TRANSPORTS and len(cluster.nodes) != 2:
        raise PlanError(label, "fwcluster_replication.transport",
                        "%s is point to point and takes exactly 2 nodes; this cluster has %d: use multicast"
                        % (transport, len(cluster.nodes)))
    if mode == "ftfw" and len(cluster.nodes) > 2:
        # conntrackd keeps ONE receive sequence number for all its peers, and
        # FTFW drops a message numbered before the last one it saw ("we don't
        # accept delayed packets"): with three or more senders, the messages of
        # every node whose counter is behind another's are silently dropped.
        raise PlanError(label, "fwcluster_replication.mode",
                        "ftfw tracks one message sequence for all peers and drops what looks delayed, so with "
                        "%d nodes it loses the messages of every node whose sequence is behind another's; "
                        "use notrack (best effort, with resync at start) for more than 2 nodes" % len(cluster.nodes))
    allowed = cluster.architecture.peer_flows
    peer_flows = read.choice(read.optional(raw, "peer_flows", allowed[0]), PEER_FLOWS, label,
                             "fwcluster_replication.peer_flows")
    if peer_flows not in allowed:
        raise PlanError(label, "fwcluster_replication.peer_flows", "%s: %s" % (
            peer_flows, cluster.architecture.peer_flows_rule % {"architecture": cluster.architecture.name}))
    if mode == "alarm" and raw.get("peer_flows") is not None:
        raise PlanError(label, "fwcluster_replication.peer_flows",
                        "mode alarm keeps no caches (it resends every flow on a timer); choose ftfw or notrack")
    replication = Replication(interface, transport, mode, port, group, peer_flows)

    owners = {}
    first = None
    for node in cluster.nodes:
        if node.replication_interface is None:
            if interface is None:
                raise PlanError(node.name, "fwcluster_interfaces.replication",
                                "replication needs an interface: set fwcluster_replication.interface "
                                "or this host's fwcluster_interfaces.replication")
            node.replication_interface = interface
        for segment_name, segment_interface in node.interfaces.items():
            if segment_interface == node.replication_interface:
                if REPLICATION_INTERFACE_KEY in node.own_interfaces:
                    host, variable = node.name, "fwcluster_interfaces.replication"
                elif segment_name in node.own_interfaces:
                    host, variable = node.name, "fwcluster_interfaces.%s" % segment_name
                else:
                    host, variable = label, "fwcluster_replication.interface"
                raise PlanError(host, variable, "interface %s carries segment %s on %s; replication needs a "
                                "dedicated interface" % (segment_interface, segment_name, node.name))
        variable = "fwcluster_replication_address"
        value = nodes_vars[node.name].get(variable)
        if value is None:
            raise PlanError(node.name, variable, "is required when replication is enabled: this node's address "
                            "with prefix on the replication link, e.g. 192.168.100.%d/24" % (node.node_id + 1))
        address = read.ipv4_interface(value, node.name, variable)
        read.refuse_network_or_broadcast(address, node.name, variable)
        if first is None:
            first = node
            for segment in cluster.segments.values():
                if address.network.overlaps(segment.vip.network):
                    raise PlanError(node.name, variable, "replication network %s overlaps segment %s (%s); "
                                    "the replication link needs its own subnet"
                                    % (address.network, segment.name, segment.vip.network))
        elif address.network != first.replication_address.network:
            raise PlanError(node.name, variable, "%s is not on the replication subnet %s of %s; "
                            "all nodes' replication addresses share one subnet"
                            % (address.with_prefixlen, first.replication_address.network, first.name))
        if address.ip in owners:
            raise PlanError(node.name, variable, "%s is already the replication address of %s"
                            % (address.ip, owners[address.ip]))
        owners[address.ip] = node.name
        node.replication_address = address
    replication.network = first.replication_address.network
    cluster.replication = replication


def _read_vrrp(cluster, cluster_vars):
    label = cluster.label
    raw = read.mapping(read.optional(cluster_vars, "fwcluster_vrrp", {}), label, "fwcluster_vrrp")
    read.known_keys(raw, VRRP_KEYS + claimed_keys(VRRP_KEY), label, "fwcluster_vrrp")
    defaults = dict(VRRP_DEFAULTS, **cluster.architecture.vrrp_defaults)
    cluster.vrrp = {
        # VRRPv3 counts in centiseconds in a 12-bit field: 0.01 .. 40.95 s.
        "advert_int": read.number(read.optional(raw, "advert_int", defaults["advert_int"]), 0.01, 40.95,
                                  label, "fwcluster_vrrp.advert_int"),
        "unicast": read.boolean(read.optional(raw, "unicast", defaults["unicast"]), label, "fwcluster_vrrp.unicast"),
        "preempt": read.boolean(read.optional(raw, "preempt", defaults["preempt"]), label, "fwcluster_vrrp.preempt"),
    }
    cluster.vrrp_options = dict((key, raw[key]) for key in claimed_keys(VRRP_KEY) if raw.get(key) is not None)


def _read_tracking(cluster, cluster_vars):
    """What each node's VRRP state follows besides its links (keepalived watches those itself)."""
    label = cluster.label
    raw = read.mapping(read.optional(cluster_vars, "fwcluster_tracking", {}), label, "fwcluster_tracking")
    read.known_keys(raw, TRACKING_KEYS, label, "fwcluster_tracking")
    # Where conntrackd replicates and the nodes run VRRP, its health is tracked unless switched off.
    possible = cluster.replication is not None and cluster.architecture.vrrp_on_nodes
    conntrackd = read.boolean(read.optional(raw, "conntrackd", possible), label, "fwcluster_tracking.conntrackd")
    if conntrackd and cluster.replication is None:
        raise PlanError(label, "fwcluster_tracking.conntrackd",
                        "tracks the replication daemon, and this cluster has no fwcluster_replication")
    if conntrackd and not possible:
        raise PlanError(label, "fwcluster_tracking.conntrackd",
                        "the %s architecture's firewalls run no VRRP to step down with (the load balancers "
                        "move a dead firewall's buckets); leave it unset or false" % cluster.architecture.name)
    cluster.tracking = {
        "conntrackd": conntrackd,
        "interval": read.integer(read.optional(raw, "interval", TRACKING_DEFAULTS["interval"]), 1, 60,
                                 label, "fwcluster_tracking.interval"),
        "fall": read.integer(read.optional(raw, "fall", TRACKING_DEFAULTS["fall"]), 1, 20, label, "fwcluster_tracking.fall"),
        "rise": read.integer(read.optional(raw, "rise", TRACKING_DEFAULTS["rise"]), 1, 20, label, "fwcluster_tracking.rise"),
        "upstream": _read_upstream(cluster, raw),
        "hold_down": read.integer(read.optional(raw, "hold_down", TRACKING_DEFAULTS["hold_down"]), 0, 3600,
                                  label, "fwcluster_tracking.hold_down"),
    }


def _read_upstream(cluster, raw):
    """fwcluster_tracking.upstream: hosts each node must reach through a segment, [{host, segment}]."""
    label = cluster.label
    entries = read.sequence(read.optional(raw, "upstream", []), label, "fwcluster_tracking.upstream")
    if entries and cluster.replication is None:
        raise PlanError(label, "fwcluster_tracking.upstream",
                        "a node that loses its upstream steps down only while a peer still reaches it, and the "
                        "peers tell each other over the replication link: this cluster has no fwcluster_replication")
    if entries and not cluster.architecture.vrrp_on_nodes:
        raise PlanError(label, "fwcluster_tracking.upstream",
                        "the %s architecture's firewalls run no VRRP to step down with (the load balancers "
                        "move a dead firewall's buckets); leave it unset" % cluster.architecture.name)
    own = set(segment.vip.ip for segment in cluster.segments.values())
    for node in cluster.nodes:
        own.update(address.ip for address in node.addresses.values())
    found = []
    for index, item in enumerate(entries):
        variable = "fwcluster_tracking.upstream[%d]" % index
        item = read.mapping(item, label, variable)
        read.known_keys(item, UPSTREAM_KEYS, label, variable)
        host = read.ipv4_address(read.optional(item, "host"), label, variable + ".host")
        if host.is_multicast or host.is_unspecified or host.is_loopback or host in own:
            raise PlanError(label, variable + ".host",
                            "%s is not a host outside the cluster that can answer a ping" % host)
        segment = read.choice(read.optional(item, "segment"), sorted(cluster.segments), label, variable + ".segment")
        entry = {"host": str(host), "segment": segment}
        if entry in found:
            raise PlanError(label, variable, "%s through %s is listed twice" % (host, segment))
        found.append(entry)
    return found


def _read_policy(cluster, cluster_vars):
    label = cluster.label
    entries = read.sequence(read.optional(cluster_vars, "fwcluster_policy", []), label, "fwcluster_policy")
    segments = list(cluster.segments)
    for index, raw in enumerate(entries):
        variable = "fwcluster_policy[%d]" % index
        raw = read.mapping(raw, label, variable)
        read.known_keys(raw, POLICY_KEYS, label, variable)
        name = read.string(read.optional(raw, "name", "policy %d" % (index + 1)), label, variable + ".name")
        if raw.get("from") is None:
            raise PlanError(label, variable + ".from", "is required: a segment (%s) or any" % ", ".join(segments))
        source_segment = raw["from"]
        if source_segment == POLICY_FIREWALL:
            raise PlanError(label, variable + ".from", "traffic from the firewall itself is always allowed "
                            "(OUTPUT accepts); from names a segment (%s) or any" % ", ".join(segments))
        source_segment = read.choice(source_segment, segments + [POLICY_ANY], label, variable + ".from")
        if raw.get("to") is None:
            raise PlanError(label, variable + ".to", "is required: a segment (%s), any or firewall"
                            % ", ".join(segments))
        target_segment = read.choice(raw["to"], segments + [POLICY_ANY, POLICY_FIREWALL], label, variable + ".to")
        proto = read.choice(read.optional(raw, "proto", "all"), POLICY_PROTOCOLS, label, variable + ".proto")
        ports = None
        if raw.get("ports") is not None:
            if proto not in ("tcp", "udp"):
                raise PlanError(label, variable + ".ports", "ports apply only to proto tcp or udp, not %s" % proto)
            ports = read.ports(raw["ports"], label, variable + ".ports")
        source = read.ip_network(raw["source"], label, variable + ".source") if raw.get("source") is not None else None
        destination = (read.ip_network(raw["destination"], label, variable + ".destination")
                       if raw.get("destination") is not None else None)
        if source is not None and destination is not None and source.version != destination.version:
            raise PlanError(label, variable + ".destination", "%s is IPv%d but source %s is IPv%d; an entry filters "
                            "one family (write one entry per family)" % (destination, destination.version, source,
                                                                         source.version))
        for key, network in (("source", source), ("destination", destination)):
            if network is not None and network.version == 6 and not cluster.dual_stack:
                raise PlanError(label, "%s.%s" % (variable, key), "%s is IPv6, and no segment of cluster %s carries "
                                "an IPv6 VIP: the nodes forward no IPv6" % (network, cluster.name))
        if raw.get("action") is None:
            raise PlanError(label, variable + ".action", "is required: one of %s" % ", ".join(POLICY_ACTIONS))
        action = read.choice(raw["action"], POLICY_ACTIONS, label, variable + ".action")
        cluster.policy.append(PolicyEntry(index, name, source_segment, target_segment, proto, ports,
                                          source, destination, action))


def _parse_dnat_target(value, host, variable):
    """'10.10.1.10' or '10.10.1.10:8080'."""
    text = read.string(value, host, variable)
    address_text, port = text, None
    if text.count(":") == 1:
        address_text, port_text = text.split(":")
        if not read.PORT_NUMBER.fullmatch(port_text):
            raise PlanError(host, variable, "%r: the port after ':' must be a number" % text)
        port = read.integer(int(port_text), 1, 65535, host, variable)
    return read.ipv4_address(address_text, host, variable), port


# NAT66 is refused: IPv6 gives every host an address of its own, a dual-stack
# cluster routes IPv6, and translating it would hide those addresses for nothing.
NAT66_REFUSED = ("NAT is IPv4 only: a dual-stack cluster routes IPv6, it does not translate it (NAT66 is not "
                 "supported); the policy decides what IPv6 may cross")


def _refuse_nat66(value, label, variable):
    """Refuse an IPv6 address or network in a NAT entry with the reason, before the IPv4 reader's own message."""
    text = str(value).split("/", maxsplit=1)[0]
    if text.startswith("[") or text.count(":") >= 2:
        raise PlanError(label, variable, "%s: %s" % (value, NAT66_REFUSED))


def _read_nat(cluster, cluster_vars):
    label = cluster.label
    entries = read.sequence(read.optional(cluster_vars, "fwcluster_nat", []), label, "fwcluster_nat")
    segments = list(cluster.segments)
    for index, raw in enumerate(entries):
        variable = "fwcluster_nat[%d]" % index
        raw = read.mapping(raw, label, variable)
        if raw.get("type") is None:
            raise PlanError(label, variable + ".type", "is required: one of %s" % ", ".join(NAT_TYPES))
        kind = read.choice(raw["type"], NAT_TYPES, label, variable + ".type")
        read.known_keys(raw, NAT_KEYS[kind], label, variable)
        name = read.string(raw["name"], label, variable + ".name") if raw.get("name") is not None else None
        for key in ("source", "to"):
            if isinstance(raw.get(key), str):
                _refuse_nat66(raw[key], label, "%s.%s" % (variable, key))
        source = read.ipv4_network(raw["source"], label, variable + ".source") if raw.get("source") is not None else None
        direction = "in" if kind == "dnat" else "out"
        if raw.get(direction) is None:
            raise PlanError(label, "%s.%s" % (variable, direction), "is required: the %s segment (%s)"
                            % ("incoming" if kind == "dnat" else "outgoing", ", ".join(segments)))
        segment = read.choice(raw[direction], segments, label, "%s.%s" % (variable, direction))
        if kind == "masquerade":
            # SNAT to the VIP, not MASQUERADE: MASQUERADE picks the node's own
            # address, which leaves with the node, so no replicated flow could
            # survive a failover. The VIP moves to the survivor with the flows.
            entry = NatEntry(index, kind, name, segment, source, cluster.segments[segment].vip.ip)
        elif kind == "snat":
            if raw.get("to") is None:
                raise PlanError(label, variable + ".to", "is required: the address to translate the source to")
            entry = NatEntry(index, kind, name, segment, source, read.ipv4_address(raw["to"], label, variable + ".to"))
        else:
            if raw.get("to") is None:
                raise PlanError(label, variable + ".to", "is required: the inside address, e.g. 10.10.1.10 or "
                                "10.10.1.10:8080")
            to_address, to_port = _parse_dnat_target(raw["to"], label, variable + ".to")
            proto = read.choice(read.optional(raw, "proto", "tcp"), ("tcp", "udp"), label, variable + ".proto")
            if raw.get("port") is None:
                raise PlanError(label, variable + ".port", "is required: the port published on the VIP")
            port = read.integer(raw["port"], 1, 65535, label, variable + ".port")
            entry = NatEntry(index, kind, name, segment, source, to_address, to_port, proto, port)
        cluster.nat.append(entry)


def _read_management(cluster, cluster_vars):
    """Who may reach the nodes' own services (SSH): never lock the operator out by default."""
    label = cluster.label
    raw = read.mapping(read.optional(cluster_vars, "fwcluster_management", {}), label, "fwcluster_management")
    read.known_keys(raw, MANAGEMENT_KEYS, label, "fwcluster_management")
    # A dual-stack cluster's nodes are reached over IPv6 too: its default admits both families.
    default = MANAGEMENT_DEFAULTS["sources"] + (["::/0"] if cluster.dual_stack else [])
    sources = read.sequence(read.optional(raw, "sources", default), label, "fwcluster_management.sources")
    found = []
    for index, source in enumerate(sources):
        network = read.ip_network(source, label, "fwcluster_management.sources[%d]" % index)
        if network.version == 6 and not cluster.dual_stack:
            raise PlanError(label, "fwcluster_management.sources[%d]" % index, "%s is IPv6, and no segment of "
                            "cluster %s carries an IPv6 VIP: the nodes admit no IPv6" % (network, cluster.name))
        found.append(network)
    cluster.management = {
        "sources": found,
        "tcp_ports": read.ports(read.optional(raw, "tcp_ports", MANAGEMENT_DEFAULTS["tcp_ports"]), label,
                                "fwcluster_management.tcp_ports", allow_empty=True),
    }


def read_cluster(cluster_vars, nodes_vars, balancers_vars=None):
    """Check the inventory of one cluster and return it as a model.Cluster.

    balancers_vars: {host: host variables} of the hosts with fwcluster_balancer_side.
    """
    cluster = _read_identity(cluster_vars)
    inventory = Inventory(cluster_vars, nodes_vars, balancers_vars)
    architecture = cluster.architecture
    architecture.precheck(cluster, inventory)
    _read_node_ids(cluster, nodes_vars)
    _read_segments(cluster, cluster_vars)
    _read_node_interfaces(cluster, nodes_vars)
    _read_node_addresses(cluster, nodes_vars)
    _read_management_addresses(cluster, nodes_vars)
    _read_replication(cluster, cluster_vars, nodes_vars)
    _read_vrrp(cluster, cluster_vars)
    _read_tracking(cluster, cluster_vars)
    _read_policy(cluster, cluster_vars)
    _read_nat(cluster, cluster_vars)
    _read_management(cluster, cluster_vars)
    cluster.backend = read.choice(read.optional(cluster_vars, "fwcluster_backend", DEFAULT_BACKEND), BACKENDS,
                                  cluster.label, "fwcluster_backend")
    if balancers_vars is not None and not isinstance(balancers_vars, Mapping):
        # The cluster_inputs filter always passes a mapping; any other caller gets a refusal, not a traceback.
        raise PlanError(cluster.label, "fwcluster_balancer_side",
                        "the balancers must be given as {host: host variables}, not %s" % read.describe(balancers_vars))
    _refuse_unclaimed(cluster, inventory)
    cluster.settings = architecture.read_own(cluster, inventory)
    cluster.segment_routes = routes.read_segment_routes(cluster)
    architecture.check(cluster)
    return cluster


def _refuse_unclaimed(cluster, inventory):
    """A key that only other architectures read is refused, with the rule its claim gives."""
    for claim, owners in claims():
        if cluster.architecture.name in owners:
            continue
        where = _where_given(claim, cluster, inventory)
        if where is not None:
            raise PlanError(where[0], where[1], claim.refusal % {"cluster": cluster.name,
                                                                 "architecture": cluster.architecture.name})


def _where_given(claim, cluster, inventory):
    """(host, variable) where the inventory sets a claimed key, None where it does not."""
    if claim.where == CLUSTER_VARIABLE and inventory.cluster_vars.get(claim.key) is not None:
        return cluster.label, claim.key
    if claim.where == VRRP_KEY and claim.key in cluster.vrrp_options:
        return cluster.label, "fwcluster_vrrp.%s" % claim.key
    if claim.where == SEGMENT_KEY:
        for segment in cluster.segments.values():
            if claim.key in segment.options:
                return cluster.label, "fwcluster_segments.%s.%s" % (segment.name, claim.key)
    if claim.where == BALANCER_HOSTS and inventory.balancers_vars:
        return sorted(inventory.balancers_vars)[0], claim.key
    return None
