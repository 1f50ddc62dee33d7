"""report: the failover benchmark's plots and Markdown summary from its results.json.

Usage
-----
    python3 benchmark/report.py RESULTS.json [--out DIR] [--before BEFORE.json]

Reads the results.json written by benchmark/bench.py and writes into DIR
(default: the directory of RESULTS.json):

session-rate.png
    new TCP sessions per second against object size, one line per
    architecture, state replication on (solid) and off (dashed): the median
    of the repeated runs, with a bar from the lowest to the highest.
throughput.png
    throughput (Mbit/s) against object size, the same series.
recovered-flows.png
    share of the flows in progress that completed across a hard kill of the
    node carrying them, against object size, with and without replication
    (the kills at the default advert_int), one panel per architecture.
failover-time.png
    kill -> first packet forwarded by a survivor, and the longest gap of the
    long-lived flow, for every kill, with the bound (VRRP: 3 x advert_int +
    skew, at most 4 x advert_int; the sandwich's firewalls: the balancers'
    fall x interval + timeout, plus their rules' rewrite) marked, one panel per architecture.
flow-share.png
    flows forwarded per node, for the architectures whose run recorded it,
    with max/mean in each panel's title.
summary.md
    a heading-free Markdown fragment for a README: the machine, the command,
    one table per measure and a "Targets" table judging each target of the
    benchmark issue (pass / FAIL; "n/a" where the run has no figure for it).
comparison.md (only with ``--before BEFORE.json``)
    a heading-free Markdown table of a change's effect: for each
    architecture with replication in both runs, the session rate, the
    recovered flows and the failover time of the run before and of this one.

Exit status: 0 when everything is written; 2 with a one-line message when
RESULTS.json cannot be read or misses a required key; 1 when DIR cannot be
written.

As a module (Python 3.11 standard library and matplotlib only):
``write_report(results, out_dir) -> [paths written]`` and
``summary_markdown(results) -> str``. Every optional part of the results
(a rate without replication, a share, a kill, a whole architecture) may be
missing or null: its cells read "n/a".
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("version", "command", "machine", "architectures")
# The order of the architectures in the tables and the plots (the paper's); others follow by name.
ARCHITECTURE_ORDER = ("primary_backup", "multipath", "sandwich", "hash")
PLOTS = ("session-rate.png", "throughput.png", "recovered-flows.png", "failover-time.png", "flow-share.png",
         "scaling.png", "fast-failover.png")
SUMMARY = "summary.md"
COMPARISON = "comparison.md"
DPI = 100

RATE_TARGET = 0.95          # session rate with replication >= 0.95 x without
RATE_TARGETS = {"hash": 0.90}   # issue 18's target for the hash cluster, whose every node replicates to all
SMALL_OBJECT = 5 * 1024     # "small objects": <= 5 KiB
LONG_LIVED = 100 * 1024     # long-lived flows: >= 100 KiB
RECOVERY_ARCHITECTURES = ("primary_backup", "hash", "sandwich")  # must recover every long-lived flow
SAMPLE_TARGET = 30          # flows in progress at the kill, per object size, in each default kill
SHARE_TARGET = 1.15         # flow share max/mean of the active-active clusters that hash flows
SHARE_ARCHITECTURES = ("hash", "sandwich")
SCALING_TARGET = 1.4        # throughput with n capped nodes >= 1.4 x with n - 1 (the reading of the paper)
FAST_TARGET_MS = 200        # a fast setting: kill -> first forward <= 200 ms, no transition in the soak,
FAST_SOAK_S = 600           # a soak of 10 minutes at least (a shorter one is reported, not judged)
DEFAULT_ADVERT_INT = 1.0
NA = "n/a"
PASS = "pass"
FAIL = "FAIL"


class ResultsError(Exception):
    """results.json cannot be read or misses a required key."""


# --- reading ----------------------------------------------------------------------------------


def load_results(path):
    """The results dict of the JSON file at path; ResultsError naming the problem otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
    except OSError as exc:
        raise ResultsError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError("%s is not valid JSON: %s" % (path, exc)) from exc
    check_results(results)
    return results


