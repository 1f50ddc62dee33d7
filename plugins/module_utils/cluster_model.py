# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster model: inventory variables in, one validated cluster plan out.

``build_plan(cluster, nodes)`` is the only entry point the roles need; the
plan's shape is documented in docs/cluster-plan.md. Every wrong input ends in
``PlanError(host, variable, rule)``, never in another exception.

Stdlib only and Python 3.8 syntax: this file also ships to the nodes inside
the validator modules.

How an architecture plugs in: it is one ``Architecture`` entry in
``ARCHITECTURES`` with its own functions for the node roles, the keepalived
instances (priorities) and the ruleset, plus optional extra checks. The
inventory reading and the checks every architecture shares live here once.
"""

from __future__ import annotations

import ipaddress
import math
import re
import zlib

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps sanity's import test quiet
    Mapping = dict

from ansible_collections.fwcluster.netfilter.plugins.module_utils.ruleset import (
    FILTER_POLICIES,
    ICMP_REPLY,
    ICMP_REQUEST,
    MANGLE_POLICIES,
    NAT_POLICIES,
    NOTRACK_FORWARDED,
    RAW_POLICIES,
    VRRP_PROTOCOL,
    access_rule,
    comment_match,
    dnat_rule,
    network_text,
    port_text,
    replication_rules,
    snat_rule,
    stateful_prologue,
    stateless_rule,
    table,
    target,
    vrrp_rule,
)


class PlanError(Exception):
    """An inventory that cannot become a plan: which host, which variable, which rule."""

    def __init__(self, host, variable, rule):
        super(PlanError, self).__init__(host, variable, rule)
        self.host = host
        self.variable = variable
        self.rule = rule

    def __str__(self):
        return "%s: %s: %s" % (self.host, self.variable, self.rule)


# The inventory variables the model reads (the filter cluster_inputs collects exactly these).
CLUSTER_VARIABLES = (
    "fwcluster_architecture",
    "fwcluster_name",
    "fwcluster_segments",
    "fwcluster_replication",
    "fwcluster_vrrp",
    "fwcluster_policy",
    "fwcluster_nat",
    "fwcluster_management",
    "fwcluster_hash_seed",
    "fwcluster_balancers",
)
NODE_VARIABLES = (
    "fwcluster_node_id",
    "fwcluster_addresses",
    "fwcluster_replication_address",
    "fwcluster_interfaces",
)
# The host variables of a sandwich load balancer (a host with fwcluster_balancer_side).
BALANCER_VARIABLES = (
    "fwcluster_balancer_side",
    "fwcluster_node_id",
    "fwcluster_addresses",
    "fwcluster_interfaces",
)

MAX_NODES = 32  # xt_cluster's node mask has 32 bits; every architecture keeps to it
MIN_NODES = 2
VRRP_VERSION = 3
TRANSPORTS = ("udp", "multicast", "tcp")
POINT_TO_POINT_TRANSPORTS = ("udp", "tcp")
REPLICATION_MODES = ("ftfw", "notrack", "alarm")
POLICY_PROTOCOLS = ("tcp", "udp", "icmp", "all")
POLICY_ACTIONS = ("accept", "drop", "reject")
NAT_TYPES = ("masquerade", "snat", "dnat")
MULTIPORT_SLOTS = 15  # the multiport match takes 15 ports, a range counts twice
VRRP_MULTICAST_GROUP = ipaddress.IPv4Address("224.0.0.18")

REPLICATION_DEFAULTS = {
    "transport": "udp",
    "mode": "ftfw",
    "port": 3780,
    "multicast_group": "225.0.0.50",
}
VRRP_DEFAULTS = {"advert_int": 1, "unicast": False, "preempt": False}
MANAGEMENT_DEFAULTS = {"sources": ["0.0.0.0/0"], "tcp_ports": [22]}

# Known keys of each mapping: a typo must be refused, not silently defaulted.
SEGMENT_KEYS = ("interface", "vip", "vrid", "multicast_mac")
REPLICATION_KEYS = ("enabled", "interface", "transport", "mode", "port", "multicast_group")
VRRP_KEYS = ("advert_int", "unicast", "preempt", "preempt_delay")
MANAGEMENT_KEYS = ("sources", "tcp_ports")
POLICY_KEYS = ("name", "from", "to", "proto", "ports", "source", "destination", "action")
NAT_KEYS = {
    "masquerade": ("type", "name", "out", "source"),
    "snat": ("type", "name", "out", "source", "to"),
    "dnat": ("type", "name", "in", "proto", "port", "to", "source"),
}

# Names that have a meaning of their own where segments are named.
POLICY_ANY = "any"
POLICY_FIREWALL = "firewall"
REPLICATION_INTERFACE_KEY = "replication"
RESERVED_SEGMENT_NAMES = (POLICY_ANY, POLICY_FIREWALL, REPLICATION_INTERFACE_KEY)

# Patterns of names and values that reach rendered files. Always applied with fullmatch:
# "$" also matches before a final newline, so "inside\n" would pass a "^...$" match.
_CLUSTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_SEGMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")  # IFNAMSIZ: 15 characters
_PORT_RANGE = re.compile(r"\s*([0-9]{1,5})\s*:\s*([0-9]{1,5})\s*")
_PORT_NUMBER = re.compile(r"[0-9]{1,5}")
# Inventory host names reach keepalived.conf (router_id), systemd units (Description=) and
# the comments of the shell hooks that keepalived runs as root on every transition. There a
# newline starts a new line of configuration or of shell, a space splits a keepalived token,
# "#" and "!" start a keepalived comment, "%" is a systemd specifier. DNS names (at most 253
# characters), IPv4 addresses and the usual aliases are made of these characters.
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_HOST_NAME_CHARACTER = re.compile(r"[A-Za-z0-9_.:-]")
_CHARACTER_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}

# What every node gets, whatever the architecture. Strings: sysctl values are text.
BASE_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "1"),
    ("net.ipv4.conf.default.rp_filter", "1"),
    # With tcp_loose=1 a node that never saw a flow's SYN adopts it mid-stream;
    # with 0, a flow survives a failover only through replicated state, which is
    # exactly what the cluster claims and what the tests check.
    ("net.netfilter.nf_conntrack_tcp_loose", "0"),
    # Out-of-window segments stay INVALID (dropped) instead of being waved through.
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "0"),
)


# --------------------------------------------------------------------------
# Reading values: each helper either returns a clean value or raises PlanError.
# --------------------------------------------------------------------------

def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean %s" % ("true" if value else "false")
    if isinstance(value, int):
        return "the integer %d" % value
    if isinstance(value, float):
        return "the number %s" % value
    if isinstance(value, str):
        text = str(value)
        return "the string %r" % (text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of type %s" % type(value).__name__


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value, host, variable):
    if not isinstance(value, Mapping):
        raise PlanError(host, variable, "must be a mapping, got %s" % _describe(value))
    return value


def _known_keys(mapping, allowed, host, variable):
    for key in mapping:
        if key not in allowed:
            raise PlanError(host, "%s.%s" % (variable, key),
                            "unknown key; known keys: %s" % ", ".join(allowed))


def _list(value, host, variable):
    if not isinstance(value, (list, tuple)):
        raise PlanError(host, variable, "must be a list, got %s" % _describe(value))
    return list(value)


def _string(value, host, variable):
    if not isinstance(value, str) or not value.strip():
        raise PlanError(host, variable, "must be a non-empty string, got %s" % _describe(value))
    return str(value).strip()


def _choice(value, choices, host, variable):
    if not isinstance(value, str) or value not in choices:
        raise PlanError(host, variable, "must be one of %s, got %s" % (", ".join(choices), _describe(value)))
    return str(value)


def _integer(value, low, high, host, variable):
    if not _is_integer(value):
        raise PlanError(host, variable, "must be an integer in %d..%d, got %s" % (low, high, _describe(value)))
    if not low <= value <= high:
        raise PlanError(host, variable, "must be in %d..%d, got %d" % (low, high, value))
    return int(value)


def _boolean(value, host, variable):
    if not isinstance(value, bool):
        raise PlanError(host, variable, "must be true or false, got %s" % _describe(value))
    return bool(value)


def _number(value, low, high, host, variable):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(host, variable, "must be a number in %s..%s, got %s" % (low, high, _describe(value)))
    if isinstance(value, float) and not math.isfinite(value):
        # YAML's .nan and .inf are floats: a NaN fails every comparison, so it gets its own reason.
        raise PlanError(host, variable, "must be a finite number in %s..%s, got %s" % (low, high, value))
    if not low <= value <= high:
        raise PlanError(host, variable, "must be in %s..%s, got %s" % (low, high, value))
    return float(value)


def _host_name(host):
    """An inventory host name that is safe in every file it reaches (see _HOST_NAME)."""
    host = str(host)
    if _HOST_NAME.fullmatch(host):
        return host
    # The name itself cannot be printed as it is: it may hold a newline.
    if len(host) > 253:
        problem = "is %d characters long" % len(host)
    elif not _HOST_NAME_CHARACTER.fullmatch(host[0]) or host[0] in ".:-":
        problem = "starts with %s" % _character(host[0])
    else:
        problem = "holds %s" % _character([char for char in host if not _HOST_NAME_CHARACTER.fullmatch(char)][0])
    raise PlanError(repr(host), "inventory_hostname",
                    "%s; a host name is written into keepalived.conf, systemd units and the shell hooks keepalived "
                    "runs as root: use at most 253 letters, digits, '.', '_', '-' or ':', starting with a letter, "
                    "digit or '_'" % problem)


def _character(char):
    return _CHARACTER_NAMES.get(char, repr(char))


def _interface_name(value, host, variable):
    name = _string(value, host, variable)
    if not _INTERFACE_NAME.fullmatch(name) or name in (".", ".."):
        raise PlanError(host, variable,
                        "%r is not a valid interface name (at most 15 characters: letters, digits, _ . -)" % name)
    return name


def _parse_ipv4(text, host, variable, parse, what):
    """Parse text with an ipaddress constructor; refuse what is not IPv4."""
    try:
        value = parse(text)
    except ValueError:
        raise PlanError(host, variable, "%r is not an IPv4 %s" % (text, what))
    if value.version != 4:
        raise PlanError(host, variable, "%r is IPv6; this version handles IPv4 only" % text)
    return value


def _ipv4_interface(value, host, variable):
    """An address with its prefix, e.g. 10.10.1.1/24."""
    text = _string(value, host, variable)
    if "/" not in text:
        raise PlanError(host, variable, "%r needs a prefix length, e.g. 10.10.1.1/24" % text)
    return _parse_ipv4(text, host, variable, ipaddress.ip_interface, "address with prefix")


def _ipv4_address(value, host, variable):
    return _parse_ipv4(_string(value, host, variable), host, variable, ipaddress.ip_address, "address")


def _ipv4_network(value, host, variable):
    """A network (10.10.1.0/24) or a single address (taken as /32)."""
    text = _string(value, host, variable)
    network = _parse_ipv4(text, host, variable, lambda item: ipaddress.ip_network(item, strict=False), "network")
    if "/" in text and ipaddress.ip_interface(text).ip != network.network_address:
        raise PlanError(host, variable, "%r has host bits set; did you mean %s?" % (text, network.with_prefixlen))
    return network


def _is_network_or_broadcast(address):
    network = address.network
    return network.prefixlen <= 30 and address.ip in (network.network_address, network.broadcast_address)


def _ports(value, host, variable, allow_empty=False):
    """Destination ports: integers and 'low:high' ranges, at most one multiport match."""
    items = _list(value, host, variable)
    if not items and not allow_empty:
        raise PlanError(host, variable, "must list at least one port")
    ports = []
    slots = 0
    for index, item in enumerate(items):
        where = "%s[%d]" % (variable, index)
        if _is_integer(item):
            ports.append(_integer(item, 1, 65535, host, where))
            slots += 1
            continue
        match = _PORT_RANGE.fullmatch(item) if isinstance(item, str) else None
        if not match:
            raise PlanError(host, where, "must be a port (1..65535) or a range 'low:high', got %s" % _describe(item))
        low, high = int(match.group(1)), int(match.group(2))
        if not 1 <= low < high <= 65535:
            raise PlanError(host, where, "range %r must satisfy 1 <= low < high <= 65535" % str(item))
        ports.append((low, high))
        slots += 2
    if slots > MULTIPORT_SLOTS:
        raise PlanError(host, variable, "at most %d ports per entry (a range counts twice): split the entry"
                        % MULTIPORT_SLOTS)
    return ports


def _optional(mapping, key, default=None):
    """A key that may be absent or null (an empty YAML value)."""
    value = mapping.get(key)
    return default if value is None else value


# --------------------------------------------------------------------------
# The validated cluster, before any architecture looks at it.
# --------------------------------------------------------------------------

class Segment(object):
    def __init__(self, name, interface, vip, vrid, multicast_mac=None):
        self.name = name
        self.interface = interface  # group default, None if every host names its own
        self.vip = vip  # IPv4Interface
        self.vrid = vrid
        self.multicast_mac = multicast_mac  # as written (hash only); checked by the hash section


class Node(object):
    def __init__(self, name, node_id):
        self.name = name
        self.node_id = node_id
        self.interfaces = {}  # segment -> interface name
        self.own_interfaces = set()  # segments (or "replication") named by this host
        self.addresses = {}  # segment -> IPv4Interface
        self.replication_interface = None
        self.replication_address = None  # IPv4Interface


class Replication(object):
    def __init__(self, interface, transport, mode, port, multicast_group):
        self.interface = interface
        self.transport = transport
        self.mode = mode
        self.port = port
        self.multicast_group = multicast_group  # IPv4Address, multicast transport only
        self.network = None  # IPv4Network, from the nodes' addresses


class PolicyEntry(object):
    def __init__(self, index, name, source_segment, target_segment, proto, ports, source, destination, action):
        self.index = index
        self.name = name
        self.source_segment = source_segment  # segment name or "any"
        self.target_segment = target_segment  # segment name, "any" or "firewall"
        self.proto = proto
        self.ports = ports
        self.source = source
        self.destination = destination
        self.action = action


class NatEntry(object):
    def __init__(self, index, kind, name, segment, source, to_address, to_port=None, proto=None, port=None):
        self.index = index
        self.kind = kind
        self.name = name
        self.segment = segment  # masquerade/snat: outgoing segment; dnat: incoming segment
        self.source = source
        self.to_address = to_address
        self.to_port = to_port
        self.proto = proto
        self.port = port


class Cluster(object):
    """Everything build_plan reads, checked and normalized; nodes sorted by node id."""

    def __init__(self, name, architecture):
        self.name = name
        self.label = "cluster %s" % name  # the "host" of group-variable errors
        self.architecture = architecture
        self.nodes = []
        self.segments = {}
        self.replication = None
        self.vrrp = {}
        self.policy = []
        self.nat = []
        self.management = {}
        self.hash_seed = None  # int, when the inventory sets fwcluster_hash_seed
        self.balancing = None  # sandwich only: the balancers, their sides and the hash

    def segment_of_address(self, address):
        for segment in self.segments.values():
            if address in segment.vip.network:
                return segment.name
        return None


# --------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------

class Architecture(object):
    """What makes one architecture: roles, keepalived instances, ruleset, extra checks.

    Each function takes the validated Cluster (and a Node where it is per node).
    precheck, when given, runs right after the architecture is known, on the raw
    inventory (cluster, cluster_vars, nodes_vars): for refusals that must come
    before the shared checks would complain about details of a thing the
    architecture refuses as a whole (e.g. multipath and replication).
    An architecture without functions is known but not implemented yet.
    """

    def __init__(self, name, node_role=None, keepalived=None, ruleset=None, check=None, precheck=None,
                 read=None, node_extra=None, plan_extra=None):
        self.name = name
        self.node_role = node_role
        self.keepalived = keepalived
        self.ruleset = ruleset
        self.check = check
        self.precheck = precheck
        # Optional hooks: read(cluster, cluster_vars, balancers_vars) reads what only this
        # architecture has (sandwich: the balancers); node_extra(cluster, node) returns keys
        # that replace or add to a node's plan; plan_extra(cluster) keys that replace or
        # add to the cluster plan.
        self.read = read
        self.node_extra = node_extra
        self.plan_extra = plan_extra

    @property
    def implemented(self):
        return self.ruleset is not None


def _primary_backup_role(cluster, node):
    # The lowest id is the preferred primary; preemption decides whether it takes the VIPs back.
    return "primary" if node.node_id == cluster.nodes[0].node_id else "backup"


def _primary_backup_priority(node):
    # Steps of 4 leave room for keepalived track scripts to lower a node without a tie.
    return 254 - 4 * node.node_id


def _primary_backup_keepalived(cluster, node):
    """One VRRP instance per segment, bound in one sync group: the primary holds every VIP."""
    vrrp = cluster.vrrp
    instances = []
    for segment in cluster.segments.values():
        peers = [other.addresses[segment.name].ip for other in cluster.nodes if other is not node]
        instances.append({
            "name": "%s_%s" % (cluster.name, segment.name),
            "segment": segment.name,
            "interface": node.interfaces[segment.name],
            "vrid": segment.vrid,
            "priority": _primary_backup_priority(node),
            "state": "BACKUP",  # every node starts BACKUP; the election decides
            "advert_int": vrrp["advert_int"],
            "preempt": vrrp["preempt"],
            "vips": [segment.vip.with_prefixlen],
            "unicast_src": str(node.addresses[segment.name].ip) if vrrp["unicast"] else None,
            "unicast_peers": [str(peer) for peer in peers] if vrrp["unicast"] else [],
        })
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


def _primary_backup_ruleset(cluster, node):
    return [
        table("filter", FILTER_POLICIES, _filter_input_rules(cluster, node) + _filter_forward_rules(cluster, node)),
        table("nat", NAT_POLICIES, _nat_rules(cluster, node)),
    ]


# --------------------------------------------------------------------------
# multipath: two VRRP instances with opposite masters, stateless filtering
#
# Node id 0 masters the inside VIP (the gateway of the inside hosts: it
# forwards what they send out), node id 1 the outside VIP (what comes in and
# the replies to the inside hosts). A flow's two directions therefore cross
# two different nodes, and neither node can keep its state: the ruleset is
# stateless, and replication, NAT and policy entries that need state are
# refused before any host is touched (the paper's verdict, as a rule).
# --------------------------------------------------------------------------

# The segment names carry the meaning: which VIP node 0 owns, which node 1.
MULTIPATH_OWNERS = (("inside", 0), ("outside", 1))  # segment -> node id of its preferred master
MULTIPATH_NODES = 2
# The standby priority decides how fast the survivor takes the other VIP
# (VRRPv3 skew = (256 - priority) / 256 x advert_int): keep it close to the top.
MULTIPATH_OWNER_PRIORITY = 254
MULTIPATH_STANDBY_PRIORITY = 250
MULTIPATH_ROLES = {0: "outbound", 1: "inbound"}  # node id -> what it forwards while both are up
MULTIPATH_REQUEST_CHAIN = "fwcluster-request"
MULTIPATH_REPLY_CHAIN = "fwcluster-reply"
MULTIPATH_REFUSE_CHAIN = "fwcluster-refuse"

_MULTIPATH_WHY = ("multipath sends the two directions of a flow through two different nodes and filters "
                  "statelessly: asynchronous replication would race the flow's own packets (the reply "
                  "reaches the other node before the state does)")


def _multipath_precheck(cluster, cluster_vars, nodes_vars):
    """Refuse what multipath cannot do as a whole, before the details of it are checked."""
    label = cluster.label
    replication = cluster_vars.get("fwcluster_replication")
    if isinstance(replication, Mapping) and _optional(replication, "enabled", True) is True:
        raise PlanError(label, "fwcluster_replication",
                        "%s. Remove fwcluster_replication or set enabled: false" % _MULTIPATH_WHY)
    nat = cluster_vars.get("fwcluster_nat")
    if isinstance(nat, (list, tuple)) and nat:
        raise PlanError(label, "fwcluster_nat",
                        "multipath refuses NAT: a translation lives in the conntrack entry of the node that "
                        "saw the flow's first packet, and the replies cross the other node, which has none; "
                        "%s. Leave fwcluster_nat empty, or use primary_backup" % _MULTIPATH_WHY)
    vrrp = cluster_vars.get("fwcluster_vrrp")
    if isinstance(vrrp, Mapping) and vrrp.get("preempt") is False:
        raise PlanError(label, "fwcluster_vrrp.preempt",
                        "multipath needs preemption: a returning node must take its own VIP back, or "
                        "the survivor keeps both and the traffic never splits again; remove the key "
                        "(multipath always preempts)")


def _multipath_check(cluster):
    """Two nodes, the segments inside and outside, and a policy that needs no state."""
    label = cluster.label
    if len(cluster.nodes) != MULTIPATH_NODES:
        raise PlanError(label, "fwcluster_name",
                        "multipath takes exactly %d nodes (node id 0 masters the inside VIP, node id 1 the "
                        "outside VIP); %d hosts carry fwcluster_name %s"
                        % (MULTIPATH_NODES, len(cluster.nodes), cluster.name))
    wanted = [name for name, _owner in MULTIPATH_OWNERS]
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
                            "%s. Name the protocol: tcp, udp with ports, or icmp" % _MULTIPATH_WHY)
        if entry.proto == "udp" and not entry.ports:
            raise PlanError(label, variable + ".ports",
                            "accepting udp without ports needs connection state: the replies could only be "
                            "admitted as any udp the other way; %s. List the ports" % _MULTIPATH_WHY)
    # Multipath always preempts (see the precheck): the plan says so.
    cluster.vrrp["preempt"] = True


def _multipath_owner(segment_name):
    return dict(MULTIPATH_OWNERS)[segment_name]


def _multipath_role(cluster, node):
    return MULTIPATH_ROLES[node.node_id]


def _multipath_keepalived(cluster, node):
    """One instance per segment, no sync group: each VIP fails over on its own."""
    vrrp = cluster.vrrp
    instances = []
    for segment_name, owner in MULTIPATH_OWNERS:
        segment = cluster.segments[segment_name]
        peers = [other.addresses[segment_name].ip for other in cluster.nodes if other is not node]
        instances.append({
            "name": "%s_%s" % (cluster.name, segment_name),
            "segment": segment_name,
            "interface": node.interfaces[segment_name],
            "vrid": segment.vrid,
            "priority": MULTIPATH_OWNER_PRIORITY if node.node_id == owner else MULTIPATH_STANDBY_PRIORITY,
            "state": "BACKUP",  # the election decides; the owner preempts
            "advert_int": vrrp["advert_int"],
            "preempt": True,
            "vips": [segment.vip.with_prefixlen],
            "unicast_src": str(node.addresses[segment_name].ip) if vrrp["unicast"] else None,
            "unicast_peers": [str(peer) for peer in peers] if vrrp["unicast"] else [],
        })
    return {"router_id": node.name, "sync_group": None, "instances": instances}


def _multipath_entry_rule(node, entry, chain, jump, reply):
    """An entry as a request (the direction it names) or as a reply (its mirror)."""
    from_interface = _segment_interface(node, entry.source_segment)
    to_interface = _segment_interface(node, entry.target_segment)
    accepted = entry.action == "accept"
    icmp_type = None
    if entry.proto == "icmp" and accepted:
        icmp_type = ICMP_REPLY if reply else ICMP_REQUEST
    if reply:
        return stateless_rule(
            chain, jump, entry.proto, ports=entry.ports, port_side="s",
            in_interface=to_interface, out_interface=from_interface,
            source=entry.destination, destination=entry.source,
            # A reply never opens a connection: refusing a bare SYN keeps the
            # mirror of "tcp to port X" from admitting connections from port X.
            not_syn=accepted, icmp_type=icmp_type, comment="%s (reply)" % entry.name)
    return stateless_rule(
        chain, jump, entry.proto, ports=entry.ports, port_side="d",
        in_interface=from_interface, out_interface=to_interface,
        source=entry.source, destination=entry.destination,
        icmp_type=icmp_type, comment=entry.name)


def _multipath_forward_rules(cluster, node):
    """The policy without state: a packet passes when the policy accepts it as a request or as a reply.

    Each view keeps the policy's first-match order: an accept entry accepts,
    a drop or reject entry ends the view (RETURN). What neither view accepts
    meets the first drop/reject entry it matches (fwcluster-refuse, only
    rendered when the policy rejects), then the chain's DROP policy.
    """
    entries = [entry for entry in cluster.policy if entry.target_segment != POLICY_FIREWALL]
    chains = [MULTIPATH_REQUEST_CHAIN, MULTIPATH_REPLY_CHAIN]
    if any(entry.action == "reject" for entry in entries):
        chains.append(MULTIPATH_REFUSE_CHAIN)
    rules = ["-A FORWARD -j %s" % chain for chain in chains]
    for reply, chain in ((False, MULTIPATH_REQUEST_CHAIN), (True, MULTIPATH_REPLY_CHAIN)):
        for entry in entries:
            jump = "-j ACCEPT" if entry.action == "accept" else "-j RETURN"
            rules.append(_multipath_entry_rule(node, entry, chain, jump, reply))
    if MULTIPATH_REFUSE_CHAIN in chains:
        for entry in entries:
            if entry.action != "accept":
                rules.append(_multipath_entry_rule(node, entry, MULTIPATH_REFUSE_CHAIN,
                                                   target(entry.action, entry.proto), reply=False))
    return chains, rules


def _multipath_ruleset(cluster, node):
    chains, forward = _multipath_forward_rules(cluster, node)
    return [
        # Forwarded packets are not tracked: a node sees one direction of a flow.
        table("raw", RAW_POLICIES, [NOTRACK_FORWARDED]),
        # INPUT keeps the stateful rules: traffic to the node itself is symmetric.
        table("filter", FILTER_POLICIES, _filter_input_rules(cluster, node) + forward, user_chains=chains),
        # Empty, so that a node turned multipath loses any earlier translation.
        table("nat", NAT_POLICIES, []),
    ]


# --------------------------------------------------------------------------
# hash: every node active, one shared multicast MAC per segment, the iptables
# cluster match (xt_cluster) decides which node forwards a flow.
# --------------------------------------------------------------------------
#
# Node id k (0..n-1) is xt_cluster node k+1, bit k of --cluster-local-nodemask.
# Each node owns a set of ids; a packet on a segment interface is marked when
# jhash(original source address, seed) % n is an owned id, and every unmarked
# packet is dropped in mangle PREROUTING. keepalived runs one VRRP instance per
# node id (node k is its master); the notify hook adds a node id to, or removes
# it from, the node's chain HASH_CHAIN, one rule per owned id. The boot ruleset
# owns nothing: a node forwards only what keepalived has made it master of, so
# a returning node cannot forward flows that a survivor still owns.

HASH_CHAIN = "FWCLUSTER-OWN"
# The mark bit of an owned packet. One bit, so other marks are left alone.
HASH_MARK = 0x40000000
# What the notify hook runs to change the owned ids (installed by the firewall role).
HASH_OWNER_COMMAND = "/usr/local/sbin/fwcluster-hash-owner"
# A returning node waits this long on its own instance before taking its id
# back, so conntrackd's startup resync has put the flows into its kernel first.
HASH_PREEMPT_DELAY = 5.0
# 01:00:5e:00:00:xx maps 224.0.0.0/24, link-local control groups (VRRP's
# 224.0.0.18 among them); a cluster MAC there would collide with them.
_MULTICAST_MAC = re.compile(r"01:00:5e:([0-7][0-9a-f]):([0-9a-f]{2}):([0-9a-f]{2})")
_HASH_REPLICATION_MODES = ("ftfw", "notrack")


def _hash_multicast_mac(segment, label):
    """The segment's cluster MAC: as set in the inventory, or 01:00:5e + the VIP's low 23 bits."""
    variable = "fwcluster_segments.%s.multicast_mac" % segment.name
    if segment.multicast_mac is not None:
        text = _string(segment.multicast_mac, label, variable).lower()
        match = _MULTICAST_MAC.fullmatch(text)
        if not match:
            raise PlanError(label, variable, "%r is not an IPv4 multicast MAC 01:00:5e:00:00:00..01:00:5e:7f:ff:ff"
                            % str(segment.multicast_mac))
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


def _hash_seed(cluster):
    """fwcluster_hash_seed, or a value derived from the cluster name (stable across runs)."""
    if cluster.hash_seed is not None:
        return cluster.hash_seed
    return zlib.crc32(cluster.name.encode("utf-8")) & 0xFFFFFFFF


def _hash_vrrp_segment(cluster):
    """The VRRP instances run on the first segment; the others are tracked."""
    return list(cluster.segments.values())[0]


def _hash_check(cluster):
    label = cluster.label
    macs = {}
    for segment in cluster.segments.values():
        mac = _hash_multicast_mac(segment, label)
        if mac in macs:
            raise PlanError(label, "fwcluster_segments.%s.multicast_mac" % segment.name,
                            "%s is already the multicast MAC of segment %s; each segment needs its own "
                            "(set multicast_mac on one of them)" % (mac, macs[mac]))
        macs[mac] = segment.name
    first = _hash_vrrp_segment(cluster)
    count = len(cluster.nodes)
    if first.vrid + count - 1 > 255:
        raise PlanError(label, "fwcluster_segments.%s.vrid" % first.name,
                        "the hash architecture uses VRIDs %d..%d on segment %s (one per node id); "
                        "the last must be at most 255" % (first.vrid, first.vrid + count - 1, first.name))
    vrrp = cluster.vrrp
    if vrrp["preempt_set"] and not vrrp["preempt"]:
        raise PlanError(label, "fwcluster_vrrp.preempt",
                        "must be true (the default) in a hash cluster: a returning node takes its own node "
                        "id back, otherwise the survivor keeps forwarding for two ids for good")
    replication = cluster.replication
    if replication is not None and replication.mode not in _HASH_REPLICATION_MODES:
        raise PlanError(label, "fwcluster_replication.mode",
                        "%s keeps the peers' flows in conntrackd's external cache only; a hash cluster needs "
                        "them in every node's kernel table (DisableExternalCache), which %s support"
                        % (replication.mode, " and ".join(_HASH_REPLICATION_MODES)))
    for entry in cluster.nat:
        if entry.kind in ("masquerade", "snat"):
            raise PlanError(label, "fwcluster_nat[%d].type" % entry.index,
                            "%s is not supported by the hash architecture in this version: every node would "
                            "pick source ports from the same address, and two nodes can map two flows to one "
                            "tuple; route the inside networks instead (dnat is supported)" % entry.kind)


def _hash_owner_rule(cluster, node_id):
    """The rule that makes a node own node id node_id, exactly as iptables-save prints it.

    iptables-save prints --cluster-local-nodemask even where a rule was written
    with --cluster-local-node, so the plan, the hook's iptables -C checks and the
    verify step all use this one form.
    """
    text = ("-A %s -m cluster --cluster-local-nodemask 0x%08x --cluster-total-nodes %d --cluster-hash-seed 0x%08x "
            "-j MARK --set-xmark 0x%x/0x%x")
    return text % (HASH_CHAIN, 1 << node_id, len(cluster.nodes), _hash_seed(cluster), HASH_MARK, HASH_MARK)


def _hash_marker(segment, owner):
    """127.254.<first VRID>.<node id + 1>/32: held on lo by the master of the node id's instance."""
    return "127.254.%d.%d/32" % (segment.vrid, owner.node_id + 1)


