"""The parts of benchmark/bench.py that turn captures and sessions into figures."""

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import types

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmark"))
import bench  # noqa: E402  pylint: disable=wrong-import-position

SOURCES = ["10.0.1.100", "10.0.1.101", "10.0.1.102", "10.0.1.103"]


def lab(dests, architecture="hash", balancers=None):
    return types.SimpleNamespace(sources=SOURCES, dests=dests, port=8080, architecture=architecture,
                                 balancers=balancers)


def test_packet_line_reads_tcpdump_any_out():
    # tcpdump 4.99 -i any -Q out -nn -tt -q, as printed on a lab node
    line = "1795571234.123456 eth2  Out IP 10.0.1.100.40000 > 198.51.100.10.8080: tcp 0"
    match = bench.PACKET_LINE.match(line)
    assert match.group(1, 2, 3) == ("1795571234.123456", "10.0.1.100", "198.51.100.10")


def test_carriers_by_source_pair():
    counts = {"fw1": collections.Counter({(SOURCES[0], "d"): 5, (SOURCES[2], "d"): 1}),
              "fw2": collections.Counter({(SOURCES[1], "d"): 3})}
    pairs = [(SOURCES[0], "d"), (SOURCES[1], "d"), (SOURCES[2], "d"), (SOURCES[3], "d")]
    assert bench.carriers(lab(["d"]), counts, pairs) == {
        (SOURCES[0], "d"): "fw1", (SOURCES[1], "d"): "fw2", (SOURCES[2], "d"): "fw1", (SOURCES[3], "d"): None}


def test_carriers_by_destination_when_the_source_is_translated():
    # a sandwich firewall SNATs: the source on the wire is its own address
    counts = {"fw1": collections.Counter({("10.40.3.1", "d1"): 7}),
              "fw2": collections.Counter({("10.40.3.2", "d2"): 4})}
    pairs = [(SOURCES[0], "d1"), (SOURCES[1], "d2")]
    assert bench.carriers(lab(["d1", "d2"]), counts, pairs) == {pairs[0]: "fw1", pairs[1]: "fw2"}


def test_survivor_filter_narrows_on_what_tells_the_victims_flows_apart():
    pairs = [(SOURCES[0], "d1"), (SOURCES[1], "d2"), (SOURCES[2], "d1"), (SOURCES[3], "d2")]
    # destinations tell them apart (sandwich): match on the destination only, sources may be translated
    assert bench.survivor_filter(lab(["d1", "d2"]), [pairs[0], pairs[2]], pairs) == \
        "tcp dst port 8080 and (dst host d1)"
    one = [(s, "d") for s in SOURCES]
    # one destination, flows spread by source (hash)
    assert bench.survivor_filter(lab(["d"]), one[:2], one) == \
        "tcp dst port 8080 and (src host 10.0.1.100 or src host 10.0.1.101)"
    # every flow was the victim's (primary_backup)
    assert bench.survivor_filter(lab(["d"]), one, one) == "tcp dst port 8080"


def test_recovered_flows_counts_only_the_victims_connected_sessions_in_progress_at_the_kill():
    kill = 100.0
    sessions = [   # slot, size, start, end, ok, bytes, error, connected
        [0, 0, 99.0, 101.0, True, 0, None, 99.01],          # in progress, completed
        [0, 0, 99.5, 115.0, False, 0, "stall", 99.51],      # in progress, broken
        [0, 0, 98.0, 99.9, True, 0, None, 98.01],           # ended before the kill
        [0, 0, 99.9, 100.1, True, 0, None, 99.91],          # done on the wire before the kill, noted late
        [0, 0, 100.2, 100.3, True, 0, None, 100.21],        # started after the kill
        [1, 0, 99.0, 101.0, False, 0, "reset", 99.01],      # another node's slot
        [0, 0, 99.8, 102.5, True, 0, None, 102.4],          # its SYN crossed the failover: connecting
        [0, 0, 99.7, 114.8, False, 0, "connect-timeout", None],   # connecting, never connected
        [2, 1000, 99.5, 103.0, True, 1000, None, 99.6],
        [2, 1000, 99.0, 103.1, True, 1000, None, 99.85],    # connected 150 ms before: in progress
        [2, 1000, 99.9, 115.0, False, 0, "stall", 99.95],   # connected 50 ms before: young, broken
        [2, 1000, 99.99, 103.2, True, 1000, None, 100.1],   # handshake noted late: young, completed
    ]
    assert bench.recovered_flows(sessions, {0, 2}, [0, 1000], kill) == [
        {"size": 0, "in_progress": 2, "recovered": 1, "errors": {"stall": 1}, "recovered_end_ms": [1000],
         "young": 0, "young_completed": 0, "connecting": 2, "connecting_completed": 1},
        {"size": 1000, "in_progress": 2, "recovered": 2, "errors": {}, "recovered_end_ms": [3000, 3100],
         "young": 2, "young_completed": 1, "connecting": 0, "connecting_completed": 0}]


