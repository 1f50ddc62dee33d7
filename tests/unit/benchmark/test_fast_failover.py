"""benchmark/fast_failover.py: the deploy of each setting, and what counts as a false failover."""

import json
import pathlib
import subprocess
import sys
import types

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmark"))
import bench  # noqa: E402  pylint: disable=wrong-import-position
import fast_failover  # noqa: E402  pylint: disable=wrong-import-position


def lab(architecture, members, firewalls):
    return types.SimpleNamespace(architecture=architecture, members=members, firewalls=firewalls,
                                 vrrp={"advert_int": 1, "unicast": False},
                                 balancers={"health": {"interval": 1, "timeout": 0.5, "fall": 3, "rise": 5},
                                            "inside": {"vip": "10.40.1.254/24"}})


def test_a_vrrp_setting_is_the_advert_int_the_rest_of_fwcluster_vrrp_kept():
    extra, label = fast_failover.overrides(lab("primary_backup", ["pb-fw1", "pb-fw2"], ["pb-fw1", "pb-fw2"]), 0.05)
    assert extra == {"fwcluster_vrrp": {"advert_int": 0.05, "unicast": False}}
    assert label == "advert_int 0.05"


def test_a_sandwich_setting_is_its_balancers_health_interval():
    extra, label = fast_failover.overrides(lab("sandwich", ["sw-fw1", "sw-lbi1"], ["sw-fw1"]), 0.1)
    assert extra == {"fwcluster_balancers": {"health": {"interval": 0.1, "timeout": 0.075, "fall": 3, "rise": 6},
                                             "inside": {"vip": "10.40.1.254/24"}}}
    assert label == "health every 0.1 s"
    # --fast-fall: fewer failed probes before a firewall is dropped, named in the label
    extra, label = fast_failover.overrides(lab("sandwich", ["sw-fw1", "sw-lbi1"], ["sw-fw1"]), 0.03, fall=2)
    assert extra["fwcluster_balancers"]["health"] == {"interval": 0.03, "timeout": 0.022, "fall": 2, "rise": 6}
    assert label == "health every 0.03 s, fall 2"


def test_every_transition_within_the_soak_counts_on_every_node(monkeypatch):
    # keepalived's journal as journalctl -o short-unix prints it; a sandwich balancer's health record
    journals = {
        "hs-fw1": "99.500000 hs-fw1 Keepalived_vrrp[951]: (mesh_id0) Entering MASTER STATE\n"
                  "100.250000 hs-fw1 Keepalived_vrrp[951]: (mesh_id2) Entering BACKUP STATE\n"
                  "100.300000 hs-fw1 Keepalived_vrrp[951]: Printing VRRP as json for process(951) on signal\n",
        "hs-fw2": "100.500000 hs-fw2 Keepalived_vrrp[77]: (mesh_id2) Entering MASTER STATE\n"
                  "161.000000 hs-fw2 Keepalived_vrrp[77]: (mesh_id2) Entering FAULT STATE\n",
        "sw-lbi1": "-- No entries --\n",
    }
    events = {"sw-lbi1": json.dumps({"events": [
        {"event": "down", "firewall": "sw-fw2", "time": 130.0, "applied": 130.1},
        {"event": "up", "firewall": "sw-fw2", "time": 140.0},
        {"event": "down", "firewall": "sw-fw1", "time": 170.0, "applied": 170.1}]})}
    commands = []

    def pexec(host, command, check=True):
        commands.append(command)
        text = journals.get(host, "") if command.startswith("journalctl") else events.get(host, "")
        return subprocess.CompletedProcess(command, 0, text, "")
    monkeypatch.setattr(bench, "pexec", pexec)
    found = fast_failover.transitions(lab("mixed", ["hs-fw1", "hs-fw2", "sw-lbi1"], ["hs-fw1", "hs-fw2"]), 100.0, 160.0)
    assert found == [{"node": "hs-fw1", "time_ms": 250, "event": "vrrp mesh_id2 BACKUP"},
                     {"node": "hs-fw2", "time_ms": 500, "event": "vrrp mesh_id2 MASTER"},
                     {"node": "sw-lbi1", "time_ms": 30000, "event": "health: sw-fw2 down"}]
    assert "journalctl -u keepalived -o short-unix --no-pager --since @100 --until @161" in commands