def _hash_role(cluster, node):
    return "active"


def _hash_priority(cluster, node, owner_id):
    """Node owner_id is master of its instance; the others follow in id order after it."""
    distance = (node.node_id - owner_id) % len(cluster.nodes)
    return 254 - 4 * distance


def _hash_keepalived(cluster, node):
    """One VRRP instance per node id, no VIPs: the instance's master owns that node id."""
    vrrp = cluster.vrrp
    segment = _hash_vrrp_segment(cluster)
    interface = node.interfaces[segment.name]
    peers = [other.addresses[segment.name].ip for other in cluster.nodes if other is not node]
    tracked = [node.interfaces[name] for name in cluster.segments if name != segment.name]
    if cluster.replication is not None:
        tracked.append(node.replication_interface)
    delay = vrrp["preempt_delay"] if vrrp["preempt_delay"] is not None else HASH_PREEMPT_DELAY
    instances = []
    for owner in cluster.nodes:
        own = owner is node
        instances.append({
            "name": "%s_id%d" % (cluster.name, owner.node_id),
            "segment": segment.name,
            "interface": interface,
            "vrid": segment.vrid + owner.node_id,
            "priority": _hash_priority(cluster, node, owner.node_id),
            "state": "BACKUP",
            "advert_int": vrrp["advert_int"],
            # Only the owner preempts, and only after preempt_delay: a survivor
            # keeps a dead node's id until the owner is back and resynced.
            "preempt": own,
            "preempt_delay": delay if own else 0,
            # keepalived refuses an instance without a VIP; the segment VIPs are
            # on every node already. The instance carries a marker instead: a
            # host-scope loopback address only its master holds (never on the wire).
            "vips": [_hash_marker(segment, owner)],
            "vip_interface": "lo",
            "vip_scope": "host",
            "unicast_src": str(node.addresses[segment.name].ip) if vrrp["unicast"] else None,
            "unicast_peers": [str(peer) for peer in peers] if vrrp["unicast"] else [],
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
    return {"router_id": node.name, "sync_group": None, "instances": instances}


def _hash_reply_direction_drops(cluster, node):
    """NEW UDP shaped like the reply of an accepted UDP flow is dropped.

    A node that missed a UDP flow's first packet would otherwise take the
    reply for a new flow, hashed on the server's address: possibly to another
    node, which would then forward packets of a flow that already has an owner.
    """
    rules = []
    for entry in cluster.policy:
        if entry.proto != "udp" or entry.action != "accept" or entry.target_segment == POLICY_FIREWALL:
            continue
        source_text = network_text(entry.destination)
        destination_text = network_text(entry.source)
        ports = entry.ports
        sport = None
        if ports:
            sport = ("--sport " + port_text(ports[0]) if len(ports) == 1 else
                     "-m multiport --sports " + ",".join(port_text(port) for port in ports))
        rules.append(" ".join(part for part in [
            "-A FORWARD",
            "-i " + _segment_interface(node, entry.target_segment) if entry.target_segment != POLICY_ANY else None,
            "-o " + _segment_interface(node, entry.source_segment) if entry.source_segment != POLICY_ANY else None,
            "-s " + source_text if source_text else None,
            "-d " + destination_text if destination_text else None,
            "-p udp",
            sport,
            "-m conntrack --ctstate NEW",
            comment_match("%s (reply direction)" % entry.name),
            "-j DROP",
        ] if part))
    return rules


def _hash_mangle_rules(cluster, node):
    rules = []
    mark = "0x%x/0x%x" % (HASH_MARK, HASH_MARK)
    for segment in cluster.segments.values():
        interface = node.interfaces[segment.name]
        rules.extend([
            # The node's own address (management, its own connections) is never hashed.
            "-A PREROUTING -d %s/32 -i %s -j ACCEPT" % (node.addresses[segment.name].ip, interface),
            # Multicast to the node itself (VRRP adverts) is not a flow to share out.
            "-A PREROUTING -d 224.0.0.0/4 -i %s -j ACCEPT" % interface,
            # Every other packet meets the cluster match (which also turns the
            # cluster MAC's PACKET_MULTICAST into PACKET_HOST); unowned ones are dropped.
            "-A PREROUTING -i %s -j %s" % (interface, HASH_CHAIN),
            "-A PREROUTING -i %s -m mark ! --mark %s -j DROP" % (interface, mark),
        ])
    return rules


def _hash_ruleset(cluster, node):
    return [
        table("filter", FILTER_POLICIES,
              _filter_input_rules(cluster, node)
              + _filter_forward_rules(cluster, node, before_policy=_hash_reply_direction_drops(cluster, node))),
        table("nat", NAT_POLICIES, _nat_rules(cluster, node)),
        # HASH_CHAIN starts empty: keepalived's notify hook fills it.
        table("mangle", MANGLE_POLICIES, _hash_mangle_rules(cluster, node), user_chains=[HASH_CHAIN]),
    ]


def _hash_plan_extra(cluster):
    vrrp = cluster.vrrp
    advert_int = vrrp["advert_int"]
    return {
        "vrrp": {
            "advert_int": advert_int,
            "version": VRRP_VERSION,
            "unicast": vrrp["unicast"],
            "preempt": True,
            "preempt_delay": vrrp["preempt_delay"] if vrrp["preempt_delay"] is not None else HASH_PREEMPT_DELAY,
            "failover_bound": round(3 * advert_int + 1.0, 2),
        },
        "hash": {
            "total_nodes": len(cluster.nodes),
            "seed": _hash_seed(cluster),
            "seed_hex": "0x%08x" % _hash_seed(cluster),
            "chain": HASH_CHAIN,
            "mark": "0x%x/0x%x" % (HASH_MARK, HASH_MARK),
            "owner_command": HASH_OWNER_COMMAND,
            "multicast_macs": dict((segment.name, _hash_multicast_mac(segment, cluster.label))
                                   for segment in cluster.segments.values()),
            "vrrp_segment": _hash_vrrp_segment(cluster).name,
            # owner_rules[k]: the rule that owns node id k, as iptables-save prints it
            "owner_rules": [_hash_owner_rule(cluster, node.node_id) for node in cluster.nodes],
            # the same without "-A <chain> ": the arguments of iptables -C/-A/-D in the hook
            "owner_specs": [_hash_owner_rule(cluster, node.node_id).split(" ", 2)[2] for node in cluster.nodes],
        },
    }


def _hash_node_extra(cluster, node):
    conntrackd = _node_conntrackd(cluster, node)
    if conntrackd is not None:
        # The peers' flows go straight into the kernel table: a survivor that
        # takes over a node id already holds its flows, and the hook has
        # nothing to commit before it changes the mask.
        conntrackd.update(external_cache=False, startup_resync=True)
    return {
        "conntrackd": conntrackd,
        "hash": {
            "cluster_node": node.node_id + 1,  # xt_cluster numbers nodes from 1
            "own_mask": "0x%08x" % (1 << node.node_id),
            "links": [{
                "segment": segment.name,
                "interface": node.interfaces[segment.name],
                "vip": segment.vip.with_prefixlen,
                "multicast_mac": _hash_multicast_mac(segment, cluster.label),
                # arptables-restore lines; OWN_MAC is the interface's own MAC, read on the node.
                "arptables": [
                    # ARP from the VIP (replies and requests) carries the cluster MAC,
                    # so every host on the segment sends the VIP's traffic to all nodes.
                    "-A OUTPUT -o %s -s %s --h-length 6 -j mangle --mangle-mac-s %s"
                    % (node.interfaces[segment.name], segment.vip.ip, _hash_multicast_mac(segment, cluster.label)),
                    # ARP answers addressed to the cluster MAC are this node's too.
                    "-A INPUT -i %s --h-length 6 --destination-mac %s -j mangle --mangle-mac-d OWN_MAC"
                    % (node.interfaces[segment.name], _hash_multicast_mac(segment, cluster.label)),
                ],
            } for segment in cluster.segments.values()],
        },
    }


# --------------------------------------------------------------------------
# Rules shared by the architectures that filter statefully
# --------------------------------------------------------------------------

def _segment_interface(node, segment_name):
    if segment_name in (POLICY_ANY, POLICY_FIREWALL):
        return None
    return node.interfaces[segment_name]


def _filter_input_rules(cluster, node):
    """What may reach the node itself: VRRP, conntrackd, management, `to: firewall` policy."""
    rules = ["-A INPUT -i lo -j ACCEPT"] + stateful_prologue("INPUT")
    for segment in cluster.segments.values():
        rules.append(vrrp_rule(node.interfaces[segment.name]))
    replication = cluster.replication
    if replication is not None:
        rules.extend(replication_rules(node.replication_interface, replication.network,
                                       replication.transport, replication.port))
    management = cluster.management
    if management["tcp_ports"]:
        for source in management["sources"]:
            rules.append(access_rule("INPUT", "accept", "tcp", ports=management["tcp_ports"],
                                     source=source, comment="fwcluster management"))
    for entry in cluster.policy:
        if entry.target_segment == POLICY_FIREWALL:
            rules.append(access_rule(
                "INPUT", entry.action, entry.proto, ports=entry.ports,
                in_interface=_segment_interface(node, entry.source_segment),
                source=entry.source, destination=entry.destination, comment=entry.name))
    return rules


def _filter_forward_rules(cluster, node, before_policy=()):
    """What may cross the node: published (DNAT) services first, then the policy in order.

    DNAT accepts come first so that a catch-all drop/reject at the end of the
    policy cannot hide a service the inventory publishes on purpose.
    """
    rules = stateful_prologue("FORWARD")
    for entry in cluster.nat:
        if entry.kind != "dnat":
            continue
        target_segment = cluster.segment_of_address(entry.to_address)
        rules.append(access_rule(
            "FORWARD", "accept", entry.proto, ports=[entry.to_port or entry.port],
            in_interface=node.interfaces[entry.segment],
            out_interface=node.interfaces[target_segment] if target_segment else None,
            source=entry.source, destination=ipaddress.ip_network(entry.to_address),
            # ctstate DNAT: only flows that came through this translation, not direct connections.
            ctstate="DNAT", comment=entry.name))
    rules.extend(before_policy)
    for entry in cluster.policy:
        if entry.target_segment == POLICY_FIREWALL:
            continue
        rules.append(access_rule(
            "FORWARD", entry.action, entry.proto, ports=entry.ports,
            in_interface=_segment_interface(node, entry.source_segment),
            out_interface=_segment_interface(node, entry.target_segment),
            source=entry.source, destination=entry.destination, comment=entry.name))
    return rules


def _nat_rules(cluster, node):
    rules = []
    for entry in cluster.nat:
        if entry.kind == "dnat":
            segment = cluster.segments[entry.segment]
            rules.append(dnat_rule(node.interfaces[entry.segment], segment.vip.ip, entry.proto, entry.port,
                                   entry.to_address, entry.to_port, source=entry.source, comment=entry.name))
        else:
            # masquerade has been resolved to SNAT to the VIP while reading (see _read_nat).
            rules.append(snat_rule(node.interfaces[entry.segment], entry.source, entry.to_address,
                                   comment=entry.name))
    return rules


# --------------------------------------------------------------------------
# Reading the inventory
# --------------------------------------------------------------------------

def _read_identity(cluster_vars):
    """Name and architecture come first: every later message names the cluster."""
    _mapping(cluster_vars, "cluster (unnamed)", "group variables")
    name = cluster_vars.get("fwcluster_name")
    if name is None:
        raise PlanError("cluster (unnamed)", "fwcluster_name", "is required")
    written = name
    name = _string(name, "cluster (unnamed)", "fwcluster_name")
    if not _CLUSTER_NAME.fullmatch(name):
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
                        "unknown architecture %s; valid values: %s" % (_describe(architecture), valid))
    if not ARCHITECTURES[architecture].implemented:
        implemented = ", ".join(key for key, value in ARCHITECTURES.items() if value.implemented)
        raise PlanError(label, "fwcluster_architecture",
                        "architecture %s is not implemented yet in this version (implemented: %s)"
                        % (architecture, implemented))
    return Cluster(name, str(architecture))


def _read_node_ids(cluster, nodes_vars):
    label = cluster.label
    if not isinstance(nodes_vars, Mapping):
        raise PlanError(label, "fwcluster_name",
                        "the members must be a mapping of inventory host to host variables, got %s"
                        % _describe(nodes_vars))
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
                            % _describe(host))
        host = _host_name(host)
        _mapping(host_vars, host, "host variables")
        node_id = host_vars.get("fwcluster_node_id")
        if node_id is None:
            raise PlanError(host, "fwcluster_node_id", "is required: a unique integer in 0..%d" % (count - 1))
        if not _is_integer(node_id):
            raise PlanError(host, "fwcluster_node_id", "must be an integer in 0..%d, got %s"
                            % (count - 1, _describe(node_id)))
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
    raw = _mapping(raw, label, "fwcluster_segments")
    if not raw:
        raise PlanError(label, "fwcluster_segments", "must name at least one segment")
    vrid_owner = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _SEGMENT_NAME.fullmatch(name):
            raise PlanError(label, "fwcluster_segments",
                            "segment name %s must start with a letter and hold letters, digits, _ or -"
                            % _describe(name))
        variable = "fwcluster_segments.%s" % name
        if name in RESERVED_SEGMENT_NAMES:
            raise PlanError(label, variable, "%r is reserved (%s); choose another segment name"
                            % (name, ", ".join(RESERVED_SEGMENT_NAMES)))
        spec = _mapping(spec, label, variable)
        _known_keys(spec, SEGMENT_KEYS, label, variable)
        interface = spec.get("interface")
        if interface is not None:
            interface = _interface_name(interface, label, variable + ".interface")
        if spec.get("vip") is None:
            raise PlanError(label, variable + ".vip", "is required: the virtual address with prefix, e.g. 10.10.1.254/24")
        vip = _ipv4_interface(spec["vip"], label, variable + ".vip")
        if _is_network_or_broadcast(vip):
            raise PlanError(label, variable + ".vip", "%s is the network or broadcast address of %s"
                            % (vip.ip, vip.network))
        if spec.get("vrid") is None:
            raise PlanError(label, variable + ".vrid", "is required: the VRRP virtual router id, 1..255")
        vrid = _integer(spec["vrid"], 1, 255, label, variable + ".vrid")
        if vrid in vrid_owner:
            raise PlanError(label, variable + ".vrid", "VRID %d is already used by segment %s; VRIDs must differ"
                            % (vrid, vrid_owner[vrid]))
        vrid_owner[vrid] = name
        for other in cluster.segments.values():
            if vip.network.overlaps(other.vip.network):
                raise PlanError(label, variable + ".vip", "network %s overlaps segment %s (%s)"
                                % (vip.network, other.name, other.vip.network))
        cluster.segments[str(name)] = Segment(str(name), interface, vip, vrid, spec.get("multicast_mac"))


