"""One table of packet cases per architecture, run in the kernel against both backends: the same verdicts.

Each test builds the example inventory's plan twice (fwcluster_backend
iptables, then nftables), loads one node's rules as its role does (the role
templates, iptables-restore or nft -f; the hash cluster's links script and
owner hook) into a network namespace between host namespaces, and sends
real packets: TCP connections, UDP datagrams, pings, and bare TCP ACKs that
belong to no connection. A case's expected outcome is written in its table;
both backends must produce exactly those outcomes.
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import hash_node_ids
from ansible_collections.fwcluster.netfilter.tests.netns import netns
from ansible_collections.fwcluster.netfilter.tests.netns.netns import BACKENDS, load_rules, run
from ansible_collections.fwcluster.netfilter.tests.unit.examples import HASH_PREFIXES, dual_stack, ipv4_only


def case(source, to, proto, port=None, **extra):
    found = {"source": source, "to": to, "proto": proto, "port": port}
    found.update(extra)
    return found


def key_of(entry):
    """A case as the results are keyed."""
    return (entry["source"], entry["to"], entry["proto"], entry["port"])


def cases_of(table):
    """The cases of a table of (case, expected outcome)."""
    return [entry for entry, _expected in table]


def outcomes(lab, namespace, cases, seen=None):
    """{(source, to, proto, port): outcome}; a bare ACK's outcome is whether the far agent saw it."""
    results = lab.probe(namespace, cases)
    if seen is not None and any(entry["proto"] == "ack" for entry in cases):
        time.sleep(0.5)  # the far agent's sniffer prints what reached it
    found = {}
    for entry, result in zip(cases, results):
        if entry["proto"] == "ack":
            arrived = any(line[:4] == ["ack", entry["source"], str(entry.get("source_port", 40000)), str(entry["port"])]
                          for line in seen or [])
            result = "arrived" if arrived else "dropped"
        found[key_of(entry)] = result
    return found


def assert_table(results, table, backends=BACKENDS):
    """results: {backend: outcomes}; table: [(case, expected)]. Every backend gives every expected outcome."""
    expected = dict((key_of(entry), want) for entry, want in table)
    wrong = ["%-9s %s -> %s %s %s: expected %r, got %r" % (backend, key[0], key[1], key[2], key[3] or "",
                                                           expected[key], got[key])
             for backend, got in results.items() for key in expected if got[key] != expected[key]]
    assert not wrong, "\n".join(wrong)
    assert set(results) == set(backends)


# --------------------------------------------------------------------------
# primary_backup: the primary (pb-fw1) holding the VIPs, stateful policy, masquerade
# --------------------------------------------------------------------------

PB_CLIENT, PB_SERVER = "10.10.1.10", "203.0.113.10"


def pb_published_and_refused(cluster, nodes):
    """The example, plus a published service (DNAT) and a refused one (REJECT)."""
    cluster["fwcluster_nat"].append({"type": "dnat", "in": "outside", "port": 443, "to": PB_CLIENT + ":8080",
                                     "name": "publish web"})
    cluster["fwcluster_policy"].append({"name": "no telnet", "from": "inside", "to": "outside", "proto": "tcp",
                                        "ports": [23], "action": "reject"})