@pytest.mark.parametrize("architecture,advert_int,health,expected", [
    ("primary_backup", 1.0, None, 4000),
    ("hash", 0.2, None, 800),
    ("sandwich", 1.0, None, 1900),
    ("sandwich", 0.2, {"interval": 0.2, "timeout": 0.15, "fall": 3}, 750),
])
def test_bound(architecture, advert_int, health, expected):
    balancers = {"health": {"interval": 0.5, "timeout": 0.4, "fall": 3}}
    assert bench.bound_ms(lab(["d"], architecture, balancers), advert_int, health) == expected


def test_rate_row_takes_the_median_and_keeps_every_run():
    runs = [{"sessions": 300, "failed": 1, "errors": {"reset": 1}, "duration_s": 3.0, "sessions_per_s": 100.0,
             "throughput_bps": 10.0},
            {"sessions": 900, "failed": 0, "errors": {}, "duration_s": 3.0, "sessions_per_s": 300.0,
             "throughput_bps": 30.0},
            {"sessions": 600, "failed": 2, "errors": {"reset": 1, "stall": 1}, "duration_s": 3.0,
             "sessions_per_s": 200.0, "throughput_bps": 20.0}]
    row = bench.rate_row(1024, runs)
    assert row == {"size": 1024, "sessions": 1800, "failed": 3, "errors": {"reset": 2, "stall": 1}, "duration_s": 9.0,
                   "sessions_per_s": 200.0, "throughput_bps": 20.0, "runs": [100.0, 300.0, 200.0],
                   "throughput_runs": [10.0, 30.0, 20.0]}
    assert bench.rate_row(0, runs[:2])["sessions_per_s"] == 200.0   # even count: the mean of the middle two


def test_measure_rates_alternates_replication_on_one_deployment(monkeypatch):
    calls = []
    speed = {"on": 90.0, "off": 100.0}
    state = {"running": True}

    def running(_lab, on):
        state["running"] = on
        calls.append("start" if on else "stop")

    def once(_lab, _settings, size):
        which = "on" if state["running"] else "off"
        calls.append("%s:%d" % (which, size))
        rate = speed[which] + len(calls)   # a drift the alternation spreads over both
        return ({"sessions": 1, "failed": 0, "errors": {}, "duration_s": 1.0, "sessions_per_s": rate,
                 "throughput_bps": rate}, {"fw1": 3, "fw2": 1})

    monkeypatch.setattr(bench, "replication_running", running)
    monkeypatch.setattr(bench, "rate_once", once)
    lab_ = types.SimpleNamespace(replication={"enabled": True}, firewalls=["fw1", "fw2"])
    rows, share = bench.measure_rates(lab_, {"rate_repeats": 3, "rate_sizes": [0, 1024]})
    assert calls == ["start", "on:0", "on:1024", "stop", "off:0", "off:1024",
                     "stop", "off:0", "off:1024", "start", "on:0", "on:1024",
                     "start", "on:0", "on:1024", "stop", "off:0", "off:1024", "start"]
    assert [len(row["runs"]) for row in rows["on"] + rows["off"]] == [3, 3, 3, 3]
    assert share == {"fw1": 36, "fw2": 12}   # every measure counts: 3 repeats x 2 settings x 2 sizes
    # without replication: one series, conntrackd never touched
    calls.clear()
    lab_.replication = None
    rows, _share = bench.measure_rates(lab_, {"rate_repeats": 2, "rate_sizes": [0]})
    assert calls == ["on:0", "on:0"] and rows["off"] is None