def _read_node_interfaces(cluster, nodes_vars):
    known = list(cluster.segments) + [REPLICATION_INTERFACE_KEY]
    for node in cluster.nodes:
        raw = _optional(nodes_vars[node.name], "fwcluster_interfaces", {})
        raw = _mapping(raw, node.name, "fwcluster_interfaces")
        for key in raw:
            if key not in known:
                raise PlanError(node.name, "fwcluster_interfaces.%s" % key,
                                "names no segment of cluster %s; known: %s" % (cluster.name, ", ".join(known)))
        for key, value in raw.items():
            if value is not None:
                raw_name = _interface_name(value, node.name, "fwcluster_interfaces.%s" % key)
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
        raw = _mapping(raw, node.name, "fwcluster_addresses")
        _known_keys(raw, segment_names, node.name, "fwcluster_addresses")
        for segment in cluster.segments.values():
            variable = "fwcluster_addresses.%s" % segment.name
            if raw.get(segment.name) is None:
                raise PlanError(node.name, variable, "is required: this node's own address on segment %s, e.g. %s"
                                % (segment.name, _example_address(segment)))
            address = _ipv4_interface(raw[segment.name], node.name, variable)
            if address.ip not in segment.vip.network:
                raise PlanError(node.name, variable, "%s is outside segment %s's subnet %s (VIP %s)"
                                % (address.ip, segment.name, segment.vip.network, segment.vip.with_prefixlen))
            if address.network.prefixlen != segment.vip.network.prefixlen:
                raise PlanError(node.name, variable, "%s must have the VIP's prefix /%d"
                                % (address.with_prefixlen, segment.vip.network.prefixlen))
            if address.ip == segment.vip.ip:
                raise PlanError(node.name, variable, "%s is the VIP of segment %s; a node needs an address of its own"
                                % (address.ip, segment.name))
            if _is_network_or_broadcast(address):
                raise PlanError(node.name, variable, "%s is the network or broadcast address of %s"
                                % (address.ip, address.network))
            if address.ip in owners:
                raise PlanError(node.name, variable, "%s is already the address of %s"
                                % (address.ip, owners[address.ip]))
            owners[address.ip] = node.name
            node.addresses[segment.name] = address


