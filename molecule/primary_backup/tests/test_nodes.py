"""The deployed primary_backup cluster's nodes, before any failover (verify.yml runs these)."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://edge"]

# The major version in /etc/debian_version of each release the lab builds an image of.
DEBIAN_RELEASES = {"bookworm": "12", "trixie": "13"}


@pytest.mark.parametrize("unit", ["keepalived.service", "conntrackd.service", "fwcluster-netfilter.service"])
def test_the_daemons_and_the_rules_unit_are_active(unit_state, unit):
    assert unit_state(unit) == "active"


def test_exactly_the_preferred_primary_holds_every_vip(plan, name, addresses):
    vips = sorted(plan["vip_addresses"])  # both families on a dual-stack cluster
    assert len(vips) == len(plan["segments"]) + sum(1 for segment in plan["segments"].values() if "vip6" in segment)
    primary = min(plan["nodes"].values(), key=lambda node: node["node_id"])["name"]
    held = sorted(vip for vip in vips if vip in addresses)
    assert held == (vips if name == primary else []), "%s holds %s (preferred primary: %s)" % (name, held, primary)


def test_each_node_runs_the_debian_release_of_its_image(lab_hosts, plan, images):
    """molecule.yml gives pb-fw1 Debian 12 and pb-fw2 Debian 13: a rolling distribution upgrade caught
    halfway (failover.yml then moves a flow from the Debian 12 node to the Debian 13 one and back); the
    test command's cross product gives both nodes one release (FWCLUSTER_LAB_RELEASE).
    """
    found, expected = {}, {}
    for node in sorted(plan["nodes"]):
        found[node] = lab_hosts[node].check_output(
            "cut -d. -f1 /etc/debian_version; keepalived --version 2>&1 | head -n 1 | cut -d' ' -f2; "
            "conntrackd -v | head -n 1 | sed -n 's/.*daemon v\\([0-9.]*[0-9]\\).*/\\1/p'").split()
        expected[node] = DEBIAN_RELEASES[images[node].rsplit(":", 1)[1]]
    assert dict((node, versions[0]) for node, versions in found.items()) == expected, found
    if len(set(expected.values())) > 1:
        # two releases, two versions of each daemon: keepalived 2.2.7 / 2.3.3, conntrackd 1.4.7 / 1.4.8
        assert len(set(versions[1] for versions in found.values())) == 2, found
        assert len(set(versions[2] for versions in found.values())) == 2, found
