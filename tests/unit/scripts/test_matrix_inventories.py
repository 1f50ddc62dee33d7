"""scripts/test.sh's matrix_inventories: the example inventories on one backend, for the cross product."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir)
TEST_SH = os.path.join(ROOT, "scripts", "test.sh")
if not os.path.exists(TEST_SH):
    pytest.skip("scripts/ is not part of a built collection (galaxy.yml build_ignore)", allow_module_level=True)
EXAMPLES = ("primary_backup", "multipath", "hash", "sandwich")


def matrix_inventories(backend, root, peer_flows=""):
    """The function alone, out of test.sh (which runs its steps when sourced), with $root at ROOT."""
    script = 'root="$1"; eval "$(sed -n "/^matrix_inventories() {/,/^}/p" "$2")"; matrix_inventories "$3" "$4"'
    result = subprocess.run(["bash", "-c", script, "bash", str(root), TEST_SH, backend, peer_flows],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_every_example_runs_the_backend_and_builds(tmp_path, backend):
    copy = matrix_inventories(backend, tmp_path)
    assert copy == str(tmp_path / "build" / "lab-inventories" / backend)
    for name in EXAMPLES:
        cluster, nodes, balancers = load_inventory(name, copy)
        assert cluster["fwcluster_backend"] == backend
        plan = build_plan(cluster, nodes, balancers or None)
        dual_stack = any(segment.get("vip6") for segment in plan["segments"].values())
        # The hash example is dual stack on nftables; on iptables it keeps its IPv4 half only.
        assert dual_stack == (name != "hash" or backend == "nftables"), name


def test_the_iptables_copy_of_the_hash_example_is_its_ipv4_half(tmp_path):
    cluster, nodes, _balancers = load_inventory("hash", matrix_inventories("iptables", tmp_path))
    written, written_nodes, _balancers = load_inventory("hash")
    assert [segment["vip"] for segment in cluster["fwcluster_segments"].values()] == [
        segment["vip"][0] for segment in written["fwcluster_segments"].values()]
    assert dict((host, vars_["fwcluster_addresses"]) for host, vars_ in nodes.items()) == dict(
        (host, dict((name, value[0]) for name, value in vars_["fwcluster_addresses"].items()))
        for host, vars_ in written_nodes.items())


def test_the_default_hash_cells_copy_keeps_the_peers_flows_in_the_kernel(tmp_path):
    copy = matrix_inventories("iptables", tmp_path, "kernel")
    assert copy == str(tmp_path / "build" / "lab-inventories" / "iptables-kernel")
    plan = build_plan(*load_inventory("hash", copy)[:2])
    assert plan["replication"]["peer_flows"] == "kernel"
    assert not any(node["conntrackd"]["external_cache"] for node in plan["nodes"].values())
    # only the hash cluster makes that choice: the others build as they are written
    for name in ("primary_backup", "sandwich"):
        cluster, nodes, balancers = load_inventory(name, copy)
        assert "peer_flows" not in cluster["fwcluster_replication"]
        build_plan(cluster, nodes, balancers or None)