def _example_address(segment):
    hosts = segment.vip.network.hosts()
    return "%s/%d" % (next(hosts), segment.vip.network.prefixlen)


def _read_replication(cluster, cluster_vars, nodes_vars):
    label = cluster.label
    raw = cluster_vars.get("fwcluster_replication")
    if raw is None:
        return
    raw = _mapping(raw, label, "fwcluster_replication")
    _known_keys(raw, REPLICATION_KEYS, label, "fwcluster_replication")
    # The mapping being there means replication is wanted unless it says enabled: false.
    if not _boolean(_optional(raw, "enabled", True), label, "fwcluster_replication.enabled"):
        return
    interface = raw.get("interface")
    if interface is not None:
        interface = _interface_name(interface, label, "fwcluster_replication.interface")
    transport = _choice(_optional(raw, "transport", REPLICATION_DEFAULTS["transport"]), TRANSPORTS,
                        label, "fwcluster_replication.transport")
    mode = _choice(_optional(raw, "mode", REPLICATION_DEFAULTS["mode"]), REPLICATION_MODES,
                   label, "fwcluster_replication.mode")
    port = _integer(_optional(raw, "port", REPLICATION_DEFAULTS["port"]), 1, 65535,
                    label, "fwcluster_replication.port")
    group = None
    if transport == "multicast":
        group = _ipv4_address(_optional(raw, "multicast_group", REPLICATION_DEFAULTS["multicast_group"]),
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
    replication = Replication(interface, transport, mode, port, group)

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
        address = _ipv4_interface(value, node.name, variable)
        if _is_network_or_broadcast(address):
            raise PlanError(node.name, variable, "%s is the network or broadcast address of %s"
                            % (address.ip, address.network))
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
    raw = _mapping(_optional(cluster_vars, "fwcluster_vrrp", {}), label, "fwcluster_vrrp")
    _known_keys(raw, VRRP_KEYS, label, "fwcluster_vrrp")
    cluster.vrrp = {
        # VRRPv3 counts in centiseconds in a 12-bit field: 0.01 .. 40.95 s.
        "advert_int": _number(_optional(raw, "advert_int", VRRP_DEFAULTS["advert_int"]), 0.01, 40.95,
                              label, "fwcluster_vrrp.advert_int"),
        "unicast": _boolean(_optional(raw, "unicast", VRRP_DEFAULTS["unicast"]), label, "fwcluster_vrrp.unicast"),
        "preempt": _boolean(_optional(raw, "preempt", VRRP_DEFAULTS["preempt"]), label, "fwcluster_vrrp.preempt"),
        # Set by hand or not: the hash architecture reads both (its defaults differ).
        "preempt_set": raw.get("preempt") is not None,
        "preempt_delay": (None if raw.get("preempt_delay") is None else
                          _number(raw["preempt_delay"], 0, 1000, label, "fwcluster_vrrp.preempt_delay")),
    }


def _read_hash_seed(cluster, cluster_vars):
    seed = cluster_vars.get("fwcluster_hash_seed")
    if seed is not None:
        cluster.hash_seed = _integer(seed, 0, 0xFFFFFFFF, cluster.label, "fwcluster_hash_seed")


def _refuse_hash_only_keys(cluster):
    """Keys that mean something only to the hash architecture are refused elsewhere."""
    if cluster.architecture == "hash":
        return
    for segment in cluster.segments.values():
        if segment.multicast_mac is not None:
            raise PlanError(cluster.label, "fwcluster_segments.%s.multicast_mac" % segment.name,
                            "only the hash architecture uses a multicast MAC; this cluster is %s"
                            % cluster.architecture)
    if cluster.vrrp["preempt_delay"] is not None:
        raise PlanError(cluster.label, "fwcluster_vrrp.preempt_delay",
                        "only the hash architecture uses preempt_delay; this cluster is %s" % cluster.architecture)


def _read_policy(cluster, cluster_vars):
    label = cluster.label
    entries = _list(_optional(cluster_vars, "fwcluster_policy", []), label, "fwcluster_policy")
    segments = list(cluster.segments)
    for index, raw in enumerate(entries):
        variable = "fwcluster_policy[%d]" % index
        raw = _mapping(raw, label, variable)
        _known_keys(raw, POLICY_KEYS, label, variable)
        name = _string(_optional(raw, "name", "policy %d" % (index + 1)), label, variable + ".name")
        if raw.get("from") is None:
            raise PlanError(label, variable + ".from", "is required: a segment (%s) or any" % ", ".join(segments))
        source_segment = raw["from"]
        if source_segment == POLICY_FIREWALL:
            raise PlanError(label, variable + ".from", "traffic from the firewall itself is always allowed "
                            "(OUTPUT accepts); from names a segment (%s) or any" % ", ".join(segments))
        source_segment = _choice(source_segment, segments + [POLICY_ANY], label, variable + ".from")
        if raw.get("to") is None:
            raise PlanError(label, variable + ".to", "is required: a segment (%s), any or firewall"
                            % ", ".join(segments))
        target_segment = _choice(raw["to"], segments + [POLICY_ANY, POLICY_FIREWALL], label, variable + ".to")
        proto = _choice(_optional(raw, "proto", "all"), POLICY_PROTOCOLS, label, variable + ".proto")
        ports = None
        if raw.get("ports") is not None:
            if proto not in ("tcp", "udp"):
                raise PlanError(label, variable + ".ports", "ports apply only to proto tcp or udp, not %s" % proto)
            ports = _ports(raw["ports"], label, variable + ".ports")
        source = _ipv4_network(raw["source"], label, variable + ".source") if raw.get("source") is not None else None
        destination = (_ipv4_network(raw["destination"], label, variable + ".destination")
                       if raw.get("destination") is not None else None)
        if raw.get("action") is None:
            raise PlanError(label, variable + ".action", "is required: one of %s" % ", ".join(POLICY_ACTIONS))
        action = _choice(raw["action"], POLICY_ACTIONS, label, variable + ".action")
        cluster.policy.append(PolicyEntry(index, name, source_segment, target_segment, proto, ports,
                                          source, destination, action))


def _parse_dnat_target(value, host, variable):
    """'10.10.1.10' or '10.10.1.10:8080'."""
    text = _string(value, host, variable)
    address_text, port = text, None
    if text.count(":") == 1:
        address_text, port_text = text.split(":")
        if not _PORT_NUMBER.fullmatch(port_text):
            raise PlanError(host, variable, "%r: the port after ':' must be a number" % text)
        port = _integer(int(port_text), 1, 65535, host, variable)
    return _ipv4_address(address_text, host, variable), port


def _read_nat(cluster, cluster_vars):
    label = cluster.label
    entries = _list(_optional(cluster_vars, "fwcluster_nat", []), label, "fwcluster_nat")
    segments = list(cluster.segments)
    for index, raw in enumerate(entries):
        variable = "fwcluster_nat[%d]" % index
        raw = _mapping(raw, label, variable)
        if raw.get("type") is None:
            raise PlanError(label, variable + ".type", "is required: one of %s" % ", ".join(NAT_TYPES))
        kind = _choice(raw["type"], NAT_TYPES, label, variable + ".type")
        _known_keys(raw, NAT_KEYS[kind], label, variable)
        name = _string(raw["name"], label, variable + ".name") if raw.get("name") is not None else None
        source = _ipv4_network(raw["source"], label, variable + ".source") if raw.get("source") is not None else None
        direction = "in" if kind == "dnat" else "out"
        if raw.get(direction) is None:
            raise PlanError(label, "%s.%s" % (variable, direction), "is required: the %s segment (%s)"
                            % ("incoming" if kind == "dnat" else "outgoing", ", ".join(segments)))
        segment = _choice(raw[direction], segments, label, "%s.%s" % (variable, direction))
        if kind == "masquerade":
            # SNAT to the VIP, not MASQUERADE: MASQUERADE picks the node's own
            # address, which leaves with the node, so no replicated flow could
            # survive a failover. The VIP moves to the survivor with the flows.
            entry = NatEntry(index, kind, name, segment, source, cluster.segments[segment].vip.ip)
        elif kind == "snat":
            if raw.get("to") is None:
                raise PlanError(label, variable + ".to", "is required: the address to translate the source to")
            entry = NatEntry(index, kind, name, segment, source, _ipv4_address(raw["to"], label, variable + ".to"))
        else:
            if raw.get("to") is None:
                raise PlanError(label, variable + ".to", "is required: the inside address, e.g. 10.10.1.10 or "
                                "10.10.1.10:8080")
            to_address, to_port = _parse_dnat_target(raw["to"], label, variable + ".to")
            proto = _choice(_optional(raw, "proto", "tcp"), ("tcp", "udp"), label, variable + ".proto")
            if raw.get("port") is None:
                raise PlanError(label, variable + ".port", "is required: the port published on the VIP")
            port = _integer(raw["port"], 1, 65535, label, variable + ".port")
            entry = NatEntry(index, kind, name, segment, source, to_address, to_port, proto, port)
        cluster.nat.append(entry)


def _read_management(cluster, cluster_vars):
    """Who may reach the nodes' own services (SSH): never lock the operator out by default."""
    label = cluster.label
    raw = _mapping(_optional(cluster_vars, "fwcluster_management", {}), label, "fwcluster_management")
    _known_keys(raw, MANAGEMENT_KEYS, label, "fwcluster_management")
    sources = _list(_optional(raw, "sources", MANAGEMENT_DEFAULTS["sources"]), label, "fwcluster_management.sources")
    cluster.management = {
        "sources": [_ipv4_network(source, label, "fwcluster_management.sources[%d]" % index)
                    for index, source in enumerate(sources)],
        "tcp_ports": _ports(_optional(raw, "tcp_ports", MANAGEMENT_DEFAULTS["tcp_ports"]), label,
                            "fwcluster_management.tcp_ports", allow_empty=True),
    }


def read_cluster(cluster_vars, nodes_vars, upto_replication=False, balancers_vars=None):
    """Check the inventory of one cluster and return it as a Cluster.

    upto_replication stops after the replication checks, which is all the
    replication-link validator needs (the same code, not a second copy).
    balancers_vars: {host: host variables} of the hosts with fwcluster_balancer_side.
    """
    cluster = _read_identity(cluster_vars)
    if ARCHITECTURES[cluster.architecture].precheck is not None:
        ARCHITECTURES[cluster.architecture].precheck(cluster, cluster_vars, nodes_vars)
    _read_node_ids(cluster, nodes_vars)
    _read_segments(cluster, cluster_vars)
    _read_node_interfaces(cluster, nodes_vars)
    _read_node_addresses(cluster, nodes_vars)
    _read_replication(cluster, cluster_vars, nodes_vars)
    if upto_replication:
        return cluster
    _read_vrrp(cluster, cluster_vars)
    _read_hash_seed(cluster, cluster_vars)
    _refuse_hash_only_keys(cluster)
    _read_policy(cluster, cluster_vars)
    _read_nat(cluster, cluster_vars)
    _read_management(cluster, cluster_vars)
    if balancers_vars is not None and not isinstance(balancers_vars, Mapping):
        # The cluster_inputs filter always passes a mapping; any other caller gets a refusal, not a traceback.
        raise PlanError(cluster.label, "fwcluster_balancer_side",
                        "the balancers must be given as {host: host variables}, not %s" % _describe(balancers_vars))
    architecture = ARCHITECTURES[cluster.architecture]
    if architecture.read is not None:
        architecture.read(cluster, cluster_vars, balancers_vars)
    else:
        _refuse_balancers(cluster, cluster_vars, balancers_vars)
    if architecture.check is not None:
        architecture.check(cluster)
    return cluster


def _refuse_balancers(cluster, cluster_vars, balancers_vars):
    """Load balancers and their settings belong to the sandwich architecture only."""
    if balancers_vars:
        host = sorted(balancers_vars)[0]
        raise PlanError(host, "fwcluster_balancer_side", "load balancers belong to sandwich clusters; cluster %s "
                        "is %s (remove the host from the cluster or set fwcluster_architecture: sandwich)"
                        % (cluster.name, cluster.architecture))
    if cluster_vars.get("fwcluster_balancers") is not None:
        raise PlanError(cluster.label, "fwcluster_balancers", "only applies to fwcluster_architecture: sandwich; "
                        "cluster %s is %s" % (cluster.name, cluster.architecture))


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------

def _replication_summary(cluster):
    replication = cluster.replication
    if replication is None:
        return None
    return {
        "transport": replication.transport,
        "mode": replication.mode,
        "port": replication.port,
        "network": replication.network.with_prefixlen,
        "multicast_group": str(replication.multicast_group) if replication.multicast_group else None,
    }


def _node_replication(cluster, node):
    replication = cluster.replication
    if replication is None:
        return None
    peers = [other for other in cluster.nodes if other is not node]
    return {
        "interface": node.replication_interface,
        "address": str(node.replication_address.ip),
        "prefix": node.replication_address.network.prefixlen,
        "peers": [str(peer.replication_address.ip) for peer in peers],
        "peer_hosts": dict((str(peer.replication_address.ip), peer.name) for peer in peers),
        "port": replication.port,
        "transport": replication.transport,
        "mode": replication.mode,
        "multicast_group": str(replication.multicast_group) if replication.multicast_group else None,
    }


def _node_conntrackd(cluster, node):
    if cluster.replication is None:
        return None
    # The node's own addresses only: flows to or from the VIPs (SNAT to the VIP
    # included) are exactly the ones that must replicate.
    addresses = ["127.0.0.1"]
    addresses.extend(str(node.addresses[name].ip) for name in cluster.segments)
    addresses.append(str(node.replication_address.ip))
    return {
        "ignore_addresses": addresses,
        # The caches of primary-backup: the peers' flows wait in the external
        # cache until a transition commits them. hash and sandwich inject them
        # into the kernel instead, and ask for them at start.
        "external_cache": True,
        "internal_cache": True,
        "startup_resync": False,
    }


def _node_plan(cluster, architecture, node):
    plan = {
        "name": node.name,
        "node_id": node.node_id,
        "role": architecture.node_role(cluster, node),
        "interfaces": dict((name, node.interfaces[name]) for name in cluster.segments),
        "addresses": dict((name, node.addresses[name].with_prefixlen) for name in cluster.segments),
        "replication": _node_replication(cluster, node),
        "keepalived": architecture.keepalived(cluster, node),
        "conntrackd": _node_conntrackd(cluster, node),
        "sysctls": dict(BASE_SYSCTLS),
        "ruleset": architecture.ruleset(cluster, node),
        # The nodes that back each other up: site.yml never changes two hosts of one group at once.
        "redundancy_group": "%s/nodes" % cluster.name,
    }
    if architecture.node_extra is not None:
        plan.update(architecture.node_extra(cluster, node))
    return plan


def build_plan(cluster, nodes, balancers=None):
    """The cluster plan of docs/cluster-plan.md, or PlanError naming host, variable and rule.

    balancers: {host: host variables} of the sandwich load balancers (hosts with
    fwcluster_balancer_side), as the cluster_inputs filter collects them.
    """
    model = read_cluster(cluster, nodes, balancers_vars=balancers)
    architecture = ARCHITECTURES[model.architecture]
    advert_int = model.vrrp["advert_int"]
    plan = {
        "name": model.name,
        "architecture": model.architecture,
        "segments": dict(
            (segment.name, {
                "vip": segment.vip.with_prefixlen,
                "vip_address": str(segment.vip.ip),
                "network": segment.vip.network.with_prefixlen,
                "prefix": segment.vip.network.prefixlen,
                "vrid": segment.vrid,
            }) for segment in model.segments.values()),
        "vrrp": {
            "advert_int": advert_int,
            "version": VRRP_VERSION,
            "unicast": model.vrrp["unicast"],
            "preempt": model.vrrp["preempt"],
            # A backup declares the master dead after 3 adverts plus skew (< 1 advert);
            # one more second covers VIP takeover and gratuitous ARP.
            "failover_bound": round(3 * advert_int + 1.0, 2),
        },
        "replication": _replication_summary(model),
        "nodes": dict((node.name, _node_plan(model, architecture, node)) for node in model.nodes),
    }
    if architecture.plan_extra is not None:
        plan.update(architecture.plan_extra(model))
    return plan


def build_replication_table(cluster, nodes):
    """The replication links of one cluster (None when replication is off), checked by the model."""
    model = read_cluster(cluster, nodes, upto_replication=True)
    summary = _replication_summary(model)
    if summary is None:
        return None
    summary["nodes"] = dict((node.name, _node_replication(model, node)) for node in model.nodes)
    return summary


# --------------------------------------------------------------------------
# Clusters deployed together
# --------------------------------------------------------------------------

def check_plans_together(plans):
    """Refuse two clusters that claim one VRID or one VIP on a network they share.

    plans: {cluster name: plan} of the clusters one play deploys (validate_node_ids).
    Routers on one network tell VRRP adverts apart by the VRID alone, so two clusters
    with the same VRID on one network (or on networks that overlap) fight over mastership;
    a VIP claimed by both is one address with two owners. Each cluster was checked alone
    first; the later cluster (by name) is refused, naming the earlier one.
    """
    vrids = []  # (vrid, network, cluster, variable) of the clusters seen so far
    vips = {}  # VIP address -> (cluster, variable)
    for name in sorted(plans, key=str):
        label = "cluster %s" % name
        for vrid, network, variable, what in _vrid_claims(plans[name]):
            for other_vrid, other_network, other_name, other_variable in vrids:
                if other_name != name and vrid == other_vrid and network.overlaps(other_network):
                    raise _together_error(name, label, variable, "%s on network %s is already used by cluster %s on "
                                          "network %s (%s); clusters that share a network need VRIDs of their own"
                                          % (what, network, other_name, other_network, other_variable))
            vrids.append((vrid, network, name, variable))
        for vip, variable in _vip_claims(plans[name]):
            if vip in vips:
                other_name, other_variable = vips[vip]
                raise _together_error(name, label, variable, "%s is already a VIP of cluster %s (%s); an address "
                                      "has one owner on a network" % (vip, other_name, other_variable))
            vips[vip] = (name, variable)


def _together_error(name, label, variable, rule):
    error = PlanError(label, variable, rule)
    error.cluster = name  # as validate_node_ids attaches it to a refusal of one cluster
    return error


def _vrid_claims(plan):
    """(vrid, network, variable, description) of every VRRP instance of a plan, once each.

    The network is the one the instance advertises on: its host's address on the
    instance's segment (a sandwich balancer's "front" included). A VRID the plan derives
    (hash: one per node id from the segment's vrid) says so in its description.
    """
    claims = []
    hosts = list(plan["nodes"].values()) + list((plan.get("balancers") or {}).values())
    for host in hosts:
        for instance in (host["keepalived"] or {}).get("instances", []):
            segment = instance["segment"]
            vrid = instance["vrid"]
            network = ipaddress.ip_interface(host["addresses"][segment]).network
            if segment in plan["segments"]:
                variable = "fwcluster_segments.%s.vrid" % segment
                written = plan["segments"][segment]["vrid"]
            else:  # a sandwich balancer's front network
                variable = "fwcluster_balancers.%s.vrid" % host["side"]
                written = vrid
            what = "VRID %d" % vrid if vrid == written else "VRID %d (derived from %s %d)" % (vrid, variable, written)
            claim = (vrid, network, variable, what)
            if claim not in claims:
                claims.append(claim)
    return claims


def _vip_claims(plan):
    """(VIP address, variable) of a plan: the segments' VIPs and the sandwich balancers' front VIPs."""
    claims = [(ipaddress.ip_interface(segment["vip"]).ip, "fwcluster_segments.%s.vip" % name)
              for name, segment in plan["segments"].items()]
    sides = (plan.get("balancing") or {}).get("sides", {})
    claims.extend((ipaddress.ip_interface(side["front_vip"]).ip, "fwcluster_balancers.%s.vip" % name)
                  for name, side in sides.items())
    return claims


# --------------------------------------------------------------------------
# The firewall sandwich (fwcluster_architecture: sandwich)
#
# Every firewall is active. A pair of load balancers on each side (VRRP
# between the two for the side's VIPs) hashes every packet with iptables
# HMARK into one of `buckets` marks and routes each mark to one firewall's
# routing table. The hash is on the OUTSIDE party's address only: the inside
# balancers hash the destination, the outside balancers the source. HMARK
# sorts the two (masked) addresses before hashing, so hash(0, X) is the same
# on both sides and both directions of a flow take the same firewall; and
# since neither SNAT of inside hosts nor the inside addresses enter the hash,
# NAT on the firewalls cannot move the return traffic elsewhere. The price:
# one outside host is served by one firewall.
#
# A health service on every balancer probes forwarding through each firewall
# (an ICMP echo with the firewall's probe mark, towards the far side's
# balancers, which the firewall forwards and SNATs to its own far-side
# address so the reply comes back through it) and moves only a dead
# firewall's buckets to the survivors. conntrackd between the firewalls
# injects each firewall's flows straight into the others' kernel tables
# (DisableExternalCache): no VRRP event on a firewall commits anything, and
# the survivor already holds the moved flows.
# --------------------------------------------------------------------------

SANDWICH_SIDES = ("inside", "outside")
SANDWICH_FRONT = "front"  # the balancers' interface/address key toward the side's hosts
BALANCER_KEYS = ("buckets", "health", "inside", "outside")
BALANCER_SIDE_KEYS = ("interface", "vip", "vrid", "routes", "gateway")
HEALTH_KEYS = ("interval", "timeout", "fall", "rise")
HEALTH_DEFAULTS = {"interval": 0.5, "timeout": 0.4, "fall": 3, "rise": 3}
BUCKETS_DEFAULT = 16
MAX_BUCKETS = 256
BUCKET_MARK_BASE = 0x100  # HMARK --hmark-offset: bucket b is mark 0x100 + b
PROBE_MARK_BASE = 0x200  # the health probe through firewall node id k carries mark 0x200 + k
FIREWALL_TABLE_BASE = 100  # firewall node id k routes through table 101 + k
PROBE_RULE_PRIORITY = 900  # ip rule priorities: probes 900 + k, buckets 1000 + b
BUCKET_RULE_PRIORITY = 1000
SNAT_PORTS = (1024, 65535)  # split between the firewalls sharing a SNAT address
PROBE_COMMENT = "fwcluster balancer probe"

BALANCER_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    # A balancer forwards what the firewalls route back to it, from sources it
    # has no route to: reverse-path filtering belongs to the firewalls.
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
)


