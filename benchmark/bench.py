"""bench: the failover benchmark of fwcluster.netfilter, run in the podman lab.

    python3 benchmark/bench.py [--arch NAME ...] [--smoke] [--out DIR] [--keep-lab] [--reuse-lab]

Run it through scripts/bench.sh, which installs what it needs first. For each
architecture it builds the Molecule scenario's lab (create, prepare), or with
--reuse-lab takes the one a scenario left running (the test command's smoke
run uses the primary_backup scenario's lab), deploys
the example inventory with the collection's own playbook (playbooks/site.yml),
and measures with benchmark/loadgen.py on the lab's client and server:

1. session rate: sessions/s and throughput per object size, repeated with
   conntrackd running and stopped on one deployment, in alternating order;
2. a hard failure (links down and SIGKILL, as a power loss) of the firewall carrying the most flows,
   with replication on, redeployed off, and (primary_backup) in ALARM mode:
   the share of the flows in progress at the kill that complete, per object
   size; the time from the kill to the first packet of the victim's flows a
   survivor forwards; the longest gap of a long-lived flow;
3. the same kill with a sub-second failover configuration;
4. the flows each firewall forwarded (SYNs seen leaving each node);
5. the session rate (on and off) and the default kill again on the other
   backend (iptables, nftables) than the inventory's, redeployed on the same
   lab: both backends side by side in one run;
6. the replication profile (benchmark/replication_profile.py): the session
   rate with replication off, on and with each candidate change of
   conntrackd's configuration, with the CPU time and the counters of
   conntrackd on every firewall, per 1000 sessions (``--only profile``
   measures it alone);
7. (hash, in the full run after the hash lab's measures; ``--arch hash --only scaling`` alone) the
   hash cluster's throughput with 1 to 4 firewalls, each capped as a box of its own
   (benchmark/scaling.py);
8. (``--only fast-failover``, alone) per failover setting, shortest last: a
   soak under the kill's load that counts every transition (false failovers),
   then kills timed to the first forward (benchmark/fast_failover.py).

Which firewall carried a flow is read from the wire: every firewall node runs
tcpdump on its outgoing packets (``-Q out``), so the node that forwards a
connection's SYN is the one carrying it, whatever the architecture.

It writes DIR/results.json (the schema is in benchmark/README.md), then the
plots and summary.md with benchmark/report.py. DIR defaults to
build/bench/latest.
"""

import argparse
import collections
import datetime
import ipaddress
import json
import math
import os
import pathlib
import platform
import re
import shlex
import signal
import subprocess
import sys
import time

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts" / "lib"))
import lab_scenario  # noqa: E402  pylint: disable=wrong-import-position

# replication_profile imports this module as "bench": run as a script, be that module.
sys.modules.setdefault("bench", sys.modules[__name__])
import fast_failover  # noqa: E402  pylint: disable=wrong-import-position
import replication_profile  # noqa: E402  pylint: disable=wrong-import-position
import scaling  # noqa: E402  pylint: disable=wrong-import-position

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOADGEN = "/usr/local/bin/fwcluster-loadgen"
ARCHITECTURES = ("primary_backup", "multipath", "hash", "sandwich")

FULL = {
    "rate_duration_s": 3, "rate_repeats": 3, "rate_concurrency": 64, "rate_sizes": [0, 1024, 5120, 20480, 102400],
    "recovery_sizes": [0, 10240, 102400, 1048576], "recovery_in_progress_per_size": 30, "recovery_think_s": 2.0,
    "recovery_after_kill_s": 16, "subsecond_advert_int": 0.2,
    "subsecond_health": {"interval": 0.2, "timeout": 0.15, "fall": 3, "rise": 6},
    "profile_sizes": [0, 1024, 5120],
}
# The smoke run aims at 8 flows in progress per size: enough to show each
# kind (a smoke run proves the benchmark runs, not the figures).
SMOKE = dict(FULL, rate_duration_s=2, rate_repeats=2, rate_sizes=[1024], recovery_sizes=[0, 102400],
             recovery_in_progress_per_size=8, recovery_after_kill_s=12)
# The kill's load: recovery_in_progress_per_size flows of each size in
# progress on the victim at the kill, the sample a recovered share is counted
# on. Each client loops sessions whose server thinks recovery_think_s before it
# answers, so a session is an established flow most of its time; the victim
# carries its share of the clients (all of them on primary_backup, whose
# primary carries every flow; 1/n of n active firewalls elsewhere), and
# RECOVERY_MARGIN more clients cover a victim below its share and the sessions
# caught between two sessions or in their handshake.
RECOVERY_MARGIN = 1.5
# A conntrackd mode the architecture accepts besides its inventory's, measured
# against it: ALARM resends every flow every RefreshTime (15 s) instead of on
# each event, the periodic replication the paper finds short flows suffer from.
OTHER_MODES = {"primary_backup": "alarm"}
# The rules backends (fwcluster_backend); the inventory names one, step 5 measures the other.
BACKENDS = ("iptables", "nftables")
# A hash node's owner hook (the plan's hash.owner_command): "show" prints the node ids it owns.
HASH_OWNER_COMMAND = "/usr/local/sbin/fwcluster-hash-owner"
BALANCER_STATE = "/run/fwcluster/balancer-health.json"   # the balancer role's fwcluster_balancer_state_file
HASH_OWNERSHIP_LOG = "/run/fwcluster/ownership.log"   # the owner hook's record (fwcluster_firewall_hash_state_dir)
# keepalived's journal line for each change of an instance's state: "(mesh_id1) Entering MASTER STATE"
VRRP_TRANSITION = re.compile(r"\((\S+)\) Entering (\w+) STATE")
SOURCES = 64            # client source addresses: host .100 to .163 of the client's subnet
# Where the inventory routes a network behind the client (a segment's routes
# through the client's address), the sources are its first ROUTED_SOURCES
# addresses instead, on the client's loopback. The measured share is the hash's
# split of the sample: the hash example's jhash gives 64 subnet sources
# 18/19/27 (max/mean 1.27), 256 of 10.20.8.0/22 77/100/79 (1.17), 1000 of them
# 337/348/315 (1.04); the smoke runs measured 1.27 and 1.17.
ROUTED_SOURCES = 1000
# Where the lab names a network behind the server (lab.yml's lab_routed_dests:
# the sandwich's, whose outside balancers route upstream through the server),
# the flows go to its first ROUTED_DESTS addresses, on the server's loopback,
# instead of the server's few own: the sandwich's balancers hash the outside
# party's address, and 8 server addresses split the flows in eighths.
ROUTED_DESTS = 1000
SYN_OUT = "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port %d"
PACKET_LINE = re.compile(r"^(\d+\.\d+) .*?IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.\d+:")


