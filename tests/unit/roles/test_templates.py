"""Render the roles' templates from real plans and check them with the daemons' own checkers.

The roles write these files through ``validate:``; here every variant the model can produce is
put through the same checkers (``keepalived -t``, ``iptables-restore --test``) without a host.
The checkers are installed by scripts/setup.sh; where one is missing the test is skipped, not
passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import nftables
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import ipv4_only, load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.golden import cases
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import check, check_conntrackd, render


def variants(example):
    """(label, cluster, nodes): the example and what a user changes most often."""
    cluster, nodes = example
    yield "example", cluster, nodes

    unicast = dict(cluster, fwcluster_vrrp={"advert_int": 0.2, "unicast": True, "preempt": True})
    yield "unicast-subsecond-preempt", unicast, nodes

    one_segment = dict(cluster, fwcluster_segments={"inside": cluster["fwcluster_segments"]["inside"]},
                       fwcluster_nat=[], fwcluster_policy=[],
                       fwcluster_tracking={"upstream": [{"host": "10.10.1.10", "segment": "inside"}]})
    one_segment_nodes = {host: dict(vars_, fwcluster_addresses={"inside": vars_["fwcluster_addresses"]["inside"]})
                         for host, vars_ in nodes.items()}
    yield "one-segment", one_segment, one_segment_nodes

    for transport, mode in (("multicast", "ftfw"), ("tcp", "notrack"), ("udp", "alarm")):
        replication = dict(cluster["fwcluster_replication"], transport=transport, mode=mode)
        yield "replication-%s-%s" % (transport, mode), dict(cluster, fwcluster_replication=replication), nodes

    # upstream tracking needs the replication link (the peers' beacons)
    yield "no-replication", dict(cluster, fwcluster_replication={"enabled": False}, fwcluster_tracking={}), nodes


def plans(example):
    for label, cluster, nodes in variants(example):
        yield label, build_plan(cluster, nodes)


def multipath_plans():
    """The multipath example, unicast with sub-second adverts, and a policy that drops and rejects.

    On the iptables backend (the example runs nftables): these tests read rules.v4.
    """
    cluster, nodes, _balancers = load_inventory("multipath")
    cluster["fwcluster_backend"] = "iptables"
    yield "multipath", build_plan(cluster, nodes)
    unicast = dict(cluster, fwcluster_vrrp={"advert_int": 0.2, "unicast": True})
    yield "multipath-unicast", build_plan(unicast, nodes)
    refusing = dict(cluster, fwcluster_policy=cluster["fwcluster_policy"] + [
        {"name": "no smtp", "from": "inside", "to": "outside", "proto": "tcp", "ports": ["25:26", 465],
         "source": "10.30.1.0/25", "destination": "10.30.2.10", "action": "reject"},
        {"name": "nothing else", "from": "any", "to": "any", "action": "drop"},
        {"name": "ssh to the nodes", "from": "inside", "to": "firewall", "proto": "tcp", "ports": [22],
         "action": "accept"},
    ])
    yield "multipath-reject", build_plan(refusing, nodes)


@pytest.fixture
def node_namespace():
    """A network namespace with eth1..eth3, the interfaces the example plans name (veth pairs:
    this kernel has no dummy driver).

    keepalived -t refuses a configuration whose interfaces do not exist.
    """
    name = "fwcluster-unit-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for interface in ("eth1", "eth2", "eth3"):
            subprocess.run(["ip", "-n", name, "link", "add", interface, "type", "veth",
                            "peer", "name", "peer-" + interface], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", interface, "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def check_script(example):
    """The rendered conntrackd check in a directory only root may write (the configurations name it).

    keepalived -t disables, and so refuses, a track script that is missing or that a user other
    than root could change (enable_script_security), as on a node.
    """
    directory = tempfile.mkdtemp(prefix="fwcluster-unit-", dir="/run")
    path = os.path.join(directory, "fwcluster-check-conntrackd.sh")
    with open(path, "w") as handle:
        handle.write(render("keepalived", "fwcluster-check-conntrackd.sh.j2", build_plan(*example), "pb-fw1"))
    os.chmod(path, 0o750)
    try:
        yield path
    finally:
        shutil.rmtree(directory)


@pytest.mark.skipif(shutil.which("keepalived") is None or os.geteuid() != 0,
                    reason="keepalived -t in a scratch namespace needs keepalived and root")
def test_keepalived_conf_passes_keepalived_t(example, tmp_path, node_namespace, check_script):
    checked = 0
    for label, plan in plans(example):
        for host in plan["nodes"]:
            check(node_namespace + ["keepalived", "-t", "-f"],
                  render("keepalived", "keepalived.conf.j2", plan, host,
                         fwcluster_keepalived_check_script=check_script,
                         fwcluster_keepalived_upstream_script=check_script), tmp_path)
            checked += 1
    assert checked == 14  # 7 variants x 2 nodes


def test_single_segment_notifies_from_the_instance(example):
    cluster, nodes = example
    label, plan = [item for item in plans(example) if item[0] == "one-segment"][0]
    text = render("keepalived", "keepalived.conf.j2", plan, "pb-fw1")
    assert "vrrp_sync_group" not in text
    assert 'notify_master "/etc/keepalived/fwcluster-notify.sh primary inside"' in text


def test_unicast_peers_are_rendered(example):
    label, plan = [item for item in plans(example) if item[0] == "unicast-subsecond-preempt"][0]
    text = render("keepalived", "keepalived.conf.j2", plan, "pb-fw2")
    assert "unicast_src_ip 10.10.1.2" in text
    assert "unicast_peer {\n\t\t10.10.1.1\n\t}" in text
    assert "advert_int 0.2" in text
    assert "nopreempt" not in text


@pytest.mark.skipif(shutil.which("iptables-restore") is None or os.geteuid() != 0,
                    reason="iptables-restore --test needs the tool and root")
def test_rules_pass_iptables_restore_test(example, tmp_path):
    for label, plan in plans(example):
        for host in plan["nodes"]:
            check(["iptables-restore", "--test"], render("firewall", "rules.v4.j2", plan, host), tmp_path)
    check(["ip6tables-restore", "--test"], render("firewall", "rules.v6.j2", plan, host), tmp_path)


def test_conntrackd_conf_follows_the_plan(example):
    rendered = {label: render("conntrackd", "conntrackd.conf.j2", plan, "pb-fw1")
                for label, plan in plans(example) if plan["replication"]}
    assert "IPv4_Destination_Address 192.168.100.2" in rendered["example"]
    assert "Mode FTFW" in rendered["example"]
    assert "IPv4_address 225.0.0.50" in rendered["replication-multicast-ftfw"]
    assert "TCP {" in rendered["replication-tcp-notrack"] and "Mode NOTRACK" in rendered["replication-tcp-notrack"]
    assert "Mode ALARM" in rendered["replication-udp-alarm"]
    # The node's own addresses are ignored; the VIPs are replicated (SNAT to a VIP).
    assert "IPv4_address 10.10.1.1\n" in rendered["example"]
    assert "203.0.113.254" not in rendered["example"]
    # Only the states a peer needs are replicated, filtered in the kernel.
    assert "Filter From Kernelspace {" in rendered["example"]
    assert "SYN_RECV ESTABLISHED CLOSE_WAIT TIME_WAIT CLOSED for TCP" in rendered["example"]


def test_conntrackd_conf_parses(example, tmp_path):
    checked = 0
    for label, plan in plans(example):
        if plan["replication"]:
            check_conntrackd(render("conntrackd", "conntrackd.conf.j2", plan, "pb-fw1"), tmp_path)
            checked += 1
    assert checked >= 4


def test_conntrackd_check_refuses_a_broken_file(example, tmp_path):
    # The parse check itself can fail: a state conntrackd does not know.
    plan = dict(plans(example))["example"]
    text = render("conntrackd", "conntrackd.conf.j2", plan, "pb-fw1").replace("SYN_RECV", "SYN_RECEIVED")
    with pytest.raises(AssertionError, match="syntax error|parsing"):
        check_conntrackd(text, tmp_path)


def test_conntrackd_replicates_every_state_on_an_empty_list(example):
    plan = dict(plans(example))["example"]
    text = render("conntrackd", "conntrackd.conf.j2", plan, "pb-fw1", fwcluster_conntrackd_tcp_states=[])
    assert "State Accept" not in text and "Filter From Kernelspace {" in text


def test_notify_script_drives_conntrackd_only_with_replication(example):
    by_label = dict(plans(example))
    with_replication = render("keepalived", "fwcluster-notify.sh.j2", by_label["example"], "pb-fw1")
    without = render("keepalived", "fwcluster-notify.sh.j2", by_label["no-replication"], "pb-fw1")
    assert "ctd -c" in with_replication and "ctd -n" in with_replication
    assert "ctd " not in without and "conntrackd -C" not in without
    for text in (with_replication, without):
        result = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("keepalived") is None or os.geteuid() != 0,
                    reason="keepalived -t in a scratch namespace needs keepalived and root")
def test_multipath_keepalived_conf_passes_keepalived_t(tmp_path, node_namespace):
    checked = 0
    for label, plan in multipath_plans():
        for host in plan["nodes"]:
            check(node_namespace + ["keepalived", "-t", "-f"],
                  render("keepalived", "keepalived.conf.j2", plan, host), tmp_path)
            checked += 1
    assert checked == 6


# --------------------------------------------------------------------------- hash

def _hash_plan(mutate=None):
    """The hash example's plan on iptables, IPv4 only (as written it is dual stack on nftables:
    the golden snapshot's nft -c checks and tests/netns hold that spelling)."""
    cluster, nodes = ipv4_only(*load_inventory("hash")[:2])
    cluster["fwcluster_backend"] = "iptables"
    if mutate:
        mutate(cluster, nodes)
    return build_plan(cluster, nodes)