def test_balancer_transitions_read_each_balancers_drop_of_the_victim(monkeypatch):
    kill_at = 1000.0
    states = {
        # an earlier drop of the victim (before the kill) and another firewall's are not this kill's
        "sw-lb-in": {"events": [{"event": "down", "firewall": "sw-fw1", "time": 990.0, "applied": 990.1},
                                {"event": "down", "firewall": "sw-fw2", "time": 1000.5, "applied": 1000.52},
                                {"event": "down", "firewall": "sw-fw1", "time": 1000.75, "applied": 1000.79}]},
        "sw-lb-out": {"events": [{"event": "start", "time": 900.0}]},
    }

    def pexec(host, command, check=True):
        assert command == "cat %s" % bench.BALANCER_STATE and check is False
        return types.SimpleNamespace(stdout=json.dumps(states[host]) if host in states else "")

    monkeypatch.setattr(bench, "pexec", pexec)
    sandwich = types.SimpleNamespace(members=["sw-fw1", "sw-fw2", "sw-lb-in", "sw-lb-out", "sw-lb-gone"],
                                     firewalls=["sw-fw1", "sw-fw2"])
    assert bench.balancer_transitions(sandwich, "sw-fw1", kill_at) == [
        {"balancer": "sw-lb-in", "detected_ms": 750.0, "applied_ms": 790.0}]
    # VRRP architectures have no balancers: nothing is read.
    assert bench.balancer_transitions(types.SimpleNamespace(members=["a", "b"], firewalls=["a", "b"]), "a", kill_at) == []


def test_hash_takeovers_pair_each_new_master_with_its_id_taken(monkeypatch):
    kill_at = 1000.0
    # what a survivor prints: keepalived's journal since the kill (journalctl -o short-unix), then
    # the owner hook's log, whose earlier lines (before the kill, or another id) are not this takeover's
    out = {
        "hs-fw1": "1000.130000 hs-fw1 Keepalived_vrrp[951]: (mesh_id1) Entering MASTER STATE\n"
                  "1000.131000 hs-fw1 Keepalived_vrrp[951]: Printing VRRP as json for process(951) on signal\n"
                  "---\n"
                  "990.000000 take 1\n1000.050000 release 2\n1000.602000 take 1\n",
        # master of id 2, never took it (its commit still ran when the run read it)
        "hs-fw3": "1000.150000 hs-fw3 Keepalived_vrrp[77]: (mesh_id2) Entering MASTER STATE\n---\n",
    }

    def pexec(host, command, check=True):
        assert command.startswith("journalctl -u keepalived -o short-unix --no-pager --since @1000;") and not check
        assert command.endswith("cat %s" % bench.HASH_OWNERSHIP_LOG)
        return types.SimpleNamespace(stdout=out[host])

    monkeypatch.setattr(bench, "pexec", pexec)
    hash_lab = types.SimpleNamespace(architecture="hash")
    assert bench.hash_takeovers(hash_lab, ["hs-fw1", "hs-fw3"], kill_at) == [
        {"node": "hs-fw1", "instance": "mesh_id1", "master_ms": 130, "taken_ms": 602},
        {"node": "hs-fw3", "instance": "mesh_id2", "master_ms": 150, "taken_ms": None}]
    assert bench.hash_takeovers(types.SimpleNamespace(architecture="multipath"), ["mp-fw1"], kill_at) == []


class FakeLab:
    """A lab whose deploys, settles and measures are recorded, not run."""

    def __init__(self, backend="iptables", replication=None):
        self.scenario, self.architecture, self.backend = "multipath", "multipath", backend
        self.firewalls, self.replication, self.vrrp, self.balancers = ["fw1", "fw2"], replication, {}, None
        self.deployed = []

    def running(self):
        return True

    def deploy(self, overrides, label):
        self.deployed.append(overrides.get("fwcluster_backend", self.backend))
        return None

    def settle(self):
        pass

    def prepare_load(self):
        pass

    def molecule(self, action):
        pass


