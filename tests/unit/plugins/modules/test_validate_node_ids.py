"""The node-id validator module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.fwcluster.netfilter.plugins.modules import validate_node_ids
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan, build_plans


def clusters_of(example):
    cluster, nodes = example
    return {"edge": {"cluster": cluster, "nodes": nodes}}


@pytest.mark.parametrize("check_mode", [False, True])
def test_returns_plans(run_module, example, check_mode):
    ok, result = run_module(validate_node_ids.main, {"clusters": clusters_of(example)}, check_mode)
    assert ok, result
    assert result["changed"] is False
    assert result["plans"]["edge"] == build_plan(*example)
    assert result["plans"]["edge"]["nodes"]["pb-fw1"]["keepalived"]["instances"][0]["priority"] == 254


def test_duplicate_id_fails_naming_host_variable_rule(run_module, example):
    cluster, nodes = example
    nodes["pb-fw2"]["fwcluster_node_id"] = 0
    ok, result = run_module(validate_node_ids.main, {"clusters": clusters_of((cluster, nodes))})
    assert not ok
    assert result["msg"] == "pb-fw2: fwcluster_node_id: node id 0 is already used by pb-fw1; ids must be unique"
    assert (result["host"], result["variable"]) == ("pb-fw2", "fwcluster_node_id")
    assert "already used by pb-fw1" in result["rule"]
    assert result["cluster"] == "edge"
    assert "plans" not in result


def test_group_variable_failure_names_the_cluster(run_module, example):
    cluster, nodes = example
    cluster["fwcluster_architecture"] = "ring"
    ok, result = run_module(validate_node_ids.main, {"clusters": clusters_of((cluster, nodes))})
    assert not ok
    assert result["host"] == "cluster edge"
    assert result["variable"] == "fwcluster_architecture"
    assert "ring" in result["rule"] and "primary_backup" in result["rule"]


def test_malformed_cluster_entry(run_module):
    ok, result = run_module(validate_node_ids.main, {"clusters": {"edge": "oops"}})
    assert not ok
    assert result["msg"].startswith("cluster edge: clusters:")


def test_documentation_is_yaml():
    import yaml
    for text in (validate_node_ids.DOCUMENTATION, validate_node_ids.EXAMPLES, validate_node_ids.RETURN):
        assert yaml.safe_load(text)
    doc = yaml.safe_load(validate_node_ids.DOCUMENTATION)
    assert doc["version_added"] == "1.0.0"
    assert doc["attributes"]["check_mode"]["support"] == "full"


def test_runs_as_a_script(example):
    """The module file as Ansible would run it: ANSIBLE_MODULE_ARGS JSON on stdin of a fresh interpreter."""
    module_path = validate_node_ids.__file__
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    args = json.dumps({"ANSIBLE_MODULE_ARGS": {"clusters": clusters_of(example)}})
    completed = subprocess.run([sys.executable, module_path], input=args.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=60, check=False)
    result = json.loads(completed.stdout.decode())
    assert completed.returncode == 0, result
    assert result["plans"]["edge"]["nodes"]["pb-fw2"]["role"] == "backup"


# --------------------------------------------------------------------------
# Clusters deployed together: no VRID or VIP twice on a network they share
# --------------------------------------------------------------------------

def together(*examples):
    """build_plans' input for several example inventories (cluster, nodes[, balancers])."""
    clusters = {}
    for example in examples:
        cluster, nodes, balancers = (tuple(example) + ({},))[:3]
        clusters[cluster["fwcluster_name"]] = {"cluster": cluster, "nodes": nodes, "balancers": balancers}
    return clusters


def move_segment(cluster_nodes, segment, vip, vrid):
    """Put a cluster's SEGMENT on VIP's network: the VIP, the VRID, its nodes at .201, .202, ... of VIP's /24."""
    cluster, nodes = cluster_nodes
    cluster["fwcluster_segments"][segment].update(vip=vip, vrid=vrid)
    base, prefix = vip.rsplit(".", 1)[0], vip.split("/")[1]
    for index, host in enumerate(sorted(nodes)):
        nodes[host]["fwcluster_addresses"][segment] = "%s.%d/%s" % (base, 201 + index, prefix)
    return cluster_nodes


def move_outside(duo, vip, vrid):
    """Put cluster duo's outside segment on cluster edge's outside network 203.0.113.0/24."""
    return move_segment(duo, "outside", vip, vrid)


