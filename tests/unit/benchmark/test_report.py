"""benchmark/report.py: summary rows and verdicts computed from the inputs, valid PNGs, exit 2 on bad input."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.fwcluster.netfilter.benchmark import report

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "benchmark", "report.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RATE_SIZES = [0, 1024, 5120, 20480, 102400]
RECOVERY_SIZES = [0, 10240, 102400, 1048576]


def rate(sessions_per_s, sizes=None):
    return [{"size": size, "sessions": int(sessions_per_s * 6), "failed": 0, "duration_s": 6.0,
             "sessions_per_s": float(sessions_per_s), "throughput_bps": float(sessions_per_s * size * 8)}
            for size in (sizes or RATE_SIZES)]


def kill(replication, advert_int, victim, survivors, first_forward_ms, recovered, hold_gap_ms=900.0):
    return {"label": "replication %s, advert_int %g" % ("on" if replication else "off", advert_int),
            "replication": replication, "advert_int": advert_int, "victim": victim, "survivors": survivors,
            "first_forward_ms": first_forward_ms, "bound_ms": 3000.0 * advert_int + 1000.0, "hold_gap_ms": hold_gap_ms,
            "hold_alive": True,
            "recovery": [{"size": size, "in_progress": 16, "recovered": got} for size, got in zip(RECOVERY_SIZES, recovered)]}


def full_results():
    """Four architectures. Chosen so each verdict follows from one number:
    primary_backup: rate ratio 1.00 (pass), all long-lived flows recovered (pass), failovers within bound;
    sandwich: rate ratio 0.90 (FAIL), one 1 MiB flow lost (FAIL), the default-advert_int failover over its bound (FAIL);
    hash: rate ratio 0.96 (pass), share 3000/1000/2000 (max/mean 1.50), a sub-second kill where nothing was forwarded (FAIL);
    multipath: no replication, no rate.off, share null."""
    nodes = {"primary_backup": ["pb-fw1", "pb-fw2"], "sandwich": ["sw-fw1", "sw-fw2"], "hash": ["h-fw1", "h-fw2", "h-fw3"],
             "multipath": ["mp-fw1", "mp-fw2"]}
    archs = {
        "primary_backup": {
            "nodes": nodes["primary_backup"], "replication": True,
            "rate": {"on": rate(1500), "off": rate(1500)},
            "share": {"pb-fw1": 9000, "pb-fw2": 0},
            "kills": [kill(True, 1.0, "pb-fw1", ["pb-fw2"], 3120.5, [9, 12, 16, 16], hold_gap_ms=3300.1),
                      kill(False, 1.0, "pb-fw1", ["pb-fw2"], 3050.0, [14, 10, 0, 0]),
                      kill(True, 0.2, "pb-fw1", ["pb-fw2"], 790.4, [10, 13, 16, 16])],
            "notes": ["replication off: conntrackd stopped on both nodes"],
        },
        "sandwich": {
            "nodes": nodes["sandwich"], "replication": True,
            "rate": {"on": rate(900), "off": rate(1000)},
            "share": {"sw-fw1": 4600, "sw-fw2": 4400},
            "kills": [kill(True, 1.0, "sw-fw1", ["sw-fw2"], 4500.0, [8, 11, 16, 15]),
                      kill(False, 1.0, "sw-fw1", ["sw-fw2"], 3100.0, [12, 9, 3, 0])],
        },
        "hash": {
            "nodes": nodes["hash"], "replication": True,
            "rate": {"on": rate(960), "off": rate(1000)},
            "share": {"h-fw1": 3000, "h-fw2": 1000, "h-fw3": 2000},
            "kills": [kill(True, 1.0, "h-fw1", ["h-fw2", "h-fw3"], 2500.0, [16, 16, 16, 16]),
                      kill(True, 0.2, "h-fw1", ["h-fw2", "h-fw3"], None, [0, 0, 0, 0], hold_gap_ms=None)],
        },
        "multipath": {
            "nodes": nodes["multipath"], "replication": False,
            "rate": {"on": rate(1700), "off": None},
            "share": None,
            "kills": [kill(False, 1.0, "mp-fw1", ["mp-fw2"], 1200.0, [16, 0, 0, 0])],
        },
    }
    return {
        "version": 1, "command": "scripts/bench.sh", "started": "2026-11-25T02:10:00Z", "finished": "2026-11-25T03:00:00Z",
        "smoke": False,
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "memory_gib": 23.4, "kernel": "6.1.0-test", "os": "Debian GNU/Linux 12 (bookworm)",
                    "podman": "4.3.1", "keepalived": "2.2.7", "conntrackd": "1.4.7"},
        "settings": {"rate_duration_s": 6, "rate_concurrency": 32, "rate_sizes": RATE_SIZES, "recovery_sizes": RECOVERY_SIZES,
                     "recovery_clients_per_size": 16, "default_advert_int": 1.0, "subsecond_advert_int": 0.2},
        "architectures": archs,
    }


def smoke_results():
    """One architecture, one size, no rate.off, no share, no kills, no settings."""
    return {"version": 1, "command": "scripts/bench.sh --smoke", "started": "2026-11-25T02:10:00Z", "smoke": True,
            "machine": {"cpus": 2},
            "architectures": {"primary_backup": {"nodes": ["pb-fw1", "pb-fw2"], "replication": True,
                                                 "rate": {"on": rate(1200, sizes=[0])}}}}


def rows(markdown, first_cell=None):
    """The table rows of markdown as lists of cells (header and separator lines excluded)."""
    out = []
    for line in markdown.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if first_cell is None or cells[0] == first_cell:
            out.append(cells)
    return out


def target(markdown, prefix, arch):
    found = [row for row in rows(markdown) if row[0].startswith(prefix) and row[1] == arch]
    assert found, "no target row %r for %s in:\n%s" % (prefix, arch, markdown)
    return found


def test_rate_targets_follow_the_ratios():
    summary = report.summary_markdown(full_results())
    assert target(summary, "Session rate", "primary_backup") == [
        ["Session rate, objects <= 5 KiB", "primary_backup", "1.00 (median on/off, mean over sizes)", ">= 0.95", "pass"]]
    assert target(summary, "Session rate", "sandwich")[0][2:] == ["0.90 (median on/off, mean over sizes)", ">= 0.95", "FAIL"]
    assert target(summary, "Session rate", "hash")[0][2:] == ["0.96 (median on/off, mean over sizes)", ">= 0.90", "pass"]
    assert target(summary, "Session rate", "multipath")[0][4] == "n/a"


def test_the_hash_cluster_is_judged_against_its_own_rate_target():
    """Issue 18 asks 0.90 of the hash cluster: the sandwich's 0.90 fails its 0.95, the same rates pass for hash."""
    results = full_results()
    results["architectures"]["hash"]["rate"] = copy.deepcopy(results["architectures"]["sandwich"]["rate"])
    summary = report.summary_markdown(results)
    assert target(summary, "Session rate", "hash")[0][2:] == ["0.90 (median on/off, mean over sizes)", ">= 0.90", "pass"]
    assert target(summary, "Session rate", "sandwich")[0][2:] == ["0.90 (median on/off, mean over sizes)", ">= 0.95", "FAIL"]