class SandwichSide(object):
    def __init__(self, name, interface, vip, vrid, routes, gateway):
        self.name = name  # inside | outside, also the name of the segment toward the firewalls
        self.interface = interface  # front interface (toward the hosts), group default
        self.vip = vip  # IPv4Interface: the hosts' gateway
        self.vrid = vrid
        self.routes = routes  # IPv4Networks behind the side, besides the front network
        self.gateway = gateway  # IPv4Address on the front network for `routes`, or None
        self.balancers = []  # Balancer, by node id


class Balancer(object):
    def __init__(self, name, side, node_id):
        self.name = name
        self.side = side
        self.node_id = node_id
        self.interfaces = {}  # side segment and "front" -> interface
        self.addresses = {}  # side segment and "front" -> IPv4Interface


class Balancing(object):
    def __init__(self, buckets, health, seed):
        self.buckets = buckets
        self.health = health
        self.seed = seed
        self.sides = {}  # name -> SandwichSide


def _read_sandwich(cluster, cluster_vars, balancers_vars):
    label = cluster.label
    if sorted(cluster.segments) != sorted(SANDWICH_SIDES):
        raise PlanError(label, "fwcluster_segments", "a sandwich cluster has exactly the segments inside and outside "
                        "(the links between each side's balancers and the firewalls), got %s"
                        % ", ".join(sorted(cluster.segments)))
    seed = cluster_vars.get("fwcluster_hash_seed")
    if seed is None:
        raise PlanError(label, "fwcluster_hash_seed", "is required for sandwich: the HMARK seed every balancer "
                        "shares, an integer in 0..4294967295, e.g. 0x5eed1234")
    raw = cluster_vars.get("fwcluster_balancers")
    if raw is None:
        raise PlanError(label, "fwcluster_balancers", "is required for sandwich: each side's front network "
                        "(interface, vip, vrid) and the hash buckets")
    raw = _mapping(raw, label, "fwcluster_balancers")
    _known_keys(raw, BALANCER_KEYS, label, "fwcluster_balancers")
    count = len(cluster.nodes)
    buckets = _integer(_optional(raw, "buckets", BUCKETS_DEFAULT), count, MAX_BUCKETS, label,
                       "fwcluster_balancers.buckets")
    balancing = Balancing(buckets, _read_health(label, _optional(raw, "health", {})), int(seed))
    vrids = dict((segment.vrid, "fwcluster_segments.%s.vrid" % segment.name) for segment in cluster.segments.values())
    for side in SANDWICH_SIDES:
        balancing.sides[side] = _read_sandwich_side(cluster, raw, side, vrids)
    _read_balancers(cluster, balancing, balancers_vars)
    _check_sandwich_nat(cluster, balancing)
    if cluster.vrrp["unicast"]:
        raise PlanError(label, "fwcluster_vrrp.unicast", "is not supported with sandwich yet: the balancer pairs "
                        "advertise by multicast")
    if cluster.replication is not None and cluster.replication.mode != "notrack":
        raise PlanError(label, "fwcluster_replication.mode", "sandwich needs notrack: every firewall injects its "
                        "peers' flows straight into its kernel table (no VRRP transition commits them) and must "
                        "answer a returning peer's resync from that table, flows it took over included; %s "
                        "replicates only the flows a firewall began itself (its internal cache), so the flows it "
                        "took over would be lost when the balancers move them back" % cluster.replication.mode)
    cluster.balancing = balancing


