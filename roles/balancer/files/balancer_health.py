# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fwcluster balancer health: keep a sandwich balancer's hash buckets on live firewalls.

Run by fwcluster-balancer.service on every load balancer of a sandwich
cluster (python3 standard library and iproute2; root, for its raw ICMP sockets):

    python3 balancer_health.py /etc/fwcluster/balancer.json [--state FILE]

The configuration is the balancer's part of the cluster plan
(``fwcluster_node.balancer``, see docs/cluster-plan.md). Every packet a
balancer forwards toward the firewalls carries an HMARK mark, one per hash
bucket; ``ip rule`` sends each bucket mark to one firewall's routing table.
This service owns those rules, in every address family the plan lists
(``families``: ``inet``, and ``inet6`` on a dual-stack cluster: the same
mark picks the same firewall for both):

* at start it installs one probe rule per firewall (the firewall's probe
  mark -> its table) and points every bucket at its home firewall;
* every ``interval`` seconds it sends one ICMP echo through each firewall
  to each far-side balancer (from a raw socket with the firewall's probe
  mark, as ``ping -m PROBE_MARK`` would: the probe takes that firewall's
  table; the firewall forwards it and SNATs it to its own far-side address,
  so the answer comes back through the same firewall; see Prober).
  A firewall is up while any far-side balancer answers through it;
* after ``fall`` failed rounds a firewall is down: only its buckets move,
  spread over the live firewalls by bucket number (every balancer computes
  the same spread from the same set of live firewalls); after ``rise`` good
  rounds it is up again and gets its buckets back (its IPv6 neighbour
  entries forgotten first, see forget_neighbours). When no firewall answers
  at all, the fault is on the far side, not in the firewalls: the buckets
  stay where they are.

A failed firewall leaves the hash within fall x interval + timeout seconds
(plus the time to rewrite the rules: one ``ip -batch`` per family). The
state file (JSON, rewritten atomically after every round) holds each
firewall's state, the bucket map and the last transitions with their times.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

STATE_FILE = "/run/fwcluster/balancer-health.json"
EVENTS_KEPT = 50


def assign(buckets, up):
    """Bucket number -> firewall node id, given the set of live node ids.

    A bucket whose home is up stays home. The buckets of a dead firewall go
    to the live ones, alive[bucket % len(alive)]: a function of the live set
    alone, so every balancer of both sides computes the same map. With no
    live firewall every bucket stays home (nothing better is known).
    """
    alive = sorted(up)
    mapping = {}
    for bucket in buckets:
        home = bucket["home"]
        if home in up or not alive:
            mapping[bucket["bucket"]] = home
        else:
            mapping[bucket["bucket"]] = alive[bucket["bucket"] % len(alive)]
    return mapping


def desired_rules(config, mapping):
    """The ip rules this service owns: [(priority, mark, table)]."""
    tables = dict((firewall["node_id"], firewall["table"]) for firewall in config["firewalls"])
    rules = [(firewall["probe_priority"], firewall["probe_mark"], firewall["table"])
             for firewall in config["firewalls"]]
    rules.extend((bucket["priority"], bucket["mark"], tables[mapping[bucket["bucket"]]])
                 for bucket in config["buckets"])
    return rules


class Firewall(object):
    def __init__(self, spec, fall, rise):
        self.spec = spec
        self.name = spec["name"]
        self.node_id = spec["node_id"]
        self.fall = fall
        self.rise = rise
        self.up = True  # innocent until proven dead: start on the home map
        self.fails = 0
        self.oks = 0
        self.changed = None

    def record(self, success, now):
        """One probe round's result; True when the firewall changed state."""
        if success:
            self.oks += 1
            self.fails = 0
            if not self.up and self.oks >= self.rise:
                self.up, self.changed = True, now
                return True
        else:
            self.fails += 1
            self.oks = 0
            if self.up and self.fails >= self.fall:
                self.up, self.changed = False, now
                return True
        return False

    def as_dict(self):
        return {"up": self.up, "fails": self.fails, "oks": self.oks, "changed": self.changed,
                "node_id": self.node_id, "table": self.spec["table"]}


def run(argv, check=True, stdin=None):
    result = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, check=False)
    if check and result.returncode != 0:
        log("%s failed: %s" % (" ".join(argv), result.stderr.strip()))
    return result


