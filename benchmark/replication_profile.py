"""The replication profile: what a cluster's flow replication costs, and where.

bench.py runs it on every architecture that replicates (full runs; alone with
``--only profile``). On one deployment, for each variant below, the session
rate is measured as bench.measure_rates does (every block from empty kernel
tables, the variants' order rotating between repeats), and around each run
it reads, on every firewall:

- conntrackd's CPU time (/proc/PID/stat) and the container's (its cgroup);
- conntrackd's own counters (``conntrackd -s``, ``-s runtime``): the kernel
  events it received, the flows it wrote into the kernel table or into its
  external cache for the peers, the messages it sent and received;
- the kernel table's size at the end of the run;

and the machine's softirq and system time (the lab's nodes share one kernel:
the packet and netlink work of all of them is there). Each figure is given per
1000 sessions, so runs of different rates compare.

A variant is a change to the deployed conntrackd.conf, made in place on every
firewall for the measure and undone after it: the session rate does not need
a failover to be right, and the candidates are measured before one of them is
built into the roles (a change kept is then proven by the kills like any
default).
"""

import collections
import re
import shlex

import bench

CONF = "/etc/conntrackd/conntrackd.conf"   # the conntrackd role's fwcluster_conntrackd_config
SAVED = "/run/fwcluster-bench/conntrackd.conf"
TICK_MS = 10   # /proc/PID/stat counts in clock ticks of 10 ms (CLK_TCK 100 on Debian's kernels)

INTERNAL_CACHE = "/^\\s*DisableInternalCache On$/d"
FEWER_EVENTS = "s/SYN_RECV ESTABLISHED CLOSE_WAIT TIME_WAIT CLOSED for TCP/ESTABLISHED TIME_WAIT CLOSED for TCP/"
# name -> (what it changes, the sed script that changes conntrackd.conf, or
# None: conntrackd stopped, or "": as deployed).
VARIANTS = collections.OrderedDict([
    ("off", ("replication off: conntrackd stopped", None)),
    ("on", ("replication on, as deployed", "")),
    ("kernel writes", ("the peers' flows written into the kernel table as they come (DisableExternalCache On), "
                       "not kept in conntrackd's external cache", "s/DisableExternalCache Off/DisableExternalCache On/")),
    ("internal cache", ("a copy of the node's own flows in conntrackd (no DisableInternalCache On): a resync "
                        "is answered from it", INTERNAL_CACHE)),
    ("fewer events", ("only ESTABLISHED, TIME_WAIT and CLOSED replicated (fwcluster_conntrackd_tcp_states), "
                      "not SYN_RECV and CLOSE_WAIT: 2 updates of a short flow instead of 4", FEWER_EVENTS)),
])
# The candidates measured per architecture, where they change the deployed configuration (a
# sandwich firewall writes the peers' flows into its kernel too, but sees no transition at which
# to commit an external cache: the balancers move its flows).
CANDIDATES = {"hash": ["kernel writes", "internal cache", "fewer events"],
              "sandwich": ["internal cache"]}

COUNTERS = {   # a headline figure -> the conntrackd -s keys summed into it
    "events": ["netlink stats: events received"],
    "kernel_writes": ["external inject: connections created", "external inject: connections updated",
                      "external inject: connections destroyed"],
    "cache_writes": ["cache external: connections created", "cache external: connections updated",
                     "cache external: connections destroyed"],
    "messages_sent": ["multicast traffic: Pckts sent", "UDP traffic: Pckts sent", "TCP traffic: Pckts sent"],
    "messages_received": ["multicast traffic: Pckts recv", "UDP traffic: Pckts recv", "TCP traffic: Pckts recv"],
}

# What a node runs as it takes over (the notify hooks' conntrackd -c), timed on a firewall that
# keeps an external cache: how many flows the cache held and how long the commit took.
COMMIT_TIMED = ("grep -q '^[[:space:]]*DisableExternalCache Off' {conf} || exit 0; "
                "conntrackd -C {conf} -s; s=$(date +%s%N); conntrackd -C {conf} -c >/dev/null; "
                "e=$(date +%s%N); echo commit_ns=$((e - s))").format(conf=shlex.quote(CONF))
COMMIT_NS = re.compile(r"^commit_ns=(\d+)$", re.M)

SECTION = re.compile(r"^([A-Za-z][A-Za-z ]*?)(?: \(.*)?:$")   # "TCP traffic (active device=eth3) server=...:"
LABEL_VALUE = re.compile(r"([A-Za-z][A-Za-z ()_/-]*?):\s+(\d+)")
VALUE_LABEL = re.compile(r"(\d+) ([A-Za-z]+(?: [A-Za-z]+)?)")


