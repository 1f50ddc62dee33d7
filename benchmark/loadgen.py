"""loadgen: the benchmark's load generator and object server (Python 3 standard library only).

It runs inside the lab's client and server containers (copied there by
benchmark/bench.py), so it needs nothing but python3. Every client
subcommand spreads its connections over PAIRS: connection slot k leaves from
source address SOURCES[k % len(SOURCES)] to DESTS[k % len(DESTS)], so the
hash and sandwich clusters see many flows, and bench.py can tell which
firewall carried which slot. rate moves each worker on to the next pair
with each session instead (its n-th session is slot k + n * C's): with more
sources than workers, every source gets its share of the sessions.

Subcommands
-----------
serve --port N [--bind ADDR]
    Object server. A connection sends one line: ``GET <bytes>`` is answered
    with that many bytes, then the server closes (the server is the active
    closer, as a web server is); ``GET <bytes> <ms>`` waits that many
    milliseconds first (up to 60000), as an application that thinks before it
    answers: the connection sits established, idle; ``HOLD`` turns the
    connection into a line echo that lasts until the client closes.

rate --dest ADDR... --port N --source ADDR... --size BYTES --concurrency C
     --duration S --out FILE
    Session rate: C workers each loop connect, ``GET size``, read to the
    end, close, for S seconds, each session from the next pair. FILE (JSON):
    sessions, failed (with the errors by kind), sessions_per_s, bytes,
    throughput_bps, and sources_used (how many sources started a session).

recover --dest ADDR... --port N --source ADDR... --sizes B,B,... --per-size W
        --duration S [--think T] [--stop-file F] [--stall T] --out FILE
    Flows in progress across a failure: W workers per object size loop
    sessions back to back for S seconds, or until file F exists; a session that already started
    may then run on for up to T seconds (--stall: also the longest silence
    a session survives). --think T: each session asks the server to wait T
    seconds before its answer (below --stall), so that a session is an
    established flow most of its time, as a request to a web application
    is; without it a small object's session holds the path for a
    millisecond and a kill catches almost none in progress. FILE (JSON) lists every session as [slot, size,
    start, end, ok, bytes, error, connected] (connected: when its handshake
    completed, null if it never did); bench.py keeps those in progress at
    the kill.

knock --dest ADDR --port N --source ADDR --interval S --duration S --out FILE
    A new connection every INTERVAL seconds (each SYN is a fresh packet,
    never held back by TCP's retransmission timer), closed at once. FILE
    (JSON): the attempts as [start, ok]. bench.py times the first one a
    surviving firewall forwards after a kill.

hold --dest ADDR --port N --source ADDR --interval S --duration S --out FILE
    One long-lived flow: a line every INTERVAL seconds, each echo checked
    in order. FILE (JSON): echoes, max_gap_ms with its start, alive, error;
    written once as soon as the connection is up (connected_at), and at the end.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import time

CHUNK = 65536
PATTERN = bytes(range(256)) * (CHUNK // 256)
MAX_THINK_MS = 60000   # the longest wait the server grants a GET


def write_json(path, data):
    tmp = "%s.tmp" % path
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def slot_pair(slot, sources, dests):
    return sources[slot % len(sources)], dests[slot % len(dests)]


# ---------------------------------------------------------------- server

async def handle(reader, writer):
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
        words = line.split()
        if len(words) in (2, 3) and words[0] == b"GET" and all(w.isdigit() for w in words[1:]):
            if len(words) == 3:
                await asyncio.sleep(min(int(words[2]), MAX_THINK_MS) / 1000.0)
            left = int(words[1])
            while left > 0:
                piece = PATTERN[:min(left, CHUNK)]
                writer.write(piece)
                left -= len(piece)
                await writer.drain()
        elif words == [b"HOLD"]:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line)
                await writer.drain()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(args):
    server = await asyncio.start_server(handle, args.bind, args.port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- clients

class SessionError(Exception):
    """A session that did not complete: its kind names why."""

    def __init__(self, kind, got):
        super().__init__(kind)
        self.kind = kind
        self.got = got


async def session(source, dest, port, size, stall, marks=None, think_ms=0):
    """One connect, GET (the server waits THINK_MS first), read to EOF, close.
    Returns the bytes received; marks["connected"] is set to the time the
    handshake completed."""
    got = 0
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(dest, port, local_addr=(source, 0)), stall)
    except asyncio.TimeoutError as exc:
        raise SessionError("connect-timeout", 0) from exc
    except ConnectionRefusedError as exc:
        raise SessionError("refused", 0) from exc
    except OSError as exc:
        raise SessionError("connect-error", 0) from exc
    if marks is not None:
        marks["connected"] = time.time()
    try:
        writer.write(b"GET %d %d\n" % (size, think_ms) if think_ms else b"GET %d\n" % size)
        await writer.drain()
        while True:
            data = await asyncio.wait_for(reader.read(CHUNK), stall)
            if not data:
                break
            got += len(data)
    except asyncio.TimeoutError as exc:
        raise SessionError("stall", got) from exc
    except ConnectionResetError as exc:
        raise SessionError("reset", got) from exc
    except OSError as exc:
        raise SessionError("error", got) from exc
    finally:
        writer.close()
    if got != size:
        raise SessionError("short", got)
    return got


async def rate(args):
    deadline = time.time() + args.duration
    totals = {"sessions": 0, "failed": 0, "bytes": 0, "errors": {}}
    used = set()

    async def worker(slot):
        while time.time() < deadline:
            source, dest = slot_pair(slot, args.source, args.dest)
            used.add(source)
            slot += args.concurrency
            try:
                got = await session(source, dest, args.port, args.size, args.stall)
                totals["bytes"] += got
                totals["sessions"] += 1
            except SessionError as exc:
                totals["failed"] += 1
                totals["errors"][exc.kind] = totals["errors"].get(exc.kind, 0) + 1

    started = time.time()
    await asyncio.gather(*(worker(slot) for slot in range(args.concurrency)))
    elapsed = time.time() - started
    totals.update(size=args.size, concurrency=args.concurrency, duration_s=round(elapsed, 3), sources_used=len(used),
                  sessions_per_s=round(totals["sessions"] / elapsed, 1),
                  throughput_bps=round(totals["bytes"] * 8 / elapsed, 1))
    write_json(args.out, totals)
    return 0


async def recover(args):
    deadline = time.time() + args.duration
    sessions = []
    think_ms = round(args.think * 1000)

    def running():
        return time.time() < deadline and not (args.stop_file and os.path.exists(args.stop_file))

    async def worker(slot, size):
        source, dest = slot_pair(slot, args.source, args.dest)
        # With a think time, the workers of a size start spread over it: their
        # handshakes do not come in waves, a kill finds each size's flows alike.
        await asyncio.sleep(args.think * (slot % args.per_size) / args.per_size)
        while running():
            start, marks = time.time(), {}
            try:
                got = await session(source, dest, args.port, size, args.stall, marks, think_ms)
                ok, error = True, None
            except SessionError as exc:
                got, ok, error = exc.got, False, exc.kind
            connected = round(marks["connected"], 4) if "connected" in marks else None
            sessions.append([slot, size, round(start, 4), round(time.time(), 4), ok, got, error, connected])
            if not ok:
                await asyncio.sleep(0.05)   # a failing path: do not spin

    workers = [worker(index * args.per_size + n, size)
               for index, size in enumerate(args.sizes) for n in range(args.per_size)]
    await asyncio.gather(*workers)
    write_json(args.out, {"sizes": args.sizes, "per_size": args.per_size, "think_s": args.think,
                          "sources": args.source, "dests": args.dest, "fields": ["slot", "size", "start", "end", "ok", "bytes", "error", "connected"],
                          "sessions": sessions})
    return 0


async def knock(args):
    attempts = []

    async def attempt(start):
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.dest, args.port, local_addr=(args.source, 0)), args.stall)
            writer.close()
            attempts.append([round(start, 4), True])
        except (OSError, asyncio.TimeoutError):
            attempts.append([round(start, 4), False])

    # Attempts on a fixed grid of ticks: a stalled loop skips the ticks it missed rather than
    # drifting (or bursting), so an attempt's start always tells the time within one interval.
    begin = time.time()
    deadline = begin + args.duration
    tasks = []
    tick = 0
    while (now := time.time()) < deadline:
        tasks.append(asyncio.create_task(attempt(now)))
        tick = max(tick + 1, int((now - begin) / args.interval) + 1)
        await asyncio.sleep(max(0.0, begin + tick * args.interval - time.time()))
    await asyncio.gather(*tasks)
    attempts.sort()
    write_json(args.out, {"source": args.source, "dest": args.dest, "interval": args.interval,
                          "begin": round(begin, 4), "attempts": attempts})
    return 0


async def hold(args):
    state = {"source": args.source, "dest": args.dest, "echoes": 0, "max_gap_ms": 0.0,
             "max_gap_start": None, "alive": False, "error": None}
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(args.dest, args.port, local_addr=(args.source, 0)), 5)
    except (OSError, asyncio.TimeoutError) as exc:
        state["error"] = "connect: %s" % (exc or type(exc).__name__)
        write_json(args.out, state)
        return 1
    writer.write(b"HOLD\n")
    state["connected_at"] = round(time.time(), 4)
    write_json(args.out, state)   # tells bench.py the flow is up
    deadline = time.time() + args.duration
    sent = {"seq": 0, "done": False}

    async def sender():
        while time.time() < deadline:
            sent["seq"] += 1
            writer.write(b"%d\n" % sent["seq"])
            await writer.drain()
            await asyncio.sleep(args.interval)
        sent["done"] = True
        writer.write_eof()   # the server echoes what is left, then closes

    async def receiver():
        expected, last = 1, time.time()
        while not (sent["done"] and expected > sent["seq"]):
            line = await asyncio.wait_for(reader.readline(), args.dead_after)
            if not line:
                if sent["done"] and expected > sent["seq"]:
                    break
                raise ConnectionResetError("closed by the peer")
            if int(line) != expected:
                raise ValueError("echo %s, expected %d" % (line.strip().decode(), expected))
            now = time.time()
            if (now - last) * 1000 > state["max_gap_ms"]:
                state["max_gap_ms"], state["max_gap_start"] = round((now - last) * 1000, 1), round(last, 4)
            expected, last = expected + 1, now
            state["echoes"] += 1

    try:
        await asyncio.gather(sender(), receiver())
        state["alive"] = True
    except (OSError, ValueError, asyncio.TimeoutError) as exc:
        state["error"] = str(exc) or type(exc).__name__
    finally:
        writer.close()
    write_json(args.out, state)
    return 0 if state["alive"] else 1


# ---------------------------------------------------------------- main

def sizes(text):
    return [int(word) for word in text.split(",") if word]


def parser():
    top = argparse.ArgumentParser(prog="loadgen", description=__doc__.split("\n", 1)[0])
    sub = top.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="object server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind", default="0.0.0.0")

    for name, text in (("rate", "session rate"), ("recover", "flows in progress across a failure"),
                       ("hold", "one long-lived flow"), ("knock", "a new connection every interval")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--duration", type=float, required=True)
        c.add_argument("--out", required=True)
        c.add_argument("--stall", type=float, default=15.0)
        if name in ("hold", "knock"):
            c.add_argument("--dest", required=True)
            c.add_argument("--source", required=True)
            c.add_argument("--interval", type=float, default=0.01 if name == "hold" else 0.02)
            c.add_argument("--dead-after", type=float, default=30.0)
        else:
            c.add_argument("--dest", action="append", required=True)
            c.add_argument("--source", action="append", required=True)
        if name == "rate":
            c.add_argument("--size", type=int, required=True)
            c.add_argument("--concurrency", type=int, default=64)
        if name == "recover":
            c.add_argument("--sizes", type=sizes, required=True)
            c.add_argument("--per-size", type=int, default=16)
            c.add_argument("--stop-file", help="start no new session once this file exists")
            c.add_argument("--think", type=float, default=0.0,
                           help="seconds the server waits before each answer (below --stall)")
    return top


def main(argv=None):
    top = parser()
    args = top.parse_args(argv)
    if args.command == "recover" and not 0 <= args.think * 1000 <= MAX_THINK_MS:
        top.error("--think must be 0 to %g seconds" % (MAX_THINK_MS / 1000))
    if args.command == "recover" and args.think and args.think >= args.stall:
        top.error("--think (%g s) must stay below --stall (%g s): the client would give up first"
                  % (args.think, args.stall))
    command = {"serve": serve, "rate": rate, "recover": recover, "hold": hold, "knock": knock}[args.command]
    try:
        return asyncio.run(command(args)) or 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print("loadgen %s: %s" % (args.command, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
