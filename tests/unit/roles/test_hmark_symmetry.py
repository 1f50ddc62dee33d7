"""The sandwich's premise, checked in the kernel: both directions of a flow get the same HMARK mark.

A router namespace carries exactly the mangle rules the model renders for an inside balancer
(front interface eth2, --hmark-tuple dst) and an outside balancer (front interface eth1,
--hmark-tuple src), plus one counting rule per (interface, mark). A client namespace behind eth2
opens TCP connections to several addresses of a server namespace behind eth1, one at a time; for
each, the marks counted on eth2 (client to server) and on eth1 (server to client) must be one
and the same. Needs root and iproute2 (skipped otherwise, not passed).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan

SERVER_ADDRESSES = ["10.40.4.%d" % host for host in range(10, 18)]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None,
                                reason="network namespaces and iptables need root")


def sh(*argv, namespace=None):
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run(prefix + list(argv), check=True, capture_output=True, text=True).stdout


@pytest.fixture
def lab():
    suffix = str(os.getpid())
    names = dict((role, "fwc-hm-%s-%s" % (role, suffix)) for role in ("client", "router", "server"))
    for name in names.values():
        sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", "eth2", "netns", names["router"], "type", "veth", "peer", "name", "c0",
           "netns", names["client"])
        sh("ip", "link", "add", "eth1", "netns", names["router"], "type", "veth", "peer", "name", "s0",
           "netns", names["server"])
        sh("ip", "addr", "add", "10.40.1.10/24", "dev", "c0", namespace=names["client"])
        for address in SERVER_ADDRESSES:
            sh("ip", "addr", "add", address + "/24", "dev", "s0", namespace=names["server"])
        sh("ip", "addr", "add", "10.40.1.254/24", "dev", "eth2", namespace=names["router"])
        sh("ip", "addr", "add", "10.40.4.254/24", "dev", "eth1", namespace=names["router"])
        for role, interfaces in (("client", ["c0"]), ("server", ["s0"]), ("router", ["eth1", "eth2"])):
            for interface in interfaces + ["lo"]:
                sh("ip", "link", "set", interface, "up", namespace=names[role])
        sh("ip", "route", "add", "default", "via", "10.40.1.254", namespace=names["client"])
        sh("ip", "route", "add", "default", "via", "10.40.4.254", namespace=names["server"])
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", namespace=names["router"])
        yield names
    finally:
        for name in names.values():
            subprocess.run(["ip", "netns", "delete", name], check=False)


def serve(namespace):
    """An echo server in the server namespace (a child process: sockets live in a namespace)."""
    code = ("import socket\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('0.0.0.0', 7000)); s.listen(16)\n"
            "while True:\n"
            "    c, _ = s.accept(); c.sendall(c.recv(64)); c.close()\n")
    return subprocess.Popen(["ip", "netns", "exec", namespace, "python3", "-c", code])


def marks_counted(router, interface, marks):
    """Mark -> packets counted on interface by the counting rules."""
    out = sh("iptables", "-t", "mangle", "-L", "PREROUTING", "-v", "-n", "-x", namespace=router)
    counted = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) > 6 and words[5] == interface and "mark" in line and "HMARK" not in line:
            counted[int(words[-1], 16)] = int(words[0])
    return dict((mark, counted.get(mark, 0)) for mark in marks)


def test_both_directions_of_every_flow_get_one_mark(lab, sandwich):
    plan = build_plan(*sandwich)
    buckets = plan["balancing"]["buckets"]
    marks = [0x100 + bucket for bucket in range(buckets)]
    for balancer in ("sw-lbi1", "sw-lbo1"):
        (mangle,) = [table for table in plan["balancers"][balancer]["ruleset"] if table["table"] == "mangle"]
        for rule in mangle["rules"]:
            sh("iptables", "-t", "mangle", *rule.split(), namespace=lab["router"])
    for mark in marks:
        for interface in ("eth2", "eth1"):
            sh("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", interface, "-m", "mark", "--mark", hex(mark),
               "-j", "RETURN", namespace=lab["router"])
    server = serve(lab["server"])
    try:
        client = ("import socket, sys, time\n"
                  "for attempt in range(50):\n"
                  "    try:\n"
                  "        c = socket.create_connection((sys.argv[1], 7000), 2); break\n"
                  "    except OSError: time.sleep(0.1)\n"
                  "c.sendall(b'ping'); assert c.recv(64) == b'ping'; c.close()\n")
        used = set()
        for address in SERVER_ADDRESSES:
            before = dict((interface, marks_counted(lab["router"], interface, marks)) for interface in ("eth2", "eth1"))
            sh("python3", "-c", client, address, namespace=lab["client"])
            after = dict((interface, marks_counted(lab["router"], interface, marks)) for interface in ("eth2", "eth1"))
            hit = dict((interface, [mark for mark in marks if after[interface][mark] > before[interface][mark]])
                       for interface in ("eth2", "eth1"))
            assert len(hit["eth2"]) == 1, (address, hit)
            assert hit["eth2"] == hit["eth1"], "%s: client->server marks %s, server->client marks %s" % (
                address, hit["eth2"], hit["eth1"])
            used.update(hit["eth2"])
        assert len(used) > 1  # eight outside addresses do not all fall in one bucket
    finally:
        server.kill()
        server.wait()