def parse_stats(text):
    """conntrackd's ``-s`` and ``-s runtime`` output -> {"section: label": number}.

    Two layouts: "connections created:  148   failed:  0" (a "failed" count
    belongs to the label before it) and "5796 Bytes sent   4656 Bytes recv".
    """
    stats = {}
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:   # a blank line ends a section
            section = ""
            continue
        header = SECTION.match(stripped)
        if header:
            section = header.group(1)
            continue
        pairs = LABEL_VALUE.findall(stripped)
        if pairs:
            previous = ""
            for label, value in pairs:
                label = label.strip()
                key = "%s %s" % (previous, label) if label == "failed" and previous else label
                stats["%s: %s" % (section, key) if section else key] = int(value)
                previous = label
            continue
        for value, label in VALUE_LABEL.findall(stripped):
            stats["%s: %s" % (section, label) if section else label] = int(value)
    return stats


SAMPLE = ("pid=$(pidof conntrackd || true); "
          "if [ -n \"$pid\" ]; then awk '{print \"ticks\", $14 + $15}' /proc/$pid/stat; "
          "conntrackd -s 2>/dev/null; conntrackd -s runtime 2>/dev/null; else echo 'ticks 0'; fi; "
          "echo \"table $(conntrack -C 2>/dev/null || echo 0)\"")


class Sampler(object):
    """Reads the counters of every firewall and of the machine."""

    def __init__(self, lab):
        self.lab = lab
        self.cgroups = {node: cgroup_usage_file(node) for node in lab.firewalls}

    def read(self):
        nodes = {}
        for node in self.lab.firewalls:
            out = bench.pexec(node, SAMPLE, check=False).stdout
            stats = parse_stats("\n".join(line for line in out.splitlines()
                                          if not line.startswith(("ticks ", "table "))))
            fields = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("ticks ", "table ")))
            stats["conntrackd_cpu_ms"] = int(fields.get("ticks", "0").strip() or 0) * TICK_MS
            stats["table"] = int(fields.get("table", "0").strip() or 0)
            stats["container_cpu_ms"] = read_usage_ms(self.cgroups[node])
            nodes[node] = stats
        return {"nodes": nodes, "machine": machine_times()}


def cgroup_usage_file(node):
    """The file that counts NODE's container's CPU time: cgroup v1's cpuacct.usage
    (ns) or v2's cpu.stat (usage_usec)."""
    path = bench.podman("inspect", "--format", "{{.State.CgroupPath}}", node).stdout.strip()
    for candidate in ("/sys/fs/cgroup/cpuacct%s/cpuacct.usage" % path, "/sys/fs/cgroup%s/cpu.stat" % path):
        try:
            open(candidate, encoding="utf-8").close()
            return candidate
        except OSError:
            continue
    return None