PB_CASES = [
    # the policy: web and ping from inside, out as the outside VIP
    (case(PB_CLIENT, PB_SERVER, "tcp", 8080), "accepted as 203.0.113.254"),
    (case(PB_CLIENT, PB_SERVER, "icmp"), "accepted"),
    (case(PB_CLIENT, PB_SERVER, "tcp", 8081), "dropped"),
    (case(PB_CLIENT, PB_SERVER, "udp", 8080), "dropped"),
    (case(PB_CLIENT, PB_SERVER, "tcp", 23), "rejected"),
    # a packet of no known flow is not adopted mid-stream
    (case(PB_CLIENT, PB_SERVER, "ack", 8080), "dropped"),
    # the node itself: management from anywhere, nothing else
    (case(PB_CLIENT, "10.10.1.254", "tcp", 22), "accepted as 10.10.1.10"),
    (case(PB_CLIENT, "10.10.1.254", "tcp", 8080), "dropped"),
]
PB_INBOUND = [
    (case(PB_SERVER, PB_CLIENT, "tcp", 8080), "dropped"),
    # the published service: the outside VIP's port 443 is the inside host's 8080, the client seen as itself
    (case(PB_SERVER, "203.0.113.254", "tcp", 443), "accepted as 203.0.113.10"),
    (case(PB_SERVER, "203.0.113.254", "tcp", 22), "accepted as 203.0.113.10"),
]


def test_primary_backup(lab):
    results = {}
    for backend in BACKENDS:
        plan = netns.plan_of("primary_backup", backend, pb_published_and_refused)
        fw = lab.namespace("pb-fw-" + backend[:3])
        client = lab.host("pb-in-" + backend[:3], fw, "eth1", ["10.10.1.10/24"], [("default", "10.10.1.254")])
        server = lab.host("pb-out-" + backend[:3], fw, "eth2", ["203.0.113.10/24"], [("default", "203.0.113.254")])
        for interface, address in (("eth1", "10.10.1.1/24"), ("eth2", "203.0.113.1/24"),
                                   ("eth1", "10.10.1.254/24"), ("eth2", "203.0.113.254/24")):
            run(fw, "ip", "address", "add", address, "dev", interface)  # the primary holds the VIPs
        load_rules(lab, fw, plan, "pb-fw1")
        seen = lab.serve(server, tcp_ports=[8080, 8081, 23], udp_ports=[8080])
        lab.serve(client, tcp_ports=[8080])
        lab.serve(fw, tcp_ports=[22, 8080])
        results[backend] = outcomes(lab, client, cases_of(PB_CASES), seen)
        results[backend].update(outcomes(lab, server, cases_of(PB_INBOUND)))
    assert_table(results, PB_CASES + PB_INBOUND)


# --------------------------------------------------------------------------
# primary_backup dual stack: the same policy for IPv6, routed (no NAT), neighbour discovery working
# --------------------------------------------------------------------------

PB6_CLIENT, PB6_SERVER = "2001:db8:1::10", "2001:db8:2::10"


def pb_dual_stack(cluster, nodes):
    """The example made dual stack, with an IPv6-only entry (the outside server's DNS) and the published service."""
    dual_stack(cluster, nodes)
    pb_published_and_refused(cluster, nodes)
    cluster["fwcluster_policy"].append({"name": "dns over ipv6", "from": "inside", "to": "outside", "proto": "udp",
                                        "ports": [53], "destination": PB6_SERVER, "action": "accept"})


PB6_CASES = [
    # the policy's entries of both families, routed: the server sees the client itself
    (case(PB6_CLIENT, PB6_SERVER, "tcp", 8080), "accepted as " + PB6_CLIENT),
    (case(PB6_CLIENT, PB6_SERVER, "icmp"), "accepted"),
    (case(PB6_CLIENT, PB6_SERVER, "tcp", 8081), "dropped"),
    (case(PB6_CLIENT, PB6_SERVER, "tcp", 23), "rejected"),
    # the IPv6-only entry
    (case(PB6_CLIENT, PB6_SERVER, "udp", 53), "accepted as " + PB6_CLIENT),
    # the node itself over IPv6: management from anywhere (::/0 by default in a dual-stack cluster), nothing else
    (case(PB6_CLIENT, "2001:db8:1::fe", "tcp", 22), "accepted as " + PB6_CLIENT),
    (case(PB6_CLIENT, "2001:db8:1::fe", "tcp", 8080), "dropped"),
    # IPv4 beside it, as before: translated
    (case(PB_CLIENT, PB_SERVER, "tcp", 8080), "accepted as 203.0.113.254"),
    (case(PB_CLIENT, PB_SERVER, "udp", 53), "dropped"),
]
PB6_INBOUND = [
    (case(PB6_SERVER, PB6_CLIENT, "tcp", 8080), "dropped"),
    # the IPv4 DNAT publishes nothing over IPv6
    (case(PB6_SERVER, "2001:db8:2::fe", "tcp", 443), "dropped"),
]