def test_rate_target_uses_only_small_objects():
    results = full_results()
    # Large objects far slower with replication must not change the small-object verdict...
    for entry in results["architectures"]["primary_backup"]["rate"]["on"]:
        if entry["size"] > 5120:
            entry["sessions_per_s"] = 10.0
    assert target(report.summary_markdown(results), "Session rate", "primary_backup")[0][4] == "pass"
    # ...but one small size at 0.85 brings the mean of 1.00, 1.00, 0.85 to 0.95 (pass) and 0.84 below it (FAIL).
    small = [entry for entry in results["architectures"]["primary_backup"]["rate"]["on"] if entry["size"] == 5120][0]
    small["sessions_per_s"] = 1500 * 0.85
    assert target(report.summary_markdown(results), "Session rate", "primary_backup")[0][2:] == ["0.95 (median on/off, mean over sizes)", ">= 0.95", "pass"]
    small["sessions_per_s"] = 1500 * 0.82
    assert target(report.summary_markdown(results), "Session rate", "primary_backup")[0][2:] == ["0.94 (median on/off, mean over sizes)", ">= 0.95", "FAIL"]


def test_rate_table_rows():
    summary = report.summary_markdown(full_results())
    sandwich = rows(summary, "sandwich")
    assert ["sandwich", "1 KiB", "900", "1000", "0.90", "7.4", "8.2"] in sandwich
    assert ["multipath", "100 KiB", "1700", "n/a", "n/a (no replication)", "1393", "n/a"] in rows(summary, "multipath")


