"""The firewall sandwich: its plan (firewalls, balancers, hash, health) and every refusal of its inventory."""

from __future__ import annotations

import copy
import ipaddress
import re

import pytest
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.sandwich import (
    BUCKET_MARK_BASE,
    PROBE_MARK_BASE,
    SNAT_PORTS,
    snat_port_range,
)

CLUSTER = "cluster stack"


@pytest.fixture
def plan(sandwich):
    return build_plan(*sandwich)


def rules(node_plan, table):
    return [entry for entry in node_plan["ruleset"] if entry["table"] == table][0]["rules"]


def test_every_host_has_its_part(plan):
    assert sorted(plan["nodes"]) == ["sw-fw1", "sw-fw2"]
    assert sorted(plan["balancers"]) == ["sw-lbi1", "sw-lbi2", "sw-lbo1", "sw-lbo2"]
    for node in plan["nodes"].values():
        assert node["role"] == "active" and node["keepalived"] is None and node["balancer"] is None
    assert plan["balancing"]["sides"]["inside"]["balancers"] == ["sw-lbi1", "sw-lbi2"]


def test_the_hash_is_on_the_outside_party_with_one_seed(plan):
    """Inside balancers hash the destination, outside ones the source: the same HMARK input both ways."""
    hmark = {}
    for name, balancer in plan["balancers"].items():
        (rule,) = [r for r in rules(balancer, "mangle") if "HMARK" in r]
        hmark[name] = rule
        assert "-i %s " % balancer["interfaces"]["front"] in rule
        assert "--hmark-mod 16 --hmark-offset %d --hmark-rnd 0x5eed1234" % BUCKET_MARK_BASE in rule
    assert all("--hmark-tuple dst " in hmark[name] for name in ("sw-lbi1", "sw-lbi2"))
    assert all("--hmark-tuple src " in hmark[name] for name in ("sw-lbo1", "sw-lbo2"))
    # Everything but the tuple is identical on the four balancers.
    assert len({re.sub(r"-i \S+ |--hmark-tuple \S+ ", "", rule) for rule in hmark.values()}) == 1


def test_buckets_tables_and_probe_marks(plan):
    health = plan["balancers"]["sw-lbi1"]["balancer"]
    tables = [firewall["table"] for firewall in health["firewalls"]]
    assert tables == [101, 102]
    assert [firewall["probe_mark"] for firewall in health["firewalls"]] == [PROBE_MARK_BASE, PROBE_MARK_BASE + 1]
    assert [bucket["mark"] for bucket in health["buckets"]] == list(range(BUCKET_MARK_BASE, BUCKET_MARK_BASE + 16))
    assert [bucket["home"] for bucket in health["buckets"]] == [0, 1] * 8
    assert health["targets"] == ["10.40.3.21", "10.40.3.22"]  # the far side's balancers
    assert plan["balancers"]["sw-lbo2"]["balancer"]["targets"] == ["10.40.2.11", "10.40.2.12"]
    assert health["bound"] == 1.9 == plan["balancing"]["health"]["bound"]  # 3 x 0.5 + 0.4
    # One routing table per firewall, to its address on the balancer's side; on the outside pair,
    # the side's routes through its upstream router (the example's gateway) in the main table.
    assert plan["balancers"]["sw-lbo1"]["routes"] == [
        {"to": "default", "via": "10.40.3.1", "interface": "eth2", "table": 101},
        {"to": "default", "via": "10.40.3.2", "interface": "eth2", "table": 102},
        {"to": "default", "via": "10.40.4.10", "interface": "eth1", "table": None},
    ]
    assert [route for route in plan["balancers"]["sw-lbi1"]["routes"] if route["table"] is None] == []


