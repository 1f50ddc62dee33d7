"""The inputs of the golden snapshot: inventories to render, and inventories the model must refuse.

The rendered inventories are the example inventories of inventories/ and variants of
them that exercise the options a user changes (transports, modes, unicast VRRP,
preemption, NAT types, management sources, node counts, host interface names). They are
written out here, not borrowed from other tests, so that editing a test elsewhere cannot
move the snapshot's inputs.

The refused inventories are the refusal tables of the model's tests (imported, so that a
case added there is snapshotted too) plus a few refusals those tables do not hold.
"""

from __future__ import annotations

import copy

from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import cluster_inputs
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan, build_plans
from ansible_collections.fwcluster.netfilter.tests.unit.examples import (
    MULTIPATH_PREFIXES, dual_stack, ipv4_only, load_inventory, set_in_cluster)
from ansible_collections.fwcluster.netfilter.tests.unit.plugins.module_utils.plan import (
    test_hash,
    test_inventory,
    test_multipath,
    test_sandwich,
)

EXAMPLES = ("primary_backup", "multipath", "hash", "sandwich")


def _example(name):
    """(cluster, nodes, balancers) of inventories/NAME, deep-copied: free to change, IPv4 only.

    The variants and refusals below were written for IPv4 examples; the
    dual-stack primary_backup example is snapshot as written, and IPv6 has
    variants of its own (pb-dual-stack).
    """
    return ipv4_only(*copy.deepcopy(load_inventory(name)))


def _pb_dual_stack(cluster, nodes, _balancers):
    dual_stack(cluster, nodes)


def _mp_dual_stack(cluster, nodes, _balancers):
    dual_stack(cluster, nodes, MULTIPATH_PREFIXES)


def _unchanged(cluster, nodes, balancers):
    """The example as every variant starts from it: IPv4 only, on iptables."""


def _as_written(name):
    """The example as written (dual stack), in place of the IPv4 copy a variant starts from."""
    def change(cluster, nodes, balancers):
        for given, written in zip((cluster, nodes, balancers), copy.deepcopy(load_inventory(name))):
            given.clear()
            given.update(written)
    return change


def _grow(nodes, count, addresses, replication=None):
    """Add nodes fw<id> up to count; addresses(node_id) gives each one's fwcluster_addresses."""
    for node_id in range(len(nodes), count):
        host_vars = {"fwcluster_node_id": node_id, "fwcluster_addresses": addresses(node_id)}
        if replication is not None:
            host_vars["fwcluster_replication_address"] = replication % (node_id + 1)
        nodes["fw%d" % (node_id + 1)] = host_vars


# --------------------------------------------------------------------------
# Variants: name -> function(cluster, nodes, balancers) that changes the example in place
# --------------------------------------------------------------------------

def _pb_multicast_vrrp_subsecond_preempt(cluster, nodes, balancers):
    # the example is unicast; this one keeps VRRP's multicast adverts covered
    cluster["fwcluster_vrrp"] = {"advert_int": 0.2, "unicast": False, "preempt": True}


def _pb_one_segment(cluster, nodes, balancers):
    del cluster["fwcluster_segments"]["outside"]
    cluster["fwcluster_tracking"] = {"upstream": [{"host": "10.10.1.10", "segment": "inside"}], "hold_down": 0}
    cluster["fwcluster_nat"] = []
    cluster["fwcluster_policy"] = []
    for host_vars in nodes.values():
        del host_vars["fwcluster_addresses"]["outside"]


def _replication(transport, mode):
    def change(cluster, nodes, balancers):
        cluster["fwcluster_replication"].update(transport=transport, mode=mode)
    return change


def _pb_no_replication(cluster, nodes, balancers):
    cluster["fwcluster_replication"] = {"enabled": False}
    del cluster["fwcluster_tracking"]  # its upstream hosts need the replication link