def test_primary_backup_dual_stack(lab):
    results = {}
    for backend in BACKENDS:
        plan = netns.plan_of("primary_backup", backend, pb_dual_stack)
        fw = lab.namespace("pb6-fw-" + backend[:3])
        # no static neighbour anywhere: every IPv6 answer needs neighbour discovery through the rules
        client = lab.host("pb6-in-" + backend[:3], fw, "eth1", ["10.10.1.10/24", PB6_CLIENT + "/64"],
                          [("default", "10.10.1.254"), ("default", "2001:db8:1::fe")])
        server = lab.host("pb6-out-" + backend[:3], fw, "eth2", ["203.0.113.10/24", PB6_SERVER + "/64"],
                          [("default", "203.0.113.254"), ("default", "2001:db8:2::fe")])
        for interface, address in (("eth1", "10.10.1.1/24"), ("eth2", "203.0.113.1/24"),
                                   ("eth1", "10.10.1.254/24"), ("eth2", "203.0.113.254/24"),
                                   ("eth1", "2001:db8:1::1/64"), ("eth2", "2001:db8:2::1/64"),
                                   ("eth1", "2001:db8:1::fe/64"), ("eth2", "2001:db8:2::fe/64")):
            netns.add_address(fw, address, interface)  # the primary holds the VIPs of both families
        load_rules(lab, fw, plan, "pb-fw1")
        seen = lab.serve(server, tcp_ports=[8080, 8081, 23], udp_ports=[53])
        lab.serve(client, tcp_ports=[8080])
        lab.serve(fw, tcp_ports=[22, 8080, 443])
        results[backend] = outcomes(lab, client, cases_of(PB6_CASES), seen)
        results[backend].update(outcomes(lab, server, cases_of(PB6_INBOUND)))
    assert_table(results, PB6_CASES + PB6_INBOUND)


# --------------------------------------------------------------------------
# multipath: stateless pairs (a request rule and a reply rule per entry), nothing tracked
# --------------------------------------------------------------------------

MP_CLIENT, MP_SERVER = "10.30.1.10", "10.30.2.10"
MP_CASES = [
    (case(MP_CLIENT, MP_SERVER, "tcp", 8080), "accepted as 10.30.1.10"),
    (case(MP_CLIENT, MP_SERVER, "tcp", 8443), "accepted as 10.30.1.10"),
    (case(MP_CLIENT, MP_SERVER, "udp", 123), "accepted as 10.30.1.10"),
    (case(MP_CLIENT, MP_SERVER, "icmp"), "accepted"),
    (case(MP_CLIENT, MP_SERVER, "tcp", 22), "dropped"),
    (case(MP_CLIENT, MP_SERVER, "udp", 124), "dropped"),
]
MP_INBOUND = [
    # no connection is opened from outside...
    (case(MP_SERVER, MP_CLIENT, "tcp", 8080), "dropped"),
    # ...but a reply-shaped packet passes without any state: the paper's stateless verdict
    (case(MP_SERVER, MP_CLIENT, "ack", 40001, source_port=8080), "arrived"),
    (case(MP_SERVER, MP_CLIENT, "ack", 40002, source_port=9999), "dropped"),
]
# The same over IPv6 (the example is dual stack): the stateless pairs of ip6, ICMPv6 echo for icmp.
MP6_CLIENT, MP6_SERVER = "2001:db8:30:1::10", "2001:db8:30:2::10"
MP6_CASES = [
    (case(MP6_CLIENT, MP6_SERVER, "tcp", 8080), "accepted as " + MP6_CLIENT),
    (case(MP6_CLIENT, MP6_SERVER, "udp", 123), "accepted as " + MP6_CLIENT),
    (case(MP6_CLIENT, MP6_SERVER, "icmp"), "accepted"),
    (case(MP6_CLIENT, MP6_SERVER, "tcp", 22), "dropped"),
    (case(MP6_CLIENT, MP6_SERVER, "udp", 124), "dropped"),
]
MP6_INBOUND = [
    (case(MP6_SERVER, MP6_CLIENT, "tcp", 8080), "dropped"),
    (case(MP6_SERVER, MP6_CLIENT, "ack", 40003, source_port=8080), "arrived"),
    (case(MP6_SERVER, MP6_CLIENT, "ack", 40004, source_port=9999), "dropped"),
]


