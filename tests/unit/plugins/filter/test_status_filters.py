"""The rollout_order and cluster_health filters over hostvars-like input."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.filter.status import cluster_health, rollout_order


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


def test_hosts_must_be_a_list():
    with pytest.raises(AnsibleFilterError):
        rollout_order(hostvars(), "fw-a", "sample")


def test_cluster_health_needs_the_plan():
    with pytest.raises(AnsibleFilterError, match="run the fwcluster.netfilter.plan role first"):
        cluster_health(hostvars(), ["fw-a"], "sample", "sample")
