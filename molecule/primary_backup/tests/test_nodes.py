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


def test_the_cluster_runs_two_debian_releases_side_by_side(lab_hosts, plan):
    """A rolling distribution upgrade caught halfway (molecule.yml: pb-fw1 bookworm, pb-fw2 trixie).

    failover.yml then moves a flow from the Debian 12 node to the Debian 13 one and back.
    """
    found = {}
    for node in sorted(plan["nodes"]):
        found[node] = lab_hosts[node].check_output(
            "cut -d. -f1 /etc/debian_version; keepalived --version 2>&1 | head -n 1 | cut -d' ' -f2; "
            "conntrackd -v | head -n 1 | sed -n 's/.*daemon v\\([0-9.]*[0-9]\\).*/\\1/p'").split()
    assert sorted(release for release, _keepalived, _conntrackd in found.values()) == ["12", "13"], found
    # the daemons differ too: keepalived 2.2.7 / 2.3.3, conntrackd 1.4.7 / 1.4.8
    assert len(set(versions[1] for versions in found.values())) == 2, found
    assert len(set(versions[2] for versions in found.values())) == 2, found