def test_recovered_long_lived_flows():
    summary = report.summary_markdown(full_results())
    pb = target(summary, "Recovered long-lived", "primary_backup")
    assert [row[2:] for row in pb] == [["1.00 (32/32)", "= 1.00", "pass"], ["1.00 (32/32)", "= 1.00", "pass"]]
    assert target(summary, "Recovered long-lived", "sandwich") == [
        ["Recovered long-lived flows (>= 100 KiB), replication on, advert_int 1", "sandwich", "0.97 (31/32)", "= 1.00", "FAIL"]]
    assert [row[4] for row in target(summary, "Recovered long-lived", "hash")] == ["pass", "FAIL"]
    assert not [row for row in rows(summary) if row[0].startswith("Recovered long-lived") and row[1] == "multipath"]


def test_recovered_flows_table_shows_counts():
    summary = report.summary_markdown(full_results())
    assert ["primary_backup", "0 B", "9/16 (56 %, 33-77 %)", "14/16 (88 %, 63-97 %)", "n/a", "n/a"] in rows(summary, "primary_backup")
    assert ["sandwich", "1 MiB", "15/16 (94 %, 71-99 %)", "0/16 (0 %, 0-20 %)", "n/a", "n/a"] in rows(summary, "sandwich")
    # multipath has no replication: its kill is the "without" column.
    assert ["multipath", "0 B", "n/a", "16/16 (100 %, 80-100 %)", "n/a", "n/a"] in rows(summary, "multipath")
    short = target(summary, "Recovered short flows", "primary_backup")[0]
    assert short[2:] == ["on 21/32 (66 %), off 24/32 (75 %)", "reported", "not judged"]


def test_failover_targets():
    summary = report.summary_markdown(full_results())
    pb = target(summary, "Failover time", "primary_backup")
    assert [row[2:] for row in pb] == [["0.78 (3120/4000 ms)", "<= 1.00 x bound", "pass"],
                                       ["0.76 (3050/4000 ms)", "<= 1.00 x bound", "pass"],
                                       ["0.49 (790/1600 ms)", "<= 1.00 x bound", "pass"]]
    assert target(summary, "Failover time, replication on, advert_int 1", "sandwich")[0][2:] == ["1.12 (4500/4000 ms)", "<= 1.00 x bound", "FAIL"]
    assert target(summary, "Failover time, replication on, advert_int 0.2", "hash")[0][2:] == ["none forwarded", "<= 1.00 x bound", "FAIL"]
    assert ["hash", "replication on, advert_int 0.2", "h-fw1", "0.2 s", "none forwarded", "n/a", "1600", "FAIL"] in rows(summary, "hash")


def test_flow_share():
    summary = report.summary_markdown(full_results())
    assert ["hash", "h-fw1: 3000, h-fw2: 1000, h-fw3: 2000", "1.50", "n/a"] in rows(summary, "hash")
    assert ["sandwich", "sw-fw1: 4600, sw-fw2: 4400", "1.02", "n/a"] in rows(summary, "sandwich")
    assert not [row for row in rows(summary, "multipath") if len(row) == 4 and ":" in row[1]]
    # the hash's own split of the sources, beside the measured one
    results = full_results()
    results["architectures"]["hash"]["share_predicted"] = {"h-fw1": 337, "h-fw2": 348, "h-fw3": 315}
    assert ["hash", "h-fw1: 3000, h-fw2: 1000, h-fw3: 2000", "1.50", "1.04 (h-fw1: 337, h-fw2: 348, h-fw3: 315)"] in \
        rows(report.summary_markdown(results), "hash")


def test_summary_is_a_heading_free_fragment_with_machine_and_command():
    summary = report.summary_markdown(full_results())
    assert not re.search(r"^#", summary, re.M)
    assert summary.startswith("Machine: 2 CPUs (Test CPU), 23.4 GiB of memory, Debian GNU/Linux 12 (bookworm), kernel 6.1.0-test;")
    assert "Command: `scripts/bench.sh`, from 2026-11-25T02:10:00Z to 2026-11-25T03:00:00Z." in summary
    assert summary.endswith("Notes:\n\n- primary_backup: replication off: conntrackd stopped on both nodes\n")
    # Every table row has as many cells as its header.
    for block in summary.split("\n\n"):
        widths = {len(row) for row in rows(block + "\n")} | {len(line.split(" | ")) for line in block.splitlines() if line.startswith("| ")}
        assert len(widths) <= 1, block