def test_multipath(lab):
    results = {}
    for backend in BACKENDS:
        plan = netns.plan_of("multipath", backend)
        fw = lab.namespace("mp-fw-" + backend[:3])
        client = lab.host("mp-in-" + backend[:3], fw, "eth1", ["10.30.1.10/24", MP6_CLIENT + "/64"],
                          [("default", "10.30.1.254"), ("default", "2001:db8:30:1::fe")])
        server = lab.host("mp-out-" + backend[:3], fw, "eth2", ["10.30.2.10/24", MP6_SERVER + "/64"],
                          [("default", "10.30.2.254"), ("default", "2001:db8:30:2::fe")])
        for interface, address in (("eth1", "10.30.1.1/24"), ("eth2", "10.30.2.1/24"),
                                   ("eth1", "10.30.1.254/24"), ("eth2", "10.30.2.254/24"),
                                   ("eth1", "2001:db8:30:1::1/64"), ("eth2", "2001:db8:30:2::1/64"),
                                   ("eth1", "2001:db8:30:1::fe/64"), ("eth2", "2001:db8:30:2::fe/64")):
            netns.add_address(fw, address, interface)  # the survivor of a failure holds every VIP
        load_rules(lab, fw, plan, "mp-fw1")
        server_seen = lab.serve(server, tcp_ports=[8080, 8443, 22], udp_ports=[123, 124])
        client_seen = lab.serve(client, tcp_ports=[8080])
        results[backend] = outcomes(lab, client, cases_of(MP_CASES + MP6_CASES), server_seen)
        results[backend].update(outcomes(lab, server, cases_of(MP_INBOUND + MP6_INBOUND), client_seen))
    assert_table(results, MP_CASES + MP_INBOUND + MP6_CASES + MP6_INBOUND)


# --------------------------------------------------------------------------
# hash: hs-fw1 owning node ids through the owner hook, the segments' multicast MACs through the links script
# --------------------------------------------------------------------------

HS_SEED, HS_NODES = 0x5eed1234, 3
HS_SERVER = "198.51.100.10"  # answers TCP 8080; nothing listens on UDP 7000
HS_CLIENTS = netns.addresses("10.20.1.0/24", 10, 24)
INSIDE_MAC, OUTSIDE_MAC = "01:00:5e:14:01:fe", "01:00:5e:33:64:fe"
# The outcome that is no packet's: the MACs the hosts learnt for the VIPs, as (inside, outside).
MACS_KEY = ("macs", None, None, None)


def hash_cases(owned):
    """Each client's flow: forwarded by this node exactly when the kernel's hash of its address is an owned id."""
    owner = hash_node_ids(HS_CLIENTS, HS_SEED, HS_NODES)
    table = [(case(client, HS_SERVER, "tcp", 8080), "accepted as %s" % client if owner[client] in owned else "dropped")
             for client in HS_CLIENTS]
    # RELATED: the server's port-unreachable error about an owned flow comes back through its owner (conntrack
    # attaches an ICMP error to the flow it is about: both backends hash that flow's original source)
    table.extend((case(client, HS_SERVER, "udp", 7000), "rejected" if owner[client] in owned else "dropped")
                 for client in HS_CLIENTS)
    # whatever the owner: no mid-stream adoption
    table.append((case(HS_CLIENTS[0], HS_SERVER, "ack", 8080), "dropped"))
    return table