def _pb_rich_policy_and_nat(cluster, nodes, balancers):
    """Every policy shape (ranges, any, firewall, reject, unnamed, unsafe comment) and every NAT type."""
    cluster["fwcluster_policy"] = [
        {"name": "web", "from": "inside", "to": "outside", "proto": "tcp", "ports": [80, 443], "action": "accept"},
        {"name": "dns", "from": "any", "to": "outside", "proto": "udp", "ports": [53], "action": "accept",
         "destination": "203.0.113.53"},
        {"name": "high ports", "from": "inside", "to": "any", "proto": "tcp", "ports": ["8000:8100", 9000],
         "source": "10.10.1.0/25", "action": "accept"},
        {"name": "snmp to fw", "from": "inside", "to": "firewall", "proto": "udp", "ports": [161],
         "action": "accept"},
        {"name": "no telnet; \"quoted\" $(x)", "from": "outside", "to": "inside", "proto": "tcp", "ports": [23],
         "action": "reject"},
        {"from": "outside", "to": "any", "action": "drop"},
        {"name": "catch-all", "from": "any", "to": "any", "proto": "all", "action": "reject"},
    ]
    cluster["fwcluster_nat"] = [
        {"type": "masquerade", "out": "outside", "source": "10.10.1.0/24"},
        {"type": "snat", "out": "inside", "to": "10.10.1.254", "name": "to inside"},
        {"type": "dnat", "in": "outside", "port": 443, "to": "10.10.1.10:8443", "name": "publish web"},
        {"type": "dnat", "in": "outside", "proto": "udp", "port": 53, "to": "10.10.1.53",
         "source": "198.51.100.0/24"},
    ]


def _pb_management_sources(cluster, nodes, balancers):
    cluster["fwcluster_management"] = {"sources": ["10.10.1.0/24", "192.0.2.7"], "tcp_ports": [22, "9100:9101"]}


def _pb_management_off(cluster, nodes, balancers):
    cluster["fwcluster_management"] = {"tcp_ports": []}


def _pb_host_interfaces(cluster, nodes, balancers):
    nodes["pb-fw2"]["fwcluster_interfaces"] = {"inside": "ens4", "replication": "ens6"}


def _pb_four_nodes_multicast(cluster, nodes, balancers):
    cluster["fwcluster_replication"].update(transport="multicast", mode="notrack", multicast_group="225.0.0.60")
    _grow(nodes, 4, lambda node_id: {"inside": "10.10.1.%d/24" % (node_id + 1),
                                     "outside": "203.0.113.%d/24" % (node_id + 1)},
          replication="192.168.100.%d/24")


def _mp_multicast_vrrp(cluster, nodes, balancers):
    # the example is unicast; this one keeps VRRP's multicast adverts covered
    cluster["fwcluster_vrrp"] = {"advert_int": 0.2, "unicast": False}


def _mp_drop_reject_firewall(cluster, nodes, balancers):
    cluster["fwcluster_policy"] = cluster["fwcluster_policy"] + [
        {"name": "no smtp", "from": "inside", "to": "outside", "proto": "tcp", "ports": ["25:26", 465],
         "source": "10.30.1.0/25", "destination": "10.30.2.10", "action": "reject"},
        {"name": "nothing else", "from": "any", "to": "any", "action": "drop"},
        {"name": "ssh to the nodes", "from": "inside", "to": "firewall", "proto": "tcp", "ports": [22],
         "action": "accept"},
    ]


def _hash_four_nodes(cluster, nodes, balancers):
    cluster["fwcluster_tracking"] = {"upstream": [{"host": "198.51.100.10", "segment": "outside"},
                                                  {"host": "10.20.1.10", "segment": "inside"}],
                                     "interval": 2, "fall": 2}
    _grow(nodes, 4, lambda node_id: {"inside": "10.20.1.%d/24" % (node_id + 1),
                                     "outside": "198.51.100.%d/24" % (node_id + 1)},
          replication="192.168.101.%d/24")