def check_results(results):
    """Raise ResultsError unless results has the required keys of the schema."""
    if not isinstance(results, dict):
        raise ResultsError("the results are not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise ResultsError("the results miss the required key%s %s" % ("s" if len(missing) > 1 else "", ", ".join(missing)))
    if results["version"] != SCHEMA_VERSION:
        raise ResultsError("results version %r is not supported (expected %d)" % (results["version"], SCHEMA_VERSION))
    if not isinstance(results["architectures"], dict):
        raise ResultsError("the results' architectures are not an object")


def _num(value):
    """value as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def architectures(results):
    """[(name, architecture dict)] in the paper's order, then any other by name."""
    archs = {name: arch for name, arch in _dict(results.get("architectures")).items() if isinstance(arch, dict)}
    known = [name for name in ARCHITECTURE_ORDER if name in archs]
    return [(name, archs[name]) for name in known + sorted(set(archs) - set(known))]


def replicates(arch):
    """Whether the architecture has state replication (multipath has none)."""
    return arch.get("replication") is not False


def rate_series(arch, which):
    """{size: rate entry} of arch's rate test with replication on/off ({} when absent)."""
    series = {}
    for entry in _list(_dict(arch.get("rate")).get(which)):
        size = _num(entry.get("size"))
        if size is not None:
            series[int(size)] = entry
    return series


def default_advert_int(results):
    value = _num(_dict(results.get("settings")).get("default_advert_int"))
    return value if value is not None else DEFAULT_ADVERT_INT


def subsecond_advert_int(results):
    return _num(_dict(results.get("settings")).get("subsecond_advert_int"))


def _notes(arch):
    notes = arch.get("notes")
    return [str(note) for note in notes if note] if isinstance(notes, list) else []


def kills(arch):
    return _list(arch.get("kills"))


def find_kill(arch, replication, advert_int):
    """The first kill of arch with this replication (True/False) at this advert_int, or None;
    on the inventory's backend (a kill on the other one is in backend_table)."""
    for kill in kills(arch):
        if kill.get("backend") != arch.get("backend"):
            continue
        if kill.get("replication") is replication and _num(kill.get("advert_int")) == advert_int:
            return kill
    return None


def _size_counts(kill, done_key, total_key):
    """{size: (done, total)} of a kill's recovery entries under these keys ({} when absent)."""
    counts = {}
    for entry in _list((kill or {}).get("recovery")):
        size, done, total = (_num(entry.get(key)) for key in ("size", done_key, total_key))
        if size is not None and done is not None and total is not None:
            counts[int(size)] = (int(done), int(total))
    return counts


def recovery(kill):
    """{size: (recovered, in_progress)} of a kill ({} when absent)."""
    return _size_counts(kill, "recovered", "in_progress")


def share(arch):
    """{node: flows} of arch's rate test, or {} when not recorded."""
    return {str(node): int(flows) for node, flows in _dict(arch.get("share")).items() if _num(flows) is not None}


def max_over_mean(counts):
    """max/mean of the per-node counts, None when there are none or all are zero."""
    values = list(counts.values())
    if not values or sum(values) == 0:
        return None
    return max(values) / (sum(values) / len(values))


# --- formatting -------------------------------------------------------------------------------


def size_label(size):
    """0 -> '0 B', 5120 -> '5 KiB', 1048576 -> '1 MiB'."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return "%s %s" % (("%d" % value) if value == int(value) else ("%.1f" % value), unit)
    return "%d B" % size


def fmt_int(value):
    value = _num(value)
    return NA if value is None else "%d" % round(value)


def fmt_ratio(value):
    return NA if value is None else "%.2f" % value


def fmt_share(recovered, total, interval=False):
    """'9/16 (56 %)', with INTERVAL '9/16 (56 %, 33-77 %)' (its 95 % interval); 'n/a' without flows."""
    if total <= 0:
        return "%d/%d (%s)" % (recovered, total, NA)
    spread = ", " + fmt_interval(recovered, total) if interval else ""
    return "%d/%d (%d %%%s)" % (recovered, total, round(100.0 * recovered / total), spread)


def wilson_interval(recovered, total, z=1.96):
    """The 95 % Wilson score interval of a share of recovered flows, (low, high) in 0..1; None
    without flows. With few flows a share says little: 1 of 1 recovered is 20.7 to 100 %."""
    if total <= 0:
        return None
    share = recovered / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def fmt_interval(recovered, total):
    """'21-100 %'; 'n/a' without flows."""
    interval = wilson_interval(recovered, total)
    if interval is None:
        return NA
    return "%d-%d %%" % (math.floor(100 * interval[0]), math.ceil(100 * interval[1]))


def fmt_advert_int(value):
    value = _num(value)
    return NA if value is None else ("%g s" % value)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- measures ---------------------------------------------------------------------------------


def rate_ratio(on_entry, off_entry):
    """sessions/s with replication over without, None when either is missing or off is zero."""
    on = _num((on_entry or {}).get("sessions_per_s"))
    off = _num((off_entry or {}).get("sessions_per_s"))
    if on is None or off is None or off == 0:
        return None
    return on / off


def _mean(values):
    """Mean of the values that are not None, or None when none is left."""
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


def small_object_ratio(arch):
    """Mean of the on/off session-rate ratios over the sizes <= 5 KiB measured both ways, or None."""
    on, off = rate_series(arch, "on"), rate_series(arch, "off")
    return _mean(rate_ratio(on[size], off[size]) for size in sorted(set(on) & set(off)) if size <= SMALL_OBJECT)


def rate_runs(entry):
    """The sessions/s of every repeated run of a rate entry ([] when it has none)."""
    runs = (entry or {}).get("runs")
    return [value for value in map(_num, runs) if value is not None] if isinstance(runs, list) else []


def _rate_cell(entry):
    if entry is None:
        return NA
    text = fmt_int(entry.get("sessions_per_s"))
    runs = rate_runs(entry)
    if len(runs) > 1:   # the median, with the spread of the runs
        text += " (%d-%d)" % (round(min(runs)), round(max(runs)))
    failed = _num(entry.get("failed"))
    if failed:
        text += " (%d failed)" % failed
    return text


def _mbps(entry):
    bps = _num((entry or {}).get("throughput_bps"))
    return None if bps is None else bps / 1e6


def _mbps_cell(entry):
    value = _mbps(entry)
    return NA if value is None else ("%.1f" % value if value < 10 else "%d" % round(value))


def rate_table(results):
    rows = []
    for name, arch in architectures(results):
        on, off = rate_series(arch, "on"), rate_series(arch, "off")
        for size in sorted(set(on) | set(off)):
            ratio = rate_ratio(on.get(size), off.get(size))
            ratio_cell = fmt_ratio(ratio) if replicates(arch) else NA + " (no replication)"
            rows.append([name, size_label(size), _rate_cell(on.get(size)), _rate_cell(off.get(size)), ratio_cell,
                         _mbps_cell(on.get(size)), _mbps_cell(off.get(size))])
        if not on and not off:
            rows.append([name, NA, NA, NA, NA, NA, NA])
    return table(["Architecture", "Object size", "Sessions/s, replication on", "Sessions/s, replication off", "On/off",
                  "Mbit/s on", "Mbit/s off"], rows)


def _default_kills(results, arch):
    """(kill with replication, kill without) at the default advert_int; None for what is absent."""
    advert = default_advert_int(results)
    with_rep = find_kill(arch, True, advert) if replicates(arch) else None
    return with_rep, find_kill(arch, False, advert)


def connecting(kill):
    """{size: (completed, caught)} of a kill's sessions still in their handshake at the kill ({} when absent)."""
    return _size_counts(kill, "connecting_completed", "connecting")


def young(kill):
    """{size: (completed, caught)} of a kill's sessions connected less than 100 ms before it
    (bench.YOUNG; {} when absent, as in runs before 2026-12-06)."""
    return _size_counts(kill, "young_completed", "young")


def recovery_table(results):
    rows = []
    for name, arch in architectures(results):
        with_rep, without = _default_kills(results, arch)
        on, off = recovery(with_rep), recovery(without)
        apart = [(connecting(with_rep), connecting(without)), (young(with_rep), young(without))]

        def counted_apart(size, both):
            return ", ".join("%s %d/%d" % (label, *counts[size])
                             for label, counts in zip(("on", "off"), both) if size in counts) or NA
        for size in sorted(set(on) | set(off)):
            rows.append([name, size_label(size), fmt_share(*on[size], interval=True) if size in on else NA,
                         fmt_share(*off[size], interval=True) if size in off else NA]
                        + [counted_apart(size, both) for both in apart])
        if not on and not off:
            rows.append([name, NA, NA, NA, NA, NA])
    return table(["Architecture", "Object size", "Recovered, replication on", "Recovered, replication off",
                  "In their handshake at the kill, completed", "Connected < 100 ms before the kill, completed"],
                 rows)


def kill_recovery_table(results):
    """Every kill's recovered flows per object size, the kills of other settings included."""
    sizes = sorted({size for _n, arch in architectures(results) for kill in kills(arch) for size in recovery(kill)})
    rows = []
    for name, arch in architectures(results):
        for kill in kills(arch):
            counts = recovery(kill)
            rows.append([name, kill.get("label") or NA, kill.get("replication_mode") or NA]
                        + [fmt_share(*counts[size]) if size in counts else NA for size in sizes])
    return table(["Architecture", "Kill", "conntrackd mode"] + [size_label(size) for size in sizes],
                 rows or [[NA] * (3 + len(sizes))])


def failover_table(results):
    rows = []
    for name, arch in architectures(results):
        for kill in kills(arch):
            first, bound = _num(kill.get("first_forward_ms")), _num(kill.get("bound_ms"))
            hold = fmt_int(kill.get("hold_gap_ms"))
            if kill.get("hold_alive") is False:
                hold += " (flow broke)"
            rows.append([name, kill.get("label") or NA, kill.get("victim") or NA, fmt_advert_int(kill.get("advert_int")),
                         fmt_int(first) if first is not None else "none forwarded", hold, fmt_int(bound),
                         _verdict(first is not None and bound is not None and first <= bound, bound is None)])
        if not kills(arch):
            rows.append([name, NA, NA, NA, NA, NA, NA, NA])
    return table(["Architecture", "Kill", "Victim", "advert_int", "First forward (ms)", "Longest gap of the long-lived flow (ms)",
                  "Bound (ms)", "Within bound"], rows)


def backend_table(results):
    """Each architecture on each rules backend, measured in the same run: session rate with
    replication on and off (objects <= 5 KiB), their ratio, and the default kill."""
    rows = []
    for name, arch in architectures(results):
        by_label = dict((kill.get("label"), kill) for kill in kills(arch))
        for backend, measured in sorted(_dict(arch.get("backends")).items(),
                                        key=lambda item: item[0] != arch.get("backend")):
            measured = _dict(measured)
            rated = {"rate": measured.get("rate")}
            kill = by_label.get(measured.get("kill")) or {}
            first = _num(kill.get("first_forward_ms"))
            long_lived = _sum_recovery(recovery(kill), lambda size: size >= LONG_LIVED)
            off = _mean(_num(entry.get("sessions_per_s")) for size, entry in rate_series(rated, "off").items()
                        if size <= SMALL_OBJECT)
            rows.append([name, backend + (" (inventory)" if backend == arch.get("backend") else ""),
                         fmt_int(small_object_rate(rated)), fmt_int(off) if off is not None else NA,
                         fmt_ratio(small_object_ratio(rated)), fmt_int(first) if first is not None else NA,
                         fmt_share(*long_lived) if long_lived[1] else NA])
    if not rows:
        rows.append([NA] * 7)
    return table(["Architecture", "Backend", "Sessions/s on", "Sessions/s off", "On/off", "First forward (ms)",
                  "Long-lived flows recovered"], rows)


def share_table(results):
    rows = []
    for name, arch in architectures(results):
        counts = share(arch)
        if counts:
            predicted = {str(node): int(n) for node, n in _dict(arch.get("share_predicted")).items() if _num(n) is not None}
            rows.append([name, ", ".join("%s: %d" % item for item in sorted(counts.items())), fmt_ratio(max_over_mean(counts)),
                         "%s (%s)" % (fmt_ratio(max_over_mean(predicted)), ", ".join("%s: %d" % item for item in sorted(predicted.items())))
                         if max_over_mean(predicted) is not None else NA])
    if not rows:
        rows.append([NA, NA, NA, NA])
    return table(["Architecture", "Flows per node", "Max/mean", "Predicted max/mean (sources per node, the cluster's hash)"], rows)


def scaling_rows(arch):
    """The rows of an architecture's scaling measure, by number of nodes ([] when it has none)."""
    entries = [entry for entry in _list(_dict(arch.get("scaling")).get("rows"))
               if isinstance(entry, dict) and _num(entry.get("nodes")) is not None]
    return sorted(entries, key=lambda entry: entry["nodes"])


def scaling_steps(arch):
    """[(nodes, throughput, ratio to nodes - 1's or None, gain per node added / one node's or None)]."""
    rows = [(int(entry["nodes"]), _num(entry.get("throughput_bps"))) for entry in scaling_rows(arch)]
    by_nodes = dict(rows)
    one = by_nodes.get(1)
    steps = []
    for nodes, bps in rows:
        before = by_nodes.get(nodes - 1)
        ratio = bps / before if bps is not None and before else None
        gain = (bps - before) / one if bps is not None and before is not None and one else None
        steps.append((nodes, bps, ratio, gain))
    return steps


def scaling_table(results):
    """Each capped cluster size's throughput and session rate, against the size below and the paper."""
    rows = []
    for name, arch in architectures(results):
        entries = {int(entry["nodes"]): entry for entry in scaling_rows(arch)}
        paper = _list(_dict(arch.get("scaling")).get("paper_gain")) or [0.40, 0.45]
        for nodes, bps, ratio, gain in scaling_steps(arch):
            entry = entries[nodes]
            one = _mbps(entries.get(1))
            spread = spread_of(entry, _mbps)
            rows.append([name, str(nodes), _mbps_cell(entry) + (" (%.1f-%.1f)" % spread if spread else ""),
                         fmt_int(_num(entry.get("sessions_per_s"))), fmt_ratio(ratio) if ratio else NA,
                         "%+.2f" % gain if gain is not None else NA,
                         "%.1f-%.1f" % tuple(one * (1 + g * (nodes - 1)) for g in paper) if one else NA])
    if not rows:
        return None
    return table(["Architecture", "Nodes", "Mbit/s (runs)", "Sessions/s", "vs n - 1 nodes",
                  "Added, x one node's", "Paper's slope (Mbit/s)"], rows)


def fast_rows(arch):
    """The settings an architecture's fast-failover measure tried, longest first ([] when it has none)."""
    entries = [entry for entry in _list(_dict(arch.get("fast_failover")).get("rows"))
               if isinstance(entry, dict) and _num(entry.get("setting")) is not None]
    return sorted(entries, key=lambda entry: -entry["setting"])


def fast_firsts(row):
    """The kills' times from kill to first forward (ms; None where none was forwarded)."""
    return [_num(kill.get("first_forward_ms")) for kill in _list(row.get("kills")) if isinstance(kill, dict)]


def _fmt_firsts(row):
    return ", ".join(fmt_int(first) if first is not None else "none" for first in fast_firsts(row)) or NA


def _fmt_recovered(row):
    """Each kill's recovered flows of those in progress, over every size: '41/42, 40/40'."""
    counts = [list(recovery(kill).values()) for kill in _list(row.get("kills")) if isinstance(kill, dict)]
    return ", ".join("%d/%d" % (sum(pair[0] for pair in kill), sum(pair[1] for pair in kill))
                     for kill in counts if kill) or NA


def fast_failover_table(results):
    """Per setting: the soak's false transitions and failed sessions, each kill's first forward and
    recovered flows (established ones: recovered_flows counts the young apart)."""
    rows = []
    for name, arch in architectures(results):
        fast = _dict(arch.get("fast_failover"))
        for row in fast_rows(arch):
            setting = "%g" % row["setting"]
            if row.get("refused"):
                rows.append([name, fast.get("knob") or NA, setting, NA, NA, "refused: %s" % row["refused"], NA, NA, NA])
                continue
            soaked = _dict(row.get("soak"))
            if row.get("failed"):
                # a measure the cluster did not come back from: what it got to, and why it ended
                rows.append([name, fast.get("knob") or NA, setting, NA, NA,
                             "%s; then failed: %s" % (_fmt_firsts(row), row["failed"]), _fmt_recovered(row), NA, FAIL])
                continue
            found = _list(soaked.get("transitions"))
            bounds = [_num(kill.get("bound_ms")) for kill in _list(row.get("kills")) if isinstance(kill, dict)]
            rows.append([name, fast.get("knob") or NA, setting,
                         "%s in %s s" % (len(found), fmt_int(_num(soaked.get("seconds")))) + (
                             " (%s)" % ", ".join("%s %s" % (t.get("node"), t.get("event")) for t in found[:3]) if found else ""),
                         "%s of %s" % (fmt_int(_num(soaked.get("failed_sessions"))), fmt_int(_num(soaked.get("sessions")))),
                         _fmt_firsts(row), _fmt_recovered(row),
                         fmt_int(max((b for b in bounds if b is not None), default=None)),
                         _verdict(bool(row.get("holds")))])
    if not rows:
        return None
    return table(["Architecture", "Setting", "Value (s)", "Transitions in the soak (false failovers)",
                  "Failed sessions in the soak", "Kill -> first forward (ms), each kill",
                  "Recovered flows, each kill", "Bound (ms)",
                  "Holds (<= %d ms, no transition)" % FAST_TARGET_MS], rows)


def profile_variants(arch):
    """The variants of an architecture's replication profile ([] when it has none)."""
    return [v for v in _list(_dict(arch.get("profile")).get("variants")) if isinstance(v, dict)]


def _variant_rate(variant):
    """Mean over the sizes <= 5 KiB of a profile variant's median sessions/s, or None."""
    return _mean(_num(row.get("sessions_per_s")) for row in _list(variant.get("rate"))
                 if isinstance(row, dict) and (_num(row.get("size")) or 0) <= SMALL_OBJECT)


def _node_sum(variant, key):
    """A per-node figure of a profile variant, summed over its firewalls (None when none has it)."""
    values = [_num(node.get(key)) for node in _dict(variant.get("per_node")).values() if isinstance(node, dict)]
    values = [value for value in values if value is not None]
    return sum(values) if values else None


def _figure(value):
    return NA if value is None else ("%.1f" % value if value < 100 else "%d" % round(value))


def profile_table(results):
    """One row per architecture and variant of the replication profile; None when no architecture has one."""
    rows = []
    for name, arch in architectures(results):
        variants = profile_variants(arch)
        off = next((_variant_rate(v) for v in variants if v.get("name") == "off"), None)
        for variant in variants:
            rate = _variant_rate(variant)
            tables = [_num(node.get("table_max")) for node in _dict(variant.get("per_node")).values()
                      if isinstance(node, dict)]
            rows.append([name, variant.get("name") or NA, _figure(rate),
                         fmt_ratio(rate / off) if rate is not None and off else NA,
                         _figure(_node_sum(variant, "conntrackd_cpu_ms")), _figure(_node_sum(variant, "container_cpu_ms")),
                         _figure(_num(_dict(variant.get("machine")).get("softirq_ms"))),
                         _figure(_node_sum(variant, "events")), _figure(_node_sum(variant, "kernel_writes")),
                         _figure(_node_sum(variant, "cache_writes")), _figure(_node_sum(variant, "messages_sent")),
                         fmt_int(max([t for t in tables if t is not None], default=None)), _slowest_commit(variant)])
    if not rows:
        return None
    return table(["Architecture", "Variant", "Sessions/s (<= 5 KiB)", "vs off", "conntrackd CPU ms",
                  "Firewalls' CPU ms", "Machine's softirq ms", "Kernel events", "Kernel writes",
                  "External cache writes", "Messages sent", "Largest kernel table",
                  "Slowest commit ms (flows)"], rows)


def _slowest_commit(variant):
    """The longest of the variant's commits of an external cache, with the flows it held: "12.5 (4810)"."""
    commits = [c for c in _dict(variant.get("commit")).values()
               if isinstance(c, dict) and _num(c.get("commit_ms")) is not None]
    if not commits:
        return NA
    slowest = max(commits, key=lambda c: _num(c["commit_ms"]))
    return "%s (%s)" % (_figure(_num(slowest["commit_ms"])), fmt_int(_num(slowest.get("external_flows"))))


def _verdict(passed, unknown=False):
    if unknown:
        return NA
    return PASS if passed else FAIL


def _sum_recovery(counts, keep):
    recovered = sum(r for size, (r, _t) in counts.items() if keep(size))
    total = sum(t for size, (_r, t) in counts.items() if keep(size))
    return recovered, total


def targets(results):
    """[[target, architecture, measured, required, verdict]] for every target of the issue."""
    rows = []
    archs = architectures(results)
    for name, arch in archs:
        required = RATE_TARGETS.get(name, RATE_TARGET)
        if not replicates(arch):
            rows.append(["Session rate, objects <= 5 KiB", name, NA + " (no replication)", ">= %.2f" % required, NA])
            continue
        ratio = small_object_ratio(arch)
        rows.append(["Session rate, objects <= 5 KiB", name, "%s (median on/off, mean over sizes)" % fmt_ratio(ratio) if ratio is not None else NA,
                     ">= %.2f" % required, _verdict(ratio is not None and ratio >= required, ratio is None)])
    for name, arch in archs:
        if name not in RECOVERY_ARCHITECTURES:
            continue
        judged = [kill for kill in kills(arch) if kill.get("replication") is True and recovery(kill)
                  and kill.get("replication_mode", arch.get("replication_mode")) == arch.get("replication_mode")]
        for kill in judged:
            recovered, total = _sum_recovery(recovery(kill), lambda size: size >= LONG_LIVED)
            measured = "%.2f (%d/%d)" % (recovered / total, recovered, total) if total else NA
            rows.append(["Recovered long-lived flows (>= 100 KiB), %s" % (kill.get("label") or "replication on"), name,
                         measured, "= 1.00", _verdict(recovered == total, total == 0)])
        if not judged:
            rows.append(["Recovered long-lived flows (>= 100 KiB), replication on", name, NA, "= 1.00", NA])
    for name, arch in archs:
        for kill in kills(arch):
            first, bound = _num(kill.get("first_forward_ms")), _num(kill.get("bound_ms"))
            if bound is None or bound <= 0:
                measured, verdict = NA, NA
            elif first is None:
                measured, verdict = "none forwarded", FAIL
            else:
                measured = "%.2f (%d/%d ms)" % (first / bound, round(first), round(bound))
                verdict = _verdict(first <= bound)
            rows.append(["Failover time, %s" % (kill.get("label") or NA), name, measured, "<= 1.00 x bound", verdict])
    for name, arch in archs:
        for nodes, _bps, ratio, _gain in scaling_steps(arch):
            if nodes >= 2:
                rows.append(["Throughput with %d capped nodes / with %d" % (nodes, nodes - 1), name,
                             fmt_ratio(ratio) if ratio else NA, ">= %.2f" % SCALING_TARGET,
                             _verdict(ratio is not None and ratio >= SCALING_TARGET, ratio is None)])
    for name, arch in archs:
        rows_fast = fast_rows(arch)
        if not rows_fast:
            continue
        fast = _dict(arch.get("fast_failover"))
        holding = [row for row in rows_fast if row.get("holds")]
        soak_s = _num(fast.get("soak_s"))
        if holding:
            best = holding[-1]
            firsts = [first for first in fast_firsts(best) if first is not None]
            measured = "%s %g s: first forward %s ms, 0 transitions in %s s" % (
                fast.get("knob", "setting").split(" (")[0], best["setting"],
                "-".join(fmt_int(v) for v in sorted({min(firsts), max(firsts)})), fmt_int(soak_s))
        else:
            measured = "no setting held (of %s)" % ", ".join("%g" % row["setting"] for row in rows_fast)
        rows.append(["Fast failover: kill -> first forward <= %d ms, no false failover in the soak" % FAST_TARGET_MS,
                     name, measured, "a setting that holds, soak >= %d s" % FAST_SOAK_S,
                     _verdict(bool(holding), bool(holding) and (soak_s or 0) < FAST_SOAK_S)])
    for name, arch in archs:
        if name not in SHARE_ARCHITECTURES:
            continue
        ratio = max_over_mean(share(arch))
        rows.append(["Flow share, max/mean", name, fmt_ratio(ratio) if ratio is not None else NA,
                     "<= %.2f" % SHARE_TARGET, _verdict(ratio is not None and ratio <= SHARE_TARGET, ratio is None)])
    for name, arch in archs:
        if name not in RECOVERY_ARCHITECTURES:
            continue
        for kill in (kill for kill in _default_kills(results, arch) if kill is not None):
            counts = recovery(kill)
            if not counts:
                continue
            size, (_done, fewest) = min(counts.items(), key=lambda item: (item[1][1], item[0]))
            rows.append(["Flows in progress at the kill, per object size, %s" % (kill.get("label") or NA), name,
                         "%d at the fewest (%s)" % (fewest, size_label(size)), ">= %d" % SAMPLE_TARGET,
                         _verdict(fewest >= SAMPLE_TARGET)])
    for name, arch in archs:
        with_rep, without = _default_kills(results, arch)
        parts = []
        for label, kill in (("on", with_rep), ("off", without)):
            recovered, total = _sum_recovery(recovery(kill), lambda size: size < LONG_LIVED)
            if total:
                parts.append("%s %s" % (label, fmt_share(recovered, total)))
        if parts:
            rows.append(["Recovered short flows (< 100 KiB)", name, ", ".join(parts), "reported", "not judged"])
    return rows


def summary_markdown(results):
    """The heading-free Markdown fragment of summary.md."""
    check_results(results)
    machine = _dict(results.get("machine"))

    def get(key, suffix=""):
        value = machine.get(key)
        return NA if value in (None, "") else "%s%s" % (value, suffix)

    cpus = machine.get("cpus")
    lines = [
        "Machine: %s CPU%s (%s), %s of memory, %s, kernel %s; podman %s, keepalived %s, conntrackd %s." % (
            get("cpus"), "" if cpus == 1 else "s", get("cpu_model"), get("memory_gib", " GiB"), get("os"), get("kernel"),
            get("podman"), get("keepalived"), get("conntrackd")),
        "",
        "Command: `%s`, from %s to %s%s." % (
            results.get("command") or NA, results.get("started") or NA, results.get("finished") or NA,
            " (smoke run)" if results.get("smoke") else ""),
        "",
    ]
    settings = _dict(results.get("settings"))
    if settings:
        lines += ["Settings: %s." % ", ".join("%s %s" % (key, json.dumps(value)) for key, value in settings.items()), ""]
    sections = [
        ("**Session rate** (new TCP sessions per second: connect, request, response, close; the median of the "
         "repeated runs, their lowest and highest in brackets; throughput in Mbit/s, median):", rate_table(results)),
        ("**Recovered flows** (flows connected at least 100 ms before a hard kill of the node carrying them and still "
         "open after it, completed correctly, with the 95 %% Wilson interval of the share; default advert_int %g s. "
         "Sessions still in their TCP handshake at the kill are counted apart: their SYN is sent again and makes "
         "new state on a survivor, with or without replication; so are those connected less than 100 ms before "
         "it: the replication is asynchronous, and their state may not have reached a survivor):"
         % default_advert_int(results), recovery_table(results)),
        ("**Recovered flows, every kill** (the same count for each kill of the run, its replication mode "
         "and failover settings):", kill_recovery_table(results)),
        ("**Failover time** (hard kill to the first packet of a victim's flow forwarded by a survivor; bound "
         "3 x advert_int + skew, at most 4 x advert_int, for VRRP; fall x interval + timeout of the balancers' health "
         "probes, plus the rewrite of their rules as they measured it, for the sandwich's firewalls):", failover_table(results)),
        ("**Flow share** (flows forwarded per node during the rate test):", share_table(results)),
        ("**Scaling** (the hash cluster with 1 to 4 firewalls, each one's egress capped as a box of its own; "
         "the session rate of one object size from the routed sources, the median of the runs; one node is the "
         "2-node cluster with its second node off. Linear scaling gives n/(n - 1) over the size below: 2.00, "
         "1.50, 1.33; the paper reports each node added bringing 40 to 45 % of one node's throughput):",
         scaling_table(results)),
        ("**Fast failover** (per failover setting, longest first: a soak under the kill's load with nothing "
         "failing, where every VRRP transition and every firewall a balancer drops is a false failover, then "
         "hard kills timed from the kill to the first forward; a setting holds when every kill forwarded within "
         "%d ms and the soak saw no transition):" % FAST_TARGET_MS, fast_failover_table(results)),
        ("**Backends side by side** (each architecture redeployed on the other rules backend in the same lab: "
         "session rate, objects <= 5 KiB, replication on and off, and the default kill, replication on):",
         backend_table(results)),
        ("**Replication profile** (the session rate, objects <= 5 KiB, with replication off, on and with each "
         "candidate change of conntrackd's configuration, measured in turn on one deployment; the other figures "
         "per 1000 sessions, summed over the firewalls; see benchmark/README.md):", profile_table(results)),
        ("**Targets** (each measured in this run, as a ratio):",
         table(["Target", "Architecture", "Measured", "Required", "Verdict"], targets(results) or [[NA] * 5])),
    ]
    for title, body in sections:
        if body is not None:
            lines += [title, "", body, ""]
    notes = ["- %s: %s" % (name, note) for name, arch in architectures(results) for note in _notes(arch)]
    if notes:
        lines += ["Notes:", ""] + notes
    return "\n".join(lines).rstrip("\n") + "\n"


# --- before/after -----------------------------------------------------------------------------


def small_object_rate(arch):
    """Mean over the sizes <= 5 KiB of the median sessions/s with replication on, or None."""
    return _mean(_num(entry.get("sessions_per_s")) for size, entry in rate_series(arch, "on").items() if size <= SMALL_OBJECT)


def _change_measures(results, arch):
    """[(measure, cell)] of one run's architecture, for the before/after table."""
    with_rep, _without = _default_kills(results, arch)
    ratio, rate = small_object_ratio(arch), small_object_rate(arch)
    short = _sum_recovery(recovery(with_rep), lambda size: size < LONG_LIVED)
    long_lived = _sum_recovery(recovery(with_rep), lambda size: size >= LONG_LIVED)
    handshakes = _sum_recovery(connecting(with_rep), lambda size: True)
    first = _num((with_rep or {}).get("first_forward_ms"))
    fast_int = subsecond_advert_int(results)
    fast = find_kill(arch, True, fast_int) if fast_int else None
    fast_first = _num((fast or {}).get("first_forward_ms"))
    spread = max_over_mean(share(arch))
    return [
        ("Session rate on/off, objects <= 5 KiB", fmt_ratio(ratio)),
        ("Sessions/s with replication, objects <= 5 KiB", fmt_int(rate)),
        ("Recovered short flows (< 100 KiB), replication on", fmt_share(*short) if short[1] else NA),
        ("Recovered long-lived flows (>= 100 KiB), replication on", fmt_share(*long_lived) if long_lived[1] else NA),
        ("In their handshake at the kill, completed", "%d/%d" % handshakes if handshakes[1] else NA),
        ("Failover, kill to first forward (ms)", fmt_int(first) if first is not None else NA),
        ("Sub-second setting, kill to first forward (ms)", fmt_int(fast_first) if fast_first is not None else NA),
        ("Flow share, max/mean", fmt_ratio(spread) if spread is not None else NA),
    ]


def comparison_markdown(before, after):
    """A Markdown table of each replicated architecture's measures in the run before a change and after it."""
    check_results(before)
    check_results(after)
    old = dict(architectures(before))
    rows = []
    for name, arch in architectures(after):
        if name not in old or not replicates(arch) or not replicates(old[name]):
            continue
        for (measure, was), (_measure, now) in zip(_change_measures(before, old[name]), _change_measures(after, arch)):
            rows.append([name, measure, was, now])
    if not rows:
        rows.append([NA, NA, NA, NA])
    lines = ["Before: `%s` (%s). After: `%s` (%s). Replication on, default advert_int." % (
        before.get("command"), before.get("started") or NA, after.get("command"), after.get("started") or NA), "",
        table(["Architecture", "Measure", "Before", "After"], rows)]
    return "\n".join(lines) + "\n"


# --- plots ------------------------------------------------------------------------------------


def _colors(results):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, (name, _arch) in enumerate(architectures(results))}


