"""The hash architecture's part of the cluster model (inventories/hash)."""

from __future__ import annotations

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan


def test_example_plan(hash_example):
    plan = build_plan(*hash_example)
    assert plan["architecture"] == "hash"
    assert plan["hash"]["total_nodes"] == 3
    assert plan["hash"]["seed_hex"] == "0x5eed1234"
    # 01:00:5e + the VIP's low 23 bits: 10.20.1.254 and 198.51.100.254.
    assert plan["hash"]["multicast_macs"] == {"inside": "01:00:5e:14:01:fe", "outside": "01:00:5e:33:64:fe"}
    # Node id k is xt_cluster node k+1, mask bit k, printed as iptables-save prints it; the comment names it.
    assert plan["hash"]["owner_rules"][2] == (
        "-A FWCLUSTER-OWN -m cluster --cluster-local-nodemask 0x00000004 --cluster-total-nodes 3 "
        '--cluster-hash-seed 0x5eed1234 -m comment --comment "fwcluster node id 2" '
        "-j MARK --set-xmark 0x40000000/0x40000000")
    assert plan["hash"]["owner_specs"][0].startswith("-m cluster --cluster-local-nodemask 0x00000001 ")
    assert plan["hash"]["backend_chain"] == "FWCLUSTER-OWN"
    assert plan["hash"]["owner_comment"] == "fwcluster node id "
    assert [plan["nodes"][h]["hash"]["cluster_node"] for h in ("hs-fw1", "hs-fw2", "hs-fw3")] == [1, 2, 3]
    assert plan["nodes"]["hs-fw3"]["hash"]["own_mask"] == "0x00000004"
    assert plan["vrrp"]["preempt"] is True and plan["vrrp"]["preempt_delay"] == 1.0


def test_example_plan_on_nftables(hash_example):
    cluster, nodes = hash_example[:2]
    plan = build_plan(dict(cluster, fwcluster_backend="nftables"), nodes)
    # Node id k is jhash's value k (tests/netns proves it against xt_cluster in the kernel).
    assert plan["hash"]["backend_chain"] == "ip fwcluster mangle_FWCLUSTER-OWN"
    assert plan["hash"]["owner_specs"][2] == (
        "jhash ct original ip saddr mod 3 seed 0x5eed1234 2 meta pkttype set host counter "
        'meta mark set meta mark & 0xbfffffff ^ 0x40000000 comment "fwcluster node id 2"')
    assert plan["hash"]["owner_rules"][2] == "ip fwcluster mangle_FWCLUSTER-OWN " + plan["hash"]["owner_specs"][2]
    links = plan["nodes"]["hs-fw1"]["hash"]
    assert links["arp"]["command"] == "nft -f -"
    assert links["links"][0]["arp_rules"] == [
        'arp fwcluster mangle_output oifname "eth1" arp saddr ip 10.20.1.254 arp hlen 6 '
        "arp saddr ether set 01:00:5e:14:01:fe",
        'arp fwcluster mangle_input iifname "eth1" arp hlen 6 arp daddr ether 01:00:5e:14:01:fe '
        "arp daddr ether set OWN_MAC(eth1)"]


def test_one_instance_per_node_id(hash_example):
    plan = build_plan(*hash_example)
    fw2 = plan["nodes"]["hs-fw2"]["keepalived"]
    assert fw2["sync_group"] is None
    assert [i["name"] for i in fw2["instances"]] == ["mesh_id0", "mesh_id1", "mesh_id2"]
    assert [i["vrid"] for i in fw2["instances"]] == [51, 52, 53]
    # Its own instance: highest priority, preempts after preempt_delay; the next id's owner is the heir.
    assert [i["priority"] for i in fw2["instances"]] == [250, 254, 246]
    assert [i["preempt"] for i in fw2["instances"]] == [False, True, False]
    assert fw2["instances"][1]["preempt_delay"] == 1.0
    assert fw2["instances"][1]["notify"] == {"master": "take 1", "backup": "release 1",
                                             "fault": "release 1", "stop": "release 1"}
    assert fw2["instances"][1]["vips"] == ["127.254.51.2/32"] and fw2["instances"][1]["vip_interface"] == "lo"
    assert fw2["instances"][0]["track_interfaces"] == ["eth2", "eth3"]
    # For each id exactly one node has the top priority, and priorities never tie.
    for index in range(3):
        priorities = [plan["nodes"][h]["keepalived"]["instances"][index]["priority"] for h in plan["nodes"]]
        assert len(set(priorities)) == 3 and max(priorities) == 254