def test_a_full_run_measures_the_other_backend_on_the_same_lab_then_returns(monkeypatch):
    lab_ = FakeLab(backend="nftables")
    measured = []

    def rates(lab, _settings):
        measured.append(lab.deployed[-1])
        return {"on": [{"size": 0, "sessions_per_s": len(measured)}], "off": None}, {}

    def kill(lab, _settings, label, *_args, **kwargs):
        return {"label": label, "backend": kwargs.get("backend") or lab.backend, "deployed": lab.deployed[-1]}

    monkeypatch.setattr(bench, "measure_rates", rates)
    monkeypatch.setattr(bench, "kill_test", kill)
    monkeypatch.setattr(bench, "machine", lambda _host: {})
    result = bench.bench_architecture(lab_, dict(bench.FULL), smoke=False, keep_lab=True, reuse_lab=True)
    # the inventory's backend, the other one, then back for the sub-second kill
    assert lab_.deployed == ["nftables", "iptables", "nftables"]
    assert measured == ["nftables", "iptables"]
    assert [(k["backend"], k["deployed"]) for k in result["kills"]] == [
        ("nftables", "nftables"), ("iptables", "iptables"), ("nftables", "nftables")]
    assert result["backend"] == "nftables"
    assert result["backends"]["iptables"] == {"rate": {"on": [{"size": 0, "sessions_per_s": 2}], "off": None},
                                              "kill": result["kills"][1]["label"]}
    assert result["backends"]["nftables"]["kill"] == result["kills"][0]["label"]
    # a smoke run stays on the inventory's backend
    lab_ = FakeLab(backend="iptables")
    result = bench.bench_architecture(lab_, dict(bench.SMOKE), smoke=True, keep_lab=True, reuse_lab=True)
    assert lab_.deployed == ["iptables"] and list(result["backends"]) == ["iptables"]


def test_replication_off_leaves_out_the_tracking_that_needs_the_link():
    # The primary_backup example tracks an upstream host, which the model refuses without replication.
    overrides = bench.replication_off({"interface": "eth3", "mode": "ftfw"},
                                      {"upstream": [{"host": "203.0.113.10", "segment": "outside"}], "hold_down": 5,
                                       "interval": 2})
    assert overrides == {"fwcluster_replication": {"interface": "eth3", "mode": "ftfw", "enabled": False},
                         "fwcluster_tracking": {"interval": 2}}
    assert bench.replication_off({"mode": "notrack"}, {}) == {"fwcluster_replication": {"mode": "notrack",
                                                                                        "enabled": False}}


def test_routed_network_is_the_ipv4_one_routed_through_the_client():
    segments = {"inside": {"vip": ["10.20.1.254/24", "2001:db8:20:1::fe/64"],
                           "routes": ["2001:db8:28::/48", "10.20.8.0/22"], "gateway": ["10.20.1.10", "2001:db8:20:1::10"]},
                "outside": {"vip": "198.51.100.254/24", "routes": ["0.0.0.0/0"], "gateway": "198.51.100.1"}}
    hostvars = {"fw1": {"fwcluster_segments": segments}, "client": {}}
    assert str(bench.routed_network(hostvars, ["fw1"], "10.20.1.10")) == "10.20.8.0/22"
    # routed through another host, or nothing routed: the client's own subnet is used
    assert bench.routed_network(hostvars, ["fw1"], "10.20.1.11") is None
    assert bench.routed_network({"fw1": {"fwcluster_segments": {"inside": {"vip": "10.0.0.1/24"}}}},
                                ["fw1"], "10.0.0.10") is None


@pytest.mark.parametrize("architecture, firewalls, target, expected", [
    ("primary_backup", 2, 30, 45),   # the primary carries every flow
    ("sandwich", 2, 30, 90),         # the victim carries about half
    ("hash", 3, 30, 135),            # about a third
    ("hash", 3, 8, 36),              # the smoke run's aim
])
def test_clients_per_size_give_the_victim_its_sample(architecture, firewalls, target, expected):
    lab_ = types.SimpleNamespace(architecture=architecture, firewalls=["fw%d" % n for n in range(firewalls)])
    assert bench.clients_per_size(lab_, dict(bench.FULL, recovery_in_progress_per_size=target)) == expected