def test_balancer_pairs_share_their_side_vips(plan):
    lbi1, lbi2 = plan["balancers"]["sw-lbi1"], plan["balancers"]["sw-lbi2"]
    for balancer in (lbi1, lbi2):
        instances = balancer["keepalived"]["instances"]
        assert [instance["vips"] for instance in instances] == [["10.40.2.254/24"], ["10.40.1.254/24"]]
        assert [instance["vrid"] for instance in instances] == [61, 71]
        assert balancer["keepalived"]["sync_group"]["instances"] == [instance["name"] for instance in instances]
    assert lbi1["keepalived"]["instances"][0]["priority"] > lbi2["keepalived"]["instances"][0]["priority"]
    # Transit is never tracked on a balancer; rp_filter is off (the firewalls filter).
    assert rules(lbi1, "raw") == ["-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack"]
    assert lbi1["sysctls"]["net.ipv4.conf.all.rp_filter"] == "0"
    assert lbi1["sysctls"]["net.ipv4.conf.eth1.rp_filter"] == "0"


def test_firewalls_route_each_side_to_its_balancers(plan):
    assert plan["nodes"]["sw-fw1"]["routes"] == [
        {"to": "10.40.1.0/24", "via": "10.40.2.254", "interface": "eth1", "table": None},
        {"to": "10.40.4.0/24", "via": "10.40.3.254", "interface": "eth2", "table": None},
        {"to": "default", "via": "10.40.3.254", "interface": "eth2", "table": None},
    ]
    assert plan["nodes"]["sw-fw1"]["sysctls"]["net.netfilter.nf_conntrack_tcp_loose"] == "0"
    assert plan["nodes"]["sw-fw1"]["sysctls"]["net.netfilter.nf_conntrack_acct"] == "1"


def test_firewall_ruleset_forwards_and_snats_the_probes(plan):
    fw2 = plan["nodes"]["sw-fw2"]
    forward = rules(fw2, "filter")
    assert not [rule for rule in forward if "-p 112" in rule]  # no VRRP on the firewalls
    probes = [rule for rule in forward if "balancer probe" in rule]
    assert probes == [
        '-A FORWARD -i eth1 -o eth2 -s 10.40.2.0/24 -d 10.40.3.0/24 -p icmp --icmp-type echo-request -m conntrack '
        '--ctstate NEW -m comment --comment "fwcluster balancer probe" -j ACCEPT',
        '-A FORWARD -i eth2 -o eth1 -s 10.40.3.0/24 -d 10.40.2.0/24 -p icmp --icmp-type echo-request -m conntrack '
        '--ctstate NEW -m comment --comment "fwcluster balancer probe" -j ACCEPT',
    ]
    # After the stateful prologue: INVALID and mid-stream NEW are dropped first.
    assert forward.index(probes[0]) > forward.index("-A FORWARD -m conntrack --ctstate INVALID -j DROP")
    nat = rules(fw2, "nat")
    assert nat[0].endswith("-j SNAT --to-source 10.40.3.2") and "-o eth2 -s 10.40.2.0/24" in nat[0]
    assert nat[1].endswith("-j SNAT --to-source 10.40.2.2") and "-o eth1 -s 10.40.3.0/24" in nat[1]


def test_snat_shares_one_address_with_disjoint_ports(plan):
    ranges = []
    for name in ("sw-fw1", "sw-fw2"):
        nat = rules(plan["nodes"][name], "nat")
        tcp = [rule for rule in nat if "-p tcp" in rule and "10.40.3.100" in rule]
        assert len(tcp) == 1
        low, high = re.search(r"10\.40\.3\.100:(\d+)-(\d+)", tcp[0]).groups()
        ranges.append((int(low), int(high)))
    assert ranges == [(1024, 33279), (33280, 65535)]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 32])
def test_snat_port_ranges_cover_without_overlap(count):
    ranges = [snat_port_range(node_id, count) for node_id in range(count)]
    assert ranges[0][0] == SNAT_PORTS[0] and ranges[-1][1] == SNAT_PORTS[1]
    for (low, high), (next_low, _next_high) in zip(ranges, ranges[1:]):
        assert low <= high and next_low == high + 1


def test_conntrackd_injects_into_the_kernel(plan):
    conntrackd = plan["nodes"]["sw-fw1"]["conntrackd"]
    assert conntrackd["external_cache"] is False and conntrackd["internal_cache"] is False
    # the balancers give a returning firewall its buckets once it forwards: the gate holds forwarding
    assert conntrackd["resync_gate"] == {"holds": "forwarding", "command": "/usr/local/sbin/fwcluster-resync-gate",
                                         "state_file": "/run/fwcluster/resync-gate"}
    assert plan["balancers"]["sw-lbi1"]["conntrackd"] is None