HS_INBOUND = [
    # a reply-shaped NEW UDP packet (its flow's first packet missed) is not taken for a new flow
    (case(HS_SERVER, HS_CLIENTS[0], "udp", 7000), "dropped"),
]


@pytest.mark.parametrize("owned", [(0,), (0, 2), ()], ids=["own-0", "own-0-2", "own-none"])
def test_hash(lab, owned):
    results = {}
    for backend in BACKENDS:
        plan = netns.plan_of("hash", backend, ipv4_only)  # the example is dual stack; IPv6 has test_hash_ipv6
        fw = lab.namespace("hs-fw-" + backend[:3])
        client = lab.host("hs-in-" + backend[:3], fw, "eth1", [address + "/24" for address in HS_CLIENTS],
                          [("default", "10.20.1.254")])
        server = lab.host("hs-out-" + backend[:3], fw, "eth2", ["198.51.100.10/24"],
                          [("10.20.1.0/24", "198.51.100.254")])
        for interface, address in (("eth1", "10.20.1.1/24"), ("eth2", "198.51.100.1/24")):
            run(fw, "ip", "address", "add", address, "dev", interface)
        load_rules(lab, fw, plan, "hs-fw1")
        owner = netns.hash_scripts(lab, fw, plan, "hs-fw1")  # every VIP, its multicast MAC, the ARP rules
        for node_id in owned:
            run(fw, owner, "take", str(node_id))
        assert run(fw, owner, "show").split() == [str(node_id) for node_id in owned]
        seen = lab.serve(server, tcp_ports=[8080])
        lab.serve(client, udp_ports=[7000])
        table = hash_cases(owned)
        results[backend] = outcomes(lab, client, cases_of(table), seen)
        results[backend].update(outcomes(lab, server, cases_of(HS_INBOUND)))
        if owned:
            # the hosts sent their packets to the segment's cluster MAC (the ARP rules), which the node
            # forwarded as its own (xt_cluster's packet type change, nftables' pkttype set host)
            results[backend][MACS_KEY] = (netns.neighbour_mac(client, "10.20.1.254"),
                                          netns.neighbour_mac(server, "198.51.100.254"))
        run(fw, owner, "release-all")
        assert run(fw, owner, "show").split() == []
    expected = hash_cases(owned) + HS_INBOUND
    if owned:
        expected.append((case(*MACS_KEY), (INSIDE_MAC, OUTSIDE_MAC)))
    assert_table(results, expected)


# hash on IPv6 (nftables only: the plan refuses an IPv6 VIP on iptables): the same node ids own the IPv6
# flows; the VIPs' neighbour advertisements carry the cluster MAC with their checksum intact
HS6_SERVER = "2001:db8:20:2::10"
HS6_CLIENTS = netns.addresses("2001:db8:20:1::/64", 0x10, 24)
HS6_VIPS = ("2001:db8:20:1::fe", "2001:db8:20:2::fe")


def hash6_cases(owned):
    owner = hash_node_ids(HS6_CLIENTS, HS_SEED, HS_NODES)
    table = [(case(client, HS6_SERVER, "tcp", 8080), "accepted as %s" % client if owner[client] in owned else "dropped")
             for client in HS6_CLIENTS]
    table.append((case(HS6_CLIENTS[0], HS6_SERVER, "ack", 8080), "dropped"))
    return table


