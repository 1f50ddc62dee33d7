"""benchmark/scaling.py: the inventories of the scaling lab, planned by the collection's own model."""

import pathlib
import sys

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmark"))
import bench  # noqa: E402  pylint: disable=wrong-import-position
import scaling  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plans  # noqa: E402
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory  # noqa: E402


@pytest.mark.parametrize("nodes", [2, 3, 4])
def test_the_inventory_has_that_many_firewalls_the_fourth_one_after_the_third(tmp_path, nodes):
    out = scaling.write_inventory(tmp_path / "n", nodes)
    example = out / "hash"
    members = yaml.safe_load((example / "hosts.yml").read_text())["all"]["children"]["fwcluster"]["children"]["mesh"]["hosts"]
    assert sorted(members) == ["hs-fw1", "hs-fw2", "hs-fw3", "hs-fw4"][:nodes]
    assert sorted(path.stem for path in (example / "host_vars").iterdir()) == sorted(members)
    if nodes == 4:
        fourth = yaml.safe_load((example / "host_vars" / "hs-fw4.yml").read_text())
        assert members["hs-fw4"] == {"ansible_host": "172.30.2.4"}
        assert fourth["fwcluster_node_id"] == 3
        assert fourth["fwcluster_addresses"] == {"inside": ["10.20.1.4/24", "2001:db8:20:1::4/64"],
                                                 "outside": ["198.51.100.4/24", "2001:db8:20:2::4/64"]}
        assert fourth["fwcluster_replication_address"] == "192.168.101.4/24"
    # the scaling lab's SSH key and known hosts, from any copy's place
    assert 'lab_ssh_dir: "%s/build/lab/hash_scaling"' % scaling.ROOT in (example / "group_vars" / "all" / "lab.yml").read_text()
    # the other examples are copied as they are
    assert (out / "sandwich" / "hosts.yml").read_text() == (scaling.ROOT / "inventories" / "sandwich" / "hosts.yml").read_text()


@pytest.mark.parametrize("nodes", [2, 3, 4])
def test_the_collections_model_plans_each_inventory(tmp_path, nodes):
    cluster, members, balancers = load_inventory("hash", inventories=str(scaling.write_inventory(tmp_path / "n", nodes)))
    plan = build_plans({"mesh": {"cluster": cluster, "nodes": members, "balancers": balancers}})["mesh"]
    assert plan["hash"]["total_nodes"] == nodes
    assert sorted(node["node_id"] for node in plan["nodes"].values()) == list(range(nodes))


def test_a_scaling_inventory_has_two_to_four_firewalls(tmp_path):
    with pytest.raises(bench.BenchError, match="2 to 4 firewalls, not 5"):
        scaling.write_inventory(tmp_path / "n", 5)