def _no_data(axes, text="no data in this run"):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="grey")
    axes.set_xticks([])
    axes.set_yticks([])


def _figure_legend(fig, panels):
    """One legend for all panels, below them (none when nothing is labelled)."""
    handles = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize="small")
    return bool(handles)


def _save(fig, path, bottom=0.0):
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _title(results, text):
    return text + (" (smoke run)" if results.get("smoke") else "")


def spread_of(entry, value):
    """(lowest, highest) of value over the entry's repeated runs, or None with fewer than two runs."""
    runs = _list([dict(entry, sessions_per_s=sps, throughput_bps=bps)
                  for sps, bps in zip(entry.get("runs") or [], entry.get("throughput_runs") or [])])
    values = [v for v in (value(run) for run in runs) if v is not None]
    return (min(values), max(values)) if len(values) > 1 else None


def plot_rate(results, path, value, ylabel, title):
    """Lines of value(entry) against object size (categorical), solid with replication, dashed without."""
    fig, axes = plt.subplots(figsize=(8, 5))
    colors = _colors(results)
    sizes = sorted({size for _n, arch in architectures(results) for which in ("on", "off") for size in rate_series(arch, which)})
    index = {size: i for i, size in enumerate(sizes)}
    drawn = False
    for name, arch in architectures(results):
        for which, style in (("on", "-"), ("off", "--")):
            series = rate_series(arch, which)
            points = [(index[size], value(series[size])) for size in sorted(series) if value(series[size]) is not None]
            if not points:
                continue
            if not replicates(arch):
                label, style = "%s (no replication)" % name, "--"
            else:
                label = "%s, replication %s" % (name, which)
            marker = {"marker": "o"} if style == "-" else {"marker": "s", "markerfacecolor": "none"}
            xs, ys = [x for x, _y in points], [y for _x, y in points]
            axes.plot(xs, ys, style, color=colors[name], label=label, **marker)
            spread = [spread_of(series[size], value) for size in sorted(series) if value(series[size]) is not None]
            if any(spread):   # the lowest and highest of the repeated runs
                low = [y - (s[0] if s else y) for y, s in zip(ys, spread)]
                high = [(s[1] if s else y) - y for y, s in zip(ys, spread)]
                axes.errorbar(xs, ys, yerr=[low, high], fmt="none", ecolor=colors[name], alpha=0.5, capsize=3)
            drawn = True
    if drawn:
        axes.set_xticks(range(len(sizes)), [size_label(size) for size in sizes])
        axes.set_xlabel("object size (bytes, categorical)")
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    else:
        _no_data(axes)
    axes.set_title(_title(results, title))
    return _save(fig, path)