def test_ruleset_marks_owned_flows_and_drops_the_rest(hash_example):
    plan = build_plan(*hash_example)
    ruleset = {t["table"]: t for t in plan["nodes"]["hs-fw1"]["ruleset"]}
    mangle = ruleset["mangle"]
    assert mangle["user_chains"] == ["FWCLUSTER-OWN"]
    assert mangle["rules"][:4] == [
        "-A PREROUTING -d 10.20.1.1/32 -i eth1 -j ACCEPT",
        "-A PREROUTING -d 224.0.0.0/4 -i eth1 -j ACCEPT",
        "-A PREROUTING -i eth1 -j FWCLUSTER-OWN",
        "-A PREROUTING -i eth1 -m mark ! --mark 0x40000000/0x40000000 -j DROP",
    ]
    # The boot ruleset owns nothing: keepalived hands the ids out.
    assert not [rule for rule in mangle["rules"] if "FWCLUSTER-OWN -m cluster" in rule]
    forward = ruleset["filter"]["rules"]
    reply_drop = [rule for rule in forward if "reply direction" in rule]
    assert reply_drop == ['-A FORWARD -i eth2 -o eth1 -p udp --sport 7000 -m conntrack --ctstate NEW -m comment '
                          '--comment "inside clients to the udp echo service (reply direction)" -j DROP']
    assert forward.index(reply_drop[0]) < forward.index(
        [rule for rule in forward if "udp echo service\" -j ACCEPT" in rule][0])
    assert plan["nodes"]["hs-fw1"]["sysctls"]["net.netfilter.nf_conntrack_tcp_loose"] == "0"


def test_conntrackd_keeps_the_peers_flows_for_a_commit_at_takeover(hash_example):
    plan = build_plan(*hash_example)
    conntrackd = plan["nodes"]["hs-fw1"]["conntrackd"]
    # notrack: a resync is answered from the kernel table, no copy of the node's flows in conntrackd
    assert conntrackd["external_cache"] is True and conntrackd["internal_cache"] is False
    assert "startup_resync" not in conntrackd
    # a returning node's keepalived starts once its flows are in (it preempts)
    assert conntrackd["resync_gate"]["holds"] == "keepalived"
    assert plan["nodes"]["hs-fw1"]["replication"]["peers"] == ["192.168.101.2", "192.168.101.3"]


def test_peer_flows_in_the_kernel_leave_nothing_to_commit(hash_example):
    cluster, nodes = hash_example
    cluster["fwcluster_replication"]["peer_flows"] = "kernel"
    plan = build_plan(cluster, nodes)
    assert plan["replication"]["peer_flows"] == "kernel"
    for node in plan["nodes"].values():
        assert node["conntrackd"]["external_cache"] is False and node["conntrackd"]["internal_cache"] is False
    cluster["fwcluster_replication"]["peer_flows"] = "external_cache"   # the default, written out
    assert build_plan(cluster, nodes)["nodes"]["hs-fw1"]["conntrackd"]["external_cache"] is True


def test_ftfw_keeps_the_internal_cache(hash_example):
    # FTFW resends and answers a resync from its internal cache: two nodes, kept
    cluster, nodes = hash_example
    del nodes["hs-fw3"]
    cluster["fwcluster_replication"]["mode"] = "ftfw"
    for peer_flows in ("external_cache", "kernel"):
        cluster["fwcluster_replication"]["peer_flows"] = peer_flows
        conntrackd = build_plan(cluster, nodes)["nodes"]["hs-fw1"]["conntrackd"]
        assert conntrackd["internal_cache"] is True
        assert conntrackd["external_cache"] is (peer_flows == "external_cache")