def test_smoke_results_leave_cells_na():
    summary = report.summary_markdown(smoke_results())
    assert "(smoke run)" in summary
    assert ["primary_backup", "0 B", "1200", "n/a", "n/a", "0.0", "n/a"] in rows(summary, "primary_backup")
    assert target(summary, "Session rate", "primary_backup")[0][2:] == ["n/a", ">= 0.95", "n/a"]
    assert target(summary, "Recovered long-lived", "primary_backup")[0][2:] == ["n/a", "= 1.00", "n/a"]
    assert not [row for row in rows(summary) if row[0].startswith(("Failover time", "Recovered short"))]
    assert "Machine: 2 CPUs (n/a), n/a of memory" in summary


def test_null_and_malformed_optional_parts_do_not_crash(tmp_path):
    results = full_results()
    results["architectures"]["sandwich"].update({"rate": None, "kills": None, "share": {}})
    results["architectures"]["hash"]["kills"][0].update({"recovery": None, "first_forward_ms": None, "bound_ms": None})
    results["architectures"]["hash"]["rate"]["on"] = [{"size": 0}]
    results["architectures"]["bogus"] = "not an object"
    del results["settings"]
    summary = report.summary_markdown(results)
    assert ["sandwich", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"] in rows(summary, "sandwich")
    assert ["sandwich", "n/a", "n/a", "n/a", "n/a", "n/a"] in rows(summary, "sandwich")   # its recovered flows
    assert target(summary, "Failover time, replication on, advert_int 1", "hash")[0][4] == "n/a"
    written = report.write_report(results, tmp_path)
    assert len(written) == len(report.PLOTS) + 1


def valid_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"


@pytest.mark.parametrize("make", [full_results, smoke_results], ids=["full", "smoke"])
def test_write_report_writes_valid_pngs_and_summary(tmp_path, make):
    results = make()
    written = report.write_report(results, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(list(report.PLOTS) + ["summary.md"])
    for path in written:
        assert path.parent == tmp_path / "out"
        if path.suffix == ".png":
            assert valid_png(path), path
    assert (tmp_path / "out" / "summary.md").read_text(encoding="utf-8") == report.summary_markdown(results)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True, text=True, check=False, timeout=300)


def test_cli_writes_next_to_the_json_by_default(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(smoke_results()))
    done = run(path)
    assert done.returncode == 0, done.stderr
    for name in report.PLOTS:
        assert valid_png(tmp_path / name)
    assert "(smoke run)" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_cli_out_dir(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(full_results()))
    done = run(path, "--out", tmp_path / "plots")
    assert done.returncode == 0, done.stderr
    assert valid_png(tmp_path / "plots" / "flow-share.png")
    assert not (tmp_path / "flow-share.png").exists()


@pytest.mark.parametrize("key", report.REQUIRED_KEYS)
def test_cli_missing_required_key_exits_2(tmp_path, key):
    results = full_results()
    del results[key]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    done = run(path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert key in done.stderr
    assert not (tmp_path / "summary.md").exists()


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps(dict(full_results(), version=2)), "version 2"),
    (json.dumps(dict(full_results(), architectures=[])), "architectures"),
], ids=["syntax", "array", "version", "architectures"])
def test_cli_bad_json_exits_2(tmp_path, content, words):
    path = tmp_path / "results.json"
    path.write_text(content)
    done = run(path)
    assert done.returncode == 2
    assert words in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cli_unreadable_file_exits_2(tmp_path):
    done = run(tmp_path / "missing.json")
    assert done.returncode == 2
    assert "cannot read" in done.stderr and "Traceback" not in done.stderr


def test_write_report_refuses_missing_key(tmp_path):
    results = copy.deepcopy(full_results())
    del results["architectures"]
    with pytest.raises(report.ResultsError, match="architectures"):
        report.write_report(results, tmp_path)


def test_rate_cell_shows_the_median_and_the_spread_of_repeated_runs():
    results = full_results()
    entry = results["architectures"]["hash"]["rate"]["on"][1]
    entry.update(sessions_per_s=960.0, runs=[1010.0, 960.0, 700.0], throughput_runs=[1.0e6, 0.9e6, 0.8e6])
    summary = report.summary_markdown(results)
    assert [row[:4] for row in rows(summary, "hash") if row[1] == "1 KiB"] == [["hash", "1 KiB", "960 (700-1010)", "1000"]]


