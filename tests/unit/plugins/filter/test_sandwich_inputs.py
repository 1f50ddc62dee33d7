"""cluster_inputs and node_plan with a sandwich: balancers are collected apart and get their own part."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import cluster_inputs, node_plan
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.plugins.modules.validate_node_ids import build_plans


@pytest.fixture
def hostvars(sandwich):
    cluster, nodes, balancers = sandwich
    merged = dict((host, dict(cluster, **host_vars, inventory_hostname=host))
                  for host, host_vars in list(nodes.items()) + list(balancers.items()))
    merged["sw-client"] = {"ansible_connection": "containers.podman.podman"}
    return merged


def test_balancers_are_collected_apart(sandwich, hostvars):
    cluster, nodes, balancers = sandwich
    inputs = cluster_inputs(hostvars, sorted(hostvars), sorted(nodes) + sorted(balancers))
    assert inputs["stack"]["cluster"] == cluster
    assert inputs["stack"]["nodes"] == nodes
    assert inputs["stack"]["balancers"] == balancers
    plans = build_plans(inputs)
    assert plans["stack"] == build_plan(cluster, nodes, balancers)
    assert node_plan(plans, "stack", "sw-lbo2")["side"] == "outside"
    assert node_plan(plans, "stack", "sw-fw2")["role"] == "active"
    with pytest.raises(AnsibleFilterError):
        node_plan(plans, "stack", "sw-client")


def test_a_balancer_in_the_play_brings_the_whole_cluster(sandwich, hostvars):
    inputs = cluster_inputs(hostvars, sorted(hostvars), ["sw-lbi2"])
    assert sorted(inputs["stack"]["nodes"]) == ["sw-fw1", "sw-fw2"]
    assert sorted(inputs["stack"]["balancers"]) == ["sw-lbi1", "sw-lbi2", "sw-lbo1", "sw-lbo2"]


def test_a_balancer_must_share_the_cluster_variables(hostvars):
    hostvars["sw-lbo1"]["fwcluster_hash_seed"] = 1
    with pytest.raises(AnsibleFilterError) as caught:
        cluster_inputs(hostvars, sorted(hostvars), ["sw-fw1"])
    assert "sw-lbo1: fwcluster_hash_seed: differs" in str(caught.value)
