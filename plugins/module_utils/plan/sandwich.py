# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sandwich: every firewall active between two pairs of load balancers.

Every firewall is active. A pair of load balancers on each side (VRRP
between the two for the side's VIPs) hashes every packet with iptables
HMARK into one of `buckets` marks and routes each mark to one firewall's
routing table. The hash is on the OUTSIDE party's address only: the inside
balancers hash the destination, the outside balancers the source. HMARK
sorts the two (masked) addresses before hashing, so hash(0, X) is the same
on both sides and both directions of a flow take the same firewall; and
since neither SNAT of inside hosts nor the inside addresses enter the hash,
NAT on the firewalls cannot move the return traffic elsewhere. The price:
one outside host is served by one firewall.

A health service on every balancer probes forwarding through each firewall
(an ICMP echo with the firewall's probe mark, towards the far side's
balancers, which the firewall forwards and SNATs to its own far-side
address so the reply comes back through it) and moves only a dead
firewall's buckets to the survivors. conntrackd between the firewalls
injects each firewall's flows straight into the others' kernel tables
(DisableExternalCache): no VRRP event on a firewall commits anything, and
the survivor already holds the moved flows.

Dual stack: every segment and front network carries an IPv6 VIP beside its
IPv4 one (all four or none). The balancers hash IPv6 the same way (the
outside party's address, HMARK of ip6tables or nftables' jhash), the same
bucket marks select the same firewall in both families (ip -6 rule beside
ip rule), and IPv6 is routed, never translated. The probes stay IPv4: a
firewall that forwards them is up for both families.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import read, rules, stateful, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import routes as routes_
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import (
    BALANCER_HOSTS,
    CLUSTER_VARIABLE,
    GATE_HOLDS_FORWARDING,
    Architecture,
    Claim,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import Rule, Table

# The host variables of a load balancer (a host with fwcluster_balancer_side).
BALANCER_VARIABLES = (
    "fwcluster_balancer_side",
    "fwcluster_node_id",
    "fwcluster_addresses",
    "fwcluster_interfaces",
)
SIDES = ("inside", "outside")
FRONT = "front"  # the balancers' interface/address key toward the side's hosts
BALANCER_KEYS = ("buckets", "health", "inside", "outside")
BALANCER_SIDE_KEYS = ("interface", "vip", "vrid", "routes", "gateway")
HEALTH_KEYS = ("interval", "timeout", "fall", "rise")
HEALTH_DEFAULTS = {"interval": 0.5, "timeout": 0.4, "fall": 3, "rise": 3}
FRONT_VIP_EXAMPLE = '[10.40.1.254/24, "2001:db8:40:1::fe/64"]'
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
BALANCER_SYSCTLS6 = (
    ("net.ipv6.conf.all.forwarding", "1"),
)


class Side(object):
    def __init__(self, name, interface, vips, vrid, routes, gateways):
        self.name = name  # inside | outside, also the name of the segment toward the firewalls
        self.interface = interface  # front interface (toward the hosts), group default
        self.vips = vips  # {4: IPv4Interface, 6: IPv6Interface (dual stack)}: the hosts' gateway
        self.vip = vips[4]
        self.vip6 = vips.get(6)
        self.vrid = vrid
        self.routes = routes  # networks (either family) behind the side, besides the front network
        self.gateways = gateways  # {version: address on the front network for `routes`}, {} when none
        self.balancers = []  # Balancer, by node id


class Balancer(object):
    def __init__(self, name, side, node_id):
        self.name = name
        self.side = side
        self.node_id = node_id
        self.interfaces = {}  # side segment and "front" -> interface
        self.addresses = {}  # side segment and "front" -> IPv4Interface
        self.addresses6 = {}  # the same keys -> IPv6Interface (dual stack)


class Balancing(object):
    def __init__(self, buckets, health, seed):
        self.buckets = buckets
        self.health = health
        self.seed = seed
        self.sides = {}  # name -> Side


class Sandwich(Architecture):
    name = "sandwich"
    claims = (
        Claim(BALANCER_HOSTS, "fwcluster_balancer_side",
              "load balancers belong to sandwich clusters; cluster %(cluster)s is %(architecture)s (remove the host "
              "from the cluster or set fwcluster_architecture: sandwich)"),
        Claim(CLUSTER_VARIABLE, "fwcluster_balancers",
              "only applies to fwcluster_architecture: sandwich; cluster %(cluster)s is %(architecture)s"),
        Claim(CLUSTER_VARIABLE, "fwcluster_hash_seed"),
    )
    vrrp_on_nodes = False  # the balancers hold the VIPs and watch the firewalls
    # No VRRP event on a firewall commits anything: each peer's flows go
    # straight into this kernel's table, ready when the balancers move them here.
    # No internal cache either: a resync request is answered from the kernel
    # table, so flows this firewall took over from a dead peer go back to it.
    conntrackd_caches = {"external_cache": False, "internal_cache": False}
    peer_flows = ("kernel",)
    peer_flows_rule = ("a sandwich's firewalls write their peers' flows into the kernel: the balancers move a "
                       "flow to a firewall with no VRRP transition there to commit an external cache")
    # The balancers give a returning firewall its buckets back once it
    # forwards their probes: it forwards nothing until its flows are in.
    resync_gate_holds = GATE_HOLDS_FORWARDING
    # Per-flow packet counters: the firewall that forwards a flow counts its
    # packets, a firewall holding it only by replication shows zero. That is
    # how one sees which firewall carries what (conntrack -L).
    sysctls = (("net.netfilter.nf_conntrack_acct", "1"),)

    def read_own(self, cluster, inventory):
        return read_balancing(cluster, inventory.cluster_vars, inventory.balancers_vars)

    def role(self, cluster, node):
        return "active"  # every firewall forwards its share of the flows

    def keepalived(self, cluster, node):
        return None  # the firewalls hold no VIP; the balancers do

    def ruleset(self, cluster, node):
        probe_forward, probe_nat = probe_rules(cluster, node)
        # The firewalls hold no VIP: no VRRP reaches them.
        input_rules = [rule for rule in stateful.filter_input_rules(cluster, node) if not stateful.is_vrrp_rule(rule)]
        forward = stateful.filter_forward_rules(cluster, node)
        prologue = len(rules.stateful_prologue("FORWARD"))
        forward = forward[:prologue] + probe_forward + forward[prologue:]
        return [
            Table("filter", rules.FILTER_POLICIES, input_rules + forward),
            Table("nat", rules.NAT_POLICIES, probe_nat + nat_rules(cluster, node)),
        ]

    def ruleset6(self, cluster, node):
        """The stateful policy for IPv6: routed, not translated, and no probe crosses it (they are IPv4)."""
        input_rules = [rule for rule in stateful.filter_input_rules(cluster, node, rules.IPV6)
                       if not stateful.is_vrrp_rule(rule)]
        return [Table("filter", rules.FILTER_POLICIES,
                      input_rules + stateful.filter_forward_rules(cluster, node, family=rules.IPV6),
                      family=rules.IPV6)]

    def node_routes(self, cluster, node):
        """Firewall nodes: routes toward each side's balancers."""
        routes = []
        for side in cluster.settings.sides.values():
            vips = cluster.segments[side.name].vips
            for network in [vip.network for vip in side.vips.values()] + side.routes:
                routes.append(routes_.route(network, vips[network.version].ip, node.interfaces[side.name]))
        return routes

    def node_fields(self, cluster, node, backend):
        return {"balancer": None}

    def plan_fields(self, cluster, backend):
        balancing = cluster.settings
        return {
            "balancing": {
                "buckets": balancing.buckets,
                "bucket_marks": "0x%x-0x%x" % (BUCKET_MARK_BASE, BUCKET_MARK_BASE + balancing.buckets - 1),
                "seed": balancing.seed,
                "health": dict(balancing.health),
                "sides": dict((side.name, side_plan(cluster, side)) for side in balancing.sides.values()),
                "firewall_tables": dict((node.name, firewall_table(node)) for node in cluster.nodes),
            },
            "balancers": dict((balancer.name, balancer_plan(cluster, side, balancer, backend))
                              for side in balancing.sides.values() for balancer in side.balancers),
        }


def read_balancing(cluster, cluster_vars, balancers_vars):
    label = cluster.label
    if sorted(cluster.segments) != sorted(SIDES):
        raise PlanError(label, "fwcluster_segments", "a sandwich cluster has exactly the segments inside and outside "
                        "(the links between each side's balancers and the firewalls), got %s"
                        % ", ".join(sorted(cluster.segments)))
    inside, outside = (cluster.segments[name].vips for name in SIDES)
    if sorted(inside) != sorted(outside):
        # A flow crosses both segments: a family on one side only has no way through.
        lacking = "inside" if len(inside) < len(outside) else "outside"
        raise PlanError(label, "fwcluster_segments.%s.vip" % lacking, "gives %s, the %s segment %s: a sandwich "
                        "carries a family on all of its networks or on none" % (
                            _families(cluster.segments[lacking].vips), other_side(lacking),
                            _families(cluster.segments[other_side(lacking)].vips)))
    seed = cluster_vars.get("fwcluster_hash_seed")
    if seed is None:
        raise PlanError(label, "fwcluster_hash_seed", "is required for sandwich: the HMARK seed every balancer "
                        "shares, an integer in 0..4294967295, e.g. 0x5eed1234")
    seed = read.integer(seed, 0, 0xFFFFFFFF, label, "fwcluster_hash_seed")
    raw = cluster_vars.get("fwcluster_balancers")
    if raw is None:
        raise PlanError(label, "fwcluster_balancers", "is required for sandwich: each side's front network "
                        "(interface, vip, vrid) and the hash buckets")
    raw = read.mapping(raw, label, "fwcluster_balancers")
    read.known_keys(raw, BALANCER_KEYS, label, "fwcluster_balancers")
    count = len(cluster.nodes)
    buckets = read.integer(read.optional(raw, "buckets", BUCKETS_DEFAULT), count, MAX_BUCKETS, label,
                           "fwcluster_balancers.buckets")
    balancing = Balancing(buckets, _read_health(label, read.optional(raw, "health", {})), seed)
    vrids = dict((segment.vrid, "fwcluster_segments.%s.vrid" % segment.name) for segment in cluster.segments.values())
    for side in SIDES:
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
    return balancing


def _read_health(label, raw):
    variable = "fwcluster_balancers.health"
    raw = read.mapping(raw, label, variable)
    read.known_keys(raw, HEALTH_KEYS, label, variable)
    interval = read.number(read.optional(raw, "interval", HEALTH_DEFAULTS["interval"]), 0.03, 60, label, variable + ".interval")
    timeout = read.number(read.optional(raw, "timeout", HEALTH_DEFAULTS["timeout"]), 0.02, 60, label, variable + ".timeout")
    if timeout > interval:
        raise PlanError(label, variable + ".timeout", "%s s exceeds the interval %s s: a probe round must end "
                        "before the next one starts" % (timeout, interval))
    fall = read.integer(read.optional(raw, "fall", HEALTH_DEFAULTS["fall"]), 1, 100, label, variable + ".fall")
    rise = read.integer(read.optional(raw, "rise", HEALTH_DEFAULTS["rise"]), 1, 100, label, variable + ".rise")
    return {"interval": interval, "timeout": timeout, "fall": fall, "rise": rise,
            # A firewall that dies just after a good round misses the next `fall`
            # rounds; the last of them gives up after `timeout`.
            "bound": round(fall * interval + timeout, 2)}


def _read_sandwich_side(cluster, raw, side, vrids):
    label = cluster.label
    variable = "fwcluster_balancers.%s" % side
    if raw.get(side) is None:
        raise PlanError(label, variable, "is required: the %s balancers' front network (interface, vip, vrid)" % side)
    spec = read.mapping(raw[side], label, variable)
    read.known_keys(spec, BALANCER_SIDE_KEYS, label, variable)
    interface = spec.get("interface")
    if interface is not None:
        interface = read.interface_name(interface, label, variable + ".interface")
    if spec.get("vip") is None:
        raise PlanError(label, variable + ".vip", "is required: the gateway address of the %s hosts, with prefix "
                        "(or one per family)" % side)
    vips = read.interfaces_by_family(spec["vip"], label, variable + ".vip", FRONT_VIP_EXAMPLE)
    segment_vips = cluster.segments[side].vips
    if sorted(vips) != sorted(segment_vips):
        # Hosts of a family the firewalls do not carry (or the reverse) would have no way through.
        raise PlanError(label, variable + ".vip", "gives %s, the %s segment has %s: a sandwich carries a family "
                        "on all of its networks or on none" % (
                            _families(vips), side, _families(segment_vips)))
    for vip in vips.values():
        read.refuse_network_or_broadcast(vip, label, variable + ".vip")
        for segment in cluster.segments.values():
            theirs = segment.vips.get(vip.version)
            if theirs is not None and vip.network.overlaps(theirs.network):
                raise PlanError(label, variable + ".vip", "front network %s overlaps segment %s (%s)"
                                % (vip.network, segment.name, theirs.network))
    vip = vips[4]
    if cluster.replication is not None and vip.network.overlaps(cluster.replication.network):
        raise PlanError(label, variable + ".vip", "front network %s overlaps the replication network %s"
                        % (vip.network, cluster.replication.network))
    if spec.get("vrid") is None:
        raise PlanError(label, variable + ".vrid", "is required: the VRRP virtual router id of the front VIP, 1..255")
    vrid = read.integer(spec["vrid"], 1, 255, label, variable + ".vrid")
    if vrid in vrids:
        raise PlanError(label, variable + ".vrid", "VRID %d is already used by %s; VRIDs must differ" % (vrid, vrids[vrid]))
    vrids[vrid] = variable + ".vrid"
    routes = routes_.read_routes(read.optional(spec, "routes", []), vips, label, variable + ".routes",
                                 "%s side" % side, "give every segment and front network an IPv6 VIP beside its "
                                 "IPv4 one (dual stack)")
    gateways = {}
    if spec.get("gateway") is not None:
        gateways = routes_.read_gateways(spec["gateway"], vips, label, variable + ".gateway", "front")
        for network in routes:
            if network.version not in gateways:
                raise PlanError(label, variable + ".gateway", "has no IPv%d router for %s (routes): give one "
                                "address per family of the routes" % (network.version, network))
    return Side(side, interface, vips, vrid, routes, gateways)


def _families(addresses):
    return " and ".join("IPv%d" % version for version in sorted(addresses)) or "none"


def _read_balancers(cluster, balancing, balancers_vars):
    label = cluster.label
    if not balancers_vars:
        raise PlanError(label, "fwcluster_balancer_side", "a sandwich cluster needs two load balancers per side: "
                        "hosts of cluster %s with fwcluster_balancer_side inside or outside" % cluster.name)
    balancers_vars = read.mapping(balancers_vars, label, "fwcluster_balancer_side")
    taken = {}  # address -> owner, the firewalls' addresses included
    for node in cluster.nodes:
        for address in list(node.addresses.values()) + list(node.addresses6.values()):
            taken[address.ip] = node.name
    for side in balancing.sides.values():
        for vip in side.vips.values():
            taken[vip.ip] = "the %s front VIP" % side.name
    for segment in cluster.segments.values():
        for vip in segment.vips.values():
            taken[vip.ip] = "the %s segment VIP" % segment.name
    for host in sorted(balancers_vars, key=str):
        if not isinstance(host, str) or not host:
            raise PlanError(label, "fwcluster_balancer_side", "balancer names must be inventory host names, got %s"
                            % read.describe(host))
        read.host_name(host)
        host_vars = read.mapping(balancers_vars[host], host, "host variables")
        side = read.choice(host_vars.get("fwcluster_balancer_side"), SIDES, host, "fwcluster_balancer_side")
        node_id = host_vars.get("fwcluster_node_id")
        if node_id is None:
            raise PlanError(host, "fwcluster_node_id", "is required: 0 or 1 within the %s balancer pair "
                            "(0 is the preferred VRRP master)" % side)
        node_id = read.integer(node_id, 0, 1, host, "fwcluster_node_id")
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
    keys = (side.name, FRONT)
    raw = read.mapping(read.optional(host_vars, "fwcluster_interfaces", {}), host, "fwcluster_interfaces")
    read.known_keys(raw, keys, host, "fwcluster_interfaces")
    defaults = {side.name: cluster.segments[side.name].interface, FRONT: side.interface}
    for key in keys:
        value = raw.get(key)
        if value is None:
            value = defaults[key]
            if value is None:
                default = ("fwcluster_segments.%s.interface" if key == side.name
                           else "fwcluster_balancers.%s.interface") % side.name
                raise PlanError(host, "fwcluster_interfaces.%s" % key, "no interface: set it here or as the "
                                "group's default (%s)" % default)
        balancer.interfaces[key] = read.interface_name(value, host, "fwcluster_interfaces.%s" % key)
    if balancer.interfaces[side.name] == balancer.interfaces[FRONT]:
        raise PlanError(host, "fwcluster_interfaces", "the %s segment and the front network share interface %s; "
                        "a balancer needs one interface for each" % (side.name, balancer.interfaces[FRONT]))
    raw = host_vars.get("fwcluster_addresses")
    if raw is None:
        raise PlanError(host, "fwcluster_addresses", "is required: this balancer's address on %s (toward the "
                        "firewalls) and front (toward the %s hosts)" % (side.name, side.name))
    raw = read.mapping(raw, host, "fwcluster_addresses")
    read.known_keys(raw, keys, host, "fwcluster_addresses")
    networks = {side.name: cluster.segments[side.name].vips, FRONT: side.vips}
    for key in keys:
        variable = "fwcluster_addresses.%s" % key
        vips = networks[key]
        example = " and ".join(str(vip.network) for vip in vips.values())
        if raw.get(key) is None:
            raise PlanError(host, variable, "is required: this balancer's address with prefix in %s" % example)
        place = "the %s front network" % side.name if key == FRONT else "segment %s" % key
        addresses = read.addresses_on(raw[key], vips, host, variable, FRONT_VIP_EXAMPLE, place, "balancer")
        for _version, address in sorted(addresses.items()):
            if address.ip in taken:
                raise PlanError(host, variable, "%s is already the address of %s" % (address.ip, taken[address.ip]))
            taken[address.ip] = host
        balancer.addresses[key] = addresses[4]
        if 6 in addresses:
            balancer.addresses6[key] = addresses[6]


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


def other_side(side):
    return "outside" if side == "inside" else "inside"


def hash_on(side):
    # The outside party's address only: the inside balancers see it as the
    # destination, the outside balancers as the source (see the module head).
    return "destination" if side.name == "inside" else "source"


def probe_rules(cluster, node):
    """Forward the balancers' probes across this firewall and SNAT them to its far-side address.

    The probe is an ICMP echo from one side's balancer link to the other's; the
    SNAT makes the far balancer answer this firewall, so a probe that returns
    crossed this firewall both ways, whatever the balancers' own routes are.
    """
    forward, nat = [], []
    for near in SIDES:
        far = other_side(near)
        near_net = cluster.segments[near].vip.network
        far_net = cluster.segments[far].vip.network
        forward.append(Rule("FORWARD", [
            rules.in_interface(node.interfaces[near]), rules.out_interface(node.interfaces[far]),
            rules.source(near_net), rules.destination(far_net), rules.protocol("icmp"),
            rules.icmp_type(rules.ICMP_REQUEST), rules.ct_state("NEW"),
        ], rules.ACCEPT, PROBE_COMMENT))
        nat.append(Rule("POSTROUTING", [
            rules.out_interface(node.interfaces[far]), rules.source(near_net), rules.destination(far_net),
            rules.protocol("icmp"),
        ], rules.snat(node.addresses[far].ip), PROBE_COMMENT))
    return forward, nat


def snat_port_range(node_id, count):
    """The share of SNAT_PORTS of firewall node_id among count firewalls (disjoint, covering)."""
    low, high = SNAT_PORTS
    size = (high - low + 1) // count
    first = low + node_id * size
    last = high if node_id == count - 1 else first + size - 1
    return first, last


def nat_rules(cluster, node):
    found = []
    port_range = snat_port_range(node.node_id, len(cluster.nodes))
    for entry in cluster.nat:  # snat only (checked): one address shared by every firewall
        head = [rules.out_interface(node.interfaces[entry.segment]), rules.source(entry.source)]
        # Disjoint port ranges: two firewalls never pick the same translated
        # tuple, so one's replicated flows never clash with the other's own.
        for proto in ("tcp", "udp"):
            found.append(Rule("POSTROUTING", head + [rules.protocol(proto)],
                              rules.snat(entry.to_address, port_range), entry.name))
        found.append(Rule("POSTROUTING", head, rules.snat(entry.to_address), entry.name))
    return found


def firewall_table(node):
    return FIREWALL_TABLE_BASE + 1 + node.node_id


def bucket_home(cluster, bucket):
    return cluster.nodes[bucket % len(cluster.nodes)]


def side_plan(cluster, side):
    segment = cluster.segments[side.name]
    plan = {
        "front_vip": side.vip.with_prefixlen,
        "front_network": side.vip.network.with_prefixlen,
        "front_vrid": side.vrid,
        "segment_vip": segment.vip.with_prefixlen,
        "hash_on": hash_on(side),
        "balancers": [balancer.name for balancer in side.balancers],
    }
    if side.vip6 is not None:
        plan.update({
            "front_vip6": side.vip6.with_prefixlen,
            "front_network6": side.vip6.network.with_prefixlen,
            "segment_vip6": segment.vip6.with_prefixlen,
        })
    return plan


def balancer_keepalived(cluster, side, balancer):
    """Two instances per family (segment VIP, front VIP) bound in one sync group: one balancer holds all."""
    segment = cluster.segments[side.name]
    instances = []
    # IPv6 (dual stack): VRRPv3 instances of their own, after the IPv4 ones, with the same
    # VRIDs (each family numbers its virtual routers apart), their link-local virtual address first.
    for version, suffix, family in ((4, "", "ipv4"), (6, "_v6", "ipv6")):
        for key, vips, vrid in ((side.name, segment.vips, segment.vrid), (FRONT, side.vips, side.vrid)):
            if version not in vips:
                continue
            addresses = [vips[version].with_prefixlen]
            if version == 6:
                addresses.insert(0, vrrp.link_local_vip(vrid))
            instances.append(vrrp.instance(
                "%s_%s_%s%s" % (cluster.name, side.name, key if key == FRONT else "firewalls", suffix), key,
                balancer.interfaces[key], vrid, vrrp.priority(balancer.node_id), cluster.vrrp["advert_int"],
                cluster.vrrp["preempt"], addresses, family=family))
    return {
        "router_id": balancer.name,
        "sync_group": {"name": "%s_%s" % (cluster.name, side.name), "instances": [i["name"] for i in instances]},
        "instances": instances,
    }


def balancer_ruleset(cluster, side, balancer, family=rules.IPV4):
    """A balancer's tables of one family: the same hash, marks and forwarding in both."""
    balancing = cluster.settings
    front = balancer.interfaces[FRONT]
    link = balancer.interfaces[side.name]
    input_rules = [Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT)] + rules.stateful_prologue("INPUT")
    if family == rules.IPV6:
        input_rules.extend(rules.neighbour_discovery())
        ping = Rule("INPUT", [rules.protocol("icmp", family), rules.icmpv6_type(rules.ICMP_REQUEST)], rules.ACCEPT)
    else:
        # The other side's health probes, SNATed by a firewall, and plain ping.
        ping = Rule("INPUT", [rules.protocol("icmp"), rules.icmp_type(rules.ICMP_REQUEST)], rules.ACCEPT)
    input_rules += [stateful.vrrp_rule(link), stateful.vrrp_rule(front), ping]
    input_rules += stateful.management_rules(cluster, family)
    return [
        # Transit packets are routed per packet, never tracked: the peer balancer
        # takes over mid-flow with nothing to learn.
        Table("raw", rules.RAW_POLICIES, [rules.untracked_forwarding()], family=family),
        Table("mangle", rules.MANGLE_POLICIES, [
            Rule("PREROUTING", [rules.in_interface(front), rules.not_local_destination()],
                 rules.hash_mark(hash_on(side), balancing.buckets, BUCKET_MARK_BASE, balancing.seed)),
        ], family=family),
        Table("filter", rules.FILTER_POLICIES, input_rules + [
            Rule("FORWARD", [rules.in_interface(front), rules.out_interface(link)], rules.ACCEPT),
            Rule("FORWARD", [rules.in_interface(link), rules.out_interface(front)], rules.ACCEPT),
        ], family=family),
    ]


def balancer_health(cluster, side, balancer):
    """What the balancer's health service reads (printed as JSON by the balancer role)."""
    balancing = cluster.settings
    far = balancing.sides[other_side(side.name)]
    return {
        "cluster": cluster.name,
        "side": side.name,
        "hash_on": hash_on(side),
        # The ip rule families the bucket rules are kept in: the same mark picks the same firewall in each.
        "families": ["inet", "inet6"] if side.vip6 is not None else ["inet"],
        "interval": balancing.health["interval"],
        "timeout": balancing.health["timeout"],
        "fall": balancing.health["fall"],
        "rise": balancing.health["rise"],
        "bound": balancing.health["bound"],
        # A firewall is up when any far-side balancer answers through it.
        "targets": [str(other.addresses[far.name].ip) for other in far.balancers],
        "firewalls": [_health_firewall(side, node) for node in cluster.nodes],
        "buckets": [{
            "bucket": bucket,
            "mark": BUCKET_MARK_BASE + bucket,
            "priority": BUCKET_RULE_PRIORITY + bucket,
            "home": bucket_home(cluster, bucket).node_id,
        } for bucket in range(balancing.buckets)],
    }


def _health_firewall(side, node):
    firewall = {
        "name": node.name,
        "node_id": node.node_id,
        "address": str(node.addresses[side.name].ip),
        "table": firewall_table(node),
        "probe_mark": PROBE_MARK_BASE + node.node_id,
        "probe_priority": PROBE_RULE_PRIORITY + node.node_id,
    }
    if side.name in node.addresses6:
        # Its IPv6 next hop: the service forgets the neighbour entry when the firewall returns.
        firewall["address6"] = str(node.addresses6[side.name].ip)
    return firewall


def balancer_plan(cluster, side, balancer, backend):
    link = balancer.interfaces[side.name]
    routes = [routes_.route(ipaddress.ip_network("0.0.0.0/0"), node.addresses[side.name].ip, link, firewall_table(node))
              for node in cluster.nodes]
    if side.vip6 is not None:
        routes.extend(routes_.route(ipaddress.ip_network("::/0"), node.addresses6[side.name].ip, link, firewall_table(node))
                      for node in cluster.nodes)
    if side.gateways:
        routes.extend(routes_.route(network, side.gateways[network.version], balancer.interfaces[FRONT])
                      for network in side.routes)
    sysctls = dict(BALANCER_SYSCTLS + (BALANCER_SYSCTLS6 if side.vip6 is not None else ()))
    for interface in sorted(balancer.interfaces.values()):
        sysctls["net.ipv4.conf.%s.rp_filter" % interface] = "0"
    return {
        "name": balancer.name,
        "node_id": balancer.node_id,
        "role": "primary" if balancer.node_id == 0 else "backup",
        "side": side.name,
        "interfaces": dict(balancer.interfaces),
        "addresses": dict((key, value.with_prefixlen) for key, value in balancer.addresses.items()),
        "addresses6": dict((key, value.with_prefixlen) for key, value in balancer.addresses6.items()),
        "replication": None,
        "keepalived": balancer_keepalived(cluster, side, balancer),
        "conntrackd": None,
        "sysctls": sysctls,
        "ruleset": backend.ruleset(balancer_ruleset(cluster, side, balancer)),
        "ruleset_ipv6": backend.ruleset(balancer_ruleset(cluster, side, balancer, rules.IPV6) if side.vip6 is not None
                                        else rules.ipv6_closed(), rules.IPV6),
        "routes": routes,
        "balancer": balancer_health(cluster, side, balancer),
        # The pair of one side backs each other up; the firewalls and the other pair do not back it up.
        "redundancy_group": "%s/balancers_%s" % (cluster.name, side.name),
    }
