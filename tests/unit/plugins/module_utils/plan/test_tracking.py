"""fwcluster_tracking: which nodes track their conntrackd and upstream hosts, how keepalived is told, the bounds."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render


def _plan(name, **tracking):
    cluster, nodes, balancers = load_inventory(name)
    if tracking:
        cluster = dict(cluster, fwcluster_tracking=tracking)
    return build_plan(cluster, nodes, balancers)


@pytest.mark.parametrize("name, tracked", [
    ("primary_backup", True),   # replication and VRRP on the nodes
    ("hash", True),
    ("multipath", False),       # no replication
    ("sandwich", False),        # replication, but the balancers hold the VIPs
])
def test_conntrackd_is_tracked_where_it_replicates_and_the_nodes_run_vrrp(name, tracked):
    plan = _plan(name, upstream=[])
    assert plan["tracking"]["conntrackd"] is tracked
    for node in plan["nodes"].values():
        keepalived = node["keepalived"]
        if keepalived is None:
            assert not tracked
            continue
        scripts = keepalived.get("scripts", [])
        assert [script["name"] for script in scripts] == (["fwcluster_conntrackd"] if tracked else [])
        for instance in keepalived["instances"]:
            assert instance.get("track_scripts", []) == (["fwcluster_conntrackd"] if tracked else [])


UPSTREAM = [{"host": "203.0.113.10", "segment": "outside"}, {"host": "10.10.1.10", "segment": "inside"}]


def test_upstream_hosts_are_tracked_beside_conntrackd_through_each_nodes_interface():
    plan = _plan("primary_backup", upstream=UPSTREAM, hold_down=30)
    assert plan["tracking"]["upstream"] == UPSTREAM and plan["tracking"]["hold_down"] == 30
    for host in ("pb-fw1", "pb-fw2"):
        node = plan["nodes"][host]
        assert node["upstream"] == [{"host": "203.0.113.10", "interface": "eth2"},
                                    {"host": "10.10.1.10", "interface": "eth1"}]
        assert [script["name"] for script in node["keepalived"]["scripts"]] == ["fwcluster_conntrackd",
                                                                                "fwcluster_upstream"]
        for instance in node["keepalived"]["instances"]:
            assert instance["track_scripts"] == ["fwcluster_conntrackd", "fwcluster_upstream"]
    # each node counts its peer's beacons (128-byte pings) on the replication link (the example runs nftables)
    assert plan["tracking"]["peer_counters_command"] == "nft list chain ip fwcluster raw_prerouting"
    raw = plan["nodes"]["pb-fw1"]["ruleset"][0]["chains"][0]
    beacon = [rule for rule in raw["rules"] if "fwcluster upstream from pb-fw2" in rule]
    assert beacon == ['iifname "eth3" ip saddr 192.168.100.2 meta l4proto icmp icmp type echo-request ip length 128 '
                      'counter notrack comment "fwcluster upstream from pb-fw2"']
    # switched off: no check, no counting rule
    plan = _plan("primary_backup", upstream=[])
    assert plan["nodes"]["pb-fw1"]["upstream"] == []
    assert not [rule for rule in plan["nodes"]["pb-fw1"]["ruleset"][0]["chains"][0]["rules"]
                if "fwcluster upstream" in rule]


def test_upstream_tracking_alone_leaves_conntrackd_untracked():
    plan = _plan("primary_backup", conntrackd=False, upstream=UPSTREAM[:1])
    assert [script["name"] for script in plan["nodes"]["pb-fw1"]["keepalived"]["scripts"]] == ["fwcluster_upstream"]
    assert "failover_bound" not in plan["tracking"] and "upstream_failover_bound" in plan["tracking"]


def test_the_upstream_bound_follows_fall_interval_and_advert_int():
    # A failed upstream check listens interval + 0.5 s for a peer's beacon: keepalived skips the next tick,
    # so failed checks come 2 intervals apart.
    assert _plan("primary_backup")["tracking"]["upstream_failover_bound"] == 1 + 3 * 2 + 1 + 1
    assert _plan("primary_backup", upstream=UPSTREAM, fall=2, interval=2)["tracking"]["upstream_failover_bound"] == (
        2 + 2 * 4 + 1 + 1)
    text = render("keepalived", "keepalived.conf.j2", _plan("primary_backup", upstream=UPSTREAM, interval=5), "pb-fw1")
    assert ('vrrp_script fwcluster_upstream {\n\tscript "/etc/keepalived/fwcluster-check-upstream.sh"\n'
            '\tinterval 5\n\ttimeout 7\n\tfall 3\n\trise 3\n}') in text


@pytest.mark.parametrize("name", ["multipath", "sandwich"])
def test_upstream_needs_replication_and_vrrp_on_the_nodes(name):
    with pytest.raises(PlanError) as caught:
        _plan(name, conntrackd=False, upstream=[{"host": "192.0.2.1", "segment": "outside"}])
    assert caught.value.variable == "fwcluster_tracking.upstream"


def test_the_bound_follows_fall_interval_and_advert_int():
    # first tick (interval) + fall checks one period apart + takeover (advert + 1 s). A failed check
    # lasts 2 s (the answer timeout): with interval 1 the ticks at +1 and +2 are skipped, period 3 s;
    # with interval 2 the tick at +2 still finds it running, period 4 s; with interval 3 none is skipped.
    assert _plan("primary_backup")["tracking"]["failover_bound"] == 1 + 3 * 3 + 1 + 1
    assert _plan("primary_backup", fall=2, interval=2)["tracking"]["failover_bound"] == 2 + 2 * 4 + 1 + 1
    assert _plan("primary_backup", fall=5, interval=3)["tracking"]["failover_bound"] == 3 + 5 * 3 + 1 + 1


def test_switched_off_leaves_keepalived_alone():
    plan = _plan("primary_backup", conntrackd=False)
    assert "failover_bound" not in plan["tracking"]
    text = render("keepalived", "keepalived.conf.j2", plan, "pb-fw1")
    assert "vrrp_script" not in text and "track_script" not in text


def test_the_sandwich_refuses_it_on():
    with pytest.raises(PlanError) as caught:
        _plan("sandwich", conntrackd=True)
    assert (caught.value.host, caught.value.variable) == ("cluster stack", "fwcluster_tracking.conntrackd")
    assert "run no VRRP" in caught.value.rule


def test_keepalived_runs_the_check_with_the_inventorys_counts():
    plan = _plan("primary_backup", interval=2, fall=4, rise=6)
    text = render("keepalived", "keepalived.conf.j2", plan, "pb-fw2")
    assert ('vrrp_script fwcluster_conntrackd {\n\tscript "/etc/keepalived/fwcluster-check-conntrackd.sh"\n'
            '\tinterval 2\n\ttimeout 4\n\tfall 4\n\trise 6\n}') in text
    # every VRRP instance: one per segment and family (the example is dual stack)
    instances = plan["nodes"]["pb-fw2"]["keepalived"]["instances"]
    assert len(instances) == 2 * len(plan["segments"])
    assert text.count("track_script {\n\t\tfwcluster_conntrackd\n\t}") == len(instances)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by scripts/setup.sh")
@pytest.mark.parametrize("name, host", [("primary_backup", "pb-fw1"), ("hash", "hs-fw3")])
@pytest.mark.parametrize("template", ["fwcluster-check-conntrackd.sh.j2", "fwcluster-check-upstream.sh.j2"])
def test_the_checks_pass_shellcheck(name, host, template, tmp_path):
    path = tmp_path / "check.sh"
    path.write_text(render("keepalived", template, _plan(name, upstream=UPSTREAM if name == "primary_backup" else
                                                         [{"host": "198.51.100.10", "segment": "outside"}]), host))
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
