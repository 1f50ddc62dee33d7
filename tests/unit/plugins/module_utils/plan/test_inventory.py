"""Every refusal names the host, the variable and the rule broken: table-driven."""

from __future__ import annotations

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan

CLUSTER = "cluster edge"


def setter(*path, host=None, value=None):
    """Set cluster[path] (or nodes[host][path]) to value."""
    def mutate(cluster, nodes):
        target = nodes[host] if host else cluster
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def deleter(*path, host=None):
    def mutate(cluster, nodes):
        target = nodes[host] if host else cluster
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def clone_nodes(count):
    """Grow the example to `count` nodes."""
    def mutate(cluster, nodes):
        for node_id in range(2, count):
            nodes["pb-fw%d" % (node_id + 1)] = {
                "fwcluster_node_id": node_id,
                "fwcluster_addresses": {"inside": "10.10.1.%d/24" % (node_id + 1),
                                        "outside": "203.0.113.%d/24" % (node_id + 1)},
                "fwcluster_replication_address": "192.168.100.%d/24" % (node_id + 1),
            }
    return mutate


def both(*mutations):
    def mutate(cluster, nodes):
        for mutation in mutations:
            mutation(cluster, nodes)
    return mutate


def only_one_node(cluster, nodes):
    del nodes["pb-fw2"]


def policy(index, **values):
    def mutate(cluster, nodes):
        cluster["fwcluster_policy"][index].update(values)
    return mutate


def nat(entry):
    return setter("fwcluster_nat", value=[entry])


def rename_host(old, new):
    def mutate(cluster, nodes):
        nodes[new] = nodes.pop(old)
    return mutate


def rename_segment(old, new):
    """Rename a segment everywhere it is named (the policy and NAT of the example are dropped)."""
    def mutate(cluster, nodes):
        cluster["fwcluster_segments"][new] = cluster["fwcluster_segments"].pop(old)
        cluster["fwcluster_policy"] = []
        cluster["fwcluster_nat"] = []
        for host_vars in nodes.values():
            host_vars["fwcluster_addresses"][new] = host_vars["fwcluster_addresses"].pop(old)
    return mutate


HOST_NAME_RULE = "a host name is written into keepalived.conf, systemd units and the shell hooks keepalived runs as root"