def test_seed_derived_from_the_name_when_absent(hash_example):
    cluster, nodes = hash_example
    del cluster["fwcluster_hash_seed"]
    first = build_plan(cluster, nodes)["hash"]["seed"]
    assert first == build_plan(cluster, nodes)["hash"]["seed"]
    cluster["fwcluster_name"] = "other"
    assert build_plan(cluster, nodes)["hash"]["seed"] != first


def test_multicast_mac_from_the_inventory(hash_example):
    cluster, nodes = hash_example
    cluster["fwcluster_segments"]["inside"]["multicast_mac"] = "01:00:5E:7F:00:01"
    assert build_plan(cluster, nodes)["hash"]["multicast_macs"]["inside"] == "01:00:5e:7f:00:01"


def test_no_replication_is_allowed(hash_example):
    cluster, nodes = hash_example
    cluster["fwcluster_replication"] = {"enabled": False}
    plan = build_plan(cluster, nodes)
    assert plan["nodes"]["hs-fw1"]["conntrackd"] is None
    assert plan["nodes"]["hs-fw1"]["keepalived"]["instances"][0]["track_interfaces"] == ["eth2"]


def _set(cluster, path, value):
    target = cluster
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


REFUSALS = [
    ("ftfw beyond two nodes", ("fwcluster_replication", "mode"), "ftfw",
     "cluster mesh", "fwcluster_replication.mode", "use notrack"),
    ("alarm", ("fwcluster_replication", "mode"), "alarm",
     "cluster mesh", "fwcluster_replication.mode", "cannot answer a resync request"),
    ("udp with three nodes", ("fwcluster_replication",),
     {"interface": "eth3", "transport": "udp", "mode": "notrack"},
     "cluster mesh", "fwcluster_replication.transport", "exactly 2 nodes"),
    ("peer flows nowhere known", ("fwcluster_replication", "peer_flows"), "internal_cache",
     "cluster mesh", "fwcluster_replication.peer_flows", "external_cache, kernel"),
    ("no preemption", ("fwcluster_vrrp", "preempt"), False,
     "cluster mesh", "fwcluster_vrrp.preempt", "must be true"),
    ("seed not 32 bits", ("fwcluster_hash_seed",), 1 << 32,
     "cluster mesh", "fwcluster_hash_seed", "0..4294967295"),
    ("seed negative", ("fwcluster_hash_seed",), -1,
     "cluster mesh", "fwcluster_hash_seed", "0..4294967295"),
    ("seed string", ("fwcluster_hash_seed",), "0x5eed",
     "cluster mesh", "fwcluster_hash_seed", "must be an integer"),
    ("unicast mac", ("fwcluster_segments", "inside", "multicast_mac"), "02:00:5e:00:01:01",
     "cluster mesh", "fwcluster_segments.inside.multicast_mac", "not an IPv4 multicast MAC"),
    ("mac above the 23 bits", ("fwcluster_segments", "inside", "multicast_mac"), "01:00:5e:80:00:01",
     "cluster mesh", "fwcluster_segments.inside.multicast_mac", "not an IPv4 multicast MAC"),
    ("link-local group mac", ("fwcluster_segments", "inside", "multicast_mac"), "01:00:5e:00:00:12",
     "cluster mesh", "fwcluster_segments.inside.multicast_mac", "224.0.0.18"),
    ("duplicate mac", ("fwcluster_segments", "outside", "multicast_mac"), "01:00:5e:14:01:fe",
     "cluster mesh", "fwcluster_segments.outside.multicast_mac", "already the multicast MAC of segment inside"),
    ("vrids past 255", ("fwcluster_segments", "inside", "vrid"), 254,
     "cluster mesh", "fwcluster_segments.inside.vrid", "254..256"),
    ("masquerade", ("fwcluster_nat",), [{"type": "masquerade", "out": "outside"}],
     "cluster mesh", "fwcluster_nat[0].type", "not supported by the hash architecture"),
    ("preempt_delay NaN", ("fwcluster_vrrp", "preempt_delay"), float("nan"),
     "cluster mesh", "fwcluster_vrrp.preempt_delay", "must be a finite number in 0..1000, got nan"),
]


