"""Where a node's VRRP adverts go, read from the kernel's connection table.

VRRP (IP protocol 112) to and from the node is tracked like any other
traffic to the node ("unknown 112" entries of conntrack -L). With unicast
VRRP in the plan, every instance's adverts travel between its unicast_src and
its peers' addresses, and none goes to VRRP's multicast group 224.0.0.18: the
cluster works where multicast does not. Nodes whose plan is multicast, and
hosts without VRRP, are skipped.
"""

from __future__ import annotations

import re

import pytest

testinfra_hosts = ["ansible://all"]

VRRP_GROUP = "224.0.0.18"
_VRRP_ENTRY = re.compile(r"^unknown\s+112\s+\d+\s+src=(\S+)\s+dst=(\S+)")


@pytest.fixture(scope="module")
def unicast_instances(plan, name):
    node = plan["nodes"].get(name) or (plan.get("balancers") or {}).get(name) or {}
    instances = (node.get("keepalived") or {}).get("instances") or []
    unicast = [instance for instance in instances if instance.get("unicast_src")]
    if not unicast:
        pytest.skip("%s runs no unicast VRRP instance" % name)
    return unicast


def test_unicast_adverts_go_to_the_peers_and_never_to_the_multicast_group(host, unicast_instances):
    listed = host.check_output("conntrack -L 2>/dev/null").splitlines()
    pairs = [match.groups() for match in map(_VRRP_ENTRY.match, listed) if match]
    assert [pair for pair in pairs if VRRP_GROUP in pair] == []
    for instance in unicast_instances:
        ends = set([instance["unicast_src"]] + instance["unicast_peers"])
        seen = [pair for pair in pairs if set(pair) <= ends]
        assert seen, (instance["name"], pairs)
