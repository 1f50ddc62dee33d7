"""flowprobe: TCP flows for the fwcluster lab (Python 3 standard library only).

The lab needs three things to see whether a firewall cluster really keeps
established flows across a failover; this one script does all of them so it
can be copied into any container that has python3.

Subcommands
-----------
serve --port N [--bind ADDR] [--log FILE]
    Threaded line echo server. Every line received is sent back unchanged,
    except the line ``WHOAMI``, which is answered with ``YOUARE <ip> <port>``:
    the peer address as this server sees it (after any NAT on the way).
    Each accepted and closed connection is appended to FILE as one JSON
    object per line: {"event", "time", "peer_ip", "peer_port", "lines"}.

hold --to HOST:PORT --state FILE [--interval 0.1] [--dead-after 60]
    The long-lived flow. Opens ONE connection and never reconnects. A sender
    writes an increasing sequence number every INTERVAL seconds; a receiver
    checks every echo comes back in order and records when. FILE (JSON,
    rewritten atomically a few times a second and on exit) holds:
    local/remote address, sent/received counters, first/last echo times,
    the longest gap between two consecutive echoes, or before the error that
    ended the flow (max_gap_ms, with its start and end), the time since the
    last echo (current_gap_ms), every gap longer than 5 intervals (``gaps``), the last
    echo times (``recent_echoes``), ``alive`` and ``error``. Any error
    (reset, close, out-of-order echo, no echo for DEAD_AFTER seconds) ends
    the probe with ``alive: false`` and exit status 1. SIGTERM ends it
    cleanly (``alive: false``, ``error: null``, ``stopped: true``).
    Run it detached with e.g.
    ``systemd-run --unit flowprobe-hold flowprobe.py hold ...``.

connect --to HOST:PORT [--to HOST:PORT] [--timeout S] [--whoami] [--source-port N]
    One short connection (to the --to of --bind's family, else the first): connect, send one line, expect it back. Prints a
    JSON result and exits 0 on success, 1 when refused (RST), 2 on timeout
    (a firewall dropping the packets), 3 on any other error. With
    --whoami the result also holds the address the server saw. With
    --source-port the connection leaves from port N (e.g. a SYN that
    pretends to be the reply of a flow a stateless firewall admits).

vipwait --vip ADDR [--vip ADDR ...] --out FILE [--poll 0.01] [--timeout 120]
    Run on a firewall node before a failover: poll the node's addresses
    every POLL seconds and write FILE (JSON) with the wall-clock time at
    which ALL the VIPs were first present. Exit 0 when seen, 2 on timeout.

hold ... --bind ADDR
    Any of hold, holdmany and connect can bind the client side to a source
    address (--bind ADDR), e.g. one of several addresses of the client.

holdmany --to HOST:PORT [--to HOST:PORT] --source ADDR [--source ADDR ...]
        --state FILE [--interval 0.2] [--dead-after 60]
    Many long-lived flows in one process, one per source address, each
    exactly like ``hold``. FILE holds {"flows": {ADDR: <hold state>}, ...}.
    With sources of both families, give one --to per family: each source
    connects to the target of its own family.

userve --port N --summary FILE [--bind ADDR]
    UDP echo server (on :: by default: both families) with duplicate detection. A datagram "RUN SRC SEQ" is
    echoed back; the server counts, per run and source, the datagrams
    received and the sequence numbers seen more than once (duplicates).
    FILE (JSON) is rewritten every 0.2 s when it changed.

ublast --to HOST:PORT [--to HOST:PORT] --source ADDR [--source ADDR ...] --run ID
       [--count 20] [--interval 0.05] [--linger 2] --out FILE
    From every source address (one UDP socket bound to each, sending to the
    --to of its family, as holdmany), send COUNT
    datagrams "ID SRC SEQ", and count the echoes: received, duplicates
    (an echo of a sequence number seen before) and missing. Exit 0 when
    every echo came back exactly once, 1 otherwise.

maskwait --bit K --out FILE [--poll 0.01] [--timeout 60]
    Run on a hash-cluster node: poll its owner rules (``nft list chain``
    of the nftables backend's owner chain, else ``iptables-save -t mangle``) and write
    FILE with the wall-clock time at which the node's cluster-match rules
    first covered node id K (bit K of --cluster-local-nodemask). Exit 0
    when seen, 2 on timeout.

capcount --file FILE --net NETWORK
    Count the packets of a ``tcpdump -nn -l`` text capture per address of
    NETWORK (as source or destination; IPv4 or IPv6 lines, give --net once
    per family). Prints {ADDR: packets}.

ctflows [--proto tcp] [--dport N] [--family ipv4|ipv6|any]
    Run on a firewall: its conntrack table as JSON, one object per flow
    (original direction: src, dst, sport, dport; reply direction: reply_src,
    reply_dst, reply_sport, reply_dport; state; orig_packets and
    reply_packets when nf_conntrack_acct=1, else null). A firewall that
    forwards a flow counts its packets; one that only holds it through
    state replication shows zero.

All times are wall-clock UNIX seconds (float): containers share the host's
clock, so times from different containers and the host compare directly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time


def now() -> float:
    """Wall-clock time, comparable across the lab's containers."""
    return time.time()