def _two_hash_nodes_on_ftfw(cluster, nodes):
    """A _hash_plan mutation: hs-fw1 and hs-fw2 alone, replicating with ftfw (two nodes at most)."""
    del nodes["hs-fw3"]
    cluster["fwcluster_replication"]["mode"] = "ftfw"


def _hash_variants():
    yield "example", _hash_plan()

    def unicast(cluster, nodes):
        cluster["fwcluster_vrrp"] = {"advert_int": 0.3, "unicast": True}
    yield "unicast", _hash_plan(unicast)

    def no_replication(cluster, nodes):
        cluster["fwcluster_replication"] = {"enabled": False}
    yield "no-replication", _hash_plan(no_replication)


@pytest.mark.skipif(shutil.which("keepalived") is None or os.geteuid() != 0,
                    reason="keepalived -t in a scratch namespace needs keepalived and root")
def test_hash_keepalived_conf_passes_keepalived_t(tmp_path, node_namespace, check_script):
    for label, plan in _hash_variants():
        for host in plan["nodes"]:
            text = render("keepalived", "keepalived.conf.j2", plan, host, fwcluster_keepalived_check_script=check_script)
            check(node_namespace + ["keepalived", "-t", "-f"], text, tmp_path)
    assert 'notify_master "/etc/keepalived/fwcluster-notify.sh take 1"' in text
    assert "127.254.51.2/32 dev lo scope host" in text
    assert "preempt_delay 1.0" in text and text.count("nopreempt") == 2