def test_more_firewalls_get_buckets_round_robin(sandwich):
    cluster, nodes, balancers = sandwich
    cluster["fwcluster_replication"]["transport"] = "multicast"
    nodes["sw-fw3"] = {"fwcluster_node_id": 2,
                       "fwcluster_addresses": {"inside": "10.40.2.3/24", "outside": "10.40.3.3/24"},
                       "fwcluster_replication_address": "192.168.102.3/24"}
    plan = build_plan(cluster, nodes, balancers)
    health = plan["balancers"]["sw-lbo1"]["balancer"]
    assert [bucket["home"] for bucket in health["buckets"]][:6] == [0, 1, 2, 0, 1, 2]
    assert [firewall["table"] for firewall in health["firewalls"]] == [101, 102, 103]
    ranges = []
    for name in ("sw-fw1", "sw-fw2", "sw-fw3"):
        (tcp,) = [r for r in rules(plan["nodes"][name], "nat") if "-p tcp" in r and "10.40.3.100" in r]
        ranges.append(re.search(r"10\.40\.3\.100:(\d+)-(\d+)", tcp).groups())
    assert ranges[0][0] == "1024" and ranges[-1][1] == "65535"


# ---------------------------------------------------------------- refusals

def cluster_set(key, value):
    def mutate(cluster, nodes, balancers):
        target = cluster
        path = key.split(".")
        for part in path[:-1]:
            target = target[part]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


def host_set(host, key, value):
    def mutate(cluster, nodes, balancers):
        target = balancers[host] if host in balancers else nodes[host]
        path = key.split(".")
        for part in path[:-1]:
            target = target[part]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


def drop_balancer(host):
    def mutate(cluster, nodes, balancers):
        del balancers[host]
    return mutate


def rename_outside(cluster, nodes, balancers):
    cluster["fwcluster_segments"]["wan"] = cluster["fwcluster_segments"].pop("outside")
    cluster["fwcluster_nat"] = []
    cluster["fwcluster_policy"] = []
    for host_vars in nodes.values():
        host_vars["fwcluster_addresses"]["wan"] = host_vars["fwcluster_addresses"].pop("outside")


def rename_balancer(old, new):
    def mutate(cluster, nodes, balancers):
        balancers[new] = balancers.pop(old)
    return mutate


def no_balancers(cluster, nodes, balancers):
    balancers.clear()


def nat(entry):
    def mutate(cluster, nodes, balancers):
        cluster["fwcluster_nat"] = [entry]
    return mutate


