"""The balancer health service (roles/balancer/files/balancer_health.py) against the kernel.

The service's own functions run in namespaces. Its rules, on the sandwich
example's plan (dual stack): the home map, a firewall's death and its
return, each applied in one `ip -batch` per family; after each, every
bucket's priority holds exactly one rule, to the table the map gives it, in
both families; a stray rule at one of the service's priorities goes, and
rules at other priorities stay. Its probes: echo requests from raw sockets
marked per firewall, routed by the probe rules through two firewalls to the
same far-side address; a firewall whose link goes down stops answering,
and the answers through the other are not counted for it.
"""

from __future__ import annotations

import json
import os
import sys

from ansible_collections.fwcluster.netfilter.tests.netns import netns
from ansible_collections.fwcluster.netfilter.tests.unit.roles.test_balancer_health import health

BALANCER = "sw-lbi1"
FAMILIES = ("inet", "inet6")


def in_namespace(namespace, program, stdin=""):
    """Run PROGRAM (python, the service imported as h) in the namespace; its output."""
    return netns.run(namespace, sys.executable, "-c", "import json, sys; sys.path.insert(0, %r); "
                     "import balancer_health as h; " % os.path.dirname(health.__file__) + program, stdin=stdin)


def apply(namespace, config, up):
    """Run the service's assign and apply_rules in the namespace for the live node ids UP; the rules changed."""
    return int(in_namespace(namespace, "config = json.load(sys.stdin); print(h.apply_rules(h.desired_rules("
                            "config, h.assign(config['buckets'], set(%r))), config['families']))" % sorted(up),
                            stdin=json.dumps(config)))


def rules(namespace, family):
    """{priority: [(mark, table)]} of every rule of one family."""
    found = {}
    for entry in json.loads(netns.run(namespace, "ip", "-f", family, "-j", "rule", "show") or "[]"):
        mark = entry.get("fwmark")
        found.setdefault(entry["priority"], []).append((int(mark, 16) if mark else None, str(entry["table"])))
    return found


def expected(config, up):
    """{priority: [(mark, table)]}: the rules the service wants for the live node ids UP (its map is
    tests/unit/roles/test_balancer_health.py's to check; here, that the kernel holds it)."""
    return dict((priority, [(mark, str(table))])
                for priority, mark, table in health.desired_rules(config, health.assign(config["buckets"], set(up))))


def owned(namespace, family, wanted):
    """The family's rules at the priorities of WANTED (what expected() gives)."""
    listed = rules(namespace, family)
    return dict((priority, listed.get(priority, [])) for priority in wanted)


def test_the_rules_follow_a_death_and_a_return_in_both_families(lab):
    config = netns.plan_of("sandwich", "nftables")["balancers"][BALANCER]["balancer"]
    assert config["families"] == list(FAMILIES)
    node_ids = set(firewall["node_id"] for firewall in config["firewalls"])
    dead = min(node_ids)
    namespace = lab.namespace("lb-rules")
    # One rule the service does not own, and a stray one at a bucket's priority (a hand-made
    # rule, or one a crash left): the first stays, the second goes.
    netns.run(namespace, "ip", "rule", "add", "priority", "500", "fwmark", "0x7", "lookup", "250")
    stray = config["buckets"][0]["priority"]
    netns.run(namespace, "ip", "-6", "rule", "add", "priority", str(stray), "fwmark", "0x7", "lookup", "250")

    assert apply(namespace, config, node_ids) == 2 * (len(config["firewalls"]) + len(config["buckets"]))
    for family in FAMILIES:
        assert owned(namespace, family, expected(config, node_ids)) == expected(config, node_ids)

    survivors = node_ids - {dead}
    moved = [bucket for bucket in config["buckets"] if bucket["home"] == dead]
    assert moved
    assert apply(namespace, config, survivors) == 2 * len(moved)
    for family in FAMILIES:
        assert owned(namespace, family, expected(config, survivors)) == expected(config, survivors)

    assert apply(namespace, config, survivors) == 0   # nothing to change: no command run
    assert apply(namespace, config, node_ids) == 2 * len(moved)
    for family in FAMILIES:
        assert owned(namespace, family, expected(config, node_ids)) == expected(config, node_ids)
    assert rules(namespace, "inet")[500] == [(0x7, "250")]


TARGET = "192.0.2.100"
PROBE_FIREWALLS = [{"name": "fw-a", "node_id": 0, "table": 101, "probe_mark": 0x200},
                   {"name": "fw-b", "node_id": 1, "table": 102, "probe_mark": 0x201}]


def probe_rounds(namespace, rounds, timeout=0.3):
    """The answers of ROUNDS probe rounds by one prober: [{node id: answered}]."""
    out = in_namespace(namespace, "firewalls = [h.Firewall(spec, 3, 3) for spec in json.load(sys.stdin)]; "
                       "prober = h.Prober(firewalls, [%r]); "
                       "print(json.dumps([prober.round(%r) for _round in range(%d)]))" % (TARGET, timeout, rounds),
                       stdin=json.dumps(PROBE_FIREWALLS))
    return [dict((int(node), answer) for node, answer in entry.items()) for entry in json.loads(out)]


def test_probes_go_through_each_firewall_by_its_mark_and_count_only_its_answers(lab):
    balancer = lab.namespace("lb-probe")
    for index, spec in enumerate(PROBE_FIREWALLS):
        firewall = lab.namespace("probe-" + spec["name"])
        lab.link(balancer, "to-" + spec["name"], firewall, "eth0")
        netns.add_address(balancer, "10.0.%d.1/24" % index, "to-" + spec["name"])
        netns.add_address(firewall, "10.0.%d.2/24" % index, "eth0")
        netns.add_address(firewall, TARGET + "/32", "lo")   # the far side, answering through this firewall
        netns.run(balancer, "ip", "route", "add", TARGET, "via", "10.0.%d.2" % index, "table", str(spec["table"]))
        netns.run(balancer, "ip", "rule", "add", "priority", str(900 + index), "fwmark", hex(spec["probe_mark"]),
                  "lookup", str(spec["table"]))
    # No route to the far side but the marked ones, and its answers come in on two links.
    netns.run(balancer, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0")
    for spec in PROBE_FIREWALLS:
        netns.run(balancer, "sysctl", "-q", "-w", "net.ipv4.conf.to-%s.rp_filter=0" % spec["name"])

    assert probe_rounds(balancer, 3) == [{0: True, 1: True}] * 3

    netns.run("fwq-probe-fw-b", "ip", "link", "set", "eth0", "down")
    assert probe_rounds(balancer, 3) == [{0: True, 1: False}] * 3