def write_json_atomic(path: str, data: dict) -> None:
    """Write DATA to PATH so a reader never sees a half-written file. The
    folder is made first: /run is empty after a reboot."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def family_of(address: str) -> int:
    """AF_INET6 for an IPv6 address, AF_INET for anything else."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def target_for(source: str, targets: list[tuple[str, int]]) -> tuple[str, int]:
    """The one of TARGETS (host, port) of SOURCE's address family."""
    for host, port in targets:
        if family_of(host) == family_of(source):
            return host, port
    raise SystemExit(f"flowprobe: no --to of the family of source {source}")


def open_connection(host: str, port: int, timeout: float, bind: str | None = None,
                    source_port: int = 0) -> socket.socket:
    """socket.create_connection from BIND (an address) and SOURCE_PORT, when given.

    A fixed source port is bound with SO_REUSEADDR: an earlier connection
    from the same port (an ephemeral one, the kernel's choice) may still wait
    in TIME_WAIT, which would refuse the bind (EADDRINUSE).
    """
    if not source_port:
        return socket.create_connection((host, port), timeout=timeout, source_address=(bind, 0) if bind else None)
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(timeout)
        sock.bind((bind or "", source_port))
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def split_hostport(value: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT as (host, port)."""
    host, _sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or [IPv6]:PORT, got {value!r}")
    return host, int(port)


# --------------------------------------------------------------------- serve
def unmapped(address: str) -> str:
    """An IPv4 peer of a dual-stack socket (::ffff:A.B.C.D) as A.B.C.D."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class EchoHandler(socketserver.StreamRequestHandler):
    """Echo every line; answer WHOAMI with the peer address."""

    def handle(self) -> None:
        peer_ip, peer_port = self.client_address[:2]
        peer_ip = unmapped(peer_ip)
        self.server.log_event("accept", peer_ip, peer_port)
        lines = 0
        try:
            for line in self.rfile:
                lines += 1
                if line.strip() == b"WHOAMI":
                    reply = f"YOUARE {peer_ip} {peer_port}\n".encode()
                else:
                    reply = line
                self.wfile.write(reply)
                self.wfile.flush()
        except OSError:
            pass
        self.server.log_event("close", peer_ip, peer_port, lines=lines)


class EchoServer(socketserver.ThreadingTCPServer):
    """Bound to "::" (the default), one socket answers both families."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log_path: str | None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, EchoHandler, bind_and_activate=False)
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def log_event(self, event: str, peer_ip: str, peer_port: int, **extra) -> None:
        record = {"event": event, "time": now(), "peer_ip": peer_ip,
                  "peer_port": peer_port, **extra}
        line = json.dumps(record, sort_keys=True)
        if self.log_path is None:
            print(line, flush=True)
            return
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def cmd_serve(args: argparse.Namespace) -> int:
    server = EchoServer((args.bind, args.port), args.log)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


# ---------------------------------------------------------------------- hold
class Hold:
    """One long-lived connection that sends a sequence and checks the echoes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.interval = args.interval
        self.state: dict = {
            "pid": os.getpid(),
            "remote": "%s:%d" % tuple(args.to),
            "interval_ms": round(args.interval * 1000),
            "started": now(),
            "connected": None,
            "local_ip": None,
            "local_port": None,
            "sent": 0,
            "received": 0,
            "first_echo": None,
            "last_echo": None,
            "last_send": None,
            "max_gap_ms": 0.0,
            "max_gap_start": None,
            "max_gap_end": None,
            "current_gap_ms": None,
            "gaps": [],
            "recent_echoes": [],
            "alive": False,
            "error": None,
            "stopped": False,
            "updated": None,
        }
        self.sock: socket.socket | None = None

    # state helpers -----------------------------------------------------
    def save(self) -> None:
        with self.lock:
            st = self.state
            st["updated"] = now()
            since = st["last_echo"] or st["connected"]
            st["current_gap_ms"] = None if since is None else round((st["updated"] - since) * 1000.0, 1)
            snapshot = json.loads(json.dumps(self.state))
        if self.args.state:
            write_json_atomic(self.args.state, snapshot)

    def fail(self, message: str) -> None:
        with self.lock:
            st = self.state
            if st["error"] is None and not st["stopped"]:
                st["error"] = message
                # The outage that killed the flow is a gap too.
                since = st["last_echo"] or st["connected"]
                if since is not None:
                    gap_ms = round((now() - since) * 1000.0, 1)
                    if gap_ms > st["max_gap_ms"]:
                        st.update(max_gap_ms=gap_ms, max_gap_start=since, max_gap_end=None)
            st["alive"] = False
        self.done.set()

    # threads -----------------------------------------------------------
    def sender(self) -> None:
        seq = 0
        next_at = time.monotonic()
        while not self.done.is_set():
            seq += 1
            try:
                self.sock.sendall(f"{seq}\n".encode())
            except OSError as exc:
                self.fail(f"send failed at seq {seq}: {exc}")
                return
            with self.lock:
                self.state["sent"] = seq
                self.state["last_send"] = now()
            next_at += self.interval
            self.done.wait(max(0.0, next_at - time.monotonic()))

    def receiver(self) -> None:
        reader = self.sock.makefile("rb")
        expected = 1
        last_mono = None
        while not self.done.is_set():
            try:
                line = reader.readline()
            except OSError as exc:
                self.fail(f"receive failed after seq {expected - 1}: {exc}")
                return
            if not line:
                self.fail(f"connection closed by peer after seq {expected - 1}")
                return
            t_wall, t_mono = now(), time.monotonic()
            try:
                seq = int(line)
            except ValueError:
                self.fail(f"unexpected echo {line[:40]!r}")
                return
            if seq != expected:
                self.fail(f"echo out of order: got {seq}, expected {expected}")
                return
            expected += 1
            with self.lock:
                st = self.state
                st["received"] = seq
                st["last_echo"] = t_wall
                if st["first_echo"] is None:
                    st["first_echo"] = t_wall
                if last_mono is not None:
                    gap_ms = (t_mono - last_mono) * 1000.0
                    if gap_ms > st["max_gap_ms"]:
                        st["max_gap_ms"] = round(gap_ms, 1)
                        st["max_gap_start"] = t_wall - gap_ms / 1000.0
                        st["max_gap_end"] = t_wall
                    if gap_ms > 5 * self.interval * 1000.0:
                        st["gaps"].append({"start": t_wall - gap_ms / 1000.0,
                                           "end": t_wall, "ms": round(gap_ms, 1),
                                           "seq": seq})
                st["recent_echoes"] = (st["recent_echoes"] + [t_wall])[-50:]
            last_mono = t_mono

    def watchdog(self) -> None:
        """Save the state often; fail when no echo arrived for dead_after s."""
        while not self.done.wait(0.2):
            with self.lock:
                last = self.state["last_echo"] or self.state["connected"]
            if last is not None and now() - last > self.args.dead_after:
                self.fail(f"no echo for {self.args.dead_after} s")
            self.save()

    def run(self) -> int:
        def on_term(*_):
            with self.lock:
                self.state["stopped"] = True
                self.state["alive"] = False
            self.done.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)
            signal.signal(signal.SIGINT, on_term)
        self.on_term = on_term
        host, port = self.args.to
        bind = getattr(self.args, "bind", None)
        source_port = getattr(self.args, "source_port", 0) or 0
        try:
            self.sock = open_connection(host, port, self.args.connect_timeout, bind, source_port)
        except OSError as exc:
            self.fail(f"connect failed: {exc}")
            self.save()
            return 1
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local_ip, local_port = self.sock.getsockname()[:2]
        with self.lock:
            self.state.update(connected=now(), local_ip=local_ip,
                              local_port=local_port, alive=True)
        self.save()
        threads = [threading.Thread(target=t, daemon=True)
                   for t in (self.sender, self.receiver, self.watchdog)]
        for thread in threads:
            thread.start()
        self.done.wait()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.save()
        return 0 if self.state["error"] is None else 1


