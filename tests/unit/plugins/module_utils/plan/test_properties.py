"""Property tests: whatever the inventory, the model returns a plan or raises PlanError, nothing else."""

from __future__ import annotations

import copy
import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import (  # noqa: E402
    PlanError,
    build_plan,
)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=70000), st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["eth1", "eth3", "any", "firewall", "inside", "outside", "tcp", "udp", "icmp", "multicast",
                     "10.10.1.3/24", "10.10.1.254/24", "192.168.100.9/24", "225.0.0.50", "8000:8100",
                     "10.10.1.10:8080", "0.0.0.0/0", "primary_backup", "hash", "masquerade", "dnat"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["inside", "outside", "vip", "vrid", "interface", "type", "from", "to",
                                     "ports", "proto", "action", "enabled", "port", "x"]), inner, max_size=3)),
    max_leaves=6)


def _paths(value, prefix=()):
    """Every path into nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _mutate(document, path, action, junk):
    if not path:
        return
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = junk
    elif isinstance(parent, dict):
        parent["extra_%s" % last] = junk


def _check(cluster, nodes, balancers=None):
    try:
        plan = build_plan(cluster, nodes, balancers)
    except PlanError as error:
        assert str(error).count(": ") >= 2
        return
    json.dumps(plan)
    for node in plan["nodes"].values():
        for table in node["ruleset"]:
            if plan["backend"] == "nftables":
                assert all("\n" not in rule for chain in table["chains"] for rule in chain["rules"])
            else:
                assert all("\n" not in rule and rule.startswith("-A ") for rule in table["rules"])


@pytest.mark.parametrize("name", ["primary_backup", "multipath", "hash", "sandwich"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_example_gives_plan_or_plan_error(inventory_sources, name, data):
    """Each example inventory, broken in up to three places, gives a plan or a PlanError."""
    cluster, nodes, balancers = copy.deepcopy(inventory_sources[name])
    document = {"cluster": cluster, "nodes": nodes, "balancers": balancers}
    for _step in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(document))[1:]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        _mutate(document, path, data.draw(st.sampled_from(["delete", "replace", "add"])), data.draw(VALUES))
    _check(document.get("cluster"), document.get("nodes"), document.get("balancers"))


@settings(max_examples=200, deadline=None)
@given(cluster=VALUES, nodes=VALUES)
def test_random_documents_give_plan_error(cluster, nodes):
    _check(cluster, nodes)


NODE_COUNTS = st.integers(min_value=0, max_value=34)


@settings(max_examples=100, deadline=None)
@given(count=NODE_COUNTS, ids=st.data())
def test_node_ids_accepted_exactly_when_a_permutation(count, ids):
    """Ids are accepted exactly when they are 0..n-1 in some order, with 2 <= n <= 32."""
    chosen = ids.draw(st.lists(st.integers(min_value=-1, max_value=34), min_size=count, max_size=count))
    cluster = {
        "fwcluster_architecture": "primary_backup",
        "fwcluster_name": "c",
        "fwcluster_segments": {"inside": {"interface": "eth1", "vip": "10.0.0.1/16", "vrid": 1}},
    }
    nodes = dict(("n%d" % index, {"fwcluster_node_id": node_id,
                                  "fwcluster_addresses": {"inside": "10.0.1.%d/16" % (index + 1)}})
                 for index, node_id in enumerate(chosen))
    valid = 2 <= count <= 32 and sorted(chosen) == list(range(count))
    try:
        plan = build_plan(cluster, nodes)
    except PlanError as error:
        assert not valid, str(error)
        assert error.variable in ("fwcluster_node_id", "fwcluster_name")
        return
    assert valid
    assert sorted(node["node_id"] for node in plan["nodes"].values()) == list(range(count))