def test_sessions_in_their_handshake_and_young_ones_are_shown_apart():
    results = full_results()
    kills_ = results["architectures"]["sandwich"]["kills"]
    kills_[0]["recovery"][0].update(connecting=3, connecting_completed=2)   # replication on, advert_int 1
    kills_[1]["recovery"][0].update(connecting=4, connecting_completed=4)   # replication off
    kills_[0]["recovery"][3].update(young=2, young_completed=1)             # replication on, 1 MiB
    summary = report.summary_markdown(results)
    assert ["sandwich", "0 B", "8/16 (50 %, 27-73 %)", "12/16 (75 %, 50-90 %)", "on 2/3, off 4/4", "n/a"] in \
        rows(summary, "sandwich")
    assert ["sandwich", "1 MiB", "15/16 (94 %, 71-99 %)", "0/16 (0 %, 0-20 %)", "n/a", "on 1/2"] in \
        rows(summary, "sandwich")


def test_spread_of_needs_two_runs():
    def sps(entry):
        return entry.get("sessions_per_s")
    assert report.spread_of({"runs": [900, 1100, 1000], "throughput_runs": [1, 2, 3]}, sps) == (900, 1100)
    assert report.spread_of({"runs": [900], "throughput_runs": [1]}, sps) is None
    assert report.spread_of({"sessions_per_s": 5}, sps) is None


def test_plots_with_repeated_runs(tmp_path):
    results = full_results()
    for entry in results["architectures"]["primary_backup"]["rate"]["on"]:
        entry.update(runs=[entry["sessions_per_s"] * f for f in (0.9, 1.0, 1.1)],
                     throughput_runs=[entry["throughput_bps"] * f for f in (0.9, 1.0, 1.1)])
    for path in report.write_report(results, tmp_path):
        if str(path).endswith(".png"):
            assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_kill_in_another_replication_mode_is_shown_but_not_judged():
    results = full_results()
    pb = results["architectures"]["primary_backup"]
    pb["replication_mode"] = "ftfw"
    alarm = kill(True, 1.0, "pb-fw1", ["pb-fw2"], 3000.0, [2, 3, 4, 5])
    alarm.update(label="replication alarm mode, advert_int 1", replication_mode="alarm")
    pb["kills"].append(alarm)
    summary = report.summary_markdown(results)
    assert [row[2:] for row in target(summary, "Recovered long-lived", "primary_backup")] == [
        ["1.00 (32/32)", "= 1.00", "pass"], ["1.00 (32/32)", "= 1.00", "pass"]]
    assert ["primary_backup", "replication alarm mode, advert_int 1", "alarm", "2/16 (12 %)", "3/16 (19 %)",
            "4/16 (25 %)", "5/16 (31 %)"] in rows(summary, "primary_backup")


def test_comparison_shows_each_replicated_architecture_before_and_after():
    before = full_results()
    after = copy.deepcopy(before)
    after["command"] = "scripts/bench.sh --arch hash"
    after["architectures"]["hash"]["rate"]["on"] = rate(990)
    after["architectures"]["hash"]["kills"][0] = kill(True, 1.0, "h-fw1", ["h-fw2", "h-fw3"], 2000.0, [10, 16, 16, 16])
    fast = [k for k in after["architectures"]["hash"]["kills"] if k["advert_int"] == 0.2][0]
    fast["first_forward_ms"] = 450.0
    after["architectures"]["hash"]["share"] = {"h-fw1": 2100, "h-fw2": 1900, "h-fw3": 2000}
    text = report.comparison_markdown(before, after)
    assert "After: `scripts/bench.sh --arch hash`" in text
    assert rows(text, "hash") == [
        ["hash", "Session rate on/off, objects <= 5 KiB", "0.96", "0.99"],
        ["hash", "Sessions/s with replication, objects <= 5 KiB", "960", "990"],
        ["hash", "Recovered short flows (< 100 KiB), replication on", "32/32 (100 %)", "26/32 (81 %)"],
        ["hash", "Recovered long-lived flows (>= 100 KiB), replication on", "32/32 (100 %)", "32/32 (100 %)"],
        ["hash", "In their handshake at the kill, completed", "n/a", "n/a"],
        ["hash", "Failover, kill to first forward (ms)", "2500", "2000"],
        ["hash", "Sub-second setting, kill to first forward (ms)", "n/a", "450"],
        ["hash", "Flow share, max/mean", "1.50", "1.05"],
    ]
    # multipath replicates nothing: no row; an architecture missing from the run before: no row.
    assert not rows(text, "multipath")
    del before["architectures"]["sandwich"]
    assert not rows(report.comparison_markdown(before, after), "sandwich")


