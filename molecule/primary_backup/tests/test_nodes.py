"""The deployed primary_backup cluster's nodes, before any failover (verify.yml runs these)."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://edge"]


@pytest.mark.parametrize("unit", ["keepalived.service", "conntrackd.service", "fwcluster-netfilter.service"])
def test_the_daemons_and_the_rules_unit_are_active(unit_state, unit):
    assert unit_state(unit) == "active"


def test_exactly_the_preferred_primary_holds_every_vip(plan, name, addresses):
    vips = sorted(segment["vip_address"] for segment in plan["segments"].values())
    primary = min(plan["nodes"].values(), key=lambda node: node["node_id"])["name"]
    held = sorted(vip for vip in vips if vip in addresses)
    assert held == (vips if name == primary else []), "%s holds %s (preferred primary: %s)" % (name, held, primary)