def _panels(count, width=4.5, height=4.5):
    fig, axes = plt.subplots(1, max(count, 1), figsize=(max(width * count, 8), height), squeeze=False)
    return fig, list(axes[0])


def plot_recovered(results, path):
    archs = [(name, arch) + _default_kills(results, arch) for name, arch in architectures(results)]
    archs = [item for item in archs if recovery(item[2]) or recovery(item[3])]
    fig, panels = _panels(len(archs))
    for axes, (name, arch, with_rep, without) in zip(panels, archs):
        on, off = recovery(with_rep), recovery(without)
        sizes = sorted(set(on) | set(off))
        width = 0.4
        for offset, counts, label, hatch in ((-width / 2, on, "with replication", ""), (width / 2, off, "without replication", "//")):
            xs = [i + offset for i, size in enumerate(sizes) if size in counts and counts[size][1] > 0]
            pcts = [100.0 * counts[size][0] / counts[size][1] for size in sizes if size in counts and counts[size][1] > 0]
            if not xs:
                continue
            bars = axes.bar(xs, pcts, width, label=label, hatch=hatch, edgecolor="black",
                            color="tab:blue" if not hatch else "tab:orange")
            labels = ["%d/%d" % counts[size] for size in sizes if size in counts and counts[size][1] > 0]
            axes.bar_label(bars, labels, fontsize="x-small", padding=2)
        axes.set_xticks(range(len(sizes)), [size_label(size) for size in sizes])
        axes.set_ylim(0, 110)
        axes.set_xlabel("object size")
        axes.set_ylabel("in-progress flows recovered (%)")
        axes.set_title(name if replicates(arch) else "%s (no replication)" % name)
        axes.grid(True, axis="y", alpha=0.3)
    if not archs:
        _no_data(panels[0])
    fig.suptitle(_title(results, "Flows recovered across a hard kill (advert_int %g s)" % default_advert_int(results)))
    return _save(fig, path, bottom=0.08 if _figure_legend(fig, panels) else 0.0)


