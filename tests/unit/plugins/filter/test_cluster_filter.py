"""The cluster_inputs and node_plan filters, and their output fed to the node-id validator."""

from __future__ import annotations

import copy
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import (
    FilterModule,
    cluster_inputs,
    hash_node_ids,
    node_plan,
    owned_flows,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_hash import flow_source, node_id_of
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan, build_plans

ALL_HOSTS = ["pb-fw1", "pb-fw2", "pb-client", "pb-server"]
PLAY_HOSTS = ["pb-fw1", "pb-fw2"]
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
EXAMPLE_INVENTORY = os.path.join(REPO_ROOT, "inventories", "primary_backup")


@pytest.fixture
def hostvars(example):
    """What hostvars holds for the example: group variables merged into each member's variables."""
    cluster, nodes = example
    merged = dict((host, dict(cluster, **host_vars, inventory_hostname=host)) for host, host_vars in nodes.items())
    merged["pb-client"] = {"ansible_connection": "containers.podman.podman"}
    merged["pb-server"] = {"ansible_connection": "containers.podman.podman"}
    return merged


def test_filters_are_registered():
    assert sorted(FilterModule().filters()) == ["cluster_inputs", "hash_node_ids", "node_plan", "owned_flows"]


def test_example_inputs(example, hostvars):
    cluster, nodes = example
    inputs = cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    assert list(inputs) == ["edge"]
    assert inputs["edge"]["cluster"] == cluster
    assert inputs["edge"]["nodes"] == nodes
    plans = build_plans(inputs)
    assert plans["edge"] == build_plan(cluster, nodes)
    assert node_plan(plans, "edge", "pb-fw2")["node_id"] == 1


def test_one_play_host_brings_its_whole_cluster(hostvars):
    inputs = cluster_inputs(hostvars, ALL_HOSTS, ["pb-fw2"])
    assert sorted(inputs["edge"]["nodes"]) == ["pb-fw1", "pb-fw2"]


def test_differing_cluster_variable_is_refused(hostvars):
    hostvars["pb-fw2"]["fwcluster_vrrp"] = {"advert_int": 2}
    with pytest.raises(AnsibleFilterError) as caught:
        cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    assert "pb-fw2: fwcluster_vrrp: differs from pb-fw1's value" in str(caught.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_that_is_not_finite_is_refused_by_the_model_for_what_it_is(hostvars, value):
    # A NaN is not equal to itself: the filter must not call the same NaN a difference between members.
    for host in PLAY_HOSTS:
        hostvars[host]["fwcluster_vrrp"] = {"advert_int": value}
    inputs = cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    with pytest.raises(PlanError) as caught:
        build_plans(inputs)
    assert str(caught.value) == ("cluster edge: fwcluster_vrrp.advert_int: must be a finite number in 0.01..40.95, "
                                 "got %s" % value)


def test_nan_and_a_number_differ(hostvars):
    hostvars["pb-fw1"]["fwcluster_vrrp"] = {"advert_int": float("nan")}
    hostvars["pb-fw2"]["fwcluster_vrrp"] = {"advert_int": 1.0}
    with pytest.raises(AnsibleFilterError) as caught:
        cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    assert "pb-fw2: fwcluster_vrrp: differs from pb-fw1's value" in str(caught.value)


def test_cluster_variable_on_one_member_only_is_refused(hostvars):
    hostvars["pb-fw2"]["fwcluster_management"] = {"tcp_ports": [22]}
    with pytest.raises(AnsibleFilterError) as caught:
        cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    assert "pb-fw2: fwcluster_management:" in str(caught.value)


def test_true_is_not_one(hostvars):
    hostvars["pb-fw1"]["fwcluster_vrrp"] = {"advert_int": 1, "unicast": 1}
    hostvars["pb-fw2"]["fwcluster_vrrp"] = {"advert_int": 1, "unicast": True}
    with pytest.raises(AnsibleFilterError, match="pb-fw2: fwcluster_vrrp:"):
        cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)


def test_play_host_without_cluster_is_refused(hostvars):
    with pytest.raises(AnsibleFilterError) as caught:
        cluster_inputs(hostvars, ALL_HOSTS, ["pb-fw1", "pb-client"])
    assert str(caught.value).startswith("pb-client: fwcluster_name: is required")


def test_balancers_and_other_clusters_are_left_out(hostvars):
    hostvars["lb1"] = dict(copy.deepcopy(hostvars["pb-fw1"]), fwcluster_balancer_side="inside")
    hostvars["core1"] = dict(copy.deepcopy(hostvars["pb-fw1"]), fwcluster_name="core")
    inputs = cluster_inputs(hostvars, ALL_HOSTS + ["lb1", "core1"], PLAY_HOSTS)
    assert list(inputs) == ["edge"]
    assert sorted(inputs["edge"]["nodes"]) == ["pb-fw1", "pb-fw2"]


def test_model_refusal_of_filter_output(hostvars):
    hostvars["pb-fw2"]["fwcluster_node_id"] = 0
    inputs = cluster_inputs(hostvars, ALL_HOSTS, PLAY_HOSTS)
    with pytest.raises(PlanError) as caught:
        build_plans(inputs)
    assert str(caught.value) == "pb-fw2: fwcluster_node_id: node id 0 is already used by pb-fw1; ids must be unique"
    assert caught.value.cluster == "edge"


def test_node_plan_errors(example):
    plans = {"edge": build_plan(*example)}
    with pytest.raises(AnsibleFilterError, match="no plan for cluster core"):
        node_plan(plans, "core", "pb-fw1")
    with pytest.raises(AnsibleFilterError, match="pb-client is not a node of cluster edge"):
        node_plan(plans, "edge", "pb-client")


def test_real_ansible_hostvars():
    """The filter reads Ansible's own HostVars (tagged and lazy values) and returns plain data."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[os.path.join(EXAMPLE_INVENTORY, "hosts.yml")])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = HostVars(inventory=inventory, variable_manager=variables, loader=loader)
    inputs = cluster_inputs(hostvars, [host.name for host in inventory.get_hosts()], PLAY_HOSTS)
    assert inputs["edge"]["cluster"]["fwcluster_segments"].__class__ is dict  # plain, not tagged
    assert inputs["edge"]["cluster"]["fwcluster_name"].__class__ is str
    assert "ansible_connection" not in inputs["edge"]["cluster"]
    plan = build_plans(inputs)["edge"]
    assert plan["nodes"]["pb-fw2"]["keepalived"]["instances"][0]["priority"] == 250


def test_owned_flows_keeps_the_flows_of_the_node_ids_named():
    sources = ["10.20.1.%d" % host for host in range(100, 140)]
    flows = ["tcp %s:40000>198.51.100.10:8080" % source for source in sources] + ["icmp 10.20.1.100>198.51.100.10"]
    owned = owned_flows(flows, 0x5EED1234, 3, [1])
    assert owned == [flow for flow in flows if node_id_of(flow_source(flow), 0x5EED1234, 3) == 1]
    assert 0 < len(owned) < len(flows)
    # every flow belongs to exactly one id
    assert sorted(sum((owned_flows(flows, 0x5EED1234, 3, [k]) for k in range(3)), [])) == sorted(flows)
    assert owned_flows(flows, 0x5EED1234, 3, [0, 1, 2]) == flows


def test_owned_flows_refuses_what_is_not_a_flow():
    with pytest.raises(AnsibleFilterError, match="not a flow key"):
        owned_flows(["tcp"], 1, 3, [0])


def test_hash_node_ids_names_each_sources_node_id():
    sources = ["10.20.1.%d" % host for host in range(100, 140)]
    owners = hash_node_ids(sources, 0x5EED1234, 3)
    assert list(owners) == sources
    assert owners == dict((source, node_id_of(source, 0x5EED1234, 3)) for source in sources)
    # the lab's 40 sources land on every node (its distribution test needs that)
    assert sorted(set(owners.values())) == [0, 1, 2]
    # the same sources, owned_flows' way
    flows = ["udp %s:7000>198.51.100.10:7000" % source for source in sources]
    assert [flow_source(flow) for flow in owned_flows(flows, 0x5EED1234, 3, [2])] == \
        [source for source in sources if owners[source] == 2]


@pytest.mark.parametrize("addresses, nodes, message", [
    (["10.0.0.300"], 3, "illegal IP address"),
    (["2001:db8::g"], 3, "illegal IP address"),
    ("10.0.0.1", 3, "a list of IPv4 or IPv6 addresses"),
    (["10.0.0.1"], 0, "total_nodes must be 1 or more"),
    (["10.0.0.1"], "three", "invalid literal"),
])
def test_hash_node_ids_refuses_bad_input(addresses, nodes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        hash_node_ids(addresses, 1, nodes)