def refusal(clusters):
    with pytest.raises(PlanError) as caught:
        build_plans(clusters)
    return caught.value


def test_every_example_deploys_beside_the_others(example, duo, hash_example, sandwich):
    # VRID 51 is edge's on 10.10.1.0/24 and mesh's on 10.20.1.0/24: other networks, no clash.
    plans = build_plans(together(example, duo, hash_example, sandwich))
    assert sorted(plans) == ["duo", "edge", "mesh", "stack"]


def test_shared_network_other_vrid_and_vip_is_accepted(example, duo):
    move_outside(duo, "203.0.113.253/24", 63)
    build_plans(together(example, duo))


def test_same_vrid_on_a_shared_network_is_refused(example, duo):
    error = refusal(together(example, move_outside(duo, "203.0.113.253/24", 52)))
    # duo sorts first: edge, checked after it, is refused
    assert str(error) == ("cluster edge: fwcluster_segments.outside.vrid: VRID 52 on network 203.0.113.0/24 is "
                          "already used by cluster duo on network 203.0.113.0/24 (fwcluster_segments.outside.vrid); "
                          "clusters that share a network need VRIDs of their own")
    assert error.cluster == "edge"


def test_same_vrid_on_overlapping_networks_is_refused(example, duo):
    error = refusal(together(example, move_outside(duo, "203.0.113.253/25", 52)))
    assert "already used by cluster duo on network 203.0.113.128/25" in error.rule


def test_same_vrid_on_a_wider_earlier_network_is_refused(example, duo):
    # duo (checked first) holds edge's outside network inside its /23: found among edge's supernets.
    error = refusal(together(example, move_outside(duo, "203.0.113.253/23", 52)))
    assert "already used by cluster duo on network 203.0.112.0/23" in error.rule


def test_same_vrid_on_disjoint_networks_is_accepted(example, duo):
    # 203.0.113.0/25 and 203.0.113.128/25: one address apart, no overlap, so VRID 52 twice is fine.
    example[0]["fwcluster_segments"]["outside"]["vip"] = "203.0.113.126/25"
    for index, host in enumerate(sorted(example[1])):
        example[1][host]["fwcluster_addresses"]["outside"] = "203.0.113.%d/25" % (1 + index)
    example[0]["fwcluster_tracking"]["upstream"] = []
    build_plans(together(example, move_outside(duo, "203.0.113.253/25", 52)))


def test_same_vip_is_refused(example, duo):
    error = refusal(together(example, move_outside(duo, "203.0.113.254/24", 63)))
    assert (error.host, error.variable) == ("cluster edge", "fwcluster_segments.outside.vip")
    assert error.rule == ("203.0.113.254 is already a VIP of cluster duo (fwcluster_segments.outside.vip); "
                          "an address has one owner on a network")


def test_a_derived_hash_vrid_counts(example, hash_example):
    # mesh runs VRIDs 51, 52, 53 on 10.20.1.0/24 (one per node id); edge moves its inside there with VRID 53.
    error = refusal(together(move_segment(example, "inside", "10.20.1.250/24", 53), hash_example))
    assert (error.host, error.variable) == ("cluster mesh", "fwcluster_segments.inside.vrid")
    assert error.rule.startswith("VRID 53 (derived from fwcluster_segments.inside.vrid 51) on network 10.20.1.0/24 "
                                 "is already used by cluster edge")


def test_a_sandwich_front_vrid_counts(example, sandwich):
    # stack's outside balancers hold 10.40.4.254 with VRID 72 on their front network 10.40.4.0/24.
    error = refusal(together(move_segment(example, "outside", "10.40.4.250/24", 72), sandwich))
    assert (error.host, error.variable) == ("cluster stack", "fwcluster_balancers.outside.vrid")
    assert "VRID 72 on network 10.40.4.0/24 is already used by cluster edge" in error.rule


def test_the_module_names_the_cluster_of_a_shared_network_refusal(run_module, example, duo):
    ok, result = run_module(validate_node_ids.main,
                            {"clusters": together(example, move_outside(duo, "203.0.113.253/24", 52))})
    assert not ok
    assert (result["cluster"], result["host"], result["variable"]) == \
        ("edge", "cluster edge", "fwcluster_segments.outside.vrid")
