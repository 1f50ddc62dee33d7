"""The deployed sandwich's hosts, before any failure (verify.yml runs these).

Firewalls run the rules, the routes and conntrackd, no keepalived (they hold no
VIP); balancers run the rules, the routes, keepalived and the health service.
In each balancer pair node 0 holds the VIPs of its side (both families), node 1 none; every
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
    vips = [side[key].split("/")[0] for key in ("segment_vip", "front_vip", "segment_vip6", "front_vip6") if key in side]
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
    # ... and the same bucket rules in each family: a mark picks one firewall for IPv4 and IPv6 alike
    tables = dict((firewall["node_id"], firewall["table"]) for firewall in config["firewalls"])
    wanted = sorted((bucket["priority"], bucket["mark"], tables[bucket["home"]]) for bucket in config["buckets"])
    dual_stack = "front_vip6" in plan["balancing"]["sides"][config["side"]]
    assert config["families"] == (["inet", "inet6"] if dual_stack else ["inet"])
    for family in config["families"]:
        rules = json.loads(host.check_output("ip -f %s -j rule show" % family))
        found = sorted((rule["priority"], int(rule["fwmark"], 16), int(rule["table"])) for rule in rules
                       if rule.get("priority", 0) >= 1000 and "fwmark" in rule)
        assert found == wanted, family


def test_each_host_has_exactly_the_plans_routes(host, plan, name):
    """The plan's routes of both families, in their tables, tagged with the routes script's protocol
    number (157), and no other tagged route: the firewalls' toward each side's balancers, the
    balancers' through each firewall and, on the outside pair, through the upstream router."""
    part = plan["balancers"][name] if name in plan["balancers"] else plan["nodes"][name]
    if name in plan["balancers"] and plan["balancers"][name]["side"] == "outside":
        assert [r for r in part["routes"] if r["table"] is None], "the example routes the outside balancers upstream"

    def dst(to):
        return "default" if to in ("default", "::/0") else to
    live = []
    for family in ("-4", "-6"):
        live += [(r["dst"], r["gateway"], r["dev"], r.get("table", "main"))
                 for r in json.loads(host.check_output("ip %s -j route show table all proto 157" % family))]
    assert sorted(live) == sorted((dst(r["to"]), r["via"], r["interface"], str(r["table"] or "main"))
                                  for r in part["routes"])