@pytest.mark.parametrize("owned", [(0,), (1, 2), ()], ids=["own-0", "own-1-2", "own-none"])
def test_hash_ipv6(lab, owned):
    plan = netns.plan_of("hash", "nftables", lambda cluster, nodes: dual_stack(cluster, nodes, HASH_PREFIXES))
    fw = lab.namespace("hs6-fw")
    client = lab.host("hs6-in", fw, "eth1", [address + "/64" for address in HS6_CLIENTS], [("default", HS6_VIPS[0])])
    server = lab.host("hs6-out", fw, "eth2", [HS6_SERVER + "/64"], [("2001:db8:20:1::/64", HS6_VIPS[1])])
    for interface, address in (("eth1", "10.20.1.1/24"), ("eth2", "198.51.100.1/24"),
                               ("eth1", "2001:db8:20:1::1/64"), ("eth2", "2001:db8:20:2::1/64")):
        netns.add_address(fw, address, interface)
    load_rules(lab, fw, plan, "hs-fw1")
    owner = netns.hash_scripts(lab, fw, plan, "hs-fw1")  # the IPv6 VIPs too, and their ND rewrite
    for node_id in owned:
        run(fw, owner, "take", str(node_id))
    assert run(fw, owner, "show").split() == [str(node_id) for node_id in owned]
    seen = lab.serve(server, tcp_ports=[8080])
    table = hash6_cases(owned)
    results = outcomes(lab, client, cases_of(table), seen)
    # The client resolved the VIP to the cluster MAC: a rewritten advertisement with a bad checksum
    # would have been dropped (the VIP unresolved, every flow lost whoever owns it).
    results[MACS_KEY] = (netns.neighbour_mac(client, HS6_VIPS[0]),)
    expected = table + [(case(*MACS_KEY), (INSIDE_MAC,))]
    if owned:
        # The neighbour's own check (unreachability detection) is a unicast solicitation to the cluster
        # MAC, which no flow's hash takes: the node answers it (the ND exemption) and the entry stays.
        run(client, "sysctl", "-q", "-w", "net.ipv6.neigh.eth0.delay_first_probe_time=1")
        run(client, "ip", "-6", "neigh", "change", HS6_VIPS[0], "lladdr", INSIDE_MAC, "dev", "eth0", "nud", "stale")
        reprobe = [case(client, HS6_SERVER, "tcp", 8080) for client in HS6_CLIENTS
                   if hash_node_ids([client], HS_SEED, HS_NODES)[client] in owned][:1]
        lab.probe(client, reprobe)
        confirmed = netns.wait_for(lambda: netns.neighbour_state(client, HS6_VIPS[0]) == ("REACHABLE", INSIDE_MAC), 4.0)
        results[("nud", None, None, None)] = confirmed
        expected.append((case("nud", None, None), True))
        # the server's replies went to the outside VIP: the cluster MAC there too
        results[("macs-out", None, None, None)] = netns.neighbour_mac(server, HS6_VIPS[1])
        expected.append((case("macs-out", None, None), OUTSIDE_MAC))
    run(fw, owner, "release-all")
    assert run(fw, owner, "show").split() == []
    assert_table({"nftables": results}, expected, backends=("nftables",))


# --------------------------------------------------------------------------
# sandwich: a firewall (sw-fw1) between the balancers' links, and the balancers' symmetric hash
# --------------------------------------------------------------------------

