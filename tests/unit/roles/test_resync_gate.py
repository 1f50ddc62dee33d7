"""The resync gate (roles/conntrackd/templates/fwcluster-resync-gate.sh.j2) as each architecture renders it.

What it waits for is proven in the labs (molecule/hash/takeover.yml, molecule/sandwich/failover.yml):
here, that every variant is valid shell, holds what its architecture needs held, and reads
conntrackd's own statistics the way conntrackd prints them.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render

EXAMPLES = [("primary_backup", "pb-fw1"), ("hash", "hs-fw2"), ("sandwich", "sw-fw1")]


def _gate(name, host, **replication):
    cluster, nodes, balancers = load_inventory(name)
    if replication:
        cluster["fwcluster_replication"] = dict(cluster["fwcluster_replication"], **replication)
    plan = build_plan(cluster, nodes, balancers)
    return plan, render("conntrackd", "fwcluster-resync-gate.sh.j2", plan, host)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by scripts/setup.sh")
@pytest.mark.parametrize("name, host", EXAMPLES)
@pytest.mark.parametrize("transport", [None, "tcp"])
def test_the_gate_passes_shellcheck(name, host, transport, tmp_path):
    if transport == "tcp" and name == "hash":
        pytest.skip("tcp is point to point; the hash example has three nodes")
    _plan, text = _gate(name, host, **({"transport": transport, "mode": "notrack"} if transport else {}))
    path = tmp_path / "gate.sh"
    path.write_text(text)
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name, host", EXAMPLES)
def test_each_architecture_holds_what_hands_a_returning_node_work(name, host):
    plan, gate = _gate(name, host)
    holds = plan["nodes"][host]["conntrackd"]["resync_gate"]["holds"]
    assert holds == {"primary_backup": None, "hash": "keepalived", "sandwich": "forwarding"}[name]
    assert ("net.ipv4.ip_forward=0" in gate) == (holds == "forwarding")
    keepalived = render("keepalived", "keepalived-dropin.conf.j2", plan, host) if plan["nodes"][host]["keepalived"] else ""
    assert ("/usr/local/sbin/fwcluster-resync-gate wait" in keepalived) == (holds == "keepalived")
    dropin = render("conntrackd", "conntrackd-dropin.conf.j2", plan, host)
    assert "ExecStartPost=/bin/sh -c '/usr/local/sbin/fwcluster-resync-gate run >/dev/null 2>&1 &'" in dropin
    # only the gate asks for the resync, once the peers answer
    assert "StartupResync" not in render("conntrackd", "conntrackd.conf.j2", plan, host)
