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


def test_every_transition_within_the_soak_counts_on_every_node(monkeypatch):
    files = {
        ("pb-fw1", fast_failover.VRRP_STATE): "99.5 primary\n100.25 backup\n",
        ("pb-fw2", fast_failover.VRRP_STATE): "99.0 backup\n100.5 primary\n161.0 backup\n",
        ("sw-lbi1", fast_failover.VRRP_STATE): "",
        ("sw-lbi1", bench.BALANCER_STATE): json.dumps({"events": [
            {"event": "down", "firewall": "sw-fw2", "time": 130.0, "applied": 130.1},
            {"event": "up", "firewall": "sw-fw2", "time": 140.0},
            {"event": "down", "firewall": "sw-fw1", "time": 170.0, "applied": 170.1}]}),
    }

    def pexec(host, command, check=True):
        path = command.split()[1]
        return subprocess.CompletedProcess(command, 0, files.get((host, path), ""), "")
    monkeypatch.setattr(bench, "pexec", pexec)
    found = fast_failover.transitions(lab("mixed", ["pb-fw1", "pb-fw2", "sw-lbi1"], ["pb-fw1", "pb-fw2"]), 100.0, 160.0)
    assert found == [{"node": "pb-fw1", "time_ms": 250, "event": "vrrp backup"},
                     {"node": "pb-fw2", "time_ms": 500, "event": "vrrp primary"},
                     {"node": "sw-lbi1", "time_ms": 30000, "event": "health: sw-fw2 down"}]