def _hash_unicast_no_replication_derived_seed(cluster, nodes, balancers):
    cluster["fwcluster_vrrp"] = {"advert_int": 0.5, "unicast": True, "preempt": True}
    cluster["fwcluster_replication"] = {"enabled": False}
    del cluster["fwcluster_hash_seed"]


def _hash_macs_delay_dnat(cluster, nodes, balancers):
    cluster["fwcluster_segments"]["outside"]["multicast_mac"] = "01:00:5E:7f:00:01"
    cluster["fwcluster_vrrp"] = {"advert_int": 2, "preempt_delay": 2.5}
    cluster["fwcluster_nat"] = [{"type": "dnat", "in": "outside", "port": 80, "to": "10.20.1.10:8080",
                                 "name": "publish web"}]
    cluster["fwcluster_policy"].append({"name": "dns anywhere", "from": "any", "to": "any", "proto": "udp",
                                        "ports": [53, "5353:5354"], "action": "accept"})


def _sw_three_firewalls(cluster, nodes, balancers):
    cluster["fwcluster_replication"]["transport"] = "multicast"
    cluster["fwcluster_balancers"]["buckets"] = 7
    _grow(nodes, 3, lambda node_id: {"inside": "10.40.2.%d/24" % (node_id + 1),
                                     "outside": "10.40.3.%d/24" % (node_id + 1)},
          replication="192.168.102.%d/24")


def _sw_routes_no_replication(cluster, nodes, balancers):
    cluster["fwcluster_replication"] = {"enabled": False}
    cluster["fwcluster_balancers"]["inside"]["routes"] = ["10.50.0.0/16", "10.60.0.0/16"]
    cluster["fwcluster_balancers"]["inside"]["gateway"] = "10.40.1.1"
    cluster["fwcluster_balancers"]["health"] = {"interval": 1, "timeout": 0.5}
    cluster["fwcluster_management"] = {"sources": ["192.0.2.0/24"]}
    cluster["fwcluster_vrrp"] = {"advert_int": 0.5, "preempt": True}
    balancers["sw-lbo2"]["fwcluster_interfaces"] = {"front": "ens9"}


def _nftables(change=None):
    """The example (changed by change first, when given) on the nftables backend."""
    def variant(cluster, nodes, balancers):
        if change is not None:
            change(cluster, nodes, balancers)
        cluster["fwcluster_backend"] = "nftables"
    return variant


VARIANTS = (
    ("primary_backup", "pb-multicast-vrrp-subsecond-preempt", _pb_multicast_vrrp_subsecond_preempt),
    ("primary_backup", "pb-one-segment", _pb_one_segment),
    ("primary_backup", "pb-replication-multicast-ftfw", _replication("multicast", "ftfw")),
    ("primary_backup", "pb-replication-tcp-notrack", _replication("tcp", "notrack")),
    ("primary_backup", "pb-replication-udp-alarm", _replication("udp", "alarm")),
    ("primary_backup", "pb-no-replication", _pb_no_replication),
    ("primary_backup", "pb-rich-policy-and-nat", _pb_rich_policy_and_nat),
    ("primary_backup", "pb-management-sources", _pb_management_sources),
    ("primary_backup", "pb-management-off", _pb_management_off),
    ("primary_backup", "pb-host-interfaces", _pb_host_interfaces),
    ("primary_backup", "pb-four-nodes-multicast", _pb_four_nodes_multicast),
    ("multipath", "mp-multicast-vrrp", _mp_multicast_vrrp),
    ("multipath", "mp-drop-reject-firewall", _mp_drop_reject_firewall),
    ("hash", "hash-four-nodes", _hash_four_nodes),
    ("hash", "hash-unicast-no-replication-derived-seed", _hash_unicast_no_replication_derived_seed),
    ("hash", "hash-macs-delay-dnat", _hash_macs_delay_dnat),
    ("sandwich", "sw-three-firewalls", _sw_three_firewalls),
    ("sandwich", "sw-routes-no-replication", _sw_routes_no_replication),
    # every architecture's rules on the nftables backend; the richest policy and NAT there too
    ("primary_backup", "pb-nftables-rich-policy-and-nat", _nftables(_pb_rich_policy_and_nat)),
    ("multipath", "mp-nftables-drop-reject-firewall", _nftables(_mp_drop_reject_firewall)),
    ("hash", "hash-nftables-four-nodes", _nftables(_hash_four_nodes)),
    ("sandwich", "sw-nftables-three-firewalls", _nftables(_sw_three_firewalls)),
    # the dual-stack examples on iptables (as written, they run nftables)
    ("primary_backup", "pb-dual-stack", _pb_dual_stack),
    ("multipath", "mp-dual-stack", _mp_dual_stack),
    # ... and the dual-stack sandwich (as written, it runs iptables) on nftables
    ("sandwich", "sw-nftables-dual-stack", _nftables(_as_written("sandwich"))),
    # ... and the hash example (dual stack on nftables as written) IPv4 only on iptables:
    # the test command's cross product deploys it (scripts/test.sh --matrix, hash@iptables)
    ("hash", "hash-ipv4-iptables", _unchanged),
)