def cmd_hold(args: argparse.Namespace) -> int:
    return Hold(args).run()


# ------------------------------------------------------------------- connect
def cmd_connect(args: argparse.Namespace) -> int:
    host, port = target_for(args.bind, args.to) if args.bind else args.to[0]
    result: dict = {"to": f"{host}:{port}", "start": now()}
    status = 0
    try:
        with open_connection(host, port, args.timeout, args.bind, args.source_port) as sock:
            sock.settimeout(args.timeout)
            result["local_ip"], result["local_port"] = sock.getsockname()[:2]
            reader = sock.makefile("rb")
            token = f"hello {os.getpid()} {now()}"
            sock.sendall(f"{token}\n".encode())
            if reader.readline().decode().strip() != token:
                raise ValueError("echo did not match")
            if args.whoami:
                sock.sendall(b"WHOAMI\n")
                words = reader.readline().decode().split()
                if len(words) != 3 or words[0] != "YOUARE":
                    raise ValueError(f"bad WHOAMI answer {words!r}")
                result["seen_ip"], result["seen_port"] = words[1], int(words[2])
        result["result"] = "ok"
    except ConnectionRefusedError as exc:
        result.update(result="refused", error=str(exc))
        status = 1
    except (socket.timeout, TimeoutError) as exc:
        result.update(result="timeout", error=str(exc) or "timed out")
        status = 2
    except (OSError, ValueError) as exc:
        result.update(result="error", error=str(exc))
        status = 3
    result["elapsed_ms"] = round((now() - result["start"]) * 1000, 1)
    print(json.dumps(result, sort_keys=True))
    return status