REFUSALS = [
    ("no seed", cluster_set("fwcluster_hash_seed", None), CLUSTER, "fwcluster_hash_seed", "is required for sandwich"),
    ("no balancer settings", cluster_set("fwcluster_balancers", None), CLUSTER, "fwcluster_balancers",
     "is required for sandwich"),
    ("unknown balancer key", cluster_set("fwcluster_balancers.bucket", 8), CLUSTER, "fwcluster_balancers.bucket",
     "unknown key"),
    ("fewer buckets than firewalls", cluster_set("fwcluster_balancers.buckets", 1), CLUSTER,
     "fwcluster_balancers.buckets", "must be in 2..256"),
    ("probe timeout past the interval", cluster_set("fwcluster_balancers.health.timeout", 0.6), CLUSTER,
     "fwcluster_balancers.health.timeout", "exceeds the interval"),
    ("fall zero", cluster_set("fwcluster_balancers.health.fall", 0), CLUSTER, "fwcluster_balancers.health.fall",
     "must be in 1..100"),
    ("probe interval infinite", cluster_set("fwcluster_balancers.health.interval", float("inf")), CLUSTER,
     "fwcluster_balancers.health.interval", "must be a finite number in 0.03..60, got inf"),
    ("balancer name with a newline", rename_balancer("sw-lbo2", "sw-lbo2\n"), "'sw-lbo2\\n'", "inventory_hostname",
     "holds a newline; a host name is written into keepalived.conf"),
    ("a side missing", cluster_set("fwcluster_balancers.outside", None), CLUSTER, "fwcluster_balancers.outside",
     "is required"),
    ("front VIP overlaps a segment", cluster_set("fwcluster_balancers.inside.vip", "10.40.2.200/24"), CLUSTER,
     "fwcluster_balancers.inside.vip", "overlaps segment inside"),
    ("front VRID taken", cluster_set("fwcluster_balancers.outside.vrid", 61), CLUSTER,
     "fwcluster_balancers.outside.vrid", "already used by fwcluster_segments.inside.vrid"),
    ("a gateway off the front network", cluster_set("fwcluster_balancers.outside.gateway", "10.40.1.1"), CLUSTER,
     "fwcluster_balancers.outside.gateway", "must be a router on the front network"),
    ("segments not inside and outside", rename_outside, CLUSTER, "fwcluster_segments",
     "exactly the segments inside and outside"),
    ("no balancers", no_balancers, CLUSTER, "fwcluster_balancer_side", "needs two load balancers per side"),
    ("one balancer on a side", drop_balancer("sw-lbo2"), CLUSTER, "fwcluster_balancer_side",
     "the outside side has 1 balancer(s)"),
    ("a third side", host_set("sw-lbi2", "fwcluster_balancer_side", "dmz"), "sw-lbi2", "fwcluster_balancer_side",
     "must be one of inside, outside"),
    ("duplicate pair id", host_set("sw-lbi2", "fwcluster_node_id", 0), "sw-lbi2", "fwcluster_node_id",
     "already used by sw-lbi1"),
    ("pair id out of range", host_set("sw-lbo2", "fwcluster_node_id", 2), "sw-lbo2", "fwcluster_node_id",
     "must be in 0..1"),
    ("balancer without addresses", host_set("sw-lbo1", "fwcluster_addresses", None), "sw-lbo1",
     "fwcluster_addresses", "is required"),
    ("balancer address off its network", host_set("sw-lbi1", "fwcluster_addresses.front", "10.40.4.11/24"),
     "sw-lbi1", "fwcluster_addresses.front", "is outside the inside front network's subnet 10.40.1.0/24"),
    ("balancer takes a firewall's address", host_set("sw-lbi1", "fwcluster_addresses.inside", "10.40.2.1/24"),
     "sw-lbi1", "fwcluster_addresses.inside", "already the address of sw-fw1"),
    ("balancer takes the VIP", host_set("sw-lbo1", "fwcluster_addresses.front", "10.40.4.254/24"),
     "sw-lbo1", "fwcluster_addresses.front", "is the VIP of the outside front network; a balancer needs an address"),
    ("balancer address key unknown", host_set("sw-lbo1", "fwcluster_addresses.dmz", "10.40.9.1/24"),
     "sw-lbo1", "fwcluster_addresses.dmz", "unknown key"),
    ("balancer interfaces collide", host_set("sw-lbi1", "fwcluster_interfaces", {"front": "eth1"}),
     "sw-lbi1", "fwcluster_interfaces", "share interface eth1"),
    ("dnat", nat({"type": "dnat", "in": "outside", "port": 80, "to": "10.40.1.10"}), CLUSTER,
     "fwcluster_nat[0].type", "dnat is not supported with sandwich"),
    ("masquerade", nat({"type": "masquerade", "out": "outside"}), CLUSTER, "fwcluster_nat[0].type",
     "masquerade (SNAT to the segment VIP) is not supported"),
    ("snat toward the inside", nat({"type": "snat", "out": "inside", "to": "10.40.2.100"}), CLUSTER,
     "fwcluster_nat[0].out", "only toward the outside"),
    ("snat to the segment VIP", nat({"type": "snat", "out": "outside", "to": "10.40.3.254"}), CLUSTER,
     "fwcluster_nat[0].to", "segment VIP"),
    ("snat to a firewall's address", nat({"type": "snat", "out": "outside", "to": "10.40.3.2"}), CLUSTER,
     "fwcluster_nat[0].to", "sw-fw2's own address"),
    ("snat onto a front network", nat({"type": "snat", "out": "outside", "to": "10.40.4.100"}), CLUSTER,
     "fwcluster_nat[0].to", "outside front network"),
    ("ftfw replication", cluster_set("fwcluster_replication.mode", "ftfw"), CLUSTER, "fwcluster_replication.mode",
     "sandwich needs notrack"),
    ("alarm replication", cluster_set("fwcluster_replication.mode", "alarm"), CLUSTER, "fwcluster_replication.mode",
     "sandwich needs notrack"),
    ("unicast VRRP", cluster_set("fwcluster_vrrp.unicast", True), CLUSTER, "fwcluster_vrrp.unicast",
     "not supported with sandwich"),
    ("an IPv6 route on an IPv4 cluster", cluster_set("fwcluster_balancers.outside.routes", ["0.0.0.0/0", "::/0"]),
     CLUSTER, "fwcluster_balancers.outside.routes[1]", "::/0 is IPv6 and the outside side has no IPv6 VIP"),
    ("a front VIP of IPv6 on an IPv4 cluster",
     cluster_set("fwcluster_balancers.inside.vip", ["10.40.1.254/24", "2001:db8:40:1::fe/64"]), CLUSTER,
     "fwcluster_balancers.inside.vip", "gives IPv4 and IPv6, the inside segment has IPv4"),
]


