# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster as the shared reader leaves it: checked, normalized, before any architecture builds on it."""

from __future__ import annotations

# Names that mean something of their own where a policy entry names segments.
POLICY_ANY = "any"
POLICY_FIREWALL = "firewall"


class Segment(object):
    def __init__(self, name, interface, vip, vrid, options=None, vip6=None):
        self.name = name
        self.interface = interface  # group default, None if every host names its own
        self.vip = vip  # IPv4Interface
        self.vip6 = vip6  # IPv6Interface, None on an IPv4-only segment
        self.vrid = vrid
        self.options = dict(options or {})  # keys an architecture claims, as written (it reads them)

    @property
    def vips(self):
        """{4: IPv4Interface, 6: IPv6Interface} of the families the segment carries."""
        return dict((vip.version, vip) for vip in (self.vip, self.vip6) if vip is not None)


class Node(object):
    def __init__(self, name, node_id):
        self.name = name
        self.node_id = node_id
        self.interfaces = {}  # segment -> interface name
        self.own_interfaces = set()  # segments (or "replication") named by this host
        self.addresses = {}  # segment -> IPv4Interface
        self.addresses6 = {}  # segment -> IPv6Interface, on the segments that carry IPv6
        self.replication_interface = None
        self.replication_address = None  # IPv4Interface
        self.management_address = None  # IPv4Address: ansible_host, when it is one


class Replication(object):
    def __init__(self, interface, transport, mode, port, multicast_group, peer_flows="external_cache"):
        self.interface = interface
        self.transport = transport
        self.mode = mode
        self.port = port
        self.multicast_group = multicast_group  # IPv4Address, multicast transport only
        # Where a node keeps its peers' flows: "external_cache" (committed to
        # the kernel at a takeover) or "kernel" (written as they come).
        self.peer_flows = peer_flows
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
        # 4 or 6 when an address names the family, None for an entry of both families
        self.family = (source or destination).version if (source or destination) is not None else None

    def applies_to(self, family):
        return self.family is None or self.family == family


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


class Inventory(object):
    """The raw inventory of one cluster: group variables, members' and balancers' host variables."""

    def __init__(self, cluster_vars, nodes_vars, balancers_vars=None):
        self.cluster_vars = cluster_vars
        self.nodes_vars = nodes_vars
        self.balancers_vars = balancers_vars


class Cluster(object):
    """Everything the build reads, checked and normalized; nodes sorted by node id."""

    def __init__(self, name, architecture):
        self.name = name
        self.label = "cluster %s" % name  # the "host" of group-variable errors
        self.architecture = architecture  # its Architecture (plan/architecture.py)
        self.nodes = []
        self.segments = {}
        self.segment_routes = {}  # segment -> (networks behind its router, {version: router})
        self.replication = None
        self.vrrp = {}
        self.vrrp_options = {}  # fwcluster_vrrp keys an architecture claims, as written
        self.tracking = {}  # fwcluster_tracking, read and defaulted
        self.policy = []
        self.nat = []
        self.management = {}
        self.backend = None  # "iptables" or "nftables": which backend spells the rules
        self.settings = None  # what the architecture read of its own keys (its read_own())

    @property
    def dual_stack(self):
        """Whether a segment carries an IPv6 VIP: the nodes then filter and forward IPv6 too."""
        return any(segment.vip6 is not None for segment in self.segments.values())

    def segment_of_address(self, address):
        for segment in self.segments.values():
            if address in segment.vip.network:
                return segment.name
        return None