def read_usage_ms(path):
    if path is None:
        return 0
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith("cpuacct.usage"):
        return int(text) // 1000000
    return next(int(line.split()[1]) // 1000 for line in text.splitlines() if line.startswith("usage_usec"))


def machine_times():
    """The machine's softirq and system time in ms, from /proc/stat (USER_HZ 100)."""
    with open("/proc/stat", encoding="utf-8") as handle:
        fields = handle.readline().split()[1:]
    values = [int(v) * TICK_MS for v in fields]
    return {"user_ms": values[0] + values[1], "system_ms": values[2], "softirq_ms": values[6]}


def delta(after, before):
    """The counters' growth over one run; the table's size as it is after it."""
    nodes = {}
    for node, stats in after["nodes"].items():
        old = before["nodes"].get(node, {})
        nodes[node] = {key: (value if key == "table" else value - old.get(key, 0))
                       for key, value in stats.items() if isinstance(value, int)}
    machine = {key: value - before["machine"][key] for key, value in after["machine"].items()}
    return {"nodes": nodes, "machine": machine}


def apply_variant(lab, script):
    """The deployed conntrackd.conf back in place, changed by the sed SCRIPT;
    then bench.replication_running: conntrackd stopped everywhere, the kernel
    tables flushed, conntrackd started on the file (unless SCRIPT is None)."""
    for node in lab.firewalls:
        bench.pexec(node, "mkdir -p %s; [ -f %s ] || cp -p %s %s; cp -p %s %s"
                    % (shlex.quote(SAVED.rsplit("/", 1)[0]), SAVED, CONF, SAVED, SAVED, CONF))
    if script:
        for node in lab.firewalls:
            changed = bench.pexec(node, "sed -i %s %s && ! cmp -s %s %s"
                                  % (shlex.quote(script), CONF, CONF, SAVED), check=False)
            if changed.returncode:
                raise bench.BenchError("the variant's change (%s) changes nothing in %s on %s" % (script, CONF, node))
    bench.replication_running(lab, script is not None)


def restore(lab):
    """The deployed conntrackd.conf back, conntrackd running on it."""
    apply_variant(lab, "")
    for node in lab.firewalls:
        bench.pexec(node, "rm -f %s" % SAVED)


def per_thousand(total, sessions):
    return round(total * 1000.0 / sessions, 2) if sessions else None


def summarize(runs):
    """One variant's runs -> its figures per 1000 sessions, per node and in all."""
    sessions = sum(r["row"]["sessions"] for r in runs)
    nodes = collections.defaultdict(collections.Counter)
    machine = collections.Counter()
    tables = collections.defaultdict(int)
    for r in runs:
        for node, stats in r["delta"]["nodes"].items():
            for key, value in stats.items():
                if key == "table":
                    tables[node] = max(tables[node], value)
                else:
                    nodes[node][key] += value
        machine.update(r["delta"]["machine"])
    per_node = {}
    for node, stats in sorted(nodes.items()):
        figures = {"conntrackd_cpu_ms": per_thousand(stats["conntrackd_cpu_ms"], sessions),
                   "container_cpu_ms": per_thousand(stats["container_cpu_ms"], sessions),
                   "table_max": tables[node]}
        for name, keys in COUNTERS.items():
            figures[name] = per_thousand(sum(stats.get(k, 0) for k in keys), sessions)
        per_node[node] = figures
    return {"sessions": sessions, "per_node": per_node,
            "machine": {key: per_thousand(value, sessions) for key, value in sorted(machine.items())}}


def parse_commit(text):
    """COMMIT_TIMED's output -> {"external_flows", "commit_ms"}, or None (no external cache)."""
    found = COMMIT_NS.search(text)
    if not found:
        return None
    return {"external_flows": parse_stats(text).get("cache external: current active connections"),
            "commit_ms": round(int(found.group(1)) / 1e6, 1)}


def commit_times(lab):
    """One commit of the external cache on every firewall that keeps one, right after a variant's
    load: {node: parse_commit()}. The commit puts the peers' flows into that node's kernel table;
    the next variant starts on flushed tables (bench.replication_running)."""
    found = {}
    for node in lab.firewalls:
        commit = parse_commit(bench.pexec(node, COMMIT_TIMED, check=False).stdout)
        if commit:
            found[node] = commit
    return found


def measure(lab, settings, variants=None):
    """The profile of LAB for VARIANTS (names of VARIANTS; by default its
    architecture's, variants_for); returns its results (benchmark/README.md,
    results.json's "profile")."""
    variants = variants or variants_for(lab.architecture)
    sampler = Sampler(lab)
    raw = {name: [] for name in variants}
    commits = {}
    try:
        for repeat in range(settings["rate_repeats"]):
            order = variants[repeat % len(variants):] + variants[:repeat % len(variants)]
            for name in order:
                apply_variant(lab, VARIANTS[name][1])
                for size in settings["profile_sizes"]:
                    before = sampler.read()
                    row, _forwarded = bench.rate_once(lab, settings, size)
                    change = delta(sampler.read(), before)
                    raw[name].append({"size": size, "row": row, "delta": change})
                    bench.log("profile %s, repeat %d, size %d: %s sessions/s; conntrackd %s ms"
                              % (name, repeat + 1, size, row["sessions_per_s"],
                                 "/".join(str(n["conntrackd_cpu_ms"]) for n in change["nodes"].values())))
                if repeat == settings["rate_repeats"] - 1 and VARIANTS[name][1] is not None:
                    commits[name] = commit_times(lab)
    finally:
        restore(lab)
    result = {"sizes": settings["profile_sizes"], "variants": []}
    for name in variants:
        result["variants"].append(dict(
            summarize(raw[name]), name=name, change=VARIANTS[name][0], commit=commits.get(name, {}),
            rate=[bench.rate_row(size, [r["row"] for r in raw[name] if r["size"] == size])
                  for size in settings["profile_sizes"]]))
    return result


def variants_for(architecture):
    return ["off", "on"] + CANDIDATES.get(architecture, [])