def log(message):
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def current_rules(priorities, family):
    """priority -> [(mark, table)] of one family's rules at the priorities this service owns."""
    result = run(["ip", "-f", family, "-j", "rule", "show"])
    found = dict((priority, []) for priority in priorities)
    try:
        entries = json.loads(result.stdout or "[]")
    except ValueError:
        entries = []
    for entry in entries:
        priority = entry.get("priority")
        if priority in found:
            mark = entry.get("fwmark")
            mark = int(mark, 16) if isinstance(mark, str) else mark
            table = entry.get("table")
            found[priority].append((mark, str(table)))
    return found


def apply_rules(rules, families):
    """Make the rules at our priorities exactly `rules` in every family; the number of rules changed."""
    return sum(apply_family_rules(rules, family) for family in families)


def rule_changes(rules, existing):
    """The `ip rule` commands that turn `existing` (priority -> [(mark, table)]) into `rules`.

    Each priority's new rule is added before its old one is removed: no packet finds no rule.
    """
    commands = []
    changed = 0
    for priority, mark, table in rules:
        wanted = (mark, str(table))
        present = existing[priority]
        if present == [wanted]:
            continue
        if wanted not in present:
            commands.append("rule add priority %d fwmark 0x%x lookup %s" % (priority, mark, table))
        for other_mark, other_table in present:
            if (other_mark, other_table) != wanted:
                commands.append("rule del priority %d%s lookup %s" % (
                    priority, "" if other_mark is None else " fwmark 0x%x" % other_mark, other_table))
        changed += 1
    return commands, changed


def apply_family_rules(rules, family):
    """One family's rules at our priorities, in one `ip -batch` (a process per rule took 80 to
    100 ms to move 8 buckets in two families, under load); -force goes on past a failed line,
    whose error is logged."""
    commands, changed = rule_changes(rules, current_rules([priority for priority, _mark, _table in rules], family))
    if commands:
        run(["ip", "-f", family, "-force", "-batch", "-"], stdin="\n".join(commands) + "\n")
    return changed


def forget_neighbours(firewall):
    """Drop what this balancer knows of a returning firewall's link-layer address, in the families not probed.

    The probes (IPv4) keep its ARP entry fresh; nothing refreshes its IPv6
    neighbour entry while it is out of the hash, and a firewall that comes
    back with another MAC (a new VM, a replaced NIC, a lab container) would
    get its IPv6 buckets on a stale entry: seconds of loss until neighbour
    unreachability detection gives up on it. Without the entry the first
    packet asks anew (RFC 4861 address resolution: milliseconds).
    """
    address6 = firewall.spec.get("address6")
    if address6:
        run(["ip", "-6", "neigh", "flush", "to", address6])


ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
SO_MARK = getattr(socket, "SO_MARK", 36)   # linux/socket.h; Python has the name since 3.12


