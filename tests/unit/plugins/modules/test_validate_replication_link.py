"""The replication-link validator, on the loopback interface."""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils import node_links
from ansible_collections.fwcluster.netfilter.plugins.modules import validate_replication_link

main = validate_replication_link.main
needs_ip = pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2")
needs_ping = pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping (iputils-ping)")


def node_args(**overrides):
    args = {"scope": "node", "name": "pb-fw1", "interface": "lo", "address": "127.0.0.1", "prefix": 8,
            "peers": []}
    args.update(overrides)
    return args


# ---------------------------------------------------------------- arguments


def test_controller_scope_is_gone(run_module):
    # validate_node_ids checks the replication settings on the controller; this module checks a node
    ok, result = run_module(main, node_args(scope="controller"))
    assert not ok and "scope" in result["msg"] and "controller" in result["msg"]


def test_node_arguments_are_required(run_module):
    ok, result = run_module(main, {"name": "pb-fw1"})
    assert not ok
    assert all(name in result["msg"] for name in ("interface", "address", "prefix"))


@needs_ip
@needs_ping
def test_scope_defaults_to_node(run_module):
    args = node_args(peers=["127.0.0.1"])
    del args["scope"]
    ok, result = run_module(main, args)
    assert ok, result
    assert result["interface"] == "lo"


# ---------------------------------------------------------------- node, on lo


@needs_ip
@needs_ping
@pytest.mark.parametrize("check_mode", [False, True])
def test_loopback_link_is_good(run_module, check_mode):
    ok, result = run_module(main, node_args(peers=["127.0.0.1"]), check_mode)
    assert ok, result
    assert result["changed"] is False
    assert result["interface"] == "lo"
    assert result["operstate"] in ("unknown", "up")
    assert "127.0.0.1/8" in result["addresses"]
    assert result["peers"][0]["address"] == "127.0.0.1"
    assert result["peers"][0]["reachable"] is True
    assert isinstance(result["peers"][0]["rtt_ms"], float)


@needs_ip
def test_address_not_held(run_module):
    ok, result = run_module(main, node_args(address="127.0.0.2"))
    assert not ok
    assert result["host"] == "pb-fw1"
    assert result["variable"] == "fwcluster_replication_address"
    assert "127.0.0.2/8 is not configured on lo" in result["rule"]
    assert result["msg"].startswith("pb-fw1: fwcluster_replication_address: ")


@needs_ip
def test_wrong_prefix(run_module):
    ok, result = run_module(main, node_args(prefix=24))
    assert not ok and result["variable"] == "fwcluster_replication_address"
    assert "127.0.0.1/24 is not configured" in result["rule"]


def test_missing_interface(run_module):
    ok, result = run_module(main, node_args(interface="fwc-none0"))
    assert not ok
    assert result["host"] == "pb-fw1"
    assert result["variable"] == "fwcluster_replication.interface"
    assert "fwc-none0 does not exist" in result["rule"]


@needs_ip
def test_silent_peer_named(run_module, monkeypatch):
    # ping itself is faked: the test is about naming the silent peer host, not about the network.
    monkeypatch.setattr(validate_replication_link, "ping_peer",
                        lambda module, ping, interface, peer, timeout: (peer == "127.0.0.1", 0.1))
    monkeypatch.setattr(validate_replication_link, "peer_by_arp",
                        lambda module, interface, source, peer, timeout: None)
    monkeypatch.setattr(basic_module(), "get_bin_path", lambda self, name, *a, **k: "/bin/" + name
                        if name == "ping" else shutil.which(name))
    args = node_args(peers=["127.0.0.1", "192.0.2.1"], peer_hosts={"192.0.2.1": "pb-fw2"})
    ok, result = run_module(main, args)
    assert not ok
    assert result["host"] == "pb-fw2"
    assert result["variable"] == "fwcluster_replication_address"
    assert "peer 192.0.2.1 answers neither ping nor ARP from pb-fw1 through lo" in result["rule"]
    assert [peer["reachable"] for peer in result["peers"]] == [True, False]
    assert [peer["via"] for peer in result["peers"]] == ["ping", None]


@needs_ip
def test_peer_answering_only_arp_is_reachable(run_module, monkeypatch):
    # The replication-off ruleset drops ICMP on the link: ping is silent, the peer's kernel answers ARP.
    asked = []
    monkeypatch.setattr(validate_replication_link, "ping_peer",
                        lambda module, ping, interface, peer, timeout: (False, None))

    def arp(interface, source, peer, timeout):
        asked.append((interface, source, peer, timeout))
        return "52:54:00:00:00:02" if peer == "192.0.2.2" else None

    monkeypatch.setattr(validate_replication_link, "arp_probe", arp)
    monkeypatch.setattr(basic_module(), "get_bin_path", lambda self, name, *a, **k: "/bin/" + name
                        if name == "ping" else shutil.which(name))
    ok, result = run_module(main, node_args(peers=["192.0.2.2"], peer_hosts={"192.0.2.2": "pb-fw2"},
                                            timeout=0.3))
    assert ok, result
    assert result["peers"] == [{"address": "192.0.2.2", "host": "pb-fw2", "reachable": True, "via": "arp",
                                "mac": "52:54:00:00:00:02", "rtt_ms": None}]
    assert asked == [("lo", "127.0.0.1", "192.0.2.2", 1)]

    ok, result = run_module(main, node_args(peers=["192.0.2.3"], peer_hosts={"192.0.2.3": "pb-fw3"}))
    assert not ok and result["host"] == "pb-fw3"
    assert "answers neither ping nor ARP" in result["rule"]