def _short_kill_label(kill):
    rep = "rep. on" if kill.get("replication") is True else "rep. off"
    return "%s\nadvert_int %s" % (rep, fmt_advert_int(kill.get("advert_int")))


def plot_failover(results, path):
    archs = [(name, kills(arch)) for name, arch in architectures(results) if kills(arch)]
    fig, panels = _panels(len(archs))
    for axes, (name, arch_kills) in zip(panels, archs):
        width = 0.38
        for i, kill in enumerate(arch_kills):
            first, gap, bound = (_num(kill.get(key)) for key in ("first_forward_ms", "hold_gap_ms", "bound_ms"))
            first_bar = axes.bar(i - width / 2, first or 0, width, color="tab:blue", label="kill -> first forward" if i == 0 else None)
            gap_bar = axes.bar(i + width / 2, gap or 0, width, color="tab:green", label="longest gap, long-lived flow" if i == 0 else None)
            axes.bar_label(first_bar, [fmt_int(first) if first is not None else "none"], fontsize="x-small", padding=2)
            axes.bar_label(gap_bar, [fmt_int(gap) if gap is not None else NA], fontsize="x-small", padding=2)
            if bound is not None:
                axes.hlines(bound, i - 0.45, i + 0.45, colors="red", linestyles="--", label="bound" if i == 0 else None)
        axes.set_xticks(range(len(arch_kills)), [_short_kill_label(kill) for kill in arch_kills], fontsize="small")
        axes.set_ylabel("time (ms)")
        axes.set_title(name)
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.grid(True, axis="y", alpha=0.3)
    if not archs:
        _no_data(panels[0])
    fig.suptitle(_title(results, "Failover time after a hard kill"))
    return _save(fig, path, bottom=0.08 if _figure_legend(fig, panels) else 0.0)


