"""The balancer health service's rules (roles/balancer/files/balancer_health.py) written by the kernel.

The service's own functions run in a namespace, on the sandwich example's
plan (dual stack): the home map, a firewall's death and its return, each
applied in one `ip -batch` per family. After each, every bucket's priority
holds exactly one rule, to the table the map gives it, in both families; a
stray rule at one of the service's priorities goes, and rules at other
priorities stay.
"""

from __future__ import annotations

import json
import os
import sys

from ansible_collections.fwcluster.netfilter.tests.netns import netns

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                      "roles", "balancer", "files", "balancer_health.py")
BALANCER = "sw-lbi1"
FAMILIES = ("inet", "inet6")


def apply(namespace, config, up):
    """Run the service's assign and apply_rules in the namespace for the live node ids UP; the rules changed."""
    program = ("import json, sys; sys.path.insert(0, %r); import balancer_health as h; "
               "config = json.load(sys.stdin); "
               "print(h.apply_rules(h.desired_rules(config, h.assign(config['buckets'], set(%r))), config['families']))"
               % (os.path.dirname(SCRIPT), sorted(up)))
    return int(netns.run(namespace, sys.executable, "-c", program, stdin=json.dumps(config)))


def rules(namespace, family):
    """{priority: [(mark, table)]} of every rule of one family."""
    found = {}
    for entry in json.loads(netns.run(namespace, "ip", "-f", family, "-j", "rule", "show") or "[]"):
        mark = entry.get("fwmark")
        found.setdefault(entry["priority"], []).append((int(mark, 16) if mark else None, str(entry["table"])))
    return found


def expected(config, up):
    tables = dict((firewall["node_id"], str(firewall["table"])) for firewall in config["firewalls"])
    alive = sorted(up)
    wanted = dict((firewall["probe_priority"], [(firewall["probe_mark"], str(firewall["table"]))])
                  for firewall in config["firewalls"])
    for bucket in config["buckets"]:
        owner = bucket["home"] if bucket["home"] in up else alive[bucket["bucket"] % len(alive)]
        wanted[bucket["priority"]] = [(bucket["mark"], tables[owner])]
    return wanted


def owned(namespace, config, family):
    listed = rules(namespace, family)
    return dict((priority, listed.get(priority, [])) for priority in expected(config, {0}))


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
        assert owned(namespace, config, family) == expected(config, node_ids)

    survivors = node_ids - {dead}
    moved = [bucket for bucket in config["buckets"] if bucket["home"] == dead]
    assert moved
    assert apply(namespace, config, survivors) == 2 * len(moved)
    for family in FAMILIES:
        assert owned(namespace, config, family) == expected(config, survivors)

    assert apply(namespace, config, survivors) == 0   # nothing to change: no command run
    assert apply(namespace, config, node_ids) == 2 * len(moved)
    for family in FAMILIES:
        assert owned(namespace, config, family) == expected(config, node_ids)
    assert rules(namespace, "inet")[500] == [(0x7, "250")]