def test_arp_fallback_without_raw_socket_reads_the_neighbour_table():
    class FakeModule(object):
        def __init__(self, out):
            self.out = out
            self.calls = []

        def get_bin_path(self, name):
            return "/sbin/" + name

        def run_command(self, argv):
            self.calls.append(argv)
            return 0, self.out, ""

    def no_socket(interface, source, peer, timeout):
        raise PermissionError("Operation not permitted")

    original = validate_replication_link.arp_probe
    validate_replication_link.arp_probe = no_socket
    try:
        fresh = FakeModule('[{"dst":"10.0.0.2","dev":"eth3","lladdr":"52:54:00:00:00:02","state":["REACHABLE"]}]')
        assert validate_replication_link.peer_by_arp(fresh, "eth3", "10.0.0.1", "10.0.0.2", 1) == "52:54:00:00:00:02"
        assert fresh.calls == [["/sbin/ip", "-j", "neigh", "show", "to", "10.0.0.2", "dev", "eth3"]]
        # A stale or failed entry proves nothing about the peer now.
        for state in ('["STALE"]', '["FAILED"]', '["INCOMPLETE"]'):
            old = FakeModule('[{"dst":"10.0.0.2","dev":"eth3","lladdr":"52:54:00:00:00:02","state":%s}]' % state)
            assert validate_replication_link.peer_by_arp(old, "eth3", "10.0.0.1", "10.0.0.2", 1) is None
        assert validate_replication_link.peer_by_arp(FakeModule("[]"), "eth3", "10.0.0.1", "10.0.0.2", 1) is None
    finally:
        validate_replication_link.arp_probe = original


def test_arp_frames():
    mac = b"\x52\x54\x00\x00\x00\x01"
    request = validate_replication_link.arp_request(mac, "192.168.101.1", "192.168.101.2")
    assert len(request) == 42
    assert request[:6] == b"\xff" * 6 and request[6:12] == mac and request[12:14] == b"\x08\x06"
    assert request[20:22] == b"\x00\x01"                       # who-has
    assert request[28:32] == bytes(bytearray([192, 168, 101, 1]))
    assert request[38:42] == bytes(bytearray([192, 168, 101, 2]))
    # A reply, as the peer's kernel builds it: swap the addresses, op 2, its MAC as sender.
    peer_mac = b"\x52\x54\x00\x00\x00\x02"
    reply = (mac + peer_mac + b"\x08\x06" + request[14:20] + b"\x00\x02" + peer_mac + request[38:42]
             + mac + request[28:32] + b"\x00" * 18)
    assert validate_replication_link.arp_reply_from(reply, "192.168.101.2") == "52:54:00:00:00:02"
    assert validate_replication_link.arp_reply_from(reply, "192.168.101.3") is None     # another host's
    assert validate_replication_link.arp_reply_from(request, "192.168.101.1") is None   # a request, not a reply
    assert validate_replication_link.arp_reply_from(reply[:30], "192.168.101.2") is None
    assert validate_replication_link.arp_reply_from(b"\x00" * 12 + b"\x08\x00" + reply[14:], "192.168.101.2") is None


def test_ping_gets_whole_seconds():
    calls = []

    class FakeModule(object):
        def run_command(self, argv):
            calls.append(argv)
            return 0, "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.051 ms\n", ""

    assert validate_replication_link.ping_peer(FakeModule(), "ping", "eth3", "10.0.0.2", 0.2) == (True, 0.051)
    assert validate_replication_link.ping_peer(FakeModule(), "ping", "eth3", "10.0.0.2", 2.5) == (True, 0.051)
    assert [argv[argv.index("-W") + 1] for argv in calls] == ["1", "3"]
    assert calls[0][-3:] == ["-I", "eth3", "10.0.0.2"]


def test_down_interface(run_module, monkeypatch, tmp_path):
    fake = tmp_path / "eth3"
    fake.mkdir()
    (fake / "operstate").write_text("down\n")
    (fake / "flags").write_text("0x1002\n")
    monkeypatch.setattr(node_links, "SYS_CLASS_NET", str(tmp_path))
    ok, result = run_module(main, node_args(interface="eth3"))
    assert not ok
    assert result["variable"] == "fwcluster_replication.interface"
    assert "eth3 is not up (operstate down, administratively down)" in result["rule"]


def test_node_scope_needs_interface(run_module):
    ok, result = run_module(main, {"scope": "node", "address": "10.0.0.1", "prefix": 24})
    assert not ok and "interface" in result["msg"]


def test_documentation_is_yaml():
    import yaml
    for text in (validate_replication_link.DOCUMENTATION, validate_replication_link.EXAMPLES,
                 validate_replication_link.RETURN):
        assert yaml.safe_load(text)


def basic_module():
    from ansible.module_utils.basic import AnsibleModule
    return AnsibleModule