@pytest.mark.parametrize("mutation, host, variable, fragment", [case[1:] for case in REFUSALS],
                         ids=[case[0] for case in REFUSALS])
def test_refusal(sandwich, mutation, host, variable, fragment):
    assert_refused(sandwich, mutation, host, variable, fragment)


def assert_refused(inventory, mutation, host, variable, fragment):
    """The inventory (cluster, nodes, balancers), changed by mutation, is refused naming host and variable."""
    cluster, nodes, balancers = inventory
    mutation(cluster, nodes, balancers)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes, balancers)
    error = caught.value
    assert (error.host, error.variable) == (host, variable), str(error)
    assert fragment in error.rule, str(error)


def test_balancers_belong_to_sandwich_only(example, sandwich):
    cluster, nodes = example
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes, {"lb1": {"fwcluster_balancer_side": "inside"}})
    assert (caught.value.host, caught.value.variable) == ("lb1", "fwcluster_balancer_side")
    assert "belong to sandwich clusters" in caught.value.rule
    cluster["fwcluster_balancers"] = copy.deepcopy(sandwich[0]["fwcluster_balancers"])
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_balancers"


@pytest.mark.parametrize("value", [None, "x", 3, [], {"inside": 1}])
def test_wrong_types_end_in_plan_errors(sandwich, value):
    cluster, nodes, balancers = sandwich
    for key in ("fwcluster_balancers", "fwcluster_hash_seed"):
        broken = dict(cluster, **{key: value})
        try:
            build_plan(broken, nodes, balancers)
        except PlanError:
            pass
    for host in balancers:
        for key in ("fwcluster_addresses", "fwcluster_interfaces", "fwcluster_node_id", "fwcluster_balancer_side"):
            mutated = copy.deepcopy(balancers)
            mutated[host][key] = value
            try:
                build_plan(cluster, nodes, mutated)
            except PlanError:
                pass
    try:
        build_plan(cluster, nodes, value)
    except PlanError:
        pass


def test_probe_snat_address_is_the_firewalls_own(plan):
    for name, node in plan["nodes"].items():
        addresses = set(str(ipaddress.ip_interface(a).ip) for a in node["addresses"].values())
        snat = [rule.rsplit(" ", 1)[1] for rule in rules(node, "nat") if "balancer probe" in rule]
        assert set(snat) == addresses, name


# ---------------------------------------------------------------- dual stack

@pytest.fixture
def dual(sandwich_dual_stack):
    return build_plan(*sandwich_dual_stack)


def test_dual_stack_balancers_hold_both_families_in_one_sync_group(dual):
    for name in ("sw-lbi1", "sw-lbi2"):
        keepalived = dual["balancers"][name]["keepalived"]
        instances = keepalived["instances"]
        assert [(i["family"], i["vrid"], i["vips"]) for i in instances] == [
            ("ipv4", 61, ["10.40.2.254/24"]),
            ("ipv4", 71, ["10.40.1.254/24"]),
            # VRRPv3 for IPv6: the same VRIDs, the link-local virtual address first
            ("ipv6", 61, ["fe80::1:3d/64", "2001:db8:40:2::fe/64"]),
            ("ipv6", 71, ["fe80::1:47/64", "2001:db8:40:1::fe/64"]),
        ]
        # one balancer of the pair holds every VIP of its side, of both families
        assert keepalived["sync_group"]["instances"] == [instance["name"] for instance in instances]
    assert dual["balancing"]["sides"]["outside"]["front_vip6"] == "2001:db8:40:4::fe/64"