def plot_share(results, path):
    archs = [(name, share(arch)) for name, arch in architectures(results) if share(arch)]
    fig, panels = _panels(len(archs), width=4)
    for axes, (name, counts) in zip(panels, archs):
        nodes = sorted(counts)
        bars = axes.bar(range(len(nodes)), [counts[node] for node in nodes], color="tab:purple")
        axes.bar_label(bars, fontsize="x-small", padding=2)
        mean = sum(counts.values()) / len(counts)
        axes.axhline(mean, color="black", linestyle=":", label="mean")
        axes.set_xticks(range(len(nodes)), nodes, fontsize="small")
        axes.set_xlabel("firewall node")
        axes.set_ylabel("flows forwarded (count)")
        axes.set_title("%s: max/mean %s" % (name, fmt_ratio(max_over_mean(counts))))
        axes.margins(y=0.15)
    if not archs:
        _no_data(panels[0], "no flow share recorded in this run")
    fig.suptitle(_title(results, "Flows per firewall node"))
    return _save(fig, path, bottom=0.08 if _figure_legend(fig, panels) else 0.0)


def plot_scaling(results, path):
    archs = [(name, arch) for name, arch in architectures(results) if scaling_rows(arch)]
    fig, panels = _panels(len(archs), width=5)
    for axes, (name, arch) in zip(panels, archs):
        entries = scaling_rows(arch)
        nodes = [int(entry["nodes"]) for entry in entries]
        mbps = [_mbps(entry) for entry in entries]
        axes.plot(nodes, mbps, marker="o", color="tab:blue", label="measured")
        one = dict(zip(nodes, mbps)).get(1)
        if one:
            for gain in _list(_dict(arch.get("scaling")).get("paper_gain")) or [0.40, 0.45]:
                axes.plot(nodes, [one * (1 + gain * (n - 1)) for n in nodes], linestyle=":", color="gray",
                          label="paper: +%d %% per node" % round(gain * 100))
            axes.plot(nodes, [one * n for n in nodes], linestyle="--", color="black", label="linear")
        axes.set_xticks(nodes)
        axes.set_xlabel("firewall nodes")
        axes.set_ylabel("throughput (Mbit/s)")
        axes.set_title("%s: each node capped at %s Mbit/s" % (name, _dict(arch.get("scaling")).get("cap_mbit", NA)))
        axes.set_ylim(bottom=0)
    if not archs:
        _no_data(panels[0], "no scaling measured in this run")
    fig.suptitle(_title(results, "Throughput per cluster size"))
    return _save(fig, path, bottom=0.12 if _figure_legend(fig, panels) else 0.0)