SW_CLIENT, SW_SERVER = "10.40.1.10", "10.40.4.10"
SW_CASES = [
    # the policy, out as the cluster's SNAT address
    (case(SW_CLIENT, SW_SERVER, "tcp", 8080), "accepted as 10.40.3.100"),
    (case(SW_CLIENT, SW_SERVER, "icmp"), "accepted"),
    (case(SW_CLIENT, SW_SERVER, "tcp", 8081), "dropped"),
    (case(SW_CLIENT, SW_SERVER, "ack", 8080), "dropped"),
    # a balancer's health probe through the firewall to the far side's balancer link
    (case("10.40.2.50", "10.40.3.50", "icmp"), "accepted"),
]
SW_INBOUND = [
    (case(SW_SERVER, SW_CLIENT, "tcp", 8080), "dropped"),
]
# The same over IPv6 (the example is dual stack): routed, the client seen as itself.
SW6_CLIENT, SW6_SERVER = "2001:db8:40:1::10", "2001:db8:40:4::10"
SW6_CASES = [
    (case(SW6_CLIENT, SW6_SERVER, "tcp", 8080), "accepted as " + SW6_CLIENT),
    (case(SW6_CLIENT, SW6_SERVER, "icmp"), "accepted"),
    (case(SW6_CLIENT, SW6_SERVER, "tcp", 8081), "dropped"),
    (case(SW6_CLIENT, SW6_SERVER, "ack", 8080), "dropped"),
]
SW6_INBOUND = [
    (case(SW6_SERVER, SW6_CLIENT, "tcp", 8080), "dropped"),
]


def test_sandwich_firewall(lab):
    results = {}
    for backend in BACKENDS:
        plan = netns.plan_of("sandwich", backend)
        fw = lab.namespace("sw-fw-" + backend[:3])
        # each side's balancer link, the hosts behind it routed through it (the balancers' job)
        inside = lab.host("sw-in-" + backend[:3], fw, "eth1",
                          ["10.40.2.50/24", SW_CLIENT + "/32", "2001:db8:40:2::50/64", SW6_CLIENT + "/128"],
                          [("default", "10.40.2.1"), ("default", "2001:db8:40:2::1")])
        outside = lab.host("sw-out-" + backend[:3], fw, "eth2",
                           ["10.40.3.50/24", SW_SERVER + "/32", "2001:db8:40:3::50/64", SW6_SERVER + "/128"],
                           [("10.40.3.100/32", "10.40.3.1"), ("10.40.1.0/24", "10.40.3.1"),
                            ("2001:db8:40:1::/64", "2001:db8:40:3::1")])
        for interface, address in (("eth1", "10.40.2.1/24"), ("eth2", "10.40.3.1/24"),
                                   ("eth1", "2001:db8:40:2::1/64"), ("eth2", "2001:db8:40:3::1/64")):
            netns.add_address(fw, address, interface)
        for network, via in (("10.40.1.0/24", "10.40.2.50"), ("10.40.4.0/24", "10.40.3.50"),
                             ("2001:db8:40:1::/64", "2001:db8:40:2::50"), ("2001:db8:40:4::/64", "2001:db8:40:3::50")):
            run(fw, "ip", "route", "add", network, "via", via)
        load_rules(lab, fw, plan, "sw-fw1")
        seen = lab.serve(outside, tcp_ports=[8080, 8081])
        lab.serve(inside, tcp_ports=[8080])
        results[backend] = outcomes(lab, inside, cases_of(SW_CASES + SW6_CASES), seen)
        results[backend].update(outcomes(lab, outside, cases_of(SW_INBOUND + SW6_INBOUND)))
    assert_table(results, SW_CASES + SW_INBOUND + SW6_CASES + SW6_INBOUND)


SW_SERVERS = netns.addresses("10.40.4.0/24", 100, 32)  # clear of the balancers' .21, .22
SW6_SERVERS = netns.addresses("2001:db8:40:4::/64", 0x100, 32)
# What the probe table of each balancer keeps: the marks its rules gave (set after mangle, read before routing).
MARKS_TABLE = """
table ip fwq {
    set seen { type ipv4_addr . ipv4_addr . mark; flags dynamic; size 1024; }
    chain record {
        type filter hook prerouting priority -140; policy accept;
        meta l4proto udp udp dport 9 add @seen { ip saddr . ip daddr . meta mark }
    }
}
"""


MARKS_TABLE6 = MARKS_TABLE.replace("table ip fwq", "table ip6 fwq").replace("ipv4_addr", "ipv6_addr").replace(
    "ip saddr . ip daddr", "ip6 saddr . ip6 daddr")