def test_dual_stack_buckets_route_both_families_to_the_same_firewall(dual):
    lbo1 = dual["balancers"]["sw-lbo1"]
    assert lbo1["routes"] == [
        {"to": "default", "via": "10.40.3.1", "interface": "eth2", "table": 101},
        {"to": "default", "via": "10.40.3.2", "interface": "eth2", "table": 102},
        {"to": "::/0", "via": "2001:db8:40:3::1", "interface": "eth2", "table": 101},
        {"to": "::/0", "via": "2001:db8:40:3::2", "interface": "eth2", "table": 102},
        {"to": "default", "via": "10.40.4.10", "interface": "eth1", "table": None},
        {"to": "::/0", "via": "2001:db8:40:4::10", "interface": "eth1", "table": None},
    ]
    assert lbo1["balancer"]["families"] == ["inet", "inet6"]
    assert lbo1["sysctls"]["net.ipv6.conf.all.forwarding"] == "1"
    assert lbo1["addresses6"] == {"outside": "2001:db8:40:3::21/64", "front": "2001:db8:40:4::21/64"}
    # the same hash in both families: the outside party's address, the same seed, buckets and marks
    for name, tuple_ in (("sw-lbi1", "dst"), ("sw-lbo1", "src")):
        balancer = dual["balancers"][name]
        hmark = [[rule for rule in table["rules"] if "HMARK" in rule] for ruleset in (balancer["ruleset"],
                 balancer["ruleset_ipv6"]) for table in ruleset if table["table"] == "mangle"]
        assert hmark[0] == hmark[1] and len(hmark[0]) == 1, name
        assert "--hmark-tuple %s --hmark-mod 16 --hmark-offset 256 --hmark-rnd 0x5eed1234" % tuple_ in hmark[0][0]


def test_dual_stack_firewalls_route_and_filter_ipv6_without_translation(dual):
    fw1 = dual["nodes"]["sw-fw1"]
    assert fw1["routes"] == [
        {"to": "10.40.1.0/24", "via": "10.40.2.254", "interface": "eth1", "table": None},
        {"to": "2001:db8:40:1::/64", "via": "2001:db8:40:2::fe", "interface": "eth1", "table": None},
        {"to": "10.40.4.0/24", "via": "10.40.3.254", "interface": "eth2", "table": None},
        {"to": "2001:db8:40:4::/64", "via": "2001:db8:40:3::fe", "interface": "eth2", "table": None},
        {"to": "default", "via": "10.40.3.254", "interface": "eth2", "table": None},
        {"to": "::/0", "via": "2001:db8:40:3::fe", "interface": "eth2", "table": None},
    ]
    (table,) = fw1["ruleset_ipv6"]  # the filter table alone: no NAT, no probes (they are IPv4)
    assert table["table"] == "filter"
    assert not [rule for rule in table["rules"] if "-p 112" in rule or "balancer probe" in rule]
    assert "-A FORWARD -i eth1 -o eth2 -p tcp --dport 8080 -m conntrack --ctstate NEW " \
           '-m comment --comment "inside clients to the web service" -j ACCEPT' in table["rules"]
    assert fw1["sysctls"]["net.ipv6.conf.all.forwarding"] == "1"


def both_families(key, ipv6):
    """A change giving the sandwich variable KEY (a front VIP, an address) IPV6 beside its IPv4 value."""
    def mutate(cluster, nodes, balancers):
        hosts = dict(nodes, **balancers)
        host, _dot, path = key.partition(":")
        target = hosts[host] if path else cluster
        path = (path or host).split(".")
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = [target[path[-1]][0], ipv6] if ipv6 else target[path[-1]][0]
    return mutate


def ipv4_outside(cluster, nodes, balancers):
    """The outside segment, its front network and every address on them IPv4 only."""
    both_families("fwcluster_segments.outside.vip", None)(cluster, nodes, balancers)
    for host in nodes:
        both_families("%s:fwcluster_addresses.outside" % host, None)(cluster, nodes, balancers)