@pytest.mark.skipif(shutil.which("iptables-restore") is None or os.geteuid() != 0,
                    reason="iptables-restore --test needs the tool and root")
def test_multipath_rules_pass_iptables_restore_test(tmp_path):
    for label, plan in multipath_plans():
        for host in plan["nodes"]:
            text = render("firewall", "rules.v4.j2", plan, host)
            assert "*raw" in text and ":fwcluster-request - [0:0]" in text
            check(["iptables-restore", "--test"], text, tmp_path)


def test_multipath_keepalived_two_instances_opposite_masters_no_sync_group():
    plan = dict(multipath_plans())["multipath"]
    fw1 = render("keepalived", "keepalived.conf.j2", plan, "mp-fw1")
    fw2 = render("keepalived", "keepalived.conf.j2", plan, "mp-fw2")
    for text in (fw1, fw2):
        assert "vrrp_sync_group" not in text and "nopreempt" not in text
        assert text.count("vrrp_instance ") == 4  # a segment's IPv4 and IPv6 VIPs (the example is dual stack)
        assert 'notify_master "/etc/keepalived/fwcluster-notify.sh primary outside"' in text
    inside_fw1 = fw1.split("vrrp_instance duo_inside")[1].split("vrrp_instance")[0]
    inside_fw2 = fw2.split("vrrp_instance duo_inside")[1].split("vrrp_instance")[0]
    assert "priority 254" in inside_fw1 and "priority 250" in inside_fw2
    assert "10.30.1.254/24 dev eth1" in inside_fw1
    inside6_fw1 = fw1.split("vrrp_instance duo_inside_v6")[1].split("vrrp_instance")[0]
    inside6_fw2 = fw2.split("vrrp_instance duo_inside_v6")[1].split("vrrp_instance")[0]
    assert "priority 254" in inside6_fw1 and "priority 250" in inside6_fw2
    assert "2001:db8:30:1::fe/64 dev eth1" in inside6_fw1