def test_predicted_share_is_the_clusters_hash_of_the_sources():
    sources = ["10.20.8.%d" % n for n in range(1, 101)]
    hostvars = {"hs-fw%d" % (n + 1): {"fwcluster_node_id": n, "fwcluster_hash_seed": 0x5eed1234} for n in range(3)}
    lab_ = types.SimpleNamespace(architecture="hash", firewalls=sorted(hostvars), hostvars=hostvars, sources=sources)
    predicted = bench.predicted_share(lab_)
    assert sum(predicted.values()) == 100
    # each node gets exactly the sources the collection's own filter gives its node id
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "build" / "collections"))
    from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import hash_node_ids  # pylint: disable=import-outside-toplevel
    owners = hash_node_ids(sources, 0x5eed1234, 3)
    assert predicted == {"hs-fw%d" % (n + 1): sum(1 for node_id in owners.values() if node_id == n) for n in range(3)}
    assert bench.predicted_share(types.SimpleNamespace(architecture="sandwich", firewalls=["sw-fw1"],
                                                       hostvars={"sw-fw1": {}}, sources=sources)) is None


def test_wait_exited_returns_once_the_killed_process_has_exited():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        bench.wait_exited(proc.pid)   # a zombie until reaped below: exited all the same
        assert time.time() - started < 5
        with open("/proc/%d/stat" % proc.pid, encoding="utf-8") as stat:
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        proc.wait()
    bench.wait_exited(proc.pid)   # reaped: gone


def test_wait_exited_gives_up_on_a_living_process():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(bench.BenchError, match="did not exit within 0.2 s"):
            bench.wait_exited(proc.pid, timeout=0.2)
    finally:
        proc.kill()
        proc.wait()


def test_peer_flows_go_into_every_deploy_under_its_own_overrides(monkeypatch, tmp_path):
    lab_ = object.__new__(bench.Lab)
    lab_.members, lab_.inventory = ["hs-fw1", "hs-fw2", "hs-fw3"], "inventory.yml"
    lab_.extra_vars = tmp_path / "extra.json"
    lab_.replication, lab_.inventory_overrides = {"interface": "eth3", "mode": "notrack"}, {}
    deployed = []

    def run(argv, **_kwargs):
        deployed.append(json.loads(lab_.extra_vars.read_text()))
        return types.SimpleNamespace(returncode=0, stdout="")

    monkeypatch.setattr(bench, "run", run)
    lab_.set_peer_flows("kernel")
    assert lab_.deploy({"fwcluster_vrrp": {"advert_int": 0.05}}, "fast") is None
    assert deployed[-1]["fwcluster_replication"] == {"interface": "eth3", "mode": "notrack", "peer_flows": "kernel"}
    assert deployed[-1]["fwcluster_vrrp"] == {"advert_int": 0.05} and deployed[-1]["fwcluster_serial"] == 3
    # a deploy that sets the replication itself (the counter-test) keeps its own, built from the lab's
    assert lab_.deploy(bench.replication_off(lab_.replication, {}), "off") is None
    assert deployed[-1]["fwcluster_replication"] == {"interface": "eth3", "mode": "notrack", "peer_flows": "kernel",
                                                     "enabled": False}


def test_peer_flows_are_a_hash_clusters_option():
    with pytest.raises(SystemExit):
        bench.main(["--arch", "primary_backup", "--peer-flows", "kernel"])


@pytest.mark.parametrize("argv", [
    ["--arch", "hash", "--only", "fast-failover", "--fast-fall", "2"],       # the sandwich's balancers only
    ["--arch", "sandwich", "--only", "fast-failover", "--fast-fall", "0"],   # at least one failed probe
    ["--arch", "sandwich", "--fast-fall", "2"],                              # with --only fast-failover
])
def test_fast_fall_is_the_sandwich_balancers_fall_in_a_fast_failover_run(argv):
    with pytest.raises(SystemExit):
        bench.main(argv)