# ------------------------------------------------------------------- vipwait
def local_addresses() -> set[str]:
    """Every address of this host, both families, without prefix."""
    out = subprocess.run(["ip", "-o", "addr", "show"], check=True,
                         capture_output=True, text=True).stdout
    addrs = set()
    for line in out.splitlines():
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words:
                addrs.add(words[words.index(family) + 1].split("/")[0])
    return addrs


def cmd_vipwait(args: argparse.Namespace) -> int:
    wanted = {v.split("/")[0] for v in args.vip}
    result: dict = {"vips": sorted(wanted), "started": now(), "seen": None,
                    "first_seen": {}}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        t = now()
        present = local_addresses() & wanted
        for vip in present:
            result["first_seen"].setdefault(vip, t)
        if present == wanted:
            result["seen"] = t
            break
        time.sleep(args.poll)
    result["polls_ms"] = round(args.poll * 1000, 1)
    write_json_atomic(args.out, result)
    print(json.dumps(result, sort_keys=True))
    return 0 if result["seen"] else 2


# ------------------------------------------------------------------ holdmany
def cmd_holdmany(args: argparse.Namespace) -> int:
    """One Hold per source address, in threads; one combined state file."""
    holds = {}
    for source in args.source:
        sub = argparse.Namespace(to=target_for(source, args.to), state=None, interval=args.interval,
                                 dead_after=args.dead_after, connect_timeout=args.connect_timeout,
                                 bind=source)
        holds[source] = Hold(sub)
    stopping = []

    def on_term(*_):
        # A signal handler takes no lock: it runs in the main thread, which may
        # hold one (a hold's, in snapshot) at that moment. The loop below stops.
        stopping.append(True)

    threads = [threading.Thread(target=hold.run, daemon=True) for hold in holds.values()]
    for hold, thread in zip(holds.values(), threads):
        hold.on_term = lambda *_: None  # replaced by run(); set early so on_term never fails
        thread.start()
        time.sleep(0.02)  # do not open every connection in the same millisecond
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def snapshot() -> dict:
        flows = {}
        for source, hold in holds.items():
            with hold.lock:
                state = dict(hold.state)
                since = state["last_echo"] or state["connected"]
                state["current_gap_ms"] = None if since is None else round((now() - since) * 1000.0, 1)
                flows[source] = json.loads(json.dumps(state))
        return {"pid": os.getpid(), "updated": now(), "flows": flows,
                "alive": sum(1 for flow in flows.values() if flow["alive"]),
                "errors": sum(1 for flow in flows.values() if flow["error"])}

    while not stopping:
        write_json_atomic(args.state, snapshot())
        if all(not thread.is_alive() for thread in threads):
            break
        time.sleep(0.25)
    for hold in holds.values():
        hold.on_term()
    # Two seconds for all of them, not each: a hold whose connect still waits ends with the process.
    deadline = time.monotonic() + 2
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    write_json_atomic(args.state, snapshot())
    return 0 if all(hold.state["error"] is None for hold in holds.values()) else 1