def test_multipath_notify_script_records_the_segment_and_drives_no_conntrackd():
    plan = dict(multipath_plans())["multipath"]
    text = render("keepalived", "fwcluster-notify.sh.j2", plan, "mp-fw1")
    assert "duo_inside, duo_inside_v6, duo_outside, duo_outside_v6" in text
    assert "conntrackd" not in text.split("set -u", 1)[1]
    result = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_notify_script_renders_without_a_sync_group(example):
    """A single-segment cluster has no sync group: the header must not dereference it."""
    plan = dict(plans(example))["one-segment"]
    text = render("keepalived", "fwcluster-notify.sh.j2", plan, "pb-fw1")
    assert "every transition of an instance" in text
    result = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_hash_rules_pass_iptables_restore_test(tmp_path):
    for label, plan in _hash_variants():
        for host in plan["nodes"]:
            text = render("firewall", "rules.v4.j2", plan, host)
            check(["iptables-restore", "--test"], text, tmp_path)
            # What the hook adds at runtime is valid in the rendered table too.
            owned = text.replace(":FWCLUSTER-OWN - [0:0]\n", ":FWCLUSTER-OWN - [0:0]\n"
                                 + "\n".join(plan["hash"]["owner_rules"]) + "\n")
            check(["iptables-restore", "--test"], owned, tmp_path)


def test_hash_scripts_are_valid_shell():
    plan = _hash_plan()
    scripts = [
        render("firewall", "fwcluster-hash-owner.j2", plan, "hs-fw2"),
        render("firewall", "fwcluster-hash-links.j2", plan, "hs-fw2"),
        render("keepalived", "fwcluster-notify-hash.sh.j2", plan, "hs-fw2"),
    ]
    for text in scripts:
        result = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr + text
    owner, links, notify = scripts
    assert "1) echo '-m cluster --cluster-local-nodemask 0x00000002 --cluster-total-nodes 3" in owner
    assert 'ids="0 1 2"' in owner
    assert "ip maddress add 01:00:5e:14:01:fe dev eth1" in links
    assert "--mangle-mac-d OWN_MAC(eth2)'" in links
    assert '-e "s/OWN_MAC(eth2)/$(mac_of eth2)/"' in links
    # what it set up is listed, so that a later run removes what the plan no longer names (tests/netns)
    assert "planned='address eth1 10.20.1.254/24|maddress eth1 01:00:5e:14:01:fe|" in links
    assert "nft delete table ip6 fwcluster_nd" in links  # IPv4 only: no neighbour rewrite
    # no internal cache to refill (notrack: a resync is answered from the kernel table)
    assert "own_id=1" in notify and " -R" not in notify
    # a taken id's flows leave the external cache for the kernel table before the hook lets its packets in
    commit = notify.index("conntrackd -C /etc/conntrackd/conntrackd.conf -c")
    assert commit < notify.index('/usr/local/sbin/fwcluster-hash-owner "$action" "$id"')
    unit = render("firewall", "fwcluster-netfilter.service.j2", plan, "hs-fw2")
    assert "ExecStartPost=/usr/local/sbin/fwcluster-hash-owner sync" in unit
    dropin = render("keepalived", "keepalived-dropin.conf.j2", plan, "hs-fw2")
    assert "ExecStopPost=/usr/local/sbin/fwcluster-hash-owner release-all" in dropin
    assert "ExecStartPre=-/usr/local/sbin/fwcluster-resync-gate wait\n" in dropin