def test_cli_before_writes_the_comparison(tmp_path):
    before, after = tmp_path / "before.json", tmp_path / "results.json"
    before.write_text(json.dumps(full_results()))
    after.write_text(json.dumps(full_results()))
    done = run(after, "--before", before)
    assert done.returncode == 0, done.stderr
    assert ["primary_backup", "Session rate on/off, objects <= 5 KiB", "1.00", "1.00"] in rows(
        (tmp_path / "comparison.md").read_text(encoding="utf-8"), "primary_backup")


def test_the_other_backend_is_shown_side_by_side_and_judged_as_a_kill_of_its_own():
    results = full_results()
    pb = results["architectures"]["primary_backup"]
    pb["backend"] = "iptables"
    for each in pb["kills"]:
        each["backend"] = "iptables"
    nft = kill(True, 1.0, "pb-fw1", ["pb-fw2"], 2900.0, [1, 1, 2, 3])
    nft.update(label="replication on, advert_int 1, nftables", backend="nftables")
    pb["kills"].insert(0, nft)   # first: the default kill must still be the inventory's
    pb["backends"] = {"nftables": {"rate": {"on": rate(1200), "off": rate(1500)}, "kill": nft["label"]},
                      "iptables": {"rate": pb["rate"], "kill": pb["kills"][1]["label"]}}
    summary = report.summary_markdown(results)
    # every kill with replication is judged, the other backend's too
    assert [[row[0]] + row[2:] for row in target(summary, "Recovered long-lived", "primary_backup")] == [
        ["Recovered long-lived flows (>= 100 KiB), replication on, advert_int 1, nftables", "0.16 (5/32)", "= 1.00",
         "FAIL"],
        ["Recovered long-lived flows (>= 100 KiB), replication on, advert_int 1", "1.00 (32/32)", "= 1.00", "pass"],
        ["Recovered long-lived flows (>= 100 KiB), replication on, advert_int 0.2", "1.00 (32/32)", "= 1.00", "pass"]]
    # the default kill (recovered flows, before/after) stays the inventory's
    assert report.find_kill(pb, True, 1.0)["backend"] == "iptables"
    backends = [row for row in rows(summary, "primary_backup") if row[1] in ("iptables (inventory)", "nftables")]
    assert backends == [
        ["primary_backup", "iptables (inventory)", "1500", "1500", "1.00", "3120", "32/32 (100 %)"],
        ["primary_backup", "nftables", "1200", "1500", "0.80", "2900", "5/32 (16 %)"],
    ]


def profile_variant(name, sessions_per_s, per_node, softirq_ms):
    return {"name": name, "change": name, "sessions": 9000, "rate": rate(sessions_per_s, [0, 1024, 5120]),
            "per_node": per_node, "machine": {"softirq_ms": softirq_ms, "system_ms": 1.0, "user_ms": 1.0}}


def test_the_replication_profile_shows_each_variant_against_off():
    results = full_results()
    node = {"conntrackd_cpu_ms": 30.0, "container_cpu_ms": 200.0, "events": 4000.0, "kernel_writes": 8000.0,
            "cache_writes": 0.0, "messages_sent": 1500.0, "table_max": 20000}
    idle = dict(node, conntrackd_cpu_ms=0.0, events=0.0, kernel_writes=0.0, messages_sent=0.0, table_max=7000)
    results["architectures"]["hash"]["profile"] = {"sizes": [0, 1024, 5120], "variants": [
        profile_variant("off", 3000, {"h-fw1": idle, "h-fw2": idle}, 50.0),
        profile_variant("on", 2100, {"h-fw1": node, "h-fw2": dict(node, table_max=25000)}, 80.0),
        profile_variant("external cache", 2850, {"h-fw1": dict(node, kernel_writes=0.0, cache_writes=8000.0)}, 60.0)]}
    # the commits timed after a variant's load, on the firewalls that keep an external cache
    results["architectures"]["hash"]["profile"]["variants"][2]["commit"] = {
        "h-fw1": {"external_flows": 5210, "commit_ms": 31.4}, "h-fw2": {"external_flows": 4800, "commit_ms": 48.0}}
    summary = report.summary_markdown(results)
    assert "**Replication profile**" in summary
    assert [row for row in rows(summary, "hash") if len(row) == 13] == [
        ["hash", "off", "3000", "1.00", "0.0", "400", "50.0", "0.0", "0.0", "0.0", "0.0", "7000", "n/a"],
        ["hash", "on", "2100", "0.70", "60.0", "400", "80.0", "8000", "16000", "0.0", "3000", "25000", "n/a"],
        ["hash", "external cache", "2850", "0.95", "30.0", "200", "60.0", "4000", "0.0", "8000", "1500", "20000",
         "48.0 (4800)"]]