def _read_health(label, raw):
    variable = "fwcluster_balancers.health"
    raw = _mapping(raw, label, variable)
    _known_keys(raw, HEALTH_KEYS, label, variable)
    interval = _number(_optional(raw, "interval", HEALTH_DEFAULTS["interval"]), 0.1, 60, label, variable + ".interval")
    timeout = _number(_optional(raw, "timeout", HEALTH_DEFAULTS["timeout"]), 0.05, 60, label, variable + ".timeout")
    if timeout > interval:
        raise PlanError(label, variable + ".timeout", "%s s exceeds the interval %s s: a probe round must end "
                        "before the next one starts" % (timeout, interval))
    fall = _integer(_optional(raw, "fall", HEALTH_DEFAULTS["fall"]), 1, 100, label, variable + ".fall")
    rise = _integer(_optional(raw, "rise", HEALTH_DEFAULTS["rise"]), 1, 100, label, variable + ".rise")
    return {"interval": interval, "timeout": timeout, "fall": fall, "rise": rise,
            # A firewall that dies just after a good round misses the next `fall`
            # rounds; the last of them gives up after `timeout`.
            "bound": round(fall * interval + timeout, 2)}


def _read_sandwich_side(cluster, raw, side, vrids):
    label = cluster.label
    variable = "fwcluster_balancers.%s" % side
    if raw.get(side) is None:
        raise PlanError(label, variable, "is required: the %s balancers' front network (interface, vip, vrid)" % side)
    spec = _mapping(raw[side], label, variable)
    _known_keys(spec, BALANCER_SIDE_KEYS, label, variable)
    interface = spec.get("interface")
    if interface is not None:
        interface = _interface_name(interface, label, variable + ".interface")
    if spec.get("vip") is None:
        raise PlanError(label, variable + ".vip", "is required: the gateway address of the %s hosts, with prefix" % side)
    vip = _ipv4_interface(spec["vip"], label, variable + ".vip")
    if _is_network_or_broadcast(vip):
        raise PlanError(label, variable + ".vip", "%s is the network or broadcast address of %s" % (vip.ip, vip.network))
    for segment in cluster.segments.values():
        if vip.network.overlaps(segment.vip.network):
            raise PlanError(label, variable + ".vip", "front network %s overlaps segment %s (%s)"
                            % (vip.network, segment.name, segment.vip.network))
    if cluster.replication is not None and vip.network.overlaps(cluster.replication.network):
        raise PlanError(label, variable + ".vip", "front network %s overlaps the replication network %s"
                        % (vip.network, cluster.replication.network))
    if spec.get("vrid") is None:
        raise PlanError(label, variable + ".vrid", "is required: the VRRP virtual router id of the front VIP, 1..255")
    vrid = _integer(spec["vrid"], 1, 255, label, variable + ".vrid")
    if vrid in vrids:
        raise PlanError(label, variable + ".vrid", "VRID %d is already used by %s; VRIDs must differ" % (vrid, vrids[vrid]))
    vrids[vrid] = variable + ".vrid"
    routes = []
    for index, item in enumerate(_list(_optional(spec, "routes", []), label, variable + ".routes")):
        network = _ipv4_network(item, label, "%s.routes[%d]" % (variable, index))
        if network not in routes:
            routes.append(network)
    gateway = None
    if spec.get("gateway") is not None:
        gateway = _ipv4_address(spec["gateway"], label, variable + ".gateway")
        if gateway not in vip.network or gateway == vip.ip:
            raise PlanError(label, variable + ".gateway", "%s must be a router on the front network %s, not the VIP"
                            % (gateway, vip.network))
    return SandwichSide(side, interface, vip, vrid, routes, gateway)