def plot_fast_failover(results, path):
    archs = [(name, arch) for name, arch in architectures(results) if fast_rows(arch)]
    fig, panels = _panels(len(archs), width=5)
    for axes, (name, arch) in zip(panels, archs):
        rows = [row for row in fast_rows(arch) if not row.get("refused") and row.get("soak")]
        for i, row in enumerate(rows):
            firsts = [first for first in fast_firsts(row) if first is not None]
            axes.scatter([row["setting"]] * len(firsts), firsts, color="tab:blue", zorder=3,
                         label="kill -> first forward" if i == 0 else None)
            found = len(_list(_dict(row.get("soak")).get("transitions")))
            axes.annotate("%d false" % found, (row["setting"], max(firsts, default=0)), textcoords="offset points",
                          xytext=(0, 8), ha="center", fontsize="x-small", color="red" if found else "black")
        bounds = [(row["setting"], _num(row["kills"][0].get("bound_ms"))) for row in rows if _list(row.get("kills"))]
        if bounds:
            axes.plot([b[0] for b in bounds], [b[1] for b in bounds], linestyle="--", color="gray", label="bound")
        axes.axhline(FAST_TARGET_MS, color="red", linestyle=":", label="target %d ms" % FAST_TARGET_MS)
        axes.set_xscale("log")
        axes.minorticks_off()
        settings = sorted(row["setting"] for row in rows)
        axes.set_xticks(settings, ["%g" % value for value in settings])
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.set_xlabel(_dict(arch.get("fast_failover")).get("knob") or "setting (s)")
        axes.set_ylabel("kill -> first forward (ms)")
        axes.set_title("%s: soak %s s per setting" % (name, fmt_int(_num(_dict(arch.get("fast_failover")).get("soak_s")))))
        axes.grid(True, which="both", alpha=0.3)
    if not archs:
        _no_data(panels[0], "no fast-failover measure in this run")
    fig.suptitle(_title(results, "Failover time and false failovers per setting"))
    return _save(fig, path, bottom=0.12 if _figure_legend(fig, panels) else 0.0)