def _marks(namespace, key, family="ip"):
    """{server address: mark} of the UDP packets the balancer saw; key: the element's field holding the server."""
    listed = run(namespace, "nft", "-j", "list", "set", family, "fwq", "seen")
    found = {}
    for item in netns.json.loads(listed)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            fields = element["concat"] if "concat" in element else element["elem"]["val"]["concat"]
            found[fields[key]] = fields[2]
    return found


def test_sandwich_balancers_pick_one_firewall_for_both_directions(lab):
    """A flow's packets out (inside balancer, hashed on the destination) and back (outside balancer, on the
    source) carry the same bucket mark: the same server address, the same firewall, whichever backend,
    in both families (IPv6 is routed: the replies go to the client itself)."""
    buckets = {}
    for backend in BACKENDS:
        plan = netns.plan_of("sandwich", backend)
        inner = lab.namespace("sw-lbi-" + backend[:3])
        outer = lab.namespace("sw-lbo-" + backend[:3])
        front_in = lab.host("sw-fin-" + backend[:3], inner, "eth2", ["10.40.1.10/24", SW6_CLIENT + "/64"],
                            [("default", "10.40.1.11"), ("default", "2001:db8:40:1::11")])
        front_out = lab.host("sw-fout-" + backend[:3], outer, "eth1",
                             ["10.40.4.9/24", "2001:db8:40:4::9/64"] + [address + "/32" for address in SW_SERVERS]
                             + [address + "/128" for address in SW6_SERVERS],
                             [("default", "10.40.4.21"), ("default", "2001:db8:40:4::21")])
        lab.link(inner, "eth1", lab.namespace("sw-fwl-" + backend[:3]), "eth0")
        lab.link(outer, "eth2", lab.namespace("sw-fwr-" + backend[:3]), "eth0")
        for namespace, interface, address in ((inner, "eth2", "10.40.1.11/24"), (inner, "eth1", "10.40.2.11/24"),
                                              (outer, "eth1", "10.40.4.21/24"), (outer, "eth2", "10.40.3.21/24"),
                                              (inner, "eth2", "2001:db8:40:1::11/64"),
                                              (outer, "eth1", "2001:db8:40:4::21/64")):
            netns.add_address(namespace, address, interface)
        for balancer, host in ((inner, "sw-lbi1"), (outer, "sw-lbo1")):
            load_rules(lab, balancer, plan, host)
            run(balancer, "nft", "-f", "-", stdin=MARKS_TABLE)
            run(balancer, "nft", "-f", "-", stdin=MARKS_TABLE6)
        # out: client -> every server; back: every server -> the cluster's SNAT address (IPv4), the client (IPv6)
        lab.probe(front_in, [case("10.40.1.10", server, "udp-send", 9) for server in SW_SERVERS]
                  + [case(SW6_CLIENT, server, "udp-send", 9) for server in SW6_SERVERS])
        lab.probe(front_out, [case(server, "10.40.3.100", "udp-send", 9) for server in SW_SERVERS]
                  + [case(server, SW6_CLIENT, "udp-send", 9) for server in SW6_SERVERS])
        for family, servers in (("ip", SW_SERVERS), ("ip6", SW6_SERVERS)):
            # the datagrams were sent; wait until both balancers have seen them all
            netns.wait_for(lambda: len(_marks(inner, 1, family)) == len(_marks(outer, 0, family)) == len(servers))
            out = _marks(inner, 1, family)
            back = _marks(outer, 0, family)
            assert sorted(out) == sorted(back) == sorted(servers), (backend, family, out, back)
            assert out == back, (backend, family)
            marks = set(out.values())
            assert marks <= set(range(0x100, 0x110)), (backend, family, marks)  # the plan's 16 buckets from 0x100
            assert len(marks) >= 8, (backend, family, marks)  # spread over the buckets, not one
            buckets[backend, family] = out
    assert len(buckets) == 2 * len(BACKENDS)
