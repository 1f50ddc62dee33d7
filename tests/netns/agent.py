"""The hosts' side of the kernel tests: run inside a network namespace (ip netns exec NS python3 agent.py ...).

    agent.py serve TCP_PORTS UDP_PORTS   answer every TCP connection and UDP datagram with the
                                         peer address it came from ("seen as"), and print one line
                                         per bare TCP ACK that reaches this host ("ack SRC SPORT DPORT")
    agent.py probe JSON                  run the probes (a list of {source, to, proto, port}) at
                                         once, print their outcomes as a JSON list

Addresses of either family: a case's family is its destination's.
A probe's outcome: "accepted as ADDRESS" (the address the other end saw),
"accepted" (ping), "rejected" (a reset or port unreachable), "dropped" (no
answer in time), "sent" (a bare ACK or a lone datagram: whether it arrived
is the far side's to say).
Standard library only: the namespaces run the test machine's python3.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import struct
import subprocess
import sys
import threading

TIMEOUT = 2.0  # seconds; an answer through namespaces takes well under a millisecond
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


def serve(tcp_ports, udp_ports):
    # One socket per port for both families (IPV6_V6ONLY off): IPv4 peers are seen as ::ffff:A.B.C.D.
    for port in tcp_ports:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", port))
        listener.listen(128)
        threading.Thread(target=_answer_tcp, args=(listener,), daemon=True).start()
    for port in udp_ports:
        endpoint = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        endpoint.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        endpoint.bind(("::", port))
        threading.Thread(target=_answer_udp, args=(endpoint,), daemon=True).start()
    sniffers = [socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(kind)) for kind in (ETH_P_IP, ETH_P_IPV6)]
    threading.Thread(target=_sniff_acks, args=(sniffers[1], _ipv6_tcp), daemon=True).start()
    print("ready", flush=True)
    _sniff_acks(sniffers[0], _ipv4_tcp)


def _ipv4_tcp(packet):
    """(source, TCP segment) of an IPv4 packet carrying TCP, else None."""
    if len(packet) < 40 or packet[9] != socket.IPPROTO_TCP:
        return None
    return socket.inet_ntoa(packet[12:16]), packet[(packet[0] & 0x0F) * 4:]


def _ipv6_tcp(packet):
    """(source, TCP segment) of an IPv6 packet carrying TCP right after its header, else None."""
    if len(packet) < 60 or packet[6] != socket.IPPROTO_TCP:
        return None
    return socket.inet_ntop(socket.AF_INET6, packet[8:24]), packet[40:]


def _sniff_acks(sniffer, parse):
    """Print one line per bare TCP ACK the sniffer sees."""
    lock = threading.Lock()
    while True:
        found = parse(sniffer.recv(65535))
        if found is None:
            continue
        source, segment = found
        sport, dport = struct.unpack("!HH", segment[:4])
        if segment[13] == 0x10:  # ACK alone: no connection of ours sends one without data first
            with lock:
                print("ack %s %d %d" % (source, sport, dport), flush=True)


def _seen(address):
    """The peer's address as its family writes it (an IPv4 peer of a dual-stack socket without ::ffff:)."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


def _answer_tcp(listener):
    while True:
        connection, peer = listener.accept()
        with connection:
            connection.sendall(_seen(peer[0]).encode())


def _answer_udp(endpoint):
    while True:
        _data, peer = endpoint.recvfrom(2048)
        endpoint.sendto(_seen(peer[0]).encode(), peer)


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def probe(case):
    proto = case["proto"]
    try:
        if proto == "tcp":
            with socket.socket(_family(case["to"]), socket.SOCK_STREAM) as conn:
                conn.settimeout(TIMEOUT)
                conn.bind((case["source"], 0))
                conn.connect((case["to"], case["port"]))
                return "accepted as " + conn.recv(64).decode()
        if proto == "udp":
            with socket.socket(_family(case["to"]), socket.SOCK_DGRAM) as conn:
                conn.settimeout(TIMEOUT)
                conn.bind((case["source"], 0))
                conn.connect((case["to"], case["port"]))
                conn.send(b"probe")
                return "accepted as " + conn.recv(64).decode()
        if proto == "icmp":
            done = subprocess.run(["ping", "-6" if ":" in case["to"] else "-4", "-n", "-q", "-c", "1", "-W",
                                   str(int(TIMEOUT)), "-I", case["source"], case["to"]], capture_output=True,
                                  check=False)
            return "accepted" if done.returncode == 0 else "dropped"
        if proto == "udp-send":  # one datagram, no answer awaited (a balancer only passes it on)
            with socket.socket(_family(case["to"]), socket.SOCK_DGRAM) as conn:
                conn.bind((case["source"], 0))
                conn.sendto(b"probe", (case["to"], case["port"]))
            return "sent"
        if proto == "ack":
            _send_bare_ack(case["source"], case["to"], case.get("source_port", 40000), case["port"])
            return "sent"
    except (ConnectionRefusedError, ConnectionResetError):
        return "rejected"
    except socket.timeout:
        return "dropped"
    raise ValueError("unknown probe protocol %r" % proto)


def _send_bare_ack(source, to, sport, dport):
    """A TCP ACK that belongs to no connection (the kernel writes the IP header)."""
    header = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x10, 65535, 0, 0)
    family = _family(to)
    if family == socket.AF_INET6:  # RFC 8200 section 8.1's pseudo-header
        pseudo = (socket.inet_pton(family, source) + socket.inet_pton(family, to)
                  + struct.pack("!I3xB", len(header), socket.IPPROTO_TCP))
    else:
        pseudo = (socket.inet_aton(source) + socket.inet_aton(to)
                  + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header)))
    checksum = _checksum(pseudo + header)
    header = header[:16] + struct.pack("!H", checksum) + header[18:]
    with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
        raw.bind((source, 0))
        raw.sendto(header, (to, 0))


def _checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main(argv):
    if argv[0] == "serve":
        ports = [[int(port) for port in text.split(",") if port] for text in argv[1:3]]
        serve(*ports)
    elif argv[0] == "probe":
        cases = json.loads(argv[1])
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            print(json.dumps(list(pool.map(probe, cases))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
