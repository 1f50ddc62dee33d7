"""The sandwich's files, rendered from its plan and put through the daemons' own checkers.

Like test_templates.py: keepalived -t (in a scratch namespace with the interfaces the plan
names) and iptables-restore --test, skipped (not passed) where a checker is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import check, check_conntrackd, render


@pytest.fixture
def plan(sandwich):
    return build_plan(*sandwich)


@pytest.fixture
def scratch_namespace():
    name = "fwcluster-sw-unit-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for interface in ("eth1", "eth2"):
            subprocess.run(["ip", "-n", name, "link", "add", interface, "type", "veth",
                            "peer", "name", "peer-" + interface], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", interface, "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.skipif(shutil.which("keepalived") is None or os.geteuid() != 0,
                    reason="keepalived -t in a scratch namespace needs keepalived and root")
def test_balancer_keepalived_passes_keepalived_t(plan, tmp_path, scratch_namespace):
    for host in plan["balancers"]:
        text = render("keepalived", "keepalived.conf.j2", plan, host)
        assert "vrrp_sync_group stack_%s" % plan["balancers"][host]["side"] in text
        check(scratch_namespace + ["keepalived", "-t", "-f"], text, tmp_path)


@pytest.mark.skipif(shutil.which("iptables-restore") is None or os.geteuid() != 0,
                    reason="iptables-restore --test needs the tool and root")
def test_every_ruleset_passes_iptables_restore_test(plan, tmp_path):
    for host in list(plan["nodes"]) + list(plan["balancers"]):
        check(["iptables-restore", "--test"], render("firewall", "rules.v4.j2", plan, host), tmp_path)


def test_conntrackd_runs_active_active(plan, tmp_path):
    text = render("conntrackd", "conntrackd.conf.j2", plan, "sw-fw1")
    assert "Mode NOTRACK" in text
    assert "DisableInternalCache On" in text and "DisableExternalCache On" in text
    # the resync gate asks, once the peers answer (conntrackd's own request would go out at once)
    assert "StartupResync" not in text
    assert "IPv4_Destination_Address 192.168.102.2" in text
    check_conntrackd(text, tmp_path)
    dropin = render("conntrackd", "conntrackd-dropin.conf.j2", plan, "sw-fw1")
    assert "ExecStartPre=-/usr/local/sbin/fwcluster-resync-gate hold\n" in dropin
    assert "ExecStopPost=-/usr/local/sbin/fwcluster-resync-gate release\n" in dropin
    gate = render("conntrackd", "fwcluster-resync-gate.sh.j2", plan, "sw-fw1")
    # over TCP the gate asks once each side's connection is up; the firewall forwards nothing before
    assert 'ss -Htn state established "( $side = :3780 )"' in gate and "for side in dport sport" in gate
    assert "sysctl -q -w net.ipv4.ip_forward=0" in gate and "sysctl -q -w net.ipv4.ip_forward=1" in gate


def test_routes_script_prints_the_plan(plan):
    firewall = render("firewall", "fwcluster-routes.j2", plan, "sw-fw2")
    assert '\tip -4 route replace 10.40.1.0/24 via 10.40.2.254 dev eth1 proto "$proto"\n' in firewall
    assert '\tip -4 route replace default via 10.40.3.254 dev eth2 proto "$proto"\n' in firewall
    balancer = render("firewall", "fwcluster-routes.j2", plan, "sw-lbi2")
    assert '\tip -4 route replace default via 10.40.2.1 dev eth1 table 101 proto "$proto"\n' in balancer
    assert '\tip -4 route replace default via 10.40.2.2 dev eth1 table 102 proto "$proto"\n' in balancer
    # what a later run keeps: each route as family:destination@table
    assert 'wanted="4:0.0.0.0/0@101 4:0.0.0.0/0@102' in balancer


def test_health_config_is_the_plans_part(plan):
    text = render("balancer", "balancer.json.j2", plan, "sw-lbo1")
    assert json.loads(text) == plan["balancers"]["sw-lbo1"]["balancer"]
    unit = render("balancer", "fwcluster-balancer.service.j2", plan, "sw-lbo1")
    assert "ExecStart=/usr/bin/python3 /usr/local/lib/fwcluster/balancer_health.py /etc/fwcluster/balancer.json" in unit


def test_balancer_notify_script_records_without_conntrackd(plan):
    text = render("keepalived", "fwcluster-notify.sh.j2", plan, "sw-lbi1")
    assert "ctd " not in text and "conntrackd -C" not in text
    result = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