def _read_balancers(cluster, balancing, balancers_vars):
    label = cluster.label
    if not balancers_vars:
        raise PlanError(label, "fwcluster_balancer_side", "a sandwich cluster needs two load balancers per side: "
                        "hosts of cluster %s with fwcluster_balancer_side inside or outside" % cluster.name)
    balancers_vars = _mapping(balancers_vars, label, "fwcluster_balancer_side")
    taken = {}  # address -> owner, the firewalls' addresses included
    for node in cluster.nodes:
        for address in node.addresses.values():
            taken[address.ip] = node.name
    for side in balancing.sides.values():
        taken[side.vip.ip] = "the %s front VIP" % side.name
    for segment in cluster.segments.values():
        taken[segment.vip.ip] = "the %s segment VIP" % segment.name
    for host in sorted(balancers_vars, key=str):
        if not isinstance(host, str) or not host:
            raise PlanError(label, "fwcluster_balancer_side", "balancer names must be inventory host names, got %s"
                            % _describe(host))
        _host_name(host)
        host_vars = _mapping(balancers_vars[host], host, "host variables")
        side = _choice(host_vars.get("fwcluster_balancer_side"), SANDWICH_SIDES, host, "fwcluster_balancer_side")
        node_id = host_vars.get("fwcluster_node_id")
        if node_id is None:
            raise PlanError(host, "fwcluster_node_id", "is required: 0 or 1 within the %s balancer pair "
                            "(0 is the preferred VRRP master)" % side)
        node_id = _integer(node_id, 0, 1, host, "fwcluster_node_id")
        pair = balancing.sides[side].balancers
        for other in pair:
            if other.node_id == node_id:
                raise PlanError(host, "fwcluster_node_id", "node id %d is already used by %s in the %s pair"
                                % (node_id, other.name, side))
        balancer = Balancer(str(host), side, node_id)
        _read_balancer_links(cluster, balancing.sides[side], balancer, host_vars, taken)
        pair.append(balancer)
    for side in balancing.sides.values():
        if len(side.balancers) != 2:
            raise PlanError(label, "fwcluster_balancer_side", "the %s side has %d balancer(s) (%s); it needs a pair "
                            "of two with fwcluster_node_id 0 and 1" % (side.name, len(side.balancers),
                                                                       ", ".join(b.name for b in side.balancers) or "none"))
        side.balancers.sort(key=lambda item: item.node_id)


def _read_balancer_links(cluster, side, balancer, host_vars, taken):
    host = balancer.name
    keys = (side.name, SANDWICH_FRONT)
    raw = _mapping(_optional(host_vars, "fwcluster_interfaces", {}), host, "fwcluster_interfaces")
    _known_keys(raw, keys, host, "fwcluster_interfaces")
    defaults = {side.name: cluster.segments[side.name].interface, SANDWICH_FRONT: side.interface}
    for key in keys:
        value = raw.get(key)
        if value is None:
            value = defaults[key]
            if value is None:
                default = ("fwcluster_segments.%s.interface" if key == side.name
                           else "fwcluster_balancers.%s.interface") % side.name
                raise PlanError(host, "fwcluster_interfaces.%s" % key, "no interface: set it here or as the "
                                "group's default (%s)" % default)
        balancer.interfaces[key] = _interface_name(value, host, "fwcluster_interfaces.%s" % key)
    if balancer.interfaces[side.name] == balancer.interfaces[SANDWICH_FRONT]:
        raise PlanError(host, "fwcluster_interfaces", "the %s segment and the front network share interface %s; "
                        "a balancer needs one interface for each" % (side.name, balancer.interfaces[SANDWICH_FRONT]))
    raw = host_vars.get("fwcluster_addresses")
    if raw is None:
        raise PlanError(host, "fwcluster_addresses", "is required: this balancer's address on %s (toward the "
                        "firewalls) and front (toward the %s hosts)" % (side.name, side.name))
    raw = _mapping(raw, host, "fwcluster_addresses")
    _known_keys(raw, keys, host, "fwcluster_addresses")
    networks = {side.name: cluster.segments[side.name].vip, SANDWICH_FRONT: side.vip}
    for key in keys:
        variable = "fwcluster_addresses.%s" % key
        if raw.get(key) is None:
            raise PlanError(host, variable, "is required: this balancer's address with prefix in %s"
                            % networks[key].network)
        address = _ipv4_interface(raw[key], host, variable)
        vip = networks[key]
        if address.network != vip.network:
            raise PlanError(host, variable, "%s is not in %s (VIP %s)"
                            % (address.with_prefixlen, vip.network, vip.with_prefixlen))
        if _is_network_or_broadcast(address):
            raise PlanError(host, variable, "%s is the network or broadcast address of %s" % (address.ip, address.network))
        if address.ip in taken:
            raise PlanError(host, variable, "%s is already the address of %s" % (address.ip, taken[address.ip]))
        taken[address.ip] = host
        balancer.addresses[key] = address


def _check_sandwich_nat(cluster, balancing):
    """What the hash on the outside party's address can carry, and what it cannot."""
    for entry in cluster.nat:
        variable = "fwcluster_nat[%d]" % entry.index
        if entry.kind == "dnat":
            raise PlanError(cluster.label, variable + ".type", "dnat is not supported with sandwich: the address it "
                            "publishes (the segment VIP) belongs to the balancers, not to the firewalls")
        if entry.kind == "masquerade":
            raise PlanError(cluster.label, variable + ".type", "masquerade (SNAT to the segment VIP) is not supported "
                            "with sandwich: the VIP belongs to the balancers; use type snat with an address of its "
                            "own (the outside balancers route it to the firewall holding the flow)")
        if entry.segment != "outside":
            raise PlanError(cluster.label, variable + ".out", "sandwich translates only toward the outside: the "
                            "hash follows the outside party's address, which SNAT toward the inside would change")
        for side in balancing.sides.values():
            if entry.to_address in side.vip.network:
                raise PlanError(cluster.label, variable + ".to", "%s is on the %s front network %s; the SNAT address "
                                "must be one no host claims" % (entry.to_address, side.name, side.vip.network))
        for segment in cluster.segments.values():
            if entry.to_address == segment.vip.ip:
                raise PlanError(cluster.label, variable + ".to", "%s is the %s segment VIP (the balancers')"
                                % (entry.to_address, segment.name))
        for node in cluster.nodes:
            for address in node.addresses.values():
                if entry.to_address == address.ip:
                    raise PlanError(cluster.label, variable + ".to", "%s is %s's own address; a shared SNAT address "
                                    "must be one no node holds" % (entry.to_address, node.name))


def _sandwich_role(cluster, node):
    return "active"  # every firewall forwards its share of the flows


def _sandwich_keepalived(cluster, node):
    return None  # the firewalls hold no VIP; the balancers do


def _other_side(side):
    return "outside" if side == "inside" else "inside"