# -------------------------------------------------------------------- userve
def cmd_userve(args: argparse.Namespace) -> int:
    sock = socket.socket(family_of(args.bind), socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family_of(args.bind) == socket.AF_INET6:  # IPv4 peers too, as ::ffff:A.B.C.D
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((args.bind, args.port))
    sock.settimeout(0.2)
    runs: dict = {}
    seen: dict = {}
    dirty = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last_write = 0.0
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(2048)
        except socket.timeout:
            data = None
        if data is not None:
            words = data.decode(errors="replace").split()
            if len(words) == 3 and words[2].isdigit():
                run, source, seq = words[0], words[1], int(words[2])
                peer_ip = unmapped(peer[0])
                entry = runs.setdefault(run, {}).setdefault(peer_ip, {
                    "received": 0, "duplicates": 0, "max_seq": 0, "claimed_source": source,
                    "first": now(), "last": None})
                key = (run, peer_ip, seq)
                if key in seen:
                    entry["duplicates"] += 1
                seen[key] = True
                entry["received"] += 1
                entry["max_seq"] = max(entry["max_seq"], seq)
                entry["last"] = now()
                dirty = True
                sock.sendto(data, peer)
        if dirty and now() - last_write > 0.2:
            write_json_atomic(args.summary, {"updated": now(), "runs": runs})
            last_write = now()
            dirty = False
    write_json_atomic(args.summary, {"updated": now(), "runs": runs})
    return 0


# -------------------------------------------------------------------- ublast
def cmd_ublast(args: argparse.Namespace) -> int:
    import selectors

    selector = selectors.DefaultSelector()
    flows = {}
    for source in args.source:
        sock = socket.socket(family_of(source), socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, source)
        flows[source] = {"sock": sock, "to": target_for(source, args.to), "sent": 0, "echoes": {},
                         "duplicates": 0, "stray": 0}
    start = now()

    def drain(timeout: float) -> None:
        for key, _events in selector.select(timeout):
            flow = flows[key.data]
            while True:
                try:
                    data = key.fileobj.recv(2048)
                except BlockingIOError:
                    break
                words = data.decode(errors="replace").split()
                if len(words) != 3 or words[0] != args.run or words[1] != key.data or not words[2].isdigit():
                    flow["stray"] += 1
                    continue
                seq = int(words[2])
                if seq in flow["echoes"]:
                    flow["duplicates"] += 1
                flow["echoes"][seq] = flow["echoes"].get(seq, 0) + 1

    next_at = time.monotonic()
    for seq in range(1, args.count + 1):
        for source, flow in flows.items():
            try:
                flow["sock"].sendto(f"{args.run} {source} {seq}".encode(), flow["to"])
                flow["sent"] += 1
            except OSError:
                pass
        next_at += args.interval
        while True:
            left = next_at - time.monotonic()
            if left <= 0:
                break
            drain(left)
    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        drain(max(0.0, deadline - time.monotonic()))
    result = {"run": args.run, "to": ["%s:%d" % target for target in args.to], "start": start, "end": now(), "count": args.count,
              "sources": {}}
    ok = True
    for source, flow in flows.items():
        missing = [seq for seq in range(1, args.count + 1) if seq not in flow["echoes"]]
        result["sources"][source] = {"sent": flow["sent"], "received": len(flow["echoes"]),
                                     "duplicates": flow["duplicates"], "missing": len(missing),
                                     "stray": flow["stray"]}
        ok = ok and not missing and flow["duplicates"] == 0 and flow["stray"] == 0
        flow["sock"].close()
    result["ok"] = ok
    result["duplicates"] = sum(item["duplicates"] for item in result["sources"].values())
    result["missing"] = sum(item["missing"] for item in result["sources"].values())
    write_json_atomic(args.out, result)
    print(json.dumps({key: result[key] for key in ("run", "ok", "duplicates", "missing")}, sort_keys=True))
    return 0 if ok else 1


# ------------------------------------------------------------------ maskwait
def owned_mask() -> int:
    """The node ids the owner rules cover: nftables' jhash values, or iptables' cluster-match node masks."""
    listed = subprocess.run(["nft", "list", "chain", "ip", "fwcluster", "mangle_FWCLUSTER-OWN"],
                            capture_output=True, text=True, check=False)
    if listed.returncode == 0:  # the nftables backend's chain
        mask = 0
        for match in re.finditer(r"jhash ct original ip saddr mod \d+ seed 0x[0-9a-f]+ (\{[^}]*\}|\d+) ", listed.stdout):
            for node_id in re.findall(r"\d+", match.group(1)):
                mask |= 1 << int(node_id)
        return mask
    out = subprocess.run(["iptables-save", "-t", "mangle"], check=True, capture_output=True, text=True).stdout
    mask = 0
    for line in out.splitlines():
        words = line.split()
        if "--cluster-local-nodemask" in words:
            mask |= int(words[words.index("--cluster-local-nodemask") + 1], 0)
    return mask


def cmd_maskwait(args: argparse.Namespace) -> int:
    result: dict = {"bit": args.bit, "started": now(), "seen": None, "mask": None}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        t = now()
        mask = owned_mask()
        result["mask"] = "0x%08x" % mask
        if mask & (1 << args.bit):
            result["seen"] = t
            break
        time.sleep(args.poll)
    write_json_atomic(args.out, result)
    print(json.dumps(result, sort_keys=True))
    return 0 if result["seen"] else 2


# ------------------------------------------------------------------ capcount
def cmd_capcount(args: argparse.Namespace) -> int:
    import ipaddress

    networks = [ipaddress.ip_network(net) for net in args.net]
    counts: dict = {}
    with open(args.file, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            words = line.split()
            tag = next((tag for tag in ("IP", "IP6") if tag in words), None)
            if tag is None:
                continue
            at = words.index(tag)
            for endpoint in words[at + 1:at + 4:2]:  # "SRC.PORT > DST.PORT:"
                address = endpoint.rstrip(":").rpartition(".")[0]
                try:
                    if any(ipaddress.ip_address(address) in network for network in networks):
                        counts[address] = counts.get(address, 0) + 1
                except ValueError:
                    pass
    print(json.dumps(counts, sort_keys=True))


# ------------------------------------------------------------------- ctflows
def parse_conntrack_line(line: str) -> dict | None:
    """One line of `conntrack -L` (with or without accounting) as a dict."""
    words = line.split()
    if len(words) < 4:
        return None
    flow: dict = {"proto": words[0], "state": None, "orig_packets": None, "reply_packets": None}
    direction = "orig"
    seen_src = 0
    for word in words[3:]:
        if "=" not in word:
            if word.isupper() and not word.startswith("["):
                flow["state"] = word
            continue
        key, _sep, value = word.partition("=")
        if key == "src":
            seen_src += 1
            direction = "orig" if seen_src == 1 else "reply"
        if key == "packets":
            flow[f"{direction}_packets"] = int(value)
        elif key in ("src", "dst", "sport", "dport"):
            name = key if direction == "orig" else f"reply_{key}"
            flow[name] = int(value) if key.endswith("port") else value
    return flow if "src" in flow else None


def cmd_ctflows(args: argparse.Namespace) -> int:
    flows = []
    # conntrack -L lists one family (IPv4 unless told): "any" asks for each.
    for family in (("ipv4", "ipv6") if args.family == "any" else (args.family,)):
        argv = ["conntrack", "-L", "-f", family, "-p", args.proto]
        if args.dport:
            argv += ["--dport", str(args.dport)]
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        flows.extend(flow for flow in map(parse_conntrack_line, out.splitlines()) if flow)
    print(json.dumps(flows, sort_keys=True))
    return 0


# ---------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="threaded line echo server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind", default="::", help="listen address; :: (default) takes IPv4 and IPv6")
    s.add_argument("--log", help="append one JSON line per connection event")
    s.set_defaults(func=cmd_serve)

    h = sub.add_parser("hold", help="one long-lived flow, never reconnects")
    h.add_argument("--to", type=split_hostport, required=True)
    h.add_argument("--state", required=True)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--dead-after", type=float, default=60.0)
    h.add_argument("--connect-timeout", type=float, default=5.0)
    h.add_argument("--bind", help="source address of the connection")
    h.add_argument("--source-port", type=int, default=0,
                   help="leave from this local port (flows told apart by their local port)")
    h.set_defaults(func=cmd_hold)

    m = sub.add_parser("holdmany", help="one long-lived flow per source address")
    m.add_argument("--to", type=split_hostport, action="append", required=True,
                   help="one per address family of the sources")
    m.add_argument("--source", action="append", required=True)
    m.add_argument("--state", required=True)
    m.add_argument("--interval", type=float, default=0.2)
    m.add_argument("--dead-after", type=float, default=60.0)
    m.add_argument("--connect-timeout", type=float, default=5.0)
    m.set_defaults(func=cmd_holdmany)

    us = sub.add_parser("userve", help="UDP echo server counting duplicates")
    us.add_argument("--port", type=int, required=True)
    us.add_argument("--bind", default="::", help="listen address; :: (default) takes IPv4 and IPv6")
    us.add_argument("--summary", required=True)
    us.set_defaults(func=cmd_userve)

    ub = sub.add_parser("ublast", help="UDP sequences from many sources, echoes counted")
    ub.add_argument("--to", type=split_hostport, action="append", required=True,
                    help="one per address family of the sources")
    ub.add_argument("--source", action="append", required=True)
    ub.add_argument("--run", required=True)
    ub.add_argument("--count", type=int, default=20)
    ub.add_argument("--interval", type=float, default=0.05)
    ub.add_argument("--linger", type=float, default=2.0)
    ub.add_argument("--out", required=True)
    ub.set_defaults(func=cmd_ublast)

    mw = sub.add_parser("maskwait", help="time when this hash node owns node id K")
    mw.add_argument("--bit", type=int, required=True)
    mw.add_argument("--out", required=True)
    mw.add_argument("--poll", type=float, default=0.01)
    mw.add_argument("--timeout", type=float, default=60.0)
    mw.set_defaults(func=cmd_maskwait)

    cc = sub.add_parser("capcount", help="packets per address of a tcpdump text capture")
    cc.add_argument("--file", required=True)
    cc.add_argument("--net", action="append", required=True)
    cc.set_defaults(func=cmd_capcount)

    c = sub.add_parser("connect", help="one short request/echo")
    c.add_argument("--to", type=split_hostport, action="append", required=True,
                   help="with --bind, one per address family: the one of the source's family is taken")
    c.add_argument("--timeout", type=float, default=3.0)
    c.add_argument("--whoami", action="store_true")
    c.add_argument("--source-port", type=int, default=0, help="leave from this local port")
    c.add_argument("--bind", help="source address of the connection")
    c.set_defaults(func=cmd_connect)

    v = sub.add_parser("vipwait", help="time when all VIPs are on this node")
    v.add_argument("--vip", action="append", required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--poll", type=float, default=0.01)
    v.add_argument("--timeout", type=float, default=120.0)
    v.set_defaults(func=cmd_vipwait)

    t = sub.add_parser("ctflows", help="the conntrack table as JSON, with packet counters")
    t.add_argument("--proto", default="tcp")
    t.add_argument("--dport", type=int)
    t.add_argument("--family", choices=("ipv4", "ipv6", "any"), default="ipv4")
    t.set_defaults(func=cmd_ctflows)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
