"""The deployed sandwich's hosts, before any failure (verify.yml runs these).

Firewalls run the rules, the routes and conntrackd, no keepalived (they hold no
VIP); balancers run the rules, the routes, keepalived and the health service.
In each balancer pair node 0 holds both VIPs of its side, node 1 none; every
balancer sees both firewalls up and every bucket on its home firewall.
"""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["ansible://stack"]

UNITS = ["fwcluster-netfilter.service", "fwcluster-routes.service", "conntrackd.service",
         "keepalived.service", "fwcluster-balancer.service"]
FIREWALL = dict(zip(UNITS, ["active", "active", "active", "inactive", "inactive"]))
BALANCER = dict(zip(UNITS, ["active", "active", "inactive", "active", "active"]))


@pytest.mark.parametrize("unit", UNITS)
def test_each_host_runs_what_its_part_of_the_plan_asks_for(plan, name, unit_state, unit):
    expected = BALANCER if name in plan["balancers"] else FIREWALL
    assert unit_state(unit) == expected[unit]


def test_the_preferred_balancer_of_each_pair_holds_its_sides_vips(plan, name, addresses):
    if name not in plan["balancers"]:
        pytest.skip("a firewall holds no VIP")
    balancer = plan["balancers"][name]
    side = plan["balancing"]["sides"][balancer["side"]]
    vips = [side["segment_vip"].split("/")[0], side["front_vip"].split("/")[0]]
    held = [vip for vip in vips if vip in addresses]
    assert held == (vips if balancer["node_id"] == 0 else []), "%s (node %d): %s" % (name, balancer["node_id"], addresses)


def test_both_firewalls_are_up_and_every_bucket_is_on_its_home_firewall(host, plan, name):
    if name not in plan["balancers"]:
        pytest.skip("a firewall runs no health service")
    state = json.loads(host.file("/run/fwcluster/balancer-health.json").content_string)
    config = json.loads(host.file("/etc/fwcluster/balancer.json").content_string)
    names = dict((firewall["node_id"], firewall["name"]) for firewall in config["firewalls"])
    home = dict((str(bucket["bucket"]), names[bucket["home"]]) for bucket in config["buckets"])
    assert [firewall for firewall, seen in state["firewalls"].items() if not seen["up"]] == []
    assert state["mapping"] == home
