"""The segment interfaces' live check, on the loopback interface and a fake /sys/class/net."""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils import node_links
from ansible_collections.fwcluster.netfilter.plugins.modules import validate_interfaces

main = validate_interfaces.main
needs_ip = pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2")


@needs_ip
def test_an_interface_up_holding_the_address_passes(run_module):
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "lo"},
                                   "addresses": {"inside": "127.0.0.1/8"}})
    assert ok, result
    assert result["changed"] is False
    checked = result["interfaces"]["inside"]
    assert checked["interface"] == "lo" and checked["problem"] is None
    assert "127.0.0.1/8" in checked["addresses"]
    assert checked["operstate"] in ("up", "unknown")


@needs_ip
def test_check_mode_checks_the_same(run_module):
    args = {"name": "pb-fw1", "interfaces": {"inside": "lan9"}, "addresses": {"inside": "10.0.0.1/24"}}
    ok, result = run_module(main, args, check_mode=True)
    assert not ok and result["rule"] == "interface lan9 does not exist on this node"


@needs_ip
def test_a_missing_interface_names_its_variable(run_module):
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "lan9", "outside": "lo"},
                                   "addresses": {"inside": "10.10.1.1/24", "outside": "127.0.0.1/8"}})
    assert not ok
    assert (result["host"], result["variable"]) == ("pb-fw1", "fwcluster_interfaces.inside")
    assert result["msg"] == "pb-fw1: fwcluster_interfaces.inside: interface lan9 does not exist on this node"
    # what was found is returned with the failure, the good interface included
    assert result["interfaces"]["outside"]["problem"] is None
    assert result["interfaces"]["inside"]["operstate"] is None


@needs_ip
def test_an_address_the_interface_does_not_hold(run_module):
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "lo"},
                                   "addresses": {"inside": "127.0.0.1/24"}})  # lo holds 127.0.0.1/8
    assert not ok
    assert result["variable"] == "fwcluster_addresses.inside"
    assert result["rule"].startswith("127.0.0.1/24 is not configured on lo (it holds 127.0.0.1/8")


@needs_ip
def test_every_wrong_interface_is_reported(run_module):
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "lan9", "outside": "wan9"},
                                   "addresses": {"inside": "10.10.1.1/24", "outside": "203.0.113.1/24"}})
    assert not ok
    assert result["variable"] == "fwcluster_interfaces.inside"
    assert result["rule"] == ("interface lan9 does not exist on this node "
                              "(also outside: interface wan9 does not exist on this node)")


def test_a_down_interface(run_module, monkeypatch, tmp_path):
    fake = tmp_path / "eth1"
    fake.mkdir()
    (fake / "operstate").write_text("down\n")
    (fake / "flags").write_text("0x1003\n")
    monkeypatch.setattr(node_links, "SYS_CLASS_NET", str(tmp_path))
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "eth1"},
                                   "addresses": {"inside": "10.10.1.1/24"}})
    assert not ok
    assert result["variable"] == "fwcluster_interfaces.inside"
    assert result["rule"] == "interface eth1 is not up (operstate down, administratively up)"


def test_an_interface_without_an_address(run_module):
    ok, result = run_module(main, {"name": "pb-fw1", "interfaces": {"inside": "eth1", "outside": "eth2"},
                                   "addresses": {"inside": "10.10.1.1/24"}})
    assert not ok
    assert result["variable"] == "fwcluster_addresses.outside"
    assert result["rule"] == "no address given for the outside interface eth2"


def test_documentation_is_yaml():
    import yaml
    for text in (validate_interfaces.DOCUMENTATION, validate_interfaces.EXAMPLES, validate_interfaces.RETURN):
        assert yaml.safe_load(text)
