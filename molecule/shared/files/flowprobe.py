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

connect --to HOST:PORT [--timeout S] [--whoami]
    One short connection: connect, send one line, expect it back. Prints a
    JSON result and exits 0 on success, 1 when refused (RST), 2 on timeout
    (a firewall dropping the packets), 3 on any other error. With
    --whoami the result also holds the address the server saw.

vipwait --vip ADDR [--vip ADDR ...] --out FILE [--poll 0.01] [--timeout 120]
    Run on a firewall node before a failover: poll the node's addresses
    every POLL seconds and write FILE (JSON) with the wall-clock time at
    which ALL the VIPs were first present. Exit 0 when seen, 2 on timeout.

ctflows [--proto tcp] [--dport N]
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
    """Write DATA to PATH so a reader never sees a half-written file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def split_hostport(value: str) -> tuple[str, int]:
    host, _sep, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


# --------------------------------------------------------------------- serve
class EchoHandler(socketserver.StreamRequestHandler):
    """Echo every line; answer WHOAMI with the peer address."""

    def handle(self) -> None:
        peer_ip, peer_port = self.client_address[:2]
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
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log_path: str | None) -> None:
        super().__init__(address, EchoHandler)
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

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        host, port = self.args.to
        try:
            self.sock = socket.create_connection((host, port), timeout=self.args.connect_timeout)
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
    host, port = args.to
    result: dict = {"to": f"{host}:{port}", "start": now()}
    status = 0
    try:
        with socket.create_connection((host, port), timeout=args.timeout) as sock:
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
def local_ipv4() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], check=True,
                         capture_output=True, text=True).stdout
    addrs = set()
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            addrs.add(words[words.index("inet") + 1].split("/")[0])
    return addrs


def cmd_vipwait(args: argparse.Namespace) -> int:
    wanted = {v.split("/")[0] for v in args.vip}
    result: dict = {"vips": sorted(wanted), "started": now(), "seen": None,
                    "first_seen": {}}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        t = now()
        present = local_ipv4() & wanted
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
    argv = ["conntrack", "-L", "-p", args.proto]
    if args.dport:
        argv += ["--dport", str(args.dport)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    flows = [flow for flow in map(parse_conntrack_line, out.splitlines()) if flow]
    print(json.dumps(flows, sort_keys=True))
    return 0


# ---------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="threaded line echo server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--log", help="append one JSON line per connection event")
    s.set_defaults(func=cmd_serve)

    h = sub.add_parser("hold", help="one long-lived flow, never reconnects")
    h.add_argument("--to", type=split_hostport, required=True)
    h.add_argument("--state", required=True)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--dead-after", type=float, default=60.0)
    h.add_argument("--connect-timeout", type=float, default=5.0)
    h.set_defaults(func=cmd_hold)

    c = sub.add_parser("connect", help="one short request/echo")
    c.add_argument("--to", type=split_hostport, required=True)
    c.add_argument("--timeout", type=float, default=3.0)
    c.add_argument("--whoami", action="store_true")
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
    t.set_defaults(func=cmd_ctflows)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