def write_report(results, out_dir):
    """Write the PNG plots (PLOTS) and summary.md into out_dir; return their paths."""
    check_results(results)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_rate(results, out_dir / PLOTS[0], lambda entry: _num(entry.get("sessions_per_s")), "sessions per second",
                  "New TCP sessions per second"),
        plot_rate(results, out_dir / PLOTS[1], _mbps, "throughput (Mbit/s)", "Throughput"),
        plot_recovered(results, out_dir / PLOTS[2]),
        plot_failover(results, out_dir / PLOTS[3]),
        plot_share(results, out_dir / PLOTS[4]),
        plot_scaling(results, out_dir / PLOTS[5]),
        plot_fast_failover(results, out_dir / PLOTS[6]),
    ]
    summary = out_dir / SUMMARY
    summary.write_text(summary_markdown(results), encoding="utf-8")
    return paths + [summary]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="report.py", description="The failover benchmark's plots and summary.md from results.json.")
    parser.add_argument("results", metavar="RESULTS.json")
    parser.add_argument("--out", metavar="DIR", help="where to write (default: the directory of RESULTS.json)")
    parser.add_argument("--before", metavar="BEFORE.json", help="also write comparison.md: the run before a change against this one")
    args = parser.parse_args(argv)
    try:
        results = load_results(args.results)
        before = load_results(args.before) if args.before else None
    except ResultsError as exc:
        print("report.py: %s" % exc, file=sys.stderr)
        return 2
    out_dir = pathlib.Path(args.out) if args.out else pathlib.Path(args.results).resolve().parent
    try:
        written = write_report(results, out_dir)
        if before is not None:
            written.append(out_dir / COMPARISON)
            written[-1].write_text(comparison_markdown(before, results), encoding="utf-8")
    except OSError as exc:
        print("report.py: cannot write into %s: %s" % (out_dir, exc.strerror or exc), file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