DUAL_STACK_REFUSALS = [
    ("IPv6 on one segment only", ipv4_outside, CLUSTER, "fwcluster_segments.outside.vip",
     "gives IPv4, the inside segment IPv4 and IPv6: a sandwich carries a family on all of its networks"),
    ("a front network without IPv6", both_families("fwcluster_balancers.inside.vip", None), CLUSTER,
     "fwcluster_balancers.inside.vip", "gives IPv4, the inside segment has IPv4 and IPv6"),
    ("an IPv6 front network over a segment's", both_families("fwcluster_balancers.inside.vip", "2001:db8:40:2::1:fe/64"),
     CLUSTER, "fwcluster_balancers.inside.vip", "front network 2001:db8:40:2::/64 overlaps segment inside"),
    ("a balancer without its IPv6 address", both_families("sw-lbo2:fwcluster_addresses.front", None), "sw-lbo2",
     "fwcluster_addresses.front", "needs one address of each of their families"),
    ("a balancer's IPv6 address off its network", both_families("sw-lbi1:fwcluster_addresses.inside",
                                                                "2001:db8:40:9::11/64"),
     "sw-lbi1", "fwcluster_addresses.inside", "2001:db8:40:9::11 is outside segment inside's subnet 2001:db8:40:2::/64"),
    ("a balancer's IPv6 address taken by a firewall", both_families("sw-lbi2:fwcluster_addresses.inside",
                                                                    "2001:db8:40:2::1/64"),
     "sw-lbi2", "fwcluster_addresses.inside", "2001:db8:40:2::1 is already the address of sw-fw1"),
    ("a balancer on the IPv6 VIP", both_families("sw-lbo1:fwcluster_addresses.front", "2001:db8:40:4::fe/64"),
     "sw-lbo1", "fwcluster_addresses.front", "is the VIP of the outside front network; a balancer needs an address"),
    ("routes of IPv6 and an IPv4 router only", cluster_set("fwcluster_balancers.outside.gateway", "10.40.4.1"),
     CLUSTER, "fwcluster_balancers.outside.gateway", "has no IPv6 router for ::/0"),
    ("two IPv4 routers", cluster_set("fwcluster_balancers.outside.gateway", ["10.40.4.1", "10.40.4.2"]), CLUSTER,
     "fwcluster_balancers.outside.gateway[1]", "a second IPv4 router"),
    ("an IPv6 router off the front network",
     cluster_set("fwcluster_balancers.outside.gateway", ["10.40.4.1", "2001:db8:40:3::1"]), CLUSTER,
     "fwcluster_balancers.outside.gateway[1]", "must be a router on the front network 2001:db8:40:4::/64"),
    ("NAT66", nat({"type": "snat", "out": "outside", "source": "2001:db8:40:1::/64", "to": "2001:db8:40:3::100"}),
     CLUSTER, "fwcluster_nat[0].source", "NAT is IPv4 only"),
]


@pytest.mark.parametrize("mutation, host, variable, fragment", [case[1:] for case in DUAL_STACK_REFUSALS],
                         ids=[case[0] for case in DUAL_STACK_REFUSALS])
def test_dual_stack_refusal(sandwich_dual_stack, mutation, host, variable, fragment):
    assert_refused(sandwich_dual_stack, mutation, host, variable, fragment)


def test_dual_stack_routers_of_both_families(sandwich_dual_stack):
    cluster, nodes, balancers = sandwich_dual_stack
    cluster["fwcluster_balancers"]["outside"]["gateway"] = ["10.40.4.1", "2001:db8:40:4::1"]
    cluster["fwcluster_balancers"]["outside"]["routes"] = ["192.0.2.0/24", "2001:db8:99::/48"]
    routes = build_plan(cluster, nodes, balancers)["balancers"]["sw-lbo1"]["routes"]
    assert routes[4:] == [
        {"to": "192.0.2.0/24", "via": "10.40.4.1", "interface": "eth1", "table": None},
        {"to": "2001:db8:99::/48", "via": "2001:db8:40:4::1", "interface": "eth1", "table": None},
    ]
