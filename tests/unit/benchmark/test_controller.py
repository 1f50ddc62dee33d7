"""benchmark/controller.py's fleet: the inventory it times must be a valid one, as big as it says."""

import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmark"))
import controller  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plans  # noqa: E402


def test_a_fleet_builds_and_holds_every_kind():
    clusters = controller.fleet(2 * len(controller.KINDS))
    # together.py refuses shared VRIDs or VIPs: the relocation keeps the copies apart
    plans = build_plans(controller.plan_inputs(clusters))
    architectures = [plan["architecture"] for plan in plans.values()]
    assert sorted(set(architectures)) == ["hash", "multipath", "primary_backup", "sandwich"]
    assert sorted(len(plan["nodes"]) for plan in plans.values() if plan["architecture"] == "hash") == [3, 3, 4, 4]
    assert sum(len(plan.get("balancers") or {}) for plan in plans.values()) == 8
    hosts = controller.hosts_of(clusters)
    assert len(hosts) == len(set(hosts)) == 2 * (2 + 2 + 3 + 4 + 6)


def test_relocation_moves_unicast_and_keeps_multicast_and_any():
    moved = controller.relocate({"vip": "203.0.113.254/24", "group": "225.0.0.51", "any": "0.0.0.0/0",
                                 "node": "203.0.113.1/24", "other": "10.10.1.254/24",
                                 "vip6": "2001:db8:2::fe/64", "any6": "::/0"}, 3)
    assert moved == {"vip": "10.48.113.254/24", "group": "225.0.0.51", "any": "0.0.0.0/0",
                     "node": "10.48.113.1/24", "other": "10.49.1.254/24",
                     "vip6": "2001:1003:2::fe/64", "any6": "::/0"}


def test_the_inventory_file_reads_back_as_written(tmp_path):
    clusters = controller.fleet(len(controller.KINDS))
    path = tmp_path / "fleet.yml"
    controller.write_inventory(clusters, path)
    listed = json.loads(subprocess.run(["ansible-inventory", "-i", str(path), "--list"], check=True,
                                       capture_output=True, text=True).stdout)
    hostvars = listed["_meta"]["hostvars"]
    for name, (cluster_vars, nodes, balancers) in clusters.items():
        assert name in listed["fwcluster"]["children"]
        for host in list(nodes) + list(balancers):
            assert hostvars[host]["fwcluster_name"] == name
            assert hostvars[host]["fwcluster_segments"] == cluster_vars["fwcluster_segments"]
            assert ("fwcluster_balancer_side" in hostvars[host]) == (host in balancers)


def test_task_times_reads_the_recap_of_profile_tasks():
    recap = """
TASKS RECAP ********************************************************************
Saturday 05 December 2026  10:31:10 +0000 (0:00:13.206)       0:00:19.573 *****
===============================================================================
fwcluster.netfilter.plan : Publish the plan of each node's cluster ----- 13.21s
fwcluster.netfilter.plan : Validating arguments against arg spec 'main' - Validate a firewall cluster's inventory --- 4.87s
fwcluster.netfilter.plan : Validate the inventory and compute the cluster plan --- 1.47s
Do nothing on every host ------------------------------------------------ 0.32s
"""
    assert controller.task_times(recap) == {"publication_s": 13.21, "argument_check_s": 4.87,
                                            "validation_task_s": 1.47, "per_host_nothing_s": 0.32}


def test_task_times_refuses_a_recap_without_a_measured_task():
    with pytest.raises(SystemExit, match="per_host_nothing_s"):
        controller.task_times("fwcluster.netfilter.plan : Publish the plan of each node's cluster --- 1.00s\n")