def test_a_run_without_a_profile_has_no_profile_section():
    assert "Replication profile" not in report.summary_markdown(full_results())


@pytest.mark.parametrize("recovered, total, expected", [
    (1, 1, "20-100 %"),     # one flow says little (20.7 to 100 %)
    (16, 16, "80-100 %"),
    (30, 30, "88-100 %"),   # issue 18 asks for 30 flows a cell
    (0, 8, "0-33 %"),
    (9, 16, "33-77 %"),
    (0, 0, "n/a"),
])
def test_the_recovered_share_comes_with_its_95_percent_interval(recovered, total, expected):
    assert report.fmt_interval(recovered, total) == expected


def test_flow_share_target_on_the_clusters_that_hash():
    summary = report.summary_markdown(full_results())
    assert target(summary, "Flow share", "hash") == [["Flow share, max/mean", "hash", "1.50", "<= 1.15", "FAIL"]]
    assert target(summary, "Flow share", "sandwich")[0][2:] == ["1.02", "<= 1.15", "pass"]
    # primary_backup's one active node and multipath's routers are not judged on their share
    assert not [row for row in rows(summary) if row[0].startswith("Flow share") and row[1] in ("primary_backup", "multipath")]


def test_sample_target_names_the_fewest_flows_in_progress_of_each_default_kill():
    results = full_results()
    summary = report.summary_markdown(results)
    # every cell of the fixture holds 16 flows: below 30, in both default kills
    assert [row[2:] for row in target(summary, "Flows in progress", "primary_backup")] == [
        ["16 at the fewest (0 B)", ">= 30", "FAIL"], ["16 at the fewest (0 B)", ">= 30", "FAIL"]]
    for entry in results["architectures"]["primary_backup"]["kills"][0]["recovery"]:
        entry["in_progress"] = 40
    results["architectures"]["primary_backup"]["kills"][0]["recovery"][2]["in_progress"] = 31
    on = target(report.summary_markdown(results), "Flows in progress at the kill, per object size, replication on",
                "primary_backup")
    assert on[0][2:] == ["31 at the fewest (100 KiB)", ">= 30", "pass"]
    # the sub-second kill is not a default kill: not judged on its sample
    assert not [row for row in target(summary, "Flows in progress", "hash") if "0.2" in row[0]]


def scaling_results(mbit_by_nodes):
    results = full_results()
    rows = [{"nodes": nodes, "size": 102400, "sessions_per_s": mbit * 1e6 / 8 / 102400, "throughput_bps": mbit * 1e6,
             "runs": [1.0, 2.0], "throughput_runs": [(mbit - 1) * 1e6, (mbit + 1) * 1e6]}
            for nodes, mbit in sorted(mbit_by_nodes.items())]
    results["architectures"]["hash"]["scaling"] = {"cap_mbit": 40, "size": 102400, "rows": rows,
                                                   "paper_gain": [0.40, 0.45]}
    return results


def test_scaling_table_and_targets_follow_the_measured_throughputs():
    summary = report.summary_markdown(scaling_results({1: 40.0, 2: 80.0, 3: 110.0, 4: 150.0}))
    assert ["hash", "1", "40 (39.0-41.0)", "49", "n/a", "n/a", "40.0-40.0"] in rows(summary, "hash")
    assert ["hash", "3", "110 (109.0-111.0)", "134", "1.38", "+0.75", "72.0-76.0"] in rows(summary, "hash")
    assert [row[2:] for row in target(summary, "Throughput with", "hash")] == [
        ["2.00", ">= 1.40", "pass"], ["1.38", ">= 1.40", "FAIL"], ["1.36", ">= 1.40", "FAIL"]]
    # no scaling measured: no table, no target
    plain = report.summary_markdown(full_results())
    assert "**Scaling**" not in plain and not [row for row in rows(plain) if row[0].startswith("Throughput with")]