def inventories():
    """[(case name, cluster, nodes, balancers)]: every example as written, then every variant.

    A variant runs the iptables backend unless its name says nftables (the
    primary_backup and multipath examples run nftables): the snapshot holds both
    backends' files of every architecture.
    """
    cases = [(name, ) + copy.deepcopy(load_inventory(name)) for name in EXAMPLES]
    for example, name, change in VARIANTS:
        cluster, nodes, balancers = _example(example)
        cluster["fwcluster_backend"] = "iptables"
        change(cluster, nodes, balancers)
        cases.append((name, cluster, nodes, balancers))
    return cases


# --------------------------------------------------------------------------
# Refusals: (case id, function that must raise PlanError)
# --------------------------------------------------------------------------

def _refusal(example, mutate, arguments=2):
    """Build the plan of the changed example; mutate takes (cluster, nodes) or, arguments=3, also balancers."""
    def attempt():
        cluster, nodes, balancers = _example(example)
        if arguments == 3:
            mutate(cluster, nodes, balancers)
            build_plan(cluster, nodes, balancers)
        else:
            mutate(cluster, nodes)
            build_plan(cluster, nodes)
    return attempt


def _together(change, examples=("primary_backup", "multipath")):
    """validate_node_ids on several example inventories at once, after change(clusters)."""
    def attempt():
        clusters = {}
        for example in examples:
            cluster, nodes, balancers = _example(example)
            clusters[cluster["fwcluster_name"]] = {"cluster": cluster, "nodes": nodes, "balancers": balancers}
        change(clusters)
        build_plans(clusters)
    return attempt


def _filter_inputs(change):
    """The cluster_inputs filter on inventories/primary_backup's hosts, after change(hostvars), then validate_node_ids."""
    def attempt():
        cluster, nodes, _balancers = _example("primary_backup")
        hostvars = dict((host, dict(cluster, **host_vars)) for host, host_vars in nodes.items())
        change(hostvars)
        build_plans(cluster_inputs(hostvars, sorted(hostvars), sorted(hostvars)))
    return attempt


def _nan_advert_int(hostvars):
    for host_vars in hostvars.values():
        host_vars["fwcluster_vrrp"] = {"advert_int": float("nan")}


def _segment_onto(cluster_name, segment, vip, vrid):
    """Move one cluster's segment to the network of vip (its nodes get .201, .202, ... there)."""
    def change(clusters):
        entry = clusters[cluster_name]
        entry["cluster"]["fwcluster_segments"][segment].update(vip=vip, vrid=vrid)
        network, prefix = vip.rsplit(".", 1)[0], vip.split("/")[1]
        for index, host in enumerate(sorted(entry["nodes"])):
            entry["nodes"][host]["fwcluster_addresses"][segment] = "%s.%d/%s" % (network, 201 + index, prefix)
    return change


