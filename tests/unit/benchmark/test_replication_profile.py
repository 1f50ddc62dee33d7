"""The parts of benchmark/replication_profile.py that turn counters into figures."""

import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmark"))
import bench  # noqa: E402  pylint: disable=wrong-import-position
import replication_profile as rp  # noqa: E402  pylint: disable=wrong-import-position

# `conntrackd -s; conntrackd -s runtime` as conntrackd 1.4.7 printed them on a
# hash lab node (NOTRACK, DisableExternalCache On), every number replaced by a
# distinct one (101, 102, ...) so that a value read from the wrong place shows.
STATS = (pathlib.Path(__file__).parent / "fixtures" / "conntrackd-stats.txt").read_text()
GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "expected" / "rendered"
PREFIX = {"hash": "hs", "sandwich": "sw"}


def test_parse_stats_reads_both_layouts_and_the_failed_counts():
    stats = rp.parse_stats(STATS)
    assert stats["cache internal: current active connections"] == 101
    assert stats["cache internal: connections created"] == 102
    assert stats["cache internal: connections created failed"] == 103
    assert stats["external inject: connections destroyed"] == 112
    assert stats["external inject: connections destroyed failed"] == 113
    assert stats["multicast traffic: Pckts sent"] == 118
    assert stats["multicast traffic: Pckts recv"] == 119
    assert stats["message tracking: Lost msgs"] == 123
    assert stats["daemon uptime"] == 124   # a line outside any section
    assert stats["netlink stats: events received"] == 125


def test_parse_stats_reads_the_tcp_channel_header():
    # conntrackd 1.4.7 over TCP (the sandwich lab) adds the connection states after the device
    stats = rp.parse_stats(STATS.replace("multicast traffic (active device=eth3):",
                                         "TCP traffic (active device=eth3) server=connected client=connected:"))
    assert stats["TCP traffic: Pckts sent"] == 118 and "multicast traffic: Pckts sent" not in stats


def test_every_headline_counter_names_keys_conntrackd_prints():
    stats = rp.parse_stats(STATS)
    for name in ("events", "kernel_writes", "messages_sent", "messages_received"):
        assert any(key in stats for key in rp.COUNTERS[name]), name
    # the external cache's counters have the internal cache's layout under their own header
    external = rp.parse_stats(STATS.replace("external inject:", "cache external:"))
    assert all(key in external for key in rp.COUNTERS["cache_writes"])


def sample(ticks, events, table, softirq):
    return {"nodes": {"fw1": {"conntrackd_cpu_ms": ticks, "netlink stats: events received": events, "table": table,
                              "container_cpu_ms": 2 * ticks}},
            "machine": {"user_ms": 0, "system_ms": 0, "softirq_ms": softirq}}


def test_delta_subtracts_counters_and_keeps_the_table_size():
    change = rp.delta(sample(150, 900, 40, 70), sample(100, 300, 10, 20))
    assert change["nodes"]["fw1"] == {"conntrackd_cpu_ms": 50, "netlink stats: events received": 600,
                                      "table": 40, "container_cpu_ms": 100}
    assert change["machine"] == {"user_ms": 0, "system_ms": 0, "softirq_ms": 50}


def test_summarize_gives_figures_per_thousand_sessions():
    runs = [{"row": {"sessions": 2000}, "delta": rp.delta(sample(150, 900, 40, 70), sample(100, 300, 10, 20))},
            {"row": {"sessions": 3000}, "delta": rp.delta(sample(300, 2300, 25, 90), sample(150, 900, 0, 70))}]
    summary = rp.summarize(runs)
    assert summary["sessions"] == 5000
    node = summary["per_node"]["fw1"]
    assert node["conntrackd_cpu_ms"] == 40.0          # (50 + 150) ms / 5000 sessions * 1000
    assert node["container_cpu_ms"] == 80.0
    assert node["events"] == 400.0                    # (600 + 1400) / 5
    assert node["kernel_writes"] == 0.0 and node["table_max"] == 40
    assert summary["machine"]["softirq_ms"] == 14.0   # (50 + 20) / 5


def test_every_architecture_is_profiled_off_and_on_and_candidates_exist():
    for architecture in bench.ARCHITECTURES:
        names = rp.variants_for(architecture)
        assert names[:2] == ["off", "on"] and all(name in rp.VARIANTS for name in names)
    assert rp.VARIANTS["off"][1] is None and rp.VARIANTS["on"][1] == ""


@pytest.mark.parametrize("architecture", sorted(rp.CANDIDATES))
def test_every_candidate_changes_the_deployed_configuration(architecture):
    # The example's conntrackd.conf as the roles render it (the golden snapshot); a candidate that
    # changes nothing would measure the deployed configuration under another name.
    conf = (GOLDEN / architecture / ("%s-fw1" % PREFIX[architecture]) / "conntrackd.conf").read_text()
    for name in rp.CANDIDATES[architecture]:
        changed = subprocess.run(["sed", rp.VARIANTS[name][1]], input=conf, capture_output=True, text=True,
                                 check=True).stdout
        assert changed != conf, name


def test_a_timed_commit_reads_the_external_cache_and_the_time():
    # COMMIT_TIMED's output on a firewall with an external cache: conntrackd -s (its external
    # section as conntrackd 1.4.7 prints it), then the commit's nanoseconds
    text = ("cache external:\ncurrent active connections:\t    4810\n"
            "connections created:\t\t   19320\tfailed:\t\t    0\n\ncommit_ns=31415926\n")
    assert rp.parse_commit(text) == {"external_flows": 4810, "commit_ms": 31.4}
    # a firewall that writes the peers' flows into its kernel (DisableExternalCache On) prints nothing
    assert rp.parse_commit("") is None