def _sandwich_probe_rules(cluster, node):
    """Forward the balancers' probes across this firewall and SNAT them to its far-side address.

    The probe is an ICMP echo from one side's balancer link to the other's; the
    SNAT makes the far balancer answer this firewall, so a probe that returns
    crossed this firewall both ways, whatever the balancers' own routes are.
    """
    forward, nat = [], []
    for near in SANDWICH_SIDES:
        far = _other_side(near)
        near_net = cluster.segments[near].vip.network.with_prefixlen
        far_net = cluster.segments[far].vip.network.with_prefixlen
        forward.append("-A FORWARD -i %s -o %s -s %s -d %s -p icmp --icmp-type echo-request -m conntrack --ctstate NEW "
                       "%s -j ACCEPT" % (node.interfaces[near], node.interfaces[far], near_net, far_net,
                                         comment_match(PROBE_COMMENT)))
        nat.append("-A POSTROUTING -o %s -s %s -d %s -p icmp %s -j SNAT --to-source %s"
                   % (node.interfaces[far], near_net, far_net, comment_match(PROBE_COMMENT),
                      node.addresses[far].ip))
    return forward, nat


def snat_port_range(node_id, count):
    """The share of SNAT_PORTS of firewall node_id among count firewalls (disjoint, covering)."""
    low, high = SNAT_PORTS
    size = (high - low + 1) // count
    first = low + node_id * size
    last = high if node_id == count - 1 else first + size - 1
    return first, last


def _sandwich_nat_rules(cluster, node):
    rules = []
    first, last = snat_port_range(node.node_id, len(cluster.nodes))
    for entry in cluster.nat:  # snat only (checked): one address shared by every firewall
        interface = node.interfaces[entry.segment]
        source = network_text(entry.source)
        head = "-A POSTROUTING -o %s%s" % (interface, " -s " + source if source else "")
        comment = " " + comment_match(entry.name) if entry.name else ""
        # Disjoint port ranges: two firewalls never pick the same translated
        # tuple, so one's replicated flows never clash with the other's own.
        for proto in ("tcp", "udp"):
            rules.append("%s -p %s%s -j SNAT --to-source %s:%d-%d" % (head, proto, comment, entry.to_address,
                                                                      first, last))
        rules.append("%s%s -j SNAT --to-source %s" % (head, comment, entry.to_address))
    return rules


def _sandwich_ruleset(cluster, node):
    probe_forward, probe_nat = _sandwich_probe_rules(cluster, node)
    input_rules = [rule for rule in _filter_input_rules(cluster, node) if " -p %s " % VRRP_PROTOCOL not in rule + " "]
    forward = _filter_forward_rules(cluster, node)
    prologue = len(stateful_prologue("FORWARD"))
    forward = forward[:prologue] + probe_forward + forward[prologue:]
    return [
        table("filter", FILTER_POLICIES, input_rules + forward),
        table("nat", NAT_POLICIES, probe_nat + _sandwich_nat_rules(cluster, node)),
    ]


def _route(network, via, interface, table_id=None):
    return {
        "to": "default" if network.prefixlen == 0 else network.with_prefixlen,
        "via": str(via),
        "interface": interface,
        "table": table_id,
    }


def _sandwich_node_extra(cluster, node):
    """Firewall nodes: routes toward each side's balancers, conntrackd injecting into the kernel."""
    routes = []
    for side in cluster.balancing.sides.values():
        via = cluster.segments[side.name].vip.ip
        for network in [side.vip.network] + side.routes:
            routes.append(_route(network, via, node.interfaces[side.name]))
    sysctls = dict(BASE_SYSCTLS)
    # Per-flow packet counters: the firewall that forwards a flow counts its
    # packets, a firewall holding it only by replication shows zero. That is
    # how one sees which firewall carries what (conntrack -L).
    sysctls["net.netfilter.nf_conntrack_acct"] = "1"
    extra = {"routes": routes, "balancer": None, "sysctls": sysctls}
    if cluster.replication is not None:
        conntrackd = _node_conntrackd(cluster, node)
        # No VRRP event on a firewall commits anything: each peer's flows go
        # straight into this kernel's table, ready when the balancers move them here.
        # No internal cache either: a resync request is answered from the kernel
        # table, so flows this firewall took over from a dead peer go back to it.
        conntrackd.update(external_cache=False, internal_cache=False, startup_resync=True)
        extra["conntrackd"] = conntrackd
    return extra


def _firewall_table(node):
    return FIREWALL_TABLE_BASE + 1 + node.node_id


def _bucket_home(cluster, bucket):
    return cluster.nodes[bucket % len(cluster.nodes)]


def _balancer_keepalived(cluster, side, balancer):
    """Two instances (segment VIP, front VIP) bound in one sync group: one balancer holds both."""
    segment = cluster.segments[side.name]
    priority = 254 - 4 * balancer.node_id
    instances = []
    for key, vip, vrid in ((side.name, segment.vip, segment.vrid), (SANDWICH_FRONT, side.vip, side.vrid)):
        instances.append({
            "name": "%s_%s_%s" % (cluster.name, side.name, key if key == SANDWICH_FRONT else "firewalls"),
            "segment": key,
            "interface": balancer.interfaces[key],
            "vrid": vrid,
            "priority": priority,
            "state": "BACKUP",
            "advert_int": cluster.vrrp["advert_int"],
            "preempt": cluster.vrrp["preempt"],
            "vips": [vip.with_prefixlen],
            "unicast_src": None,
            "unicast_peers": [],
        })
    return {
        "router_id": balancer.name,
        "sync_group": {"name": "%s_%s" % (cluster.name, side.name), "instances": [i["name"] for i in instances]},
        "instances": instances,
    }


def _hmark(balancing, side):
    # The outside party's address only: the inside balancers see it as the
    # destination, the outside balancers as the source (see the section head).
    tuple_part = "dst" if side.name == "inside" else "src"
    return ("-j HMARK --hmark-tuple %s --hmark-mod %d --hmark-offset %d --hmark-rnd 0x%08x"
            % (tuple_part, balancing.buckets, BUCKET_MARK_BASE, balancing.seed))


def _balancer_ruleset(cluster, side, balancer):
    balancing = cluster.balancing
    front = balancer.interfaces[SANDWICH_FRONT]
    link = balancer.interfaces[side.name]
    raw_rules = [
        # Transit packets are routed per packet, never tracked: the peer balancer
        # takes over mid-flow with nothing to learn.
        "-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack",
    ]
    mangle_rules = [
        "-A PREROUTING -i %s -m addrtype ! --dst-type LOCAL %s" % (front, _hmark(balancing, side)),
    ]
    input_rules = ["-A INPUT -i lo -j ACCEPT"] + stateful_prologue("INPUT") + [
        vrrp_rule(link),
        vrrp_rule(front),
        # The other side's health probes, SNATed by a firewall, and plain ping.
        "-A INPUT -p icmp --icmp-type echo-request -j ACCEPT",
    ]
    management = cluster.management
    if management["tcp_ports"]:
        for source in management["sources"]:
            input_rules.append(access_rule("INPUT", "accept", "tcp", ports=management["tcp_ports"],
                                           source=source, comment="fwcluster management"))
    forward_rules = [
        "-A FORWARD -i %s -o %s -j ACCEPT" % (front, link),
        "-A FORWARD -i %s -o %s -j ACCEPT" % (link, front),
    ]
    return [
        table("raw", {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}, raw_rules),
        table("mangle", {"PREROUTING": "ACCEPT", "INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT",
                         "POSTROUTING": "ACCEPT"}, mangle_rules),
        table("filter", FILTER_POLICIES, input_rules + forward_rules),
    ]


def _balancer_health(cluster, side, balancer):
    """What the balancer's health service reads (printed as JSON by the balancer role)."""
    balancing = cluster.balancing
    far = cluster.balancing.sides[_other_side(side.name)]
    return {
        "cluster": cluster.name,
        "side": side.name,
        "hash_on": "destination" if side.name == "inside" else "source",
        "interval": balancing.health["interval"],
        "timeout": balancing.health["timeout"],
        "fall": balancing.health["fall"],
        "rise": balancing.health["rise"],
        "bound": balancing.health["bound"],
        # A firewall is up when any far-side balancer answers through it.
        "targets": [str(other.addresses[far.name].ip) for other in far.balancers],
        "firewalls": [{
            "name": node.name,
            "node_id": node.node_id,
            "address": str(node.addresses[side.name].ip),
            "table": _firewall_table(node),
            "probe_mark": PROBE_MARK_BASE + node.node_id,
            "probe_priority": PROBE_RULE_PRIORITY + node.node_id,
        } for node in cluster.nodes],
        "buckets": [{
            "bucket": bucket,
            "mark": BUCKET_MARK_BASE + bucket,
            "priority": BUCKET_RULE_PRIORITY + bucket,
            "home": _bucket_home(cluster, bucket).node_id,
        } for bucket in range(balancing.buckets)],
    }


def _balancer_plan(cluster, side, balancer):
    link = balancer.interfaces[side.name]
    routes = [_route(ipaddress.ip_network("0.0.0.0/0"), node.addresses[side.name].ip, link, _firewall_table(node))
              for node in cluster.nodes]
    if side.gateway is not None:
        routes.extend(_route(network, side.gateway, balancer.interfaces[SANDWICH_FRONT]) for network in side.routes)
    sysctls = dict(BALANCER_SYSCTLS)
    for interface in sorted(balancer.interfaces.values()):
        sysctls["net.ipv4.conf.%s.rp_filter" % interface] = "0"
    return {
        "name": balancer.name,
        "node_id": balancer.node_id,
        "role": "primary" if balancer.node_id == 0 else "backup",
        "side": side.name,
        "interfaces": dict(balancer.interfaces),
        "addresses": dict((key, value.with_prefixlen) for key, value in balancer.addresses.items()),
        "replication": None,
        "keepalived": _balancer_keepalived(cluster, side, balancer),
        "conntrackd": None,
        "sysctls": sysctls,
        "ruleset": _balancer_ruleset(cluster, side, balancer),
        "routes": routes,
        "balancer": _balancer_health(cluster, side, balancer),
        # The pair of one side backs each other up; the firewalls and the other pair do not back it up.
        "redundancy_group": "%s/balancers_%s" % (cluster.name, side.name),
    }


def _sandwich_plan_extra(cluster):
    balancing = cluster.balancing
    return {
        "balancing": {
            "buckets": balancing.buckets,
            "bucket_marks": "0x%x-0x%x" % (BUCKET_MARK_BASE, BUCKET_MARK_BASE + balancing.buckets - 1),
            "seed": balancing.seed,
            "health": dict(balancing.health),
            "sides": dict((side.name, {
                "front_vip": side.vip.with_prefixlen,
                "front_network": side.vip.network.with_prefixlen,
                "front_vrid": side.vrid,
                "segment_vip": cluster.segments[side.name].vip.with_prefixlen,
                "hash_on": "destination" if side.name == "inside" else "source",
                "balancers": [balancer.name for balancer in side.balancers],
            }) for side in balancing.sides.values()),
            "firewall_tables": dict((node.name, _firewall_table(node)) for node in cluster.nodes),
        },
        "balancers": dict((balancer.name, _balancer_plan(cluster, side, balancer))
                          for side in balancing.sides.values() for balancer in side.balancers),
    }


# --------------------------------------------------------------------------
# The architectures (docs/cluster-plan.md, "How an architecture plugs in")
# --------------------------------------------------------------------------

ARCHITECTURES = {
    "primary_backup": Architecture(
        "primary_backup",
        node_role=_primary_backup_role,
        keepalived=_primary_backup_keepalived,
        ruleset=_primary_backup_ruleset,
    ),
    "multipath": Architecture(
        "multipath",
        node_role=_multipath_role,
        keepalived=_multipath_keepalived,
        ruleset=_multipath_ruleset,
        check=_multipath_check,
        precheck=_multipath_precheck,
    ),
    "sandwich": Architecture(
        "sandwich",
        node_role=_sandwich_role,
        keepalived=_sandwich_keepalived,
        ruleset=_sandwich_ruleset,
        read=_read_sandwich,
        node_extra=_sandwich_node_extra,
        plan_extra=_sandwich_plan_extra,
    ),
    "hash": Architecture(
        "hash",
        node_role=_hash_role,
        keepalived=_hash_keepalived,
        ruleset=_hash_ruleset,
        check=_hash_check,
        node_extra=_hash_node_extra,
        plan_extra=_hash_plan_extra,
    ),
}