def icmp_checksum(data):
    """RFC 1071: the ones' complement of the ones' complement sum of the 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident, sequence):
    payload = b"fwcluster-balancer"
    header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, icmp_checksum(header + payload), ident, sequence) + payload


def echo_reply(packet):
    """(ident, sequence) of an IPv4 packet carrying an ICMP echo reply, else None."""
    if len(packet) < 20:
        return None
    start = (packet[0] & 0x0F) * 4
    if len(packet) < start + 8 or packet[start] != ICMP_ECHO_REPLY:
        return None
    return struct.unpack("!HH", packet[start + 4:start + 8])


class Prober(object):
    """Echo requests through every firewall at once, from this process.

    One raw ICMP socket per firewall, marked with the firewall's probe mark
    (SO_MARK, as ``ping -m``): its requests take that firewall's table. A
    raw socket gets a copy of every ICMP packet the balancer receives, so a
    reply is told apart by its identifier (one per firewall) and sequence
    (one per round). No process per probe: a round costs microseconds of
    CPU, which is what lets the interval go down to tens of milliseconds.
    """

    def __init__(self, firewalls, targets):
        self.targets = list(targets)
        self.sockets = {}
        self.idents = {}
        base = os.getpid() & 0xFFFF
        for firewall in firewalls:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, firewall.spec["probe_mark"])
            sock.setblocking(False)
            self.sockets[firewall.node_id] = sock
            self.idents[(base + firewall.node_id) & 0xFFFF] = firewall.node_id
        self.sequence = 0

    def round(self, timeout):
        """Ping every target through every firewall; node id -> any answer within `timeout` seconds."""
        self.sequence = (self.sequence + 1) & 0xFFFF
        answered = dict((node_id, False) for node_id in self.sockets)
        for sock in self.sockets.values():   # what came too late for the round before
            self._drain(sock, answered, None)
        for ident, node_id in self.idents.items():
            request = echo_request(ident, self.sequence)
            for target in self.targets:
                try:
                    self.sockets[node_id].sendto(request, (target, 0))
                except OSError:   # no route through this firewall now: no answer either
                    pass
        deadline = time.monotonic() + timeout
        while not all(answered.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _writable, _errors = select.select(list(self.sockets.values()), [], [], left)
            for sock in readable:
                self._drain(sock, answered, self.sequence)
        return answered

    def _drain(self, sock, answered, sequence):
        while True:
            try:
                packet, (source, _port) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            reply = echo_reply(packet)
            if reply is not None and sequence is not None and reply[1] == sequence \
                    and reply[0] in self.idents and source in self.targets:
                answered[self.idents[reply[0]]] = True

    def close(self):
        for sock in self.sockets.values():
            sock.close()


def write_state(path, data):
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: balancer_health.py CONFIG.json [--state FILE]\n")
        return 2
    with open(argv[1]) as handle:
        config = json.load(handle)
    state_path = argv[argv.index("--state") + 1] if "--state" in argv else STATE_FILE
    firewalls = [Firewall(spec, config["fall"], config["rise"]) for spec in config["firewalls"]]
    names = dict((firewall.node_id, firewall.name) for firewall in firewalls)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_args: stopping.append(True))

    families = config.get("families", ["inet"])
    mapping = assign(config["buckets"], set(names))
    apply_rules(desired_rules(config, mapping), families)
    events = [{"time": time.time(), "event": "start", "mapping": dict((str(k), names[v]) for k, v in mapping.items())}]
    log("started: %d buckets over %s; probing %s every %ss (timeout %ss, fall %d, rise %d)"
        % (len(config["buckets"]), ", ".join(names.values()), ", ".join(config["targets"]), config["interval"],
           config["timeout"], config["fall"], config["rise"]))

    prober = Prober(firewalls, config["targets"])
    rounds = 0
    while not stopping:
        started = time.monotonic()
        answered = prober.round(config["timeout"])
        now = time.time()
        rounds += 1
        transitions = [firewall for firewall in firewalls if firewall.record(answered[firewall.node_id], now)]
        for firewall in transitions:
            if firewall.up:
                forget_neighbours(firewall)
        if transitions:
            up = set(firewall.node_id for firewall in firewalls if firewall.up)
            new_mapping = assign(config["buckets"], up)
            moved = sorted(bucket for bucket in new_mapping if new_mapping[bucket] != mapping[bucket])
            changed = apply_rules(desired_rules(config, new_mapping), families)
            applied = time.time()
            mapping = new_mapping
            for firewall in transitions:
                log("%s is %s: %d bucket(s) moved (%s), rules rewritten in %.0f ms"
                    % (firewall.name, "up" if firewall.up else "down", len(moved),
                       ",".join(str(bucket) for bucket in moved) or "none", (applied - now) * 1000))
                events.append({"time": now, "applied": applied, "event": "up" if firewall.up else "down",
                               "firewall": firewall.name, "moved": moved, "rules_changed": changed})
            if not up:
                log("no firewall answers: the far side is down, the buckets stay home")
            events = events[-EVENTS_KEPT:]
        write_state(state_path, {
            "time": now,
            "rounds": rounds,
            "firewalls": dict((firewall.name, firewall.as_dict()) for firewall in firewalls),
            "mapping": dict((str(bucket), names[node_id]) for bucket, node_id in sorted(mapping.items())),
            "events": events,
        })
        elapsed = time.monotonic() - started
        if elapsed < config["interval"]:
            time.sleep(config["interval"] - elapsed)
    prober.close()
    log("stopping; the rules stay as they are")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
