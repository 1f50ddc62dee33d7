"""fwcluster_tracking: which nodes track their conntrackd, how keepalived is told, and the bound."""

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
    plan = _plan(name)
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
    assert text.count("track_script {\n\t\tfwcluster_conntrackd\n\t}") == len(plan["segments"])


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by scripts/setup.sh")
@pytest.mark.parametrize("name, host", [("primary_backup", "pb-fw1"), ("hash", "hs-fw3")])
def test_the_check_passes_shellcheck(name, host, tmp_path):
    path = tmp_path / "check.sh"
    path.write_text(render("keepalived", "fwcluster-check-conntrackd.sh.j2", _plan(name), host))
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
