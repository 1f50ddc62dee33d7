"""The rollout_order and cluster_health filters over hostvars-like input."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.filter.rollout import (
    carried_traffic,
    rollout_order,
    rollout_report,
    rollout_waves,
)
from ansible_collections.fwcluster.netfilter.plugins.filter.status import cluster_health, fleet_table


def live(*states):
    return {"keepalived": {"running": True, "instances": [{"name": "i%d" % k, "state": s}
                                                          for k, s in enumerate(states)]}}


def hostvars():
    return {
        "fw-a": {"fwcluster_node": {"node_id": 0}, "sample": live("MASTER", "MASTER")},
        "fw-b": {"fwcluster_node": {"node_id": 1}, "sample": live("BACKUP", "BACKUP")},
        "fw-c": {"fwcluster_node": {"node_id": 2}, "sample": live("BACKUP", "MASTER")},
        "fw-new": {"fwcluster_node": {"node_id": 3}, "sample": {"keepalived": {"running": False, "instances": []}}},
    }


def test_masters_last_then_node_id():
    order = rollout_order(hostvars(), ["fw-a", "fw-b", "fw-c", "fw-new"], "sample")
    assert order == ["fw-b", "fw-new", "fw-c", "fw-a"]


def test_a_first_deploy_goes_in_node_id_order():
    fresh = dict((host, dict(values, sample=None)) for host, values in hostvars().items())
    assert rollout_order(fresh, ["fw-c", "fw-new", "fw-a", "fw-b"], "sample") == ["fw-a", "fw-b", "fw-c", "fw-new"]


def sandwich_hostvars(balancer_states=("MASTER", "BACKUP")):
    """Two firewalls (no VRRP) and two balancer pairs: the masters are lbi1 and lbo1."""
    def host(node_id, group, *states):
        return {"fwcluster_node": {"node_id": node_id, "redundancy_group": group}, "sample": live(*states)}
    first, second = balancer_states
    return in_cluster({
        "fw1": host(0, "stack/nodes"), "fw2": host(1, "stack/nodes"),
        "lbi1": host(0, "stack/balancers_inside", first, first),
        "lbi2": host(1, "stack/balancers_inside", second, second),
        "lbo1": host(0, "stack/balancers_outside", first, first),
        "lbo2": host(1, "stack/balancers_outside", second, second),
    }, ["fw1", "fw2"], ["lbi1", "lbi2", "lbo1", "lbo2"])


def in_cluster(hostvars_, nodes, balancers=()):
    """hostvars_ with every host given the plan that names its cluster's hosts (as the plan role does)."""
    plan = {"nodes": dict.fromkeys(nodes, {}), "balancers": dict.fromkeys(balancers, {})}
    for host in list(nodes) + list(balancers):
        hostvars_[host] = dict(hostvars_[host], fwcluster_plan=plan)
    return hostvars_


def test_waves_never_hold_two_hosts_that_back_each_other_up():
    hv = sandwich_hostvars()
    waves = rollout_waves(hv, sorted(hv), "sample")
    assert waves == [["fw1", "lbi2", "lbo2"], ["fw2", "lbi1", "lbo1"]]
    for wave in waves:
        groups = [hv[host]["fwcluster_node"]["redundancy_group"] for host in wave]
        assert len(groups) == len(set(groups))
    # the flattened waves keep rollout_order's rule within each group: masters last
    flat = [host for wave in waves for host in wave]
    assert flat.index("lbi2") < flat.index("lbi1") and flat.index("lbo2") < flat.index("lbo1")


def one_group():
    hv = dict((name, dict(values, fwcluster_node=dict(values["fwcluster_node"], redundancy_group="edge/nodes")))
              for name, values in hostvars().items())
    return in_cluster(hv, list(hv))


def test_one_group_is_one_host_per_wave():
    hv = one_group()
    assert rollout_waves(hv, list(hv), "sample") == [["fw-b"], ["fw-new"], ["fw-c"], ["fw-a"]]


def test_a_cluster_that_carried_no_traffic_is_one_wave():
    idle = live("BACKUP", "BACKUP")
    hv = dict((name, dict(values, sample=idle)) for name, values in one_group().items())
    assert not carried_traffic(hv, "fw-a", "sample")
    assert rollout_waves(hv, ["fw-c", "fw-a", "fw-b"], "sample") == [["fw-a", "fw-b", "fw-c"]]
    # a new sandwich: no balancer is master yet, all six hosts at once
    fresh = sandwich_hostvars(("BACKUP", "BACKUP"))
    assert [sorted(wave) for wave in rollout_waves(fresh, sorted(fresh), "sample")] == [sorted(fresh)]


def test_one_serving_host_makes_the_whole_cluster_roll_in_waves():
    hv = dict((name, dict(values, sample=live("BACKUP"))) for name, values in one_group().items())
    hv["fw-c"]["sample"] = dict(live("BACKUP"), vips_held=["10.1.1.254"])  # a VIP held outside keepalived's view
    assert carried_traffic(hv, "fw-a", "sample")
    assert [len(wave) for wave in rollout_waves(hv, ["fw-a", "fw-b", "fw-c"], "sample")] == [1, 1, 1]
    # in a sandwich, a master balancer makes the firewalls (which run no VRRP) roll in waves too
    assert carried_traffic(sandwich_hostvars(), "fw1", "sample")