def _differing_advert_int(hostvars):
    hostvars["pb-fw2"]["fwcluster_vrrp"] = {"advert_int": 2}


def _no_cluster_name(hostvars):
    del hostvars["pb-fw1"]["fwcluster_name"]


def _hash_derived_link_local_mac(cluster, nodes):
    # 10.0.0.18/24 maps to 01:00:5e:00:00:12, the MAC of VRRP's own group
    cluster["fwcluster_segments"]["inside"]["vip"] = "10.0.0.18/24"
    for index, host in enumerate(sorted(nodes)):
        nodes[host]["fwcluster_addresses"]["inside"] = "10.0.0.%d/24" % (index + 1)


def _balancers_on_primary_backup(cluster, nodes, balancers):
    balancers["lb1"] = {"fwcluster_balancer_side": "inside"}


def _extra_refusals():
    """Refusals the model's refusal tables do not hold."""
    return [
        ("filter: cluster variable differs between members", _filter_inputs(_differing_advert_int)),
        ("filter: play host without fwcluster_name", _filter_inputs(_no_cluster_name)),
        ("filter: NaN on every member", _filter_inputs(_nan_advert_int)),
        ("validate_node_ids: cluster entry not a mapping",
         _together(lambda clusters: clusters.__setitem__("duo", ["mp-fw1"]))),
        ("validate_node_ids: second cluster broken",
         _together(lambda clusters: clusters["duo"]["nodes"]["mp-fw2"].__setitem__("fwcluster_node_id", 0))),
        ("validate_node_ids: same VRID on a shared network",
         _together(_segment_onto("duo", "outside", "203.0.113.253/24", 52))),
        ("validate_node_ids: same VIP on a shared network",
         _together(_segment_onto("duo", "outside", "203.0.113.254/24", 63))),
        ("validate_node_ids: a derived hash VRID on a shared network",
         _together(_segment_onto("edge", "inside", "10.20.1.250/24", 53), ("primary_backup", "hash"))),
        ("validate_node_ids: a sandwich front VRID on a shared network",
         _together(_segment_onto("edge", "outside", "10.40.4.250/24", 72), ("primary_backup", "sandwich"))),
        ("hash: derived MAC in the link-local range", _refusal("hash", _hash_derived_link_local_mac)),
        ("hash: preempt_delay out of range", _refusal("hash", set_in_cluster(("fwcluster_vrrp", "preempt_delay"), 1001))),
        ("primary_backup: balancers on another architecture",
         _refusal("primary_backup", _balancers_on_primary_backup, arguments=3)),
        ("primary_backup: multicast_mac on another architecture",
         _refusal("primary_backup", set_in_cluster(("fwcluster_segments", "inside", "multicast_mac"), "01:00:5e:01:02:03"))),
        ("primary_backup: garbage group variables", lambda: build_plan("edge", {})),
        ("primary_backup: garbage members", lambda: build_plan(
            {"fwcluster_name": "edge", "fwcluster_architecture": "primary_backup"}, ["pb-fw1", "pb-fw2"])),
    ]


def refusals():
    """[(case id, attempt)]: every attempt raises PlanError; ids are unique."""
    cases = []
    for case_id, mutation, _host, _variable, _fragment in test_inventory.CASES:
        cases.append(("plan: " + case_id, _refusal("primary_backup", mutation)))
    for case_id, mutation, _variable, _fragments in test_multipath.REFUSALS:
        cases.append(("multipath: " + case_id, _refusal("multipath", mutation)))
    for case_id, path, value, _host, _variable, _fragment in test_hash.REFUSALS:
        cases.append(("hash: " + case_id, _refusal("hash", set_in_cluster(path, value))))
    for case_id, mutation, _host, _variable, _fragment in test_sandwich.REFUSALS:
        cases.append(("sandwich: " + case_id, _refusal("sandwich", mutation, arguments=3)))
    cases.extend(_extra_refusals())
    return cases