def test_scaling_plot_is_a_valid_png(tmp_path):
    for results in (scaling_results({1: 40.0, 2: 78.0}), full_results()):
        path = report.plot_scaling(results, tmp_path / "scaling.png")
        assert path.read_bytes().startswith(PNG_MAGIC)


def fast_results(soak_s, firsts_by_setting, transitions_by_setting=None):
    """primary_backup with a fast-failover measure: each setting's kills (first forward ms) and soak transitions."""
    results = full_results()
    transitions_by_setting = transitions_by_setting or {}
    rows = []
    for setting, firsts in firsts_by_setting.items():
        found = [{"node": "pb-fw2", "time_ms": 1000 * i, "event": "vrrp primary"}
                 for i in range(transitions_by_setting.get(setting, 0))]
        rows.append({"setting": setting, "soak": {"seconds": soak_s, "transitions": found, "sessions": 900,
                                                  "failed_sessions": len(found)},
                     "kills": [{"first_forward_ms": first, "bound_ms": round(4000 * setting),
                                "recovery": [{"size": 0, "recovered": 20, "in_progress": 20},
                                             {"size": 1048576, "recovered": 20 - (first is None), "in_progress": 20}]}
                               for first in firsts],
                     "holds": not found and all(first is not None and first <= 200 for first in firsts)})
    results["architectures"]["primary_backup"]["fast_failover"] = {
        "knob": "advert_int (s)", "target_ms": 200, "soak_s": soak_s, "rows": rows}
    return results


def test_fast_failover_table_and_target_name_the_fastest_setting_that_holds():
    results = fast_results(600, {1.0: [3100.0], 0.05: [160.2, 171.0], 0.02: [70.0, 75.0]}, {0.02: 2})
    summary = report.summary_markdown(results)
    assert ["primary_backup", "advert_int (s)", "0.05", "0 in 600 s", "0 of 900", "160, 171", "40/40, 40/40", "200", "pass"] \
        in rows(summary, "primary_backup")
    assert ["primary_backup", "advert_int (s)", "0.02", "2 in 600 s (pb-fw2 vrrp primary, pb-fw2 vrrp primary)",
            "2 of 900", "70, 75", "40/40, 40/40", "80", "FAIL"] in rows(summary, "primary_backup")
    assert [row[2:] for row in target(summary, "Fast failover", "primary_backup")] == [
        ["advert_int 0.05 s: first forward 160-171 ms, 0 transitions in 600 s", "a setting that holds, soak >= 600 s",
         "pass"]]
    # a short soak is reported, not judged; no setting that holds fails
    short = report.summary_markdown(fast_results(30, {0.05: [160.0]}))
    assert target(short, "Fast failover", "primary_backup")[0][4] == "n/a"
    none = report.summary_markdown(fast_results(600, {0.2: [610.0], 0.05: [None]}))
    assert [row[2:] for row in target(none, "Fast failover", "primary_backup")] == [
        ["no setting held (of 0.2, 0.05)", "a setting that holds, soak >= 600 s", "FAIL"]]
    # no fast-failover measure: no table, no target
    plain = report.summary_markdown(full_results())
    assert "**Fast failover**" not in plain and not [row for row in rows(plain) if row[0].startswith("Fast failover")]


def test_a_setting_the_cluster_did_not_come_back_from_fails_and_says_why(tmp_path):
    results = fast_results(120, {0.1: [656.0, 899.0, 884.0], 0.05: [599.0, None]})
    row = results["architectures"]["primary_backup"]["fast_failover"]["rows"][1]
    row.update(failed="the cluster did not settle within 180 s: node id 1 is owned by 2 nodes", holds=False)
    summary = report.summary_markdown(results)
    assert ["primary_backup", "advert_int (s)", "0.05", "n/a", "n/a",
            "599, none; then failed: the cluster did not settle within 180 s: node id 1 is owned by 2 nodes",
            "40/40, 39/40", "n/a", "FAIL"] in rows(summary, "primary_backup")
    assert report.plot_fast_failover(results, tmp_path / "fast-failover.png").read_bytes().startswith(PNG_MAGIC)


def test_fast_failover_plot_is_a_valid_png(tmp_path):
    for results in (fast_results(600, {0.2: [610.0], 0.05: [160.0, None]}, {0.05: 1}), full_results()):
        path = report.plot_fast_failover(results, tmp_path / "fast-failover.png")
        assert path.read_bytes().startswith(PNG_MAGIC)