def test_hash_conntrackd_keeps_the_peers_flows_in_its_external_cache(tmp_path):
    text = render("conntrackd", "conntrackd.conf.j2", _hash_plan(), "hs-fw1")
    assert "Mode NOTRACK" in text and "DisableExternalCache Off" in text and "StartupResync" not in text
    # a resync is answered from the kernel table: the node's own flows and those of the ids it took
    assert "DisableInternalCache On" in text
    assert "IPv4_address 225.0.0.51" in text
    check_conntrackd(text, tmp_path)


def test_hash_conntrackd_writes_the_peers_flows_into_the_kernel_when_asked(tmp_path):
    plan = _hash_plan(lambda cluster, nodes: cluster["fwcluster_replication"].update(peer_flows="kernel"))
    text = render("conntrackd", "conntrackd.conf.j2", plan, "hs-fw1")
    assert "DisableExternalCache On" in text and "DisableExternalCache Off" not in text
    assert "DisableInternalCache On" in text   # the kernel table answers a returning owner's resync
    check_conntrackd(text, tmp_path)


def test_two_hash_nodes_on_ftfw_keep_the_internal_cache(tmp_path):
    plan = _hash_plan(_two_hash_nodes_on_ftfw)
    text = render("conntrackd", "conntrackd.conf.j2", plan, "hs-fw1")
    assert "Mode FTFW" in text and "DisableInternalCache" not in text   # FTFW resends from it
    check_conntrackd(text, tmp_path)
    # so the notify hook refills it after a take: the taken flows are resent at their owner's resync
    notify = render("keepalived", "fwcluster-notify-hash.sh.j2", plan, "hs-fw1")
    assert notify.index('fwcluster-hash-owner "$action" "$id"') < notify.index("conntrackd.conf -R")


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="needs nft -c (root)")
@pytest.mark.parametrize("name", ["primary_backup", "multipath", "hash", "sandwich"] + [
    variant for _example, variant, _change in cases.VARIANTS if "nftables" in variant])
def test_nftables_rules_are_the_backends_tables_and_pass_nft_check(name, tmp_path):
    (cluster, nodes, balancers), = [inventory[1:] for inventory in cases.inventories() if inventory[0] == name]
    plan = build_plan(dict(cluster, fwcluster_backend="nftables"), nodes, balancers or None)
    hosts = dict(plan["nodes"], **plan.get("balancers", {}))
    for host, part in hosts.items():
        text = render("firewall", "rules.nft.j2", plan, host)
        # the template prints the backend's tables as table_text does: one layout, kept in one place
        body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
        assert body == nftables.table_text(part["ruleset"] + part["ruleset_ipv6"]), host
        assert "flush ruleset" not in text
        check(["nft", "-c", "-f"], text, tmp_path)
        if "hash" in part:
            # what the owner hook adds at runtime fits the rendered tables, every family's
            owned = text + "".join("add rule %s %s\n" % (family["backend_chain"], spec)
                                   for family in plan["hash"]["families"] for spec in family["owner_specs"])
            check(["nft", "-c", "-f"], owned, tmp_path)
            neighbours = part["hash"]["neighbours"]
            if neighbours:
                # the links script's ND table, with what it reads on the node in place
                table = re.sub(r"OWN_MAC_HEX\(\w+\)", "0x020000000001", "\n".join(neighbours["lines"]) + "\n")
                assert neighbours["command"] == "nft -f -"
                check(["nft", "-c", "-f"], re.sub(r"ND_WORD\(\w+\)", "0xcb66", table), tmp_path)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by scripts/setup.sh")
@pytest.mark.parametrize("example, host", [("primary_backup", "pb-fw1"), ("sandwich", "sw-lbi2"), ("hash", "hs-fw2")])
def test_routes_script_passes_shellcheck(example, host, tmp_path):
    cluster, nodes, balancers = load_inventory(example)
    if example == "primary_backup":
        cluster["fwcluster_segments"]["inside"].update(routes=["10.50.0.0/16", "2001:db8:28::/48"],
                                                       gateway=["10.10.1.20", "2001:db8:1::20"])
    path = tmp_path / "fwcluster-routes"
    path.write_text(render("firewall", "fwcluster-routes.j2", build_plan(cluster, nodes, balancers), host))
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + path.read_text()