CASES = [
    # id, mutation, host, variable, fragment of the rule
    # --- node ids
    ("duplicate id", setter("fwcluster_node_id", host="pb-fw2", value=0),
     "pb-fw2", "fwcluster_node_id", "already used by pb-fw1"),
    ("missing id", deleter("fwcluster_node_id", host="pb-fw2"), "pb-fw2", "fwcluster_node_id", "is required"),
    ("null id", setter("fwcluster_node_id", host="pb-fw1", value=None), "pb-fw1", "fwcluster_node_id", "is required"),
    ("id out of range", setter("fwcluster_node_id", host="pb-fw2", value=2),
     "pb-fw2", "fwcluster_node_id", "must be in 0..1"),
    ("negative id", setter("fwcluster_node_id", host="pb-fw1", value=-1),
     "pb-fw1", "fwcluster_node_id", "must be in 0..1"),
    ("id string", setter("fwcluster_node_id", host="pb-fw2", value="1"),
     "pb-fw2", "fwcluster_node_id", "must be an integer"),
    ("id bool", setter("fwcluster_node_id", host="pb-fw2", value=True),
     "pb-fw2", "fwcluster_node_id", "the boolean true"),
    ("id float", setter("fwcluster_node_id", host="pb-fw2", value=1.0),
     "pb-fw2", "fwcluster_node_id", "must be an integer"),
    ("one node", only_one_node, CLUSTER, "fwcluster_name", "at least 2 nodes"),
    ("33 nodes", clone_nodes(33), CLUSTER, "fwcluster_name", "at most 32 nodes"),
    ("host vars not a mapping", lambda cluster, nodes: nodes.__setitem__("pb-fw2", ["fwcluster_node_id"]),
     "pb-fw2", "host variables", "must be a mapping"),
    # --- host names: they reach keepalived.conf, units and hooks; the name is printed escaped
    ("host name with a trailing newline", rename_host("pb-fw1", "pb-fw1\n"),
     "'pb-fw1\\n'", "inventory_hostname", "holds a newline; " + HOST_NAME_RULE),
    ("host name with a newline inside", rename_host("pb-fw2", "pb-fw2\nreboot"),
     "'pb-fw2\\nreboot'", "inventory_hostname", "holds a newline"),
    ("host name with a space", rename_host("pb-fw1", "pb fw1"), "'pb fw1'", "inventory_hostname", "holds a space"),
    ("host name with a shell character", rename_host("pb-fw2", "pb-fw2;reboot"),
     "'pb-fw2;reboot'", "inventory_hostname", "holds ';'"),
    ("host name with a systemd specifier", rename_host("pb-fw2", "pb%n"), "'pb%n'", "inventory_hostname",
     "holds '%'"),
    ("host name starting with a dash", rename_host("pb-fw1", "-fw1"), "'-fw1'", "inventory_hostname",
     "starts with '-'"),
    ("host name too long", rename_host("pb-fw1", "f" * 254), repr("f" * 254), "inventory_hostname",
     "is 254 characters long"),
    # --- identity
    ("unknown architecture", setter("fwcluster_architecture", value="active_active"),
     CLUSTER, "fwcluster_architecture", "valid values: primary_backup, multipath, sandwich, hash"),
    ("architecture not a string", setter("fwcluster_architecture", value=["primary_backup"]),
     CLUSTER, "fwcluster_architecture", "valid values"),
    # multipath on the primary_backup example: refused for what it carries (tests in test_multipath.py).
    ("multipath refuses replication", setter("fwcluster_architecture", value="multipath"),
     CLUSTER, "fwcluster_replication", "filters statelessly"),
    # (the example's upstream tracking, refused for sandwich, is left out)
    ("sandwich without its seed",
     lambda cluster, nodes: cluster.update(fwcluster_architecture="sandwich", fwcluster_tracking={}),
     CLUSTER, "fwcluster_hash_seed", "is required for sandwich"),
    ("missing architecture", deleter("fwcluster_architecture"), CLUSTER, "fwcluster_architecture", "is required"),
    ("missing name", deleter("fwcluster_name"), "cluster (unnamed)", "fwcluster_name", "is required"),
    ("name with spaces", setter("fwcluster_name", value="my edge"),
     "cluster my edge", "fwcluster_name", "must start with a letter"),
    ("name with a trailing newline", setter("fwcluster_name", value="edge\n"),
     CLUSTER, "fwcluster_name", "'edge\\n' has white space around the name"),
    ("name with a leading space", setter("fwcluster_name", value=" edge"),
     CLUSTER, "fwcluster_name", "write 'edge'"),
    ("name with a newline inside", setter("fwcluster_name", value="my\nedge"),
     "cluster 'my\\nedge'", "fwcluster_name", "must start with a letter"),
    # --- segments
    ("segments a list", setter("fwcluster_segments", value=["inside", "outside"]),
     CLUSTER, "fwcluster_segments", "must be a mapping"),
    ("segments missing", deleter("fwcluster_segments"), CLUSTER, "fwcluster_segments", "is required"),
    ("segments empty", setter("fwcluster_segments", value={}), CLUSTER, "fwcluster_segments", "at least one"),
    ("segment key typo", setter("fwcluster_segments", "inside", "vird", value=51),
     CLUSTER, "fwcluster_segments.inside.vird", "unknown key"),
    # "$" matches before a final newline: names are checked with a full match
    ("segment name with a trailing newline", rename_segment("inside", "inside\n"),
     CLUSTER, "fwcluster_segments", "segment name the string 'inside\\n' must start with a letter"),
    ("segment name with a space", rename_segment("outside", "out side"),
     CLUSTER, "fwcluster_segments", "segment name the string 'out side' must start"),
    ("reserved segment name", setter("fwcluster_segments", "firewall", value={"interface": "eth9",
                                     "vip": "10.99.0.1/24", "vrid": 99}),
     CLUSTER, "fwcluster_segments.firewall", "reserved"),
    ("duplicate vrid", setter("fwcluster_segments", "outside", "vrid", value=51),
     CLUSTER, "fwcluster_segments.outside.vrid", "already used by segment inside"),
    ("vrid 0", setter("fwcluster_segments", "inside", "vrid", value=0),
     CLUSTER, "fwcluster_segments.inside.vrid", "must be in 1..255"),
    ("vrid 256", setter("fwcluster_segments", "outside", "vrid", value=256),
     CLUSTER, "fwcluster_segments.outside.vrid", "must be in 1..255"),
    ("vrid string", setter("fwcluster_segments", "outside", "vrid", value="52"),
     CLUSTER, "fwcluster_segments.outside.vrid", "must be an integer"),
    ("vrid missing", deleter("fwcluster_segments", "outside", "vrid"),
     CLUSTER, "fwcluster_segments.outside.vrid", "is required"),
    ("vip without prefix", setter("fwcluster_segments", "inside", "vip", value="10.10.1.254"),
     CLUSTER, "fwcluster_segments.inside.vip", "needs a prefix length"),
    ("vip garbage", setter("fwcluster_segments", "inside", "vip", value="10.10.1.300/24"),
     CLUSTER, "fwcluster_segments.inside.vip", "not an address with prefix"),
    ("vip ipv6 only", setter("fwcluster_segments", "inside", "vip", value="2001:db8::1/64"),
     CLUSTER, "fwcluster_segments.inside.vip", "IPv6-only segments are not supported yet"),
    ("vip two ipv4", setter("fwcluster_segments", "inside", "vip", value=["10.10.1.254/24", "10.10.1.253/24"]),
     CLUSTER, "fwcluster_segments.inside.vip[1]", "10.10.1.253/24 is a second IPv4 address"),
    ("vip three addresses", setter("fwcluster_segments", "inside", "vip",
                                   value=["10.10.1.254/24", "2001:db8:1::fe/64", "2001:db8:2::fe/64"]),
     CLUSTER, "fwcluster_segments.inside.vip", "one per family"),
    ("vip ipv6 link-local", setter("fwcluster_segments", "inside", "vip", value=["10.10.1.254/24", "fe80::fe/64"]),
     CLUSTER, "fwcluster_segments.inside.vip[1]", "fe80::fe is a link-local address"),
    ("vip ipv6 multicast", setter("fwcluster_segments", "inside", "vip", value=["10.10.1.254/24", "ff02::fe/64"]),
     CLUSTER, "fwcluster_segments.inside.vip[1]", "is a multicast address"),
    ("vip ipv6 subnet-router anycast",
     setter("fwcluster_segments", "inside", "vip", value=["10.10.1.254/24", "2001:db8:1::/64"]),
     CLUSTER, "fwcluster_segments.inside.vip", "Subnet-Router anycast address"),
    ("vip network address", setter("fwcluster_segments", "inside", "vip", value="10.10.1.0/24"),
     CLUSTER, "fwcluster_segments.inside.vip", "network or broadcast"),
    ("overlapping segments", setter("fwcluster_segments", "outside", "vip", value="10.10.0.254/16"),
     CLUSTER, "fwcluster_segments.outside.vip", "overlaps segment inside"),
    ("segment without interface", deleter("fwcluster_segments", "inside", "interface"),
     "pb-fw1", "fwcluster_interfaces.inside", "has no interface"),
    ("bad interface name", setter("fwcluster_segments", "inside", "interface", value="eth1 eth2"),
     CLUSTER, "fwcluster_segments.inside.interface", "not a valid interface name"),
    ("interface name with a newline inside", setter("fwcluster_segments", "inside", "interface", value="eth1\neth2"),
     CLUSTER, "fwcluster_segments.inside.interface", "'eth1\\neth2' is not a valid interface name"),
    ("interface name too long", setter("fwcluster_interfaces", host="pb-fw1", value={"inside": "a" * 16}),
     "pb-fw1", "fwcluster_interfaces.inside", "at most 15"),
    ("two segments one interface (group)", setter("fwcluster_segments", "outside", "interface", value="eth1"),
     CLUSTER, "fwcluster_segments.outside.interface", "already carries segment inside"),
    ("two segments one interface (host)", setter("fwcluster_interfaces", host="pb-fw2", value={"outside": "eth1"}),
     "pb-fw2", "fwcluster_interfaces.outside", "already carries segment inside"),
    ("interfaces names unknown segment", setter("fwcluster_interfaces", host="pb-fw1", value={"dmz": "eth4"}),
     "pb-fw1", "fwcluster_interfaces.dmz", "names no segment"),
    ("interfaces a string", setter("fwcluster_interfaces", host="pb-fw1", value="eth1"),
     "pb-fw1", "fwcluster_interfaces", "must be a mapping"),
    # --- node addresses
    ("missing addresses", deleter("fwcluster_addresses", host="pb-fw2"), "pb-fw2", "fwcluster_addresses",
     "is required"),
    ("missing segment address", deleter("fwcluster_addresses", "outside", host="pb-fw2"),
     "pb-fw2", "fwcluster_addresses.outside", "is required"),
    ("addresses a list", setter("fwcluster_addresses", host="pb-fw1", value=["10.10.1.1/24"]),
     "pb-fw1", "fwcluster_addresses", "must be a mapping"),
    ("address for unknown segment", setter("fwcluster_addresses", "dmz", host="pb-fw1", value="10.9.9.1/24"),
     "pb-fw1", "fwcluster_addresses.dmz", "unknown key"),
    ("address outside vip subnet", setter("fwcluster_addresses", "inside", host="pb-fw1", value="10.10.2.1/24"),
     "pb-fw1", "fwcluster_addresses.inside", "outside segment inside's subnet 10.10.1.0/24"),
    ("address equals vip", setter("fwcluster_addresses", "outside", host="pb-fw2", value="203.0.113.254/24"),
     "pb-fw2", "fwcluster_addresses.outside", "is the VIP of segment outside"),
    ("address without prefix", setter("fwcluster_addresses", "inside", host="pb-fw1", value="10.10.1.1"),
     "pb-fw1", "fwcluster_addresses.inside", "needs a prefix length"),
    ("address other prefix", setter("fwcluster_addresses", "inside", host="pb-fw1", value="10.10.1.1/16"),
     "pb-fw1", "fwcluster_addresses.inside", "must have the VIP's prefix /24"),
    ("address an integer", setter("fwcluster_addresses", "inside", host="pb-fw1", value=167772417),
     "pb-fw1", "fwcluster_addresses.inside", "must be an address with prefix, or a list of one per family"),
    ("address ipv6 on an ipv4-only segment", setter("fwcluster_addresses", "outside", host="pb-fw1",
                                                    value=["203.0.113.1/24", "2001:db8:9::1/64"]),
     "pb-fw1", "fwcluster_addresses.outside", "segment outside has VIPs 203.0.113.254/24: this node needs one address"),
    ("duplicate segment address", setter("fwcluster_addresses", "inside", host="pb-fw2", value="10.10.1.1/24"),
     "pb-fw2", "fwcluster_addresses.inside", "already the address of pb-fw1"),
    # --- replication
    ("replication a string", setter("fwcluster_replication", value="eth3"),
     CLUSTER, "fwcluster_replication", "must be a mapping"),
    ("replication enabled string", setter("fwcluster_replication", "enabled", value="yes"),
     CLUSTER, "fwcluster_replication.enabled", "must be true or false"),
    ("replication key typo", setter("fwcluster_replication", "transprot", value="udp"),
     CLUSTER, "fwcluster_replication.transprot", "unknown key"),
    ("replication interface carries a segment", setter("fwcluster_replication", "interface", value="eth2"),
     CLUSTER, "fwcluster_replication.interface", "carries segment outside"),
    ("host replication interface carries a segment",
     setter("fwcluster_interfaces", host="pb-fw2", value={"replication": "eth1"}),
     "pb-fw2", "fwcluster_interfaces.replication", "carries segment inside"),
    ("replication without interface", deleter("fwcluster_replication", "interface"),
     "pb-fw1", "fwcluster_interfaces.replication", "needs an interface"),
    ("replication addresses on different subnets",
     setter("fwcluster_replication_address", host="pb-fw2", value="192.168.101.2/24"),
     "pb-fw2", "fwcluster_replication_address", "not on the replication subnet 192.168.100.0/24 of pb-fw1"),
    ("replication prefixes differ", setter("fwcluster_replication_address", host="pb-fw2", value="192.168.100.2/25"),
     "pb-fw2", "fwcluster_replication_address", "not on the replication subnet"),
    ("duplicate replication address",
     setter("fwcluster_replication_address", host="pb-fw2", value="192.168.100.1/24"),
     "pb-fw2", "fwcluster_replication_address", "already the replication address of pb-fw1"),
    ("missing replication address", deleter("fwcluster_replication_address", host="pb-fw1"),
     "pb-fw1", "fwcluster_replication_address", "is required when replication is enabled"),
    ("replication address no prefix", setter("fwcluster_replication_address", host="pb-fw1", value="192.168.100.1"),
     "pb-fw1", "fwcluster_replication_address", "needs a prefix length"),
    ("replication network overlaps segment",
     both(setter("fwcluster_replication_address", host="pb-fw1", value="10.10.1.101/24"),
          setter("fwcluster_replication_address", host="pb-fw2", value="10.10.1.102/24")),
     "pb-fw1", "fwcluster_replication_address", "overlaps segment inside"),
    ("udp with 3 nodes", clone_nodes(3), CLUSTER, "fwcluster_replication.transport",
     "udp is point to point and takes exactly 2 nodes; this cluster has 3"),
    ("tcp with 3 nodes", both(clone_nodes(3), setter("fwcluster_replication", "transport", value="tcp")),
     CLUSTER, "fwcluster_replication.transport", "tcp is point to point"),
    ("unknown mode", setter("fwcluster_replication", "mode", value="fast"),
     CLUSTER, "fwcluster_replication.mode", "must be one of ftfw, notrack, alarm"),
    ("unknown transport", setter("fwcluster_replication", "transport", value="sctp"),
     CLUSTER, "fwcluster_replication.transport", "must be one of udp, multicast, tcp"),
    ("port 0", setter("fwcluster_replication", "port", value=0),
     CLUSTER, "fwcluster_replication.port", "must be in 1..65535"),
    ("port 70000", setter("fwcluster_replication", "port", value=70000),
     CLUSTER, "fwcluster_replication.port", "must be in 1..65535"),
    ("port string", setter("fwcluster_replication", "port", value="3780"),
     CLUSTER, "fwcluster_replication.port", "must be an integer"),
    ("multicast group not multicast",
     both(setter("fwcluster_replication", "transport", value="multicast"),
          setter("fwcluster_replication", "multicast_group", value="10.0.0.1")),
     CLUSTER, "fwcluster_replication.multicast_group", "not a multicast address"),
    ("multicast group is vrrp's",
     both(setter("fwcluster_replication", "transport", value="multicast"),
          setter("fwcluster_replication", "multicast_group", value="224.0.0.18")),
     CLUSTER, "fwcluster_replication.multicast_group", "VRRP's own group"),
    ("multicast group with udp", setter("fwcluster_replication", "multicast_group", value="225.0.0.50"),
     CLUSTER, "fwcluster_replication.multicast_group", "only applies to transport multicast"),
    # --- vrrp
    ("vrrp a list", setter("fwcluster_vrrp", value=[1]), CLUSTER, "fwcluster_vrrp", "must be a mapping"),
    ("advert_int zero", setter("fwcluster_vrrp", "advert_int", value=0),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be in 0.01..40.95"),
    ("advert_int string", setter("fwcluster_vrrp", "advert_int", value="1"),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be a number"),
    ("advert_int bool", setter("fwcluster_vrrp", "advert_int", value=True),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be a number"),
    # A NaN fails every comparison: it is refused as not finite, not as out of range
    ("advert_int NaN", setter("fwcluster_vrrp", "advert_int", value=float("nan")),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be a finite number in 0.01..40.95, got nan"),
    ("advert_int infinite", setter("fwcluster_vrrp", "advert_int", value=float("inf")),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be a finite number in 0.01..40.95, got inf"),
    ("advert_int minus infinite", setter("fwcluster_vrrp", "advert_int", value=float("-inf")),
     CLUSTER, "fwcluster_vrrp.advert_int", "must be a finite number in 0.01..40.95, got -inf"),
    ("unicast string", setter("fwcluster_vrrp", "unicast", value="yes"),
     CLUSTER, "fwcluster_vrrp.unicast", "must be true or false"),
    ("vrrp key typo", setter("fwcluster_vrrp", "preemt", value=True), CLUSTER, "fwcluster_vrrp.preemt",
     "unknown key"),
    # only hash and sandwich read a seed; their own tests check its value
    ("hash seed on primary_backup", setter("fwcluster_hash_seed", value=1),
     CLUSTER, "fwcluster_hash_seed", "only applies to fwcluster_architecture sandwich and hash"),
    # --- policy
    ("policy a string", setter("fwcluster_policy", value="allow all"), CLUSTER, "fwcluster_policy",
     "must be a list"),
    ("policy entry a string", setter("fwcluster_policy", value=["allow all"]), CLUSTER, "fwcluster_policy[0]",
     "must be a mapping"),
    ("policy ports with icmp", policy(1, ports=[8]), CLUSTER, "fwcluster_policy[1].ports",
     "only to proto tcp or udp, not icmp"),
    ("policy ports with all", policy(1, proto="all", ports=[8]), CLUSTER, "fwcluster_policy[1].ports",
     "only to proto tcp or udp"),
    ("policy ports a string", policy(0, ports="8080"), CLUSTER, "fwcluster_policy[0].ports", "must be a list"),
    ("policy port out of range", policy(0, ports=[80, 65536]), CLUSTER, "fwcluster_policy[0].ports[1]",
     "must be in 1..65535"),
    ("policy port bool", policy(0, ports=[True]), CLUSTER, "fwcluster_policy[0].ports[0]", "must be a port"),
    ("policy port range reversed", policy(0, ports=["90:80"]), CLUSTER, "fwcluster_policy[0].ports[0]",
     "low < high"),
    ("policy too many ports", policy(0, ports=list(range(1, 17))), CLUSTER, "fwcluster_policy[0].ports",
     "at most 15 ports"),
    ("policy no ports", policy(0, ports=[]), CLUSTER, "fwcluster_policy[0].ports", "at least one port"),
    ("policy unknown segment", policy(0, to="dmz"), CLUSTER, "fwcluster_policy[0].to",
     "must be one of inside, outside, any, firewall"),
    ("policy from firewall", policy(0, **{"from": "firewall"}), CLUSTER, "fwcluster_policy[0].from",
     "always allowed"),
    ("policy missing from", deleter("fwcluster_policy", 0, "from"), CLUSTER, "fwcluster_policy[0].from",
     "is required"),
    ("policy unknown proto", policy(0, proto="sctp"), CLUSTER, "fwcluster_policy[0].proto",
     "must be one of tcp, udp, icmp, all"),
    ("policy unknown action", policy(0, action="allow"), CLUSTER, "fwcluster_policy[0].action",
     "must be one of accept, drop, reject"),
    ("policy missing action", deleter("fwcluster_policy", 1, "action"), CLUSTER, "fwcluster_policy[1].action",
     "is required"),
    ("policy source host bits", policy(0, source="10.10.1.5/24"), CLUSTER, "fwcluster_policy[0].source",
     "host bits set; did you mean 10.10.1.0/24"),
    ("policy destination garbage", policy(0, destination="the internet"), CLUSTER,
     "fwcluster_policy[0].destination", "not a network or an address"),
    ("policy key typo", policy(0, port=[80]), CLUSTER, "fwcluster_policy[0].port", "unknown key"),
    # --- nat
    ("nat a mapping", setter("fwcluster_nat", value={"type": "masquerade"}), CLUSTER, "fwcluster_nat",
     "must be a list"),
    ("nat unknown type", nat({"type": "redirect", "out": "outside"}), CLUSTER, "fwcluster_nat[0].type",
     "must be one of masquerade, snat, dnat"),
    ("nat missing type", nat({"out": "outside"}), CLUSTER, "fwcluster_nat[0].type", "is required"),
    ("nat unknown segment", nat({"type": "masquerade", "out": "dmz"}), CLUSTER, "fwcluster_nat[0].out",
     "must be one of inside, outside"),
    ("masquerade with in", nat({"type": "masquerade", "in": "outside"}), CLUSTER, "fwcluster_nat[0].in",
     "unknown key"),
    ("snat without to", nat({"type": "snat", "out": "outside"}), CLUSTER, "fwcluster_nat[0].to", "is required"),
    ("dnat without to", nat({"type": "dnat", "in": "outside", "port": 443}), CLUSTER, "fwcluster_nat[0].to",
     "is required"),
    ("dnat without port", nat({"type": "dnat", "in": "outside", "to": "10.10.1.10"}), CLUSTER,
     "fwcluster_nat[0].port", "is required"),
    ("dnat bad target port", nat({"type": "dnat", "in": "outside", "port": 443, "to": "10.10.1.10:http"}),
     CLUSTER, "fwcluster_nat[0].to", "must be a number"),
    ("dnat target garbage", nat({"type": "dnat", "in": "outside", "port": 443, "to": "web01"}),
     CLUSTER, "fwcluster_nat[0].to", "not an IPv4 address"),
    ("dnat proto icmp", nat({"type": "dnat", "in": "outside", "port": 1, "to": "10.10.1.10", "proto": "icmp"}),
     CLUSTER, "fwcluster_nat[0].proto", "must be one of tcp, udp"),
    # --- tracking
    ("tracking a list", setter("fwcluster_tracking", value=["conntrackd"]), CLUSTER, "fwcluster_tracking",
     "must be a mapping"),
    ("tracking key typo", setter("fwcluster_tracking", value={"fails": 3}), CLUSTER, "fwcluster_tracking.fails",
     "unknown key"),
    ("tracking conntrackd without replication",
     lambda cluster, nodes: cluster.update(fwcluster_replication={"enabled": False},
                                           fwcluster_tracking={"conntrackd": True}),
     CLUSTER, "fwcluster_tracking.conntrackd", "has no fwcluster_replication"),
    ("tracking conntrackd a string", setter("fwcluster_tracking", value={"conntrackd": "yes please"}), CLUSTER,
     "fwcluster_tracking.conntrackd", "must be true or false"),
    ("tracking interval zero", setter("fwcluster_tracking", value={"interval": 0}), CLUSTER,
     "fwcluster_tracking.interval", "1..60"),
    ("tracking interval fractional", setter("fwcluster_tracking", value={"interval": 0.5}), CLUSTER,
     "fwcluster_tracking.interval", "must be an integer"),
    ("tracking fall too many", setter("fwcluster_tracking", value={"fall": 21}), CLUSTER,
     "fwcluster_tracking.fall", "1..20"),
    ("tracking rise a string", setter("fwcluster_tracking", value={"rise": "3"}), CLUSTER,
     "fwcluster_tracking.rise", "must be an integer"),
    ("tracking hold_down negative", setter("fwcluster_tracking", value={"hold_down": -1}), CLUSTER,
     "fwcluster_tracking.hold_down", "0..3600"),
    ("upstream a mapping", setter("fwcluster_tracking", value={"upstream": {"host": "203.0.113.10"}}), CLUSTER,
     "fwcluster_tracking.upstream", "must be a list"),
    ("upstream key typo",
     setter("fwcluster_tracking", value={"upstream": [{"host": "203.0.113.10", "segmnet": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].segmnet", "unknown key"),
    ("upstream host a name", setter("fwcluster_tracking", value={"upstream": [{"host": "gw.example",
                                                                               "segment": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].host", "not an IPv4 address"),
    ("upstream host missing", setter("fwcluster_tracking", value={"upstream": [{"segment": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].host", "must be a non-empty string"),
    ("upstream host a vip", setter("fwcluster_tracking", value={"upstream": [{"host": "203.0.113.254",
                                                                              "segment": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].host", "not a host outside the cluster"),
    ("upstream host a node", setter("fwcluster_tracking", value={"upstream": [{"host": "10.10.1.2",
                                                                               "segment": "inside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].host", "not a host outside the cluster"),
    ("upstream host multicast", setter("fwcluster_tracking", value={"upstream": [{"host": "224.0.0.18",
                                                                                  "segment": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].host", "not a host outside the cluster"),
    ("upstream unknown segment", setter("fwcluster_tracking", value={"upstream": [{"host": "203.0.113.10",
                                                                                   "segment": "replication"}]}),
     CLUSTER, "fwcluster_tracking.upstream[0].segment", "must be one of inside, outside"),
    ("upstream twice", setter("fwcluster_tracking", value={"upstream": [{"host": "203.0.113.10", "segment": "outside"},
                                                                        {"host": "203.0.113.10", "segment": "outside"}]}),
     CLUSTER, "fwcluster_tracking.upstream[1]", "listed twice"),
    ("upstream without replication",
     lambda cluster, nodes: cluster.update(fwcluster_replication={"enabled": False}),
     CLUSTER, "fwcluster_tracking.upstream", "peers tell each other over the replication link"),
    # --- management
    ("management sources a string", setter("fwcluster_management", value={"sources": "10.0.0.0/8"}),
     CLUSTER, "fwcluster_management.sources", "must be a list"),
    ("management port string", setter("fwcluster_management", value={"tcp_ports": "22"}),
     CLUSTER, "fwcluster_management.tcp_ports", "must be a list"),
]


@pytest.mark.parametrize("mutation, host, variable, fragment", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_refusal(example, mutation, host, variable, fragment):
    cluster, nodes = example
    mutation(cluster, nodes)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    error = caught.value
    assert (error.host, error.variable) == (host, variable), str(error)
    assert fragment in error.rule, str(error)
    assert str(error) == "%s: %s: %s" % (host, variable, error.rule)


@pytest.mark.parametrize("cluster, nodes", [
    (None, {}), ("edge", {}), ([], {}), ({"fwcluster_name": "edge", "fwcluster_architecture": "primary_backup"}, None),
    ({"fwcluster_name": "edge", "fwcluster_architecture": "primary_backup"}, ["pb-fw1", "pb-fw2"]),
    ({"fwcluster_name": 7, "fwcluster_architecture": "primary_backup"}, {}),
])
def test_garbage_top_level(cluster, nodes):
    with pytest.raises(PlanError):
        build_plan(cluster, nodes)