@pytest.mark.parametrize("label,path,value,host,variable,fragment",
                         REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal(hash_example, label, path, value, host, variable, fragment):
    cluster, nodes = hash_example
    _set(cluster, path, value)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert (caught.value.host, caught.value.variable) == (host, variable), str(caught.value)
    assert fragment in caught.value.rule


def test_derived_mac_in_the_link_local_range_is_refused(hash_example):
    cluster, nodes = hash_example
    # 10.0.0.18 -> 01:00:5e:00:00:12, VRRP's own group MAC
    cluster["fwcluster_segments"]["inside"]["vip"] = "10.0.0.18/24"
    for index, host in enumerate(sorted(nodes)):
        nodes[host]["fwcluster_addresses"]["inside"] = "10.0.0.%d/24" % (index + 1)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_segments.inside.multicast_mac"


def test_duplicate_and_missing_node_ids_name_the_host(hash_example):
    cluster, nodes = hash_example
    nodes["hs-fw3"]["fwcluster_node_id"] = 0
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert (caught.value.host, caught.value.variable) == ("hs-fw3", "fwcluster_node_id")
    nodes["hs-fw3"]["fwcluster_node_id"] = 5
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert "0..2" in caught.value.rule


def test_replication_needs_addresses(hash_example):
    cluster, nodes = hash_example
    del nodes["hs-fw2"]["fwcluster_replication_address"]
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert (caught.value.host, caught.value.variable) == ("hs-fw2", "fwcluster_replication_address")


def test_thirty_two_nodes_at_most(hash_example):
    cluster, nodes = hash_example
    cluster["fwcluster_replication"] = {"enabled": False}
    template = nodes["hs-fw1"]
    many = {}
    for index in range(32):
        many["fw%d" % index] = dict(template, fwcluster_node_id=index,
                                    fwcluster_addresses={"inside": "10.20.1.%d/24" % (index + 101),
                                                         "outside": "198.51.100.%d/24" % (index + 1)})
    plan = build_plan(cluster, many)
    assert plan["hash"]["owner_rules"][31].split()[5] == "0x80000000"
    assert plan["nodes"]["fw31"]["keepalived"]["instances"][0]["vrid"] == 51
    many["fw32"] = dict(template, fwcluster_node_id=32)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, many)
    assert "at most 32" in caught.value.rule


@pytest.mark.parametrize("fixture,value,fragment", [
    ("example", "kernel", "only hash clusters may write them into the kernel"),
    ("sandwich", "external_cache", "no VRRP transition there to commit"),
])
def test_peer_flows_other_architectures_refuse(request, fixture, value, fragment):
    inventory = request.getfixturevalue(fixture)
    inventory[0]["fwcluster_replication"]["peer_flows"] = value
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory)
    assert caught.value.variable == "fwcluster_replication.peer_flows"
    assert caught.value.rule.startswith(value + ": ") and fragment in caught.value.rule


def test_peer_flows_refused_with_alarm(example):
    cluster, nodes = example
    cluster["fwcluster_replication"].update(mode="alarm", peer_flows="external_cache")
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_replication.peer_flows" and "keeps no caches" in caught.value.rule


def test_hash_only_keys_refused_elsewhere(example):
    cluster, nodes = example
    cluster["fwcluster_segments"]["inside"]["multicast_mac"] = "01:00:5e:01:02:03"
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_segments.inside.multicast_mac"
    del cluster["fwcluster_segments"]["inside"]["multicast_mac"]
    cluster["fwcluster_vrrp"]["preempt_delay"] = 3
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_vrrp.preempt_delay"
