"""The node-id validator module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.fwcluster.netfilter.plugins.modules import validate_node_ids
from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_model import build_plan


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