def test_a_host_without_plan_is_assumed_to_serve():
    hv = {"fw-x": {"fwcluster_node": {"node_id": 0}, "sample": None}}
    assert carried_traffic(hv, "fw-x", "sample")


def test_two_clusters_share_waves_and_a_host_without_group_goes_alone():
    hv = sandwich_hostvars()
    hv["pb1"] = {"fwcluster_node": {"node_id": 0, "redundancy_group": "edge/nodes"}, "sample": live("MASTER")}
    hv["pb2"] = {"fwcluster_node": {"node_id": 1, "redundancy_group": "edge/nodes"}, "sample": live("BACKUP")}
    in_cluster(hv, ["pb1", "pb2"])
    hv["odd"] = {"fwcluster_node": {"node_id": 0}, "sample": None}
    waves = rollout_waves(hv, sorted(hv), "sample")
    expected = [["fw1", "lbi2", "lbo2", "pb2"], ["fw2", "lbi1", "lbo1", "pb1"], ["odd"]]
    assert [sorted(wave) for wave in waves] == expected
    with pytest.raises(AnsibleFilterError):
        rollout_waves(hv, "fw1", "sample")


def test_hosts_must_be_a_list():
    with pytest.raises(AnsibleFilterError):
        rollout_order(hostvars(), "fw-a", "sample")


def test_cluster_health_needs_the_plan():
    with pytest.raises(AnsibleFilterError, match="run the fwcluster.netfilter.plan role first"):
        cluster_health(hostvars(), ["fw-a"], "sample", "sample")


def test_fleet_table_takes_cluster_health_and_refuses_anything_else():
    assessment = {"architecture": "multipath", "healthy": True, "problems": [], "warnings": [],
                  "rows": [{"up": True}, {"up": True}], "rules_digest": "3f2a9c0d11be"}
    lines = fleet_table({"duo": assessment})
    assert lines[1].split() == ["duo", "multipath", "2/2", "consistent", "0", "0", "3f2a9c0d11be"]
    with pytest.raises(AnsibleFilterError, match="cluster_health's result"):
        fleet_table(["duo"])


def fleet_hostvars():
    """Three clusters after a run: edge changed, branch stopped at br-fw2's change, duo with nothing to change."""
    def host(cluster, architecture, members, **facts):
        plan = {"name": cluster, "architecture": architecture, "nodes": dict.fromkeys(members, {})}
        return dict({"fwcluster_plan": plan, "__fwcluster_checked": True, "__fwcluster_dry_run_done": True,
                     "fwcluster_change_pending": False}, **facts)
    edge, branch, duo = ["pb-fw1", "pb-fw2"], ["br-fw1", "br-fw2", "br-fw3"], ["mp-fw1", "mp-fw2"]
    return {
        "pb-fw1": host("edge", "primary_backup", edge, fwcluster_change_pending=True, __fwcluster_deployed=True),
        "pb-fw2": host("edge", "primary_backup", edge, fwcluster_change_pending=True, __fwcluster_deployed=True),
        "br-fw1": host("branch", "primary_backup", branch, fwcluster_change_pending=True, __fwcluster_stopped_by=["br-fw2"]),
        "br-fw2": host("branch", "primary_backup", branch, fwcluster_change_pending=True),
        "br-fw3": host("branch", "primary_backup", branch, fwcluster_change_pending=True, __fwcluster_deployed=True),
        "mp-fw1": host("duo", "multipath", duo),
        "mp-fw2": host("duo", "multipath", duo),
    }


def test_rollout_report_says_per_cluster_what_was_done_and_where_a_failure_stopped_it():
    hv = fleet_hostvars()
    assert rollout_report(hv, sorted(hv), ["br-fw2"]) == [
        "branch (primary_backup): STOPPED: br-fw2 failed its change; changed: br-fw3; left unchanged: br-fw1",
        "duo (multipath): nothing to change",
        "edge (primary_backup): changed pb-fw1, pb-fw2",
    ]


def test_rollout_report_names_the_step_a_host_failed():
    hv = fleet_hostvars()
    del hv["br-fw2"]["__fwcluster_dry_run_done"]
    line = rollout_report(hv, sorted(hv), ["br-fw2"])[0]
    assert line.startswith("branch (primary_backup): STOPPED: br-fw2 failed its dry run;")
    del hv["br-fw2"]["__fwcluster_checked"]
    assert "br-fw2 failed its checks" in rollout_report(hv, sorted(hv), ["br-fw2"])[0]


def test_rollout_report_in_check_mode_says_what_would_change():
    hv = fleet_hostvars()
    for host in hv:
        hv[host].pop("__fwcluster_deployed", None)
    assert rollout_report(hv, sorted(hv), [], True) == [
        "branch (primary_backup): would change br-fw1, br-fw2, br-fw3",
        "duo (multipath): nothing to change",
        "edge (primary_backup): would change pb-fw1, pb-fw2",
    ]


def test_rollout_report_wants_lists():
    with pytest.raises(AnsibleFilterError, match="lists of host names"):
        rollout_report({}, "pb-fw1", [])
