"""The hash links script (roles/firewall/templates/fwcluster-hash-links.j2) run again on a changed plan.

A node's segment links after a run are what the plan names and nothing an
earlier run set up for a plan that changed since: a VIP moved, the IPv6 VIPs
taken off the cluster (their addresses and the neighbour rewrite table go), a
segment's multicast MAC changed.
"""

from __future__ import annotations

import json

from ansible_collections.fwcluster.netfilter.tests.netns import netns
from ansible_collections.fwcluster.netfilter.tests.unit.examples import ipv4_only

HOST = "hs-fw1"


def links(namespace):
    """{interface: (addresses with prefix, link-layer multicast addresses)} of eth1 and eth2."""
    state = {}
    for interface in ("eth1", "eth2"):
        listed = json.loads(netns.run(namespace, "ip", "-j", "address", "show", "dev", interface))
        addresses = ["%s/%d" % (entry["local"], entry["prefixlen"]) for entry in listed[0]["addr_info"]
                     if entry.get("scope") == "global"]
        multicast = netns.run(namespace, "ip", "maddress", "show", "dev", interface).split()
        # sorted: the kernel lists groups as joined, and it joins an IPv6 address's
        # solicited-node group from a work queue, before or after the script's MACs
        groups = [multicast[i + 1] for i, word in enumerate(multicast) if word == "link"]
        state[interface] = (sorted(addresses), sorted(groups))
    return state


def nd_table(namespace):
    return "table ip6 fwcluster_nd" in netns.run(namespace, "nft", "list", "tables")


def test_a_second_run_removes_what_the_plan_no_longer_names(lab):
    fw = lab.namespace("hl-fw")
    for interface, own in (("eth1", "10.20.1.1/24"), ("eth2", "198.51.100.1/24")):
        lab.host("hl-" + interface, fw, interface, [])
        netns.add_address(fw, own, interface)  # the node's own address, set up before the VIPs
    dual = netns.plan_of("hash", "nftables")  # the example: dual stack
    netns.hash_scripts(lab, fw, dual, HOST)
    before = links(fw)
    assert "2001:db8:20:1::fe/64" in before["eth1"][0] and "10.20.1.254/24" in before["eth1"][0]
    assert "01:00:5e:14:01:fe" in before["eth1"][1] and nd_table(fw)

    # The IPv6 VIPs taken off, the inside VIP moved (its MAC with it), the outside MAC changed.
    def changed(cluster, nodes):
        ipv4_only(cluster, nodes)
        cluster["fwcluster_segments"]["inside"]["vip"] = "10.20.1.253/24"
        cluster["fwcluster_segments"]["outside"]["multicast_mac"] = "01:00:5e:33:64:fd"
    netns.hash_scripts(lab, fw, netns.plan_of("hash", "nftables", changed), HOST)
    after = links(fw)
    assert after["eth1"][0] == ["10.20.1.1/24", "10.20.1.253/24"]
    assert after["eth2"][0] == ["198.51.100.1/24", "198.51.100.254/24"]
    # the inside MAC follows the VIP (01:00:5e + its low 23 bits), the outside one was written
    assert "01:00:5e:14:01:fd" in after["eth1"][1] and "01:00:5e:14:01:fe" not in after["eth1"][1]
    assert "01:00:5e:33:64:fd" in after["eth2"][1] and "01:00:5e:33:64:fe" not in after["eth2"][1]
    assert not nd_table(fw)

    # The example again: everything back, and a third run with nothing changed changes nothing.
    netns.hash_scripts(lab, fw, dual, HOST)
    assert links(fw) == before and nd_table(fw)
    netns.hash_scripts(lab, fw, dual, HOST)
    assert links(fw) == before
