"""benchmark/loadgen.py against its own server on the loopback: real sockets, real counts."""

import json
import math
import pathlib
import socket
import subprocess
import sys
import time

import pytest

LOADGEN = pathlib.Path(__file__).resolve().parents[3] / "benchmark" / "loadgen.py"


def free_port():
    """A free port below the ephemeral range: a client looping connects to a
    closed ephemeral port can meet it as its own source port (a TCP self-connect)."""
    for port in range(20000, 30000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


@pytest.fixture(name="closed_port")
def fixture_closed_port():
    """A port bound and never listened on: every connect is refused, and no other
    process (another test run on the machine) can start listening there meanwhile."""
    for port in range(20000, 30000):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        yield port
        sock.close()
        return
    raise RuntimeError("no free port in 20000-29999")


@pytest.fixture(name="server")
def fixture_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(LOADGEN), "serve", "--port", str(port), "--bind", "127.0.0.1"])
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail("loadgen serve did not listen")
            time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait()


def loadgen(tmp_path, *argv):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(LOADGEN)] + list(argv) + ["--out", str(out)],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, json.loads(out.read_text())


def test_serve_sends_exactly_the_asked_size(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET 100000\n")
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert len(got) == 100000
    assert got[:256] == bytes(range(256))


def test_rate_counts_sessions_and_bytes(server, tmp_path):
    rc, result = loadgen(tmp_path, "rate", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(server),
                         "--size", "3000", "--concurrency", "4", "--duration", "1")
    assert rc == 0
    assert result["sessions"] > 10 and result["failed"] == 0
    assert result["bytes"] == 3000 * result["sessions"]
    assert result["sessions_per_s"] == pytest.approx(result["sessions"] / result["duration_s"], rel=0.01)


def test_rate_moves_each_worker_over_every_source(server, tmp_path):
    # 8 loopback sources, 2 workers: each session leaves from the next pair, so all 8 start sessions
    sources = ["127.0.0.%d" % n for n in range(1, 9)]
    rc, result = loadgen(tmp_path, "rate", "--dest", "127.0.0.1", "--port", str(server), "--size", "100",
                         "--concurrency", "2", "--duration", "1", *[arg for s in sources for arg in ("--source", s)])
    assert rc == 0 and result["failed"] == 0 and result["sessions"] >= 8
    assert result["sources_used"] == 8
    rc, result = loadgen(tmp_path, "rate", "--dest", "127.0.0.1", "--port", str(server), "--size", "100",
                         "--concurrency", "2", "--duration", "1", "--source", "127.0.0.1")
    assert rc == 0 and result["sources_used"] == 1


def test_rate_counts_refused_sessions_as_failed(closed_port, tmp_path):
    rc, result = loadgen(tmp_path, "rate", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(closed_port),
                         "--size", "0", "--concurrency", "2", "--duration", "1")
    assert rc == 0
    assert result["sessions"] == 0 and result["failed"] > 0
    assert set(result["errors"]) == {"refused"}


def test_recover_records_every_session_per_slot_and_size(server, tmp_path):
    rc, result = loadgen(tmp_path, "recover", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(server),
                         "--sizes", "0,20000", "--per-size", "2", "--duration", "0.5")
    assert rc == 0
    sessions = result["sessions"]
    assert {tuple(s[:2]) for s in sessions} == {(0, 0), (1, 0), (2, 20000), (3, 20000)}
    assert all(s[4] and s[5] == s[1] and s[2] <= s[7] <= s[3] for s in sessions)   # connected in between


def test_recover_marks_a_session_that_never_connected(closed_port, tmp_path):
    rc, result = loadgen(tmp_path, "recover", "--dest", "127.0.0.1", "--source", "127.0.0.1",
                         "--port", str(closed_port), "--sizes", "0", "--per-size", "1", "--duration", "0.3")
    assert rc == 0
    assert result["sessions"] and all(s[4] is False and s[6] == "refused" and s[7] is None for s in result["sessions"])


def test_hold_sees_every_echo_in_order(server, tmp_path):
    rc, result = loadgen(tmp_path, "hold", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(server),
                         "--interval", "0.01", "--duration", "0.5")
    assert rc == 0 and result["alive"] and result["error"] is None
    # About 45 echoes in 0.5 s when the machine is idle; the unit step runs at nice 19 beside a lab.
    assert result["echoes"] >= 5
    assert 0 < result["max_gap_ms"] < 5000


def test_hold_reports_a_dead_peer(closed_port, tmp_path):
    rc, result = loadgen(tmp_path, "hold", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(closed_port),
                         "--duration", "0.5")
    assert rc == 1 and not result["alive"] and result["error"].startswith("connect")


def test_knock_attempts_at_its_interval(server, tmp_path):
    rc, result = loadgen(tmp_path, "knock", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(server),
                         "--interval", "0.05", "--duration", "0.5")
    assert rc == 0
    starts, begin = [a[0] for a in result["attempts"]], result["begin"]
    # Each attempt starts in a later tick of the grid than the one before, within the duration; how
    # many of the 10 ticks are met depends on the scheduler (the unit step runs beside a lab at
    # nice 19), and a late tick followed by a punctual one may be closer than the interval. The
    # margin (0.003 of a tick) covers the output's rounding to 0.1 ms.
    assert 3 <= len(starts) <= 10 and all(a[1] for a in result["attempts"])
    assert all(math.floor((b - begin) / 0.05 + 0.003) > math.floor((a - begin) / 0.05 - 0.003)
               for a, b in zip(starts, starts[1:]))
    assert begin - 0.0001 <= starts[0] and starts[-1] < begin + 0.5 + 0.0001


def test_serve_waits_the_asked_time_before_its_answer(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET 1000 300\n")
        got = b""
        while chunk := sock.recv(65536):
            if not got:
                first = time.monotonic() - started
            got += chunk
    assert len(got) == 1000
    assert 0.3 <= first < 2.0


def test_recover_think_keeps_each_session_established_that_long(server, tmp_path):
    rc, result = loadgen(tmp_path, "recover", "--dest", "127.0.0.1", "--source", "127.0.0.1", "--port", str(server),
                         "--sizes", "0", "--per-size", "2", "--duration", "0.5", "--think", "0.4")
    assert rc == 0 and result["think_s"] == 0.4
    sessions = result["sessions"]
    assert sessions and all(s[4] for s in sessions)
    # every session lasted the think time past its handshake: an established, idle flow
    assert all(s[3] - s[7] >= 0.4 for s in sessions)
    # two workers, 0.5 s, each session over 0.4 s: no more than two sessions each
    assert len(sessions) <= 4


def test_recover_refuses_a_think_time_the_client_would_not_wait_for(tmp_path):
    proc = subprocess.run([sys.executable, str(LOADGEN), "recover", "--dest", "127.0.0.1", "--source", "127.0.0.1",
                           "--port", "1", "--sizes", "0", "--duration", "1", "--think", "3", "--stall", "2",
                           "--out", str(tmp_path / "out.json")], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "--think (3 s) must stay below --stall (2 s)" in proc.stderr