def log(text):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


def run(argv, check=True, capture=True, timeout=None):
    result = subprocess.run(argv, check=False, text=True, timeout=timeout,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.STDOUT if capture else None)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout or "").splitlines()[-25:])
        raise BenchError("%s exited %d\n%s" % (" ".join(argv[:4]), result.returncode, tail))
    return result


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


def podman(*argv, **kwargs):
    return run(["podman"] + list(argv), **kwargs)


def pexec(host, command, **kwargs):
    return podman("exec", host, "sh", "-c", command, **kwargs)


def background(host, command):
    return subprocess.Popen(["podman", "exec", host, "sh", "-c", command], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def capture(host, seconds, bpf, count=None):
    """tcpdump of the packets HOST sends out, started in the background;
    returns once tcpdump listens (it says so on stderr)."""
    proc = subprocess.Popen(["podman", "exec", host, "timeout", str(seconds), "tcpdump", "-i", "any", "-Q", "out",
                             "-nn", "-tt", "-l", "-q"] + (["-c", str(count)] if count else []) + [bpf],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said = []
    while len(said) < 5:   # notes on the link type and verbosity come first
        said.append(proc.stderr.readline())
        if not said[-1] or "listening on" in said[-1]:
            break
    if "listening on" not in said[-1]:
        raise BenchError("tcpdump on %s did not start: %s" % (host, " ".join(s.strip() for s in said)))
    return proc


def wait_for_file(host, path, timeout):
    deadline = time.time() + timeout
    while pexec(host, "test -s %s" % shlex.quote(path), check=False).returncode:
        if time.time() > deadline:
            raise BenchError("%s: %s did not appear within %d s" % (host, path, timeout))
        time.sleep(0.2)


def read_json(host, path):
    return json.loads(pexec(host, "cat %s" % shlex.quote(path)).stdout)


# ------------------------------------------------------------------ the lab

class Lab:
    """One Molecule scenario: its hosts, the inventory it links, the client and server."""

    def __init__(self, scenario):
        self.scenario = scenario
        sdir = ROOT / "molecule" / scenario
        molecule = lab_scenario.molecule_config(sdir)
        lab = yaml.safe_load((sdir / "lab.yml").read_text())
        self.inventory = str(lab_scenario.inventory_links(sdir)["hosts"].parent)
        hostvars = json.loads(run(["ansible-inventory", "-i", self.inventory, "--list"]).stdout)
        self.hostvars = hostvars["_meta"]["hostvars"]
        self.client, self.server, self.port = lab["lab_client"], lab["lab_server"], int(lab["lab_echo_port"])
        self.dests = lab.get("lab_server_ips") or [lab["lab_server_ip"]]
        self.dest_dev = None   # the dests are the server's own (lab.yml), or on its lo (lab_routed_dests)
        if lab.get("lab_routed_dests"):
            routed = ipaddress.ip_network(lab["lab_routed_dests"])
            self.dest_dev = "lo"
            self.dests = [str(routed.network_address + 1 + i) for i in range(min(ROUTED_DESTS, routed.num_addresses - 2))]
        platforms = {p["name"]: p for p in molecule["platforms"]}
        subnets = {n["name"]: n["subnet"] for n in lab["lab_networks"]}
        client_net = platforms[self.client]["networks"][0]
        self.client_if = client_net["interface"]
        network = ipaddress.ip_network(subnets[client_net["name"]])
        self.members = [h for h, v in self.hostvars.items() if "fwcluster_architecture" in v]
        routed = routed_network(self.hostvars, self.members, client_net["ip"])
        if routed is not None and routed.num_addresses > ROUTED_SOURCES:
            # the client's own addresses of the network routed to it: on lo, each a /32
            self.source_dev, self.source_prefix = "lo", 32
            self.sources = [str(routed.network_address + 1 + i) for i in range(ROUTED_SOURCES)]
        else:
            self.source_dev, self.source_prefix = self.client_if, network.prefixlen
            self.sources = [str(network.network_address + 100 + i) for i in range(SOURCES)]
        # The firewalls: the nodes that forward the flows (a sandwich's balancers are not).
        self.firewalls = sorted(h for h in self.members if "fwcluster_balancer_side" not in self.hostvars[h])
        first = self.hostvars[self.firewalls[0]]
        self.architecture = first["fwcluster_architecture"]
        self.replication = first.get("fwcluster_replication")
        self.tracking = first.get("fwcluster_tracking") or {}
        self.vrrp = first.get("fwcluster_vrrp") or {}
        self.balancers = first.get("fwcluster_balancers")
        self.backend = first.get("fwcluster_backend", "iptables")
        # The extra vars of the last deploy, which the status checks read too.
        self.extra_vars = ROOT / "build" / "bench" / ("extra-%s.json" % scenario)
        # Extra vars of every deploy of this run, under each deploy's own (--peer-flows).
        self.inventory_overrides = {}

    def set_peer_flows(self, value):
        """Every deploy of this run keeps the peers' flows where VALUE says (fwcluster_replication.peer_flows)."""
        self.replication = dict(self.replication or {}, peer_flows=value)
        self.inventory_overrides = {"fwcluster_replication": self.replication}

    def running(self):
        """Whether every host of the lab runs and the lab run's SSH key is there."""
        key = ROOT / "build" / "lab" / self.scenario / "id_ed25519"
        states = podman("ps", "--format", "{{.Names}}", "--filter", "label=fwcluster.scenario=%s" % self.scenario,
                        check=False).stdout.split()
        return key.is_file() and set(self.hostvars) <= set(states)

    def molecule(self, action):
        log("molecule %s -s %s" % (action, self.scenario))
        run(["molecule", action, "-s", self.scenario], capture=False, timeout=1800)

    def deploy(self, overrides, label):
        """Deploy the inventory with OVERRIDES as extra vars; None when it deployed, else the refusal."""
        log("deploy (%s)" % label)
        extra = self.extra_vars
        extra.parent.mkdir(parents=True, exist_ok=True)
        # The lab's deploys change every node at once and skip the commit-confirm:
        # the benchmark measures the deployed cluster, not the rollout.
        extra.write_text(json.dumps(dict(self.inventory_overrides, **dict(
            overrides, fwcluster_serial=len(self.members), fwcluster_safeguard_enabled=False))))
        result = run(["ansible-playbook", "-i", self.inventory, str(ROOT / "playbooks" / "site.yml"),
                      "-e", "@%s" % extra], check=False, timeout=1800)
        if result.returncode != 0:
            lines = [line for line in result.stdout.splitlines() if "fatal" in line or "msg" in line]
            return "%s: the deploy failed: %s" % (label, " | ".join(lines[-3:]) or "exit %d" % result.returncode)
        return None

    def settle(self, timeout=180):
        """Wait until playbooks/status.yml finds the cluster consistent (as last deployed)."""
        deadline = time.time() + timeout
        while True:
            result = run(["ansible-playbook", "-i", self.inventory, str(ROOT / "playbooks" / "status.yml"),
                          "-e", "@%s" % self.extra_vars], check=False, timeout=300)
            if result.returncode == 0:
                return
            if time.time() > deadline:
                raise BenchError("the cluster did not settle within %d s:\n%s"
                                 % (timeout, "\n".join(result.stdout.splitlines()[-20:])))
            time.sleep(5)

    def prepare_load(self):
        """The load generator on client and server, its object server, the client's sources."""
        for host in (self.client, self.server):
            podman("cp", str(ROOT / "benchmark" / "loadgen.py"), "%s:%s" % (host, LOADGEN))
        pexec(self.server, "systemctl stop flowprobe-echo-%d.service 2>/dev/null; "
                           "systemctl reset-failed fwcluster-loadgen.service 2>/dev/null; "
                           "systemctl is-active -q fwcluster-loadgen.service || "
                           "systemd-run --unit=fwcluster-loadgen --property=Restart=always "
                           "--property=LimitNOFILE=65536 python3 %s serve --port %d"
                           % (self.port, LOADGEN, self.port))
        have = pexec(self.client, "ip -4 -o addr show dev %s" % self.source_dev).stdout
        missing = [a for a in self.sources if " %s/" % a not in have]
        if missing:
            pexec(self.client, "; ".join("ip addr add %s/%d dev %s" % (a, self.source_prefix, self.source_dev)
                                         for a in missing))
        if self.dest_dev:
            have = pexec(self.server, "ip -4 -o addr show dev %s" % self.dest_dev).stdout
            missing = [a for a in self.dests if " %s/" % a not in have]
            if missing:
                pexec(self.server, "; ".join("ip addr add %s/32 dev %s" % (a, self.dest_dev) for a in missing))
        deadline = time.time() + 20
        while pexec(self.server, "ss -Htln 'sport = :%d' | grep -q ." % self.port, check=False).returncode:
            if time.time() > deadline:
                raise BenchError("the object server does not listen on %s:%d" % (self.server, self.port))
            time.sleep(0.5)

    def pairs(self, slots):
        return [(self.sources[k % len(self.sources)], self.dests[k % len(self.dests)]) for k in range(slots)]

    def client_args(self):
        return " ".join(["--port %d" % self.port] + ["--dest %s" % d for d in self.dests]
                        + ["--source %s" % s for s in self.sources])


def routed_network(hostvars, members, client_ip):
    """The first IPv4 network the inventory routes through the client (a segment's routes whose
    gateway is the client's address), or None."""
    first = hostvars[members[0]] if members else {}
    for segment in (first.get("fwcluster_segments") or {}).values():
        gateway = segment.get("gateway")
        gateways = [gateway] if isinstance(gateway, str) else list(gateway or [])
        if client_ip in gateways:
            for network in segment.get("routes") or []:
                network = ipaddress.ip_network(network)
                if network.version == 4:
                    return network
    return None


def predicted_share(lab):
    """{firewall: the sources the cluster's hash gives it}: what the flow share of a hash cluster
    must come to when every source opens as many sessions (the rate test's workers move on to the
    next source with each session). None for other architectures, or without a seed in the inventory."""
    seed = lab.hostvars[lab.firewalls[0]].get("fwcluster_hash_seed")
    if lab.architecture != "hash" or seed is None:
        return None
    sys.path.insert(0, str(ROOT / "build" / "collections"))   # the collection's own model of the hash
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_hash import node_id_of
    by_id = {int(lab.hostvars[node]["fwcluster_node_id"]): node for node in lab.firewalls}
    counts = collections.Counter(by_id[node_id_of(source, int(seed), len(by_id))] for source in lab.sources)
    return {node: counts[node] for node in lab.firewalls}


# ------------------------------------------------------------------ captures

def start_syn_capture(lab, seconds):
    """tcpdump on every firewall, the SYNs it forwards, for SECONDS."""
    return {node: capture(node, seconds, SYN_OUT % lab.port) for node in lab.firewalls}


def syn_counts(captures):
    """{node: Counter((src, dst))} of the captures started above."""
    counts = {}
    for node, proc in captures.items():
        out = proc.communicate(timeout=60)[0]
        counts[node] = collections.Counter(m.group(2, 3) for m in map(PACKET_LINE.match, out.splitlines()) if m)
    return counts


def carriers(lab, counts, pairs):
    """Which firewall forwarded each (source, dest) pair. A node that NATs the
    source (primary_backup's masquerade, the sandwich's SNAT) is matched on
    the destination alone."""
    by_pair = {}
    for pair in set(pairs):
        seen = {node: c[pair] for node, c in counts.items() if c[pair]}
        if not seen:
            seen = {node: sum(n for (src, dst), n in c.items() if dst == pair[1] and src not in lab.sources)
                    for node, c in counts.items()}
            seen = {node: n for node, n in seen.items() if n}
        by_pair[pair] = max(seen, key=seen.get) if seen else None
    return by_pair


def survivor_filter(lab, victim_pairs, all_pairs):
    """The tcpdump filter for packets of the victim's flows leaving a survivor."""
    parts = ["tcp dst port %d" % lab.port]
    dsts = sorted({pair[1] for pair in victim_pairs})
    srcs = sorted({pair[0] for pair in victim_pairs})
    if set(dsts) != {pair[1] for pair in all_pairs}:
        parts.append("(%s)" % " or ".join("dst host %s" % d for d in dsts))
    elif set(srcs) != {pair[0] for pair in all_pairs}:
        parts.append("(%s)" % " or ".join("src host %s" % s for s in srcs))
    return " and ".join(parts)


# ------------------------------------------------------------------ measures

def replication_running(lab, running):
    """Restart the replication on every firewall, on (RUNNING) or off. The
    session rate with and without replication is measured on one deployment
    this way: the ruleset, keepalived and the NAT stay as deployed, and only
    the replication (the daemon that reads every conntrack event and sends it
    to the peers) differs between the two measures.

    conntrackd is stopped everywhere and the kernel tables are flushed before
    it starts again: a conntrackd that starts takes every flow in its kernel
    table for its own, and on hash and sandwich the table holds the peers'
    flows too, tens of thousands after a rate test. Started on such tables
    (and asked to resync), the hash lab's session rate fell from about
    1500/s to about 200/s, with failed sessions, for minutes. Both settings
    start from empty tables, so they are measured alike."""
    for node in lab.firewalls:
        pexec(node, "systemctl stop conntrackd.service")
    for node in lab.firewalls:
        pexec(node, "conntrack -F 2>/dev/null; true")
    if not running:
        return
    for node in lab.firewalls:
        pexec(node, "systemctl start conntrackd.service")
    deadline = time.time() + 30   # it answers its clients once it has read the kernel table
    for node in lab.firewalls:
        while pexec(node, "conntrackd -s >/dev/null 2>&1", check=False).returncode:
            if time.time() > deadline:
                raise BenchError("conntrackd on %s does not answer after its start" % node)
            time.sleep(0.2)
    time.sleep(1.0)


def rate_once(lab, settings, size):
    """One session-rate measure; returns loadgen's row and the SYNs each firewall forwarded."""
    captures = start_syn_capture(lab, settings["rate_duration_s"] + 2)
    time.sleep(0.5)
    out = "/tmp/bench-rate.json"
    pexec(lab.client, "python3 %s rate %s --size %d --concurrency %d --duration %s --out %s"
          % (LOADGEN, lab.client_args(), size, settings["rate_concurrency"], settings["rate_duration_s"], out),
          timeout=settings["rate_duration_s"] + 120)
    row = read_json(lab.client, out)
    return row, {node: sum(counter.values()) for node, counter in syn_counts(captures).items()}


def rate_row(size, runs):
    """The row of one object size from its repeated runs: the median
    sessions/s and throughput, every run's figures, the totals."""
    def median(values):
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    errors = collections.Counter()
    for run_row in runs:
        errors.update(run_row["errors"])
    return {"size": size, "sessions": sum(r["sessions"] for r in runs), "failed": sum(r["failed"] for r in runs),
            "errors": dict(errors), "duration_s": round(sum(r["duration_s"] for r in runs), 3),
            "sessions_per_s": round(median([r["sessions_per_s"] for r in runs]), 1),
            "throughput_bps": round(median([r["throughput_bps"] for r in runs]), 1),
            "runs": [r["sessions_per_s"] for r in runs], "throughput_runs": [r["throughput_bps"] for r in runs]}


def measure_rates(lab, settings):
    """Session rate per object size, repeated; with replication, each
    repetition measures every size with conntrackd running and stopped, the
    order alternating (on-off, off-on, ...) so that a drift of the shared
    machine weighs on both alike. Returns ({"on": rows, "off": rows or None},
    {node: SYNs forwarded})."""
    runs = {"on": collections.defaultdict(list), "off": collections.defaultdict(list)}
    share = collections.Counter()
    for repeat in range(settings["rate_repeats"]):
        order = (("on", "off") if repeat % 2 == 0 else ("off", "on")) if lab.replication else ("on",)
        for which in order:
            if lab.replication:   # every block starts from empty tables, replication on or off
                replication_running(lab, which == "on")
            for size in settings["rate_sizes"]:
                row, forwarded = rate_once(lab, settings, size)
                runs[which][size].append(row)
                share.update(forwarded)
                log("rate %s, repeat %d, size %d: %s sessions/s, %d failed" % (
                    "replication " + which if lab.replication else "no replication", repeat + 1, size,
                    row["sessions_per_s"], row["failed"]))
    if lab.replication:
        replication_running(lab, True)
    rows = {which: [rate_row(size, runs[which][size]) for size in settings["rate_sizes"]] if runs[which] else None
            for which in ("on", "off")}
    return rows, {node: share[node] for node in lab.firewalls}


# A session the kill caught was still open this long after it. The client's
# event loop notes a session's end up to tens of ms after its last packet
# when 64 workers keep it busy; a session that really crossed the failure
# waits for the failover (over 400 ms even with a sub-second advert_int).
CAUGHT_AFTER = 0.25
# A flow whose handshake the client noted less than YOUNG s before the kill
# (or up to CAUGHT_AFTER after it) had its state made by the victim that
# recently: the replication is asynchronous (the victim's conntrackd sends each
# event after the kernel made it), so such a flow may not be on a survivor
# yet, replication or not. Counted apart from the flows in progress, like the
# handshakes. (A run with the think time lost a 100 KiB flow connected 15 ms
# before the kill, and no older one.)
YOUNG = 0.1


def recovered_flows(sessions, slots, sizes, kill_at):
    """Per object size, the sessions of SLOTS the kill caught, and how many completed.

    Caught: started before the kill and still open CAUGHT_AFTER s after it.
    In progress: caught, with its handshake complete at least YOUNG s before
    the kill; these hold state a survivor must have. Their end times (ms
    after the kill) are kept as evidence: a flow that truly crossed the
    failure ends after the failover. Connecting: caught in its handshake,
    whose SYN is sent again and makes new state on a survivor, replication
    or not; counted apart (`connecting`, `connecting_completed`). The client
    notes the handshake's end late as it notes a session's end late, so a
    handshake noted up to CAUGHT_AFTER s after the kill counts as complete
    before it: one that waited for the failover is noted 400 ms after it at
    the earliest. Young: complete, but less than YOUNG s before the kill (or
    noted in the CAUGHT_AFTER s after it); counted apart too (`young`,
    `young_completed`): the replication may not have carried it yet."""
    recovery = []
    for size in sizes:
        mine = [s for s in sessions if s[0] in slots and s[1] == size and s[2] < kill_at < s[3] - CAUGHT_AFTER]
        connected = [s for s in mine if s[7] is not None and s[7] <= kill_at + CAUGHT_AFTER]
        hit = [s for s in connected if s[7] <= kill_at - YOUNG]
        young = [s for s in connected if s not in hit]
        connecting = [s for s in mine if s not in connected]
        recovery.append({"size": size, "in_progress": len(hit), "recovered": sum(1 for s in hit if s[4]),
                         "errors": dict(collections.Counter(s[6] for s in hit if not s[4])),
                         "recovered_end_ms": sorted(round((s[3] - kill_at) * 1000) for s in hit if s[4]),
                         "young": len(young), "young_completed": sum(1 for s in young if s[4]),
                         "connecting": len(connecting), "connecting_completed": sum(1 for s in connecting if s[4])})
    return recovery


def clients_per_size(lab, settings):
    """The kill's clients per object size: enough for recovery_in_progress_per_size
    flows of each size on the victim (see RECOVERY_MARGIN)."""
    share = 1.0 if lab.architecture == "primary_backup" else 1.0 / len(lab.firewalls)
    return math.ceil(settings["recovery_in_progress_per_size"] / share * RECOVERY_MARGIN)


def power_off(host):
    """A hard failure of HOST now, as a power loss: all its processes die and
    its links go down within a few ms. Returns the time it began.

    The container's init is killed from here (the kernel kills every process
    of its PID namespace with it; `podman kill` would deliver the signal a
    few hundred ms late). Killing processes alone leaves the kernel
    forwarding in the container's network namespace, with its rules and
    flows, until podman tears the namespace down: flows would finish through
    a "dead" node. So its links are taken down right after, once the init is
    dead: an init's exit waits until every process of its namespace has
    exited. Not before: a daemon that saw one link go down could still
    announce it on the others, which no powered-off node does (keepalived
    going to FAULT sends a priority 0 advert, and its backup takes over at
    once: a smoke run under the kill's load saw that 23 ms after the links
    went down, the takeover 86 ms after the kill instead of 3 x advert_int)."""
    init, netns = podman("inspect", "--format", "{{.State.Pid}} {{.NetworkSettings.SandboxKey}}",
                         host).stdout.split()
    name = os.path.basename(netns)
    links = [line.split(":")[1].strip().split("@")[0]
             for line in run(["ip", "-n", name, "-o", "link", "show"]).stdout.splitlines()]
    batch = "".join("link set dev %s down\n" % link for link in links if link != "lo")
    down = subprocess.Popen(["ip", "-n", name, "-force", "-batch", "-"], stdin=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.time()
    os.kill(int(init), signal.SIGKILL)
    wait_exited(int(init))
    down.communicate(batch, timeout=30)
    # ip fails only if podman already removed the namespace: the links are gone then.
    if down.returncode and os.path.exists(netns):
        raise BenchError("could not take the links of %s down (ip exited %d)" % (host, down.returncode))
    return started


def wait_exited(pid, timeout=10.0):
    """Return once process PID has exited (a zombie, or gone); BenchError after TIMEOUT s."""
    deadline = time.time() + timeout
    while True:
        try:
            with open("/proc/%d/stat" % pid, encoding="utf-8") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        if state in ("Z", "X"):
            return
        if time.time() > deadline:
            raise BenchError("process %d did not exit within %g s of SIGKILL" % (pid, timeout))
        time.sleep(0.001)


def node_states(lab):
    """What each firewall holds just before a kill, kept as evidence: the
    addresses on its segments (VIPs), the node ids it owns (hash: its owner
    hook's answer, either backend), nf_conntrack_tcp_loose, and whether
    conntrackd runs."""
    script = "; ".join([
        "ip -4 -o addr show | awk '$2 != \"lo\" {print $4}' | tr '\\n' ' '; echo",
        "%s show 2>/dev/null | tr '\\n' ' '; echo" % HASH_OWNER_COMMAND,
        "sysctl -n net.netfilter.nf_conntrack_tcp_loose",
        "systemctl is-active conntrackd keepalived | tr '\\n' ' '"])
    states = {}
    for node in lab.firewalls:
        lines = (pexec(node, script, check=False).stdout.splitlines() + ["", "", "", ""])[:4]
        states[node] = {"addresses": lines[0].split(), "owned_ids": lines[1].split(),
                        "tcp_loose": lines[2].strip(), "conntrackd_keepalived": lines[3].split()}
    return states


def start_recover_load(lab, settings, per_size, duration, stop, out):
    """The kill's load on the client, in the background: PER_SIZE clients of each of
    recovery_sizes loop sessions with the think time, for at most DURATION s or until
    the STOP file exists; their sessions go to OUT."""
    return background(lab.client, "python3 %s recover %s --sizes %s --per-size %d --think %g --duration %d "
                      "--stop-file %s --out %s" % (LOADGEN, lab.client_args(), ",".join(map(str, settings["recovery_sizes"])),
                                                   per_size, settings["recovery_think_s"], duration, stop, out))


def balancer_events(balancer):
    """The events of a sandwich balancer's health service (its state file), [] when it has none."""
    result = pexec(balancer, "cat %s" % BALANCER_STATE, check=False)
    try:
        return json.loads(result.stdout).get("events", [])
    except ValueError:
        return []


def kill_test(lab, settings, label, replication, advert_int, bound_ms, mode=None, backend=None):
    """Kill the firewall carrying the most flows while they run; see the module docstring.
    MODE: the conntrackd mode deployed when it is not the inventory's; BACKEND
    likewise the rules backend."""
    log("kill test: %s" % label)
    sizes, per_size = settings["recovery_sizes"], clients_per_size(lab, settings)
    slots = len(sizes) * per_size
    pairs = lab.pairs(slots)
    after = settings["recovery_after_kill_s"]
    rec_out, hold_out, knock_out = "/tmp/bench-recover.json", "/tmp/bench-hold.json", "/tmp/bench-knock.json"
    stop = "/tmp/bench-recover.stop"
    pexec(lab.client, "rm -f %s %s %s %s" % (rec_out, hold_out, knock_out, stop))
    # The load first: which firewall carries which slot is read from it.
    recover = start_recover_load(lab, settings, per_size, 120 + after, stop, rec_out)
    # every client starts a session within its think time: each pair's SYN is seen
    captures = start_syn_capture(lab, 2.5 + settings["recovery_think_s"])
    by_pair = carriers(lab, syn_counts(captures), pairs)
    load = collections.Counter(node for node in by_pair.values() if node)
    if not load:
        recover.wait()
        raise BenchError("%s: no firewall forwarded a SYN of the load" % label)
    victim = max(load, key=load.get)
    survivors = [n for n in lab.firewalls if n != victim]
    victim_pairs = [p for p in set(pairs) if by_pair[p] == victim]
    hold_src, hold_dst = sorted(victim_pairs)[0]
    flt = survivor_filter(lab, victim_pairs, pairs)
    # Everything that times the failover listens before the kill.
    first = {n: capture(n, after + 30, flt, count=1) for n in survivors}
    hold = background(lab.client, "python3 %s hold --dest %s --source %s --port %d --duration %s --out %s"
                      % (LOADGEN, hold_dst, hold_src, lab.port, after + 5, hold_out))
    wait_for_file(lab.client, hold_out, 30)
    knock = background(lab.client, "python3 %s knock --dest %s --source %s --port %d --duration %s --stall 1 --out %s"
                       % (LOADGEN, hold_dst, hold_src, lab.port, after, knock_out))
    before = node_states(lab)   # its podman execs stall the client: a second of steady load follows
    time.sleep(1.0)
    kill_at = power_off(victim)
    log("killed %s (%d of %d flows were its own)" % (victim, len(victim_pairs), len(set(pairs))))
    time.sleep(max(0.0, kill_at + after - time.time()))
    pexec(lab.client, "touch %s" % stop)
    for proc in (recover, hold, knock):
        proc.wait(timeout=120)
    forwarded = []   # (time, survivor, tcpdump's line): the line is kept as evidence
    for node, proc in first.items():
        out = proc.communicate(timeout=60)[0].strip()
        match = PACKET_LINE.match(out)
        if match:
            forwarded.append((float(match.group(1)), node, out))
    sessions = read_json(lab.client, rec_out)["sessions"]
    hold_state = read_json(lab.client, hold_out)
    victim_slots = {k for k in range(slots) if by_pair[pairs[k]] == victim}
    recovery = recovered_flows(sessions, victim_slots, sizes, kill_at)
    # Evidence: the victim's sessions open at the kill, times in ms from it:
    # [slot, size, start, end, ok, bytes, error, connected].

    def since(moment):
        return None if moment is None else round((moment - kill_at) * 1000)
    near = sorted([s[0], s[1], since(s[2]), since(s[3]), s[4], s[5], s[6], since(s[7])]
                  for s in sessions if s[0] in victim_slots and s[2] < kill_at < s[3])
    first_ms = round((min(forwarded)[0] - kill_at) * 1000, 1) if forwarded else None
    # A sandwich's balancers promise fall x interval + timeout plus the rewrite
    # of their rules, which each balancer measures itself.
    transitions = balancer_transitions(lab, victim, kill_at)
    takeovers = hash_takeovers(lab, survivors, kill_at)
    rewrite_ms = max((entry["applied_ms"] - entry["detected_ms"] for entry in transitions), default=None)
    if replication:
        mode = mode or lab.replication.get("mode", "ftfw")
    result = {"label": label, "replication": replication, "replication_mode": mode if replication else None,
              "advert_int": advert_int, "backend": backend or lab.backend, "victim": victim,
              "survivors": survivors, "victim_flows": len(victim_pairs), "flows": len(set(pairs)),
              "clients_per_size": per_size, "think_s": settings["recovery_think_s"],
              "first_forward_ms": first_ms, "bound_ms": bound_ms + (rewrite_ms or 0),
              "bound_rewrite_ms": rewrite_ms, "balancer_transitions": transitions,
              "first_forward_packet": "%s: %s" % min(forwarded)[1:] if forwarded else None,
              "hold_gap_ms": hold_state["max_gap_ms"], "hold_alive": hold_state["alive"],
              "hold_error": hold_state["error"], "recovery": recovery, "before": before, "takeovers": takeovers,
              "sessions_near_kill": near}
    log("%s: first forward %s ms (bound %s), hold gap %s ms, recovered %s" % (
        label, first_ms, bound_ms, hold_state["max_gap_ms"],
        ", ".join("%d B %d/%d" % (r["size"], r["recovered"], r["in_progress"]) for r in recovery)))
    for takeover in takeovers:
        log("takeover: %(node)s master of %(instance)s %(master_ms)s ms after the kill, its id taken at %(taken_ms)s ms"
            % takeover)
    log("starting %s again" % victim)
    podman("start", victim)
    lab.settle()
    return result


def vrrp_transitions(journal, start, end=float("inf")):
    """The instances' changes of state in keepalived's journal (journalctl -o short-unix) between
    START and END: [(time, instance, state)], other lines left out."""
    found = []
    for line in journal.splitlines():
        match = VRRP_TRANSITION.search(line)
        if match and start <= float(line.split()[0]) <= end:
            found.append((float(line.split()[0]),) + match.groups())
    return found


def hash_takeovers(lab, survivors, kill_at):
    """How each survivor of a hash cluster took the victim's node ids, ms from the kill: when
    keepalived made it master of an id's instance (its journal) and when its notify script had the
    id taken, after committing conntrackd's external cache (the owner hook's log):
    [{"node", "instance", "master_ms", "taken_ms"}] (taken_ms None when it did not take it). []
    for other architectures."""
    if lab.architecture != "hash":
        return []
    found = []
    for node in survivors:
        out = pexec(node, "journalctl -u keepalived -o short-unix --no-pager --since @%d; echo ---; cat %s"
                    % (kill_at, HASH_OWNERSHIP_LOG), check=False).stdout
        journal, owner_log = (out.split("---\n", 1) + [""])[:2]
        takes = [(float(line.split()[0]), line.split()[2]) for line in owner_log.splitlines()
                 if len(line.split()) == 3 and line.split()[1] == "take" and float(line.split()[0]) >= kill_at]
        for master_at, instance, state in vrrp_transitions(journal, kill_at):
            if state != "MASTER":
                continue
            node_id = instance.rsplit("_id", 1)[-1]
            taken = min((at for at, taken_id in takes if taken_id == node_id and at >= master_at), default=None)
            found.append({"node": node, "instance": instance, "master_ms": round((master_at - kill_at) * 1000),
                          "taken_ms": None if taken is None else round((taken - kill_at) * 1000)})
    return sorted(found, key=lambda entry: entry["master_ms"])


def balancer_transitions(lab, victim, kill_at):
    """Each sandwich balancer's own record of dropping VICTIM after the kill:
    [{"balancer", "detected_ms", "applied_ms"}], ms from the kill (the health
    service's state file: when its fall-th probe failed, when its rules were
    rewritten). [] for other architectures or when a balancer has no record."""
    found = []
    for balancer in sorted(set(lab.members) - set(lab.firewalls)):
        for event in balancer_events(balancer):
            if event.get("event") == "down" and event.get("firewall") == victim and event.get("time", 0) >= kill_at:
                found.append({"balancer": balancer, "detected_ms": round((event["time"] - kill_at) * 1000, 1),
                              "applied_ms": round((event["applied"] - kill_at) * 1000, 1)})
                break
    return found


def bound_ms(lab, advert_int, health=None):
    """The failover bound the architecture promises: a sandwich's balancers
    drop a dead firewall after fall x interval + timeout (kill_test adds the
    rewrite of their rules, as they measured it); VRRP backups take over
    after 3 adverts plus their skew, which is below one advert."""
    if lab.architecture == "sandwich":
        h = health or lab.balancers["health"]
        return round((h["fall"] * h["interval"] + h["timeout"]) * 1000)
    return round(4 * advert_int * 1000)


def replication_off(replication, tracking):
    """The extra vars of the counter-test's deploy: replication disabled, and the health tracking
    that needs the replication link (the conntrackd check, upstream hosts) left out with it."""
    overrides = {"fwcluster_replication": dict(replication, enabled=False)}
    if tracking:
        overrides["fwcluster_tracking"] = dict((key, value) for key, value in tracking.items()
                                               if key not in ("conntrackd", "upstream", "hold_down"))
    return overrides


def bench_architecture(lab, settings, smoke, keep_lab, reuse_lab=False, only=None):
    result = {"scenario": lab.scenario, "nodes": lab.firewalls, "replication": bool(lab.replication),
              "replication_mode": (lab.replication or {}).get("mode"), "backend": lab.backend,
              "rate": {"on": None, "off": None}, "share": None, "kills": [], "notes": [],
              # {backend: {"rate": {"on", "off"}, "kill": label of its default kill}}, the inventory's first
              "backends": {}}
    default_int = float(lab.vrrp.get("advert_int", 1))
    if reuse_lab and lab.running():
        log("reusing the running %s lab" % lab.scenario)
    else:
        lab.molecule("destroy")
        lab.molecule("create")   # molecule's create sequence runs prepare.yml too
    try:
        refusal = lab.deploy({}, "the inventory as written")
        if refusal:
            raise BenchError(refusal)
        lab.settle()
        result["machine"] = machine(lab.firewalls[0])
        lab.prepare_load()
        if only == "profile":
            if lab.replication:
                result["profile"] = replication_profile.measure(lab, settings)
            return result
        if only == "fast-failover":
            return fast_failover.measure(lab, settings, result)
        on = "replication on" if lab.replication else "no replication"
        result["rate"], share = measure_rates(lab, settings)
        lab.settle()   # conntrackd was restarted: every node in sync again before a kill
        if lab.architecture in ("hash", "sandwich"):
            result["share"] = share
            result["share_predicted"] = predicted_share(lab)
        result["kills"].append(kill_test(lab, settings, "%s, advert_int %g" % (on, default_int),
                                         bool(lab.replication), default_int, bound_ms(lab, default_int)))
        result["backends"][lab.backend] = {"rate": result["rate"], "kill": result["kills"][-1]["label"]}
        if smoke:
            return result
        if lab.replication:
            lab.settle()
            result["profile"] = replication_profile.measure(lab, settings)
            lab.settle()
        for backend in (b for b in BACKENDS if b != lab.backend):
            label = "%s, advert_int %g, %s" % (on, default_int, backend)
            refusal = lab.deploy({"fwcluster_backend": backend}, "backend %s" % backend)
            if refusal:
                result["notes"].append(refusal)
                continue
            lab.settle()
            rates, _share = measure_rates(lab, settings)
            lab.settle()
            result["kills"].append(kill_test(lab, settings, label, bool(lab.replication), default_int,
                                             bound_ms(lab, default_int), backend=backend))
            result["backends"][backend] = {"rate": rates, "kill": label}
        if lab.replication:
            refusal = lab.deploy(replication_off(lab.replication, lab.tracking), "replication off")
            if refusal:
                result["notes"].append(refusal)
            else:
                lab.settle()
                result["kills"].append(kill_test(lab, settings, "replication off, advert_int %g" % default_int,
                                                 False, default_int, bound_ms(lab, default_int)))
            other = OTHER_MODES.get(lab.architecture)
            if other and other != lab.replication.get("mode"):
                label = "replication %s mode, advert_int %g" % (other, default_int)
                refusal = lab.deploy({"fwcluster_replication": dict(lab.replication, mode=other)}, label)
                if refusal:
                    result["notes"].append(refusal)
                else:
                    lab.settle()
                    result["kills"].append(kill_test(lab, settings, label, True, default_int,
                                                     bound_ms(lab, default_int), mode=other))
        fast = settings["subsecond_advert_int"]
        overrides = {"fwcluster_vrrp": dict(lab.vrrp, advert_int=fast)}
        label = "%s, advert_int %g" % (on, fast)
        health = None
        if lab.architecture == "sandwich":
            health = settings["subsecond_health"]
            overrides["fwcluster_balancers"] = dict(lab.balancers, health=health)
            label += ", health every %g s" % health["interval"]
        refusal = lab.deploy(overrides, label)
        if refusal:
            result["notes"].append(refusal)
        else:
            lab.settle()
            result["kills"].append(kill_test(lab, settings, label, bool(lab.replication), fast,
                                             bound_ms(lab, fast, health)))
        return result
    finally:
        if not keep_lab:
            lab.molecule("destroy")


def machine(lab_host):
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return None
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo", encoding="utf-8")
                   if line.startswith("MemTotal"))
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in open("/etc/os-release", encoding="utf-8")
                    if line.startswith("PRETTY_NAME=")), platform.system())
    info = {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "os": os_name,
            "podman": (first_line(["podman", "--version"]) or "").replace("podman version ", "")}
    if lab_host:
        out = pexec(lab_host, "keepalived --version 2>&1 | head -1; conntrackd -v 2>&1 | head -1", check=False).stdout
        versions = re.findall(r"(?:Keepalived v|tracking userspace daemon v)(\d+(?:\.\d+)+)", out)
        if len(versions) == 2:
            info["keepalived"], info["conntrackd"] = versions
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--arch", action="append", choices=ARCHITECTURES,
                        help="measure this architecture (repeatable; default: all four, or primary_backup with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="a short run: one size, one kill")
    parser.add_argument("--out", default=str(ROOT / "build" / "bench" / "latest"))
    parser.add_argument("--keep-lab", action="store_true", help="leave the last lab running")
    parser.add_argument("--reuse-lab", action="store_true",
                        help="measure in the scenario's lab when it is running, instead of building a new one")
    parser.add_argument("--only", choices=["profile", "scaling", "fast-failover"],
                        help="measure only this: the replication profile (no kill), the hash cluster's "
                             "throughput with 1 to 4 capped firewalls (--arch hash), or the failover time and "
                             "false failovers of each failover setting")
    parser.add_argument("--fast-settings", metavar="LIST",
                        help="with --only fast-failover: the settings to measure (advert_int, or the sandwich's "
                             "health interval, in s), comma-separated")
    parser.add_argument("--fast-soak", metavar="S", type=int,
                        help="with --only fast-failover: the soak's length in s (default %d, %d with --smoke)"
                             % (fast_failover.SETTINGS["fast_soak_s"], fast_failover.SMOKE_SETTINGS["fast_soak_s"]))
    parser.add_argument("--fast-fall", metavar="N", type=int,
                        help="with --only fast-failover --arch sandwich: the balancers' failed probes before a "
                             "firewall is dropped (default %d)" % fast_failover.FALL)
    parser.add_argument("--peer-flows", choices=["external_cache", "kernel"],
                        help="deploy the hash cluster with this fwcluster_replication.peer_flows (default: the "
                             "inventory's)")
    parser.add_argument("--command", default="scripts/bench.sh", help="the command line recorded in the results")
    args = parser.parse_args(argv)
    archs = args.arch or (["primary_backup"] if args.smoke else list(ARCHITECTURES))
    settings = SMOKE if args.smoke else FULL
    if args.only == "scaling":
        if archs != ["hash"]:
            parser.error("--only scaling measures the hash cluster alone: give --arch hash")
        settings = dict(scaling.SETTINGS)
    if args.only == "fast-failover":
        settings = dict(settings, **(fast_failover.SMOKE_SETTINGS if args.smoke else fast_failover.SETTINGS))
        if args.fast_settings:
            try:
                settings["fast_settings"] = [float(value) for value in args.fast_settings.split(",")]
            except ValueError:
                parser.error("--fast-settings: seconds, comma-separated (0.2,0.05), not %r" % args.fast_settings)
        if args.fast_soak is not None:
            settings["fast_soak_s"] = args.fast_soak
        if args.fast_fall is not None:
            if archs != ["sandwich"] or not 1 <= args.fast_fall <= 10:
                parser.error("--fast-fall is the sandwich balancers' fall, 1 to 10: give --arch sandwich")
            settings["fast_fall"] = args.fast_fall
    elif args.fast_settings or args.fast_soak is not None or args.fast_fall is not None:
        parser.error("--fast-settings, --fast-soak and --fast-fall go with --only fast-failover")
    if args.peer_flows:
        if archs != ["hash"]:
            parser.error("--peer-flows is a hash cluster's choice: give --arch hash")
        settings = dict(settings, peer_flows=args.peer_flows)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"version": 1, "command": args.command, "smoke": args.smoke,
               "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "settings": dict(settings, default_advert_int=1.0), "architectures": {}}
    status = 0
    for name in archs:
        started = time.time()
        try:
            if args.only == "scaling":
                results["architectures"][name] = {
                    "scenario": scaling.SCENARIO, "replication": True, "kills": [], "notes": [],
                    "scaling": scaling.measure(settings, args.keep_lab, args.reuse_lab)}
            else:
                lab = Lab(name)
                if args.peer_flows:
                    lab.set_peer_flows(args.peer_flows)
                results["architectures"][name] = bench_architecture(lab, settings, args.smoke, args.keep_lab,
                                                                    args.reuse_lab, args.only)
                if name == "hash" and args.only is None and not args.smoke:
                    # the full run measures the scaling too, in its own lab (hash_scaling), after the hash lab's
                    results["architectures"][name]["scaling"] = scaling.measure(
                        dict(settings, **scaling.SETTINGS), args.keep_lab)
            results["architectures"][name]["seconds"] = round(time.time() - started)
            if "machine" in results["architectures"][name]:
                results.setdefault("machine", results["architectures"][name].pop("machine"))
        except (BenchError, subprocess.TimeoutExpired, OSError, KeyError) as exc:
            log("%s failed: %s" % (name, exc))
            results["architectures"].setdefault(name, {"notes": []})["notes"].append("failed: %s" % exc)
            results["architectures"][name]["failed"] = True
            status = 1
    results["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "machine" not in results:   # no architecture got as far as its deploy
        results["machine"] = machine(None)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    log("wrote %s" % (out / "results.json"))
    sys.path.insert(0, str(ROOT / "benchmark"))
    try:
        import report  # pylint: disable=import-outside-toplevel
    except ImportError:
        log("benchmark/report.py not found: no plots")
        return status
    for path in report.write_report(results, out):
        log("wrote %s" % path)
    return status


if __name__ == "__main__":
    sys.exit(main())
