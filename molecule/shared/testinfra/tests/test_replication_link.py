"""Every replicating node's dedicated link (verify.yml runs these before any traffic crosses the cluster).

- The link's own traffic is not tracked, so never replicated: no conntrack
  entry has a replication address or the multicast group at either end.
  Tracked, each peer's messages became flows replicated in turn (a
  multicast group is nobody's own address), a storm that counted as
  replication errors on an idle cluster.
- Each peer's messages cross the raw rule that counts them, and the
  heartbeat (a ping a second to every peer) makes each peer's counter move
  within seconds on an idle cluster.
- An idle node counts no replication error (conntrackd -s: send, receive,
  malformed, and lost where it has a single peer), and none appears over a
  few idle seconds.

Hosts without replication (a multipath firewall, a load balancer) are skipped.
"""

from __future__ import annotations

import re
import time

import pytest

# Every host of Molecule's inventory (its groups are the platforms', not the
# example inventory's): the hosts that do not replicate skip.
testinfra_hosts = ["ansible://all"]

# conntrackd -s: "4 Error send  0 Error recv", "0 Malformed msgs  7 Lost msgs"
_ERRORS = re.compile(r"(\d+) (?:Error send|Error recv|Malformed msgs|Lost msgs)\b")


@pytest.fixture(scope="module")
def link(plan, name):
    node = plan["nodes"].get(name) or {}
    if not node.get("replication"):
        pytest.skip("%s does not replicate flow state" % name)
    return node["replication"]


def _link_addresses(link):
    found = [link["address"]] + list(link["peers"])
    if link.get("multicast_group"):
        found.append(link["multicast_group"])
    return found


def test_no_flow_of_the_replication_link_is_tracked(host, link):
    listed = host.check_output("conntrack -L 2>/dev/null").splitlines()
    addresses = _link_addresses(link)
    tracked = [line for line in listed
               if any(re.search(r"\b(src|dst)=%s\b" % re.escape(address), line) for address in addresses)]
    assert tracked == []


def test_every_peers_messages_are_counted_by_its_raw_rule(host, link):
    rules = host.check_output("iptables-save -t raw").splitlines()
    for address, peer in sorted(link["peer_hosts"].items()):
        assert any("-s %s/32" % address in rule and "replication from %s" % peer in rule
                   and "-j CT --notrack" in rule for rule in rules), (peer, rules)


def _heard(host):
    """Packets counted per peer address: the raw rules' counters (iptables-save -c)."""
    found = {}
    for line in host.check_output("iptables-save -c -t raw").splitlines():
        match = re.match(r"^\[(\d+):\d+\] -A PREROUTING -s ([0-9.]+)/32 .*fwcluster replication from ", line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


def test_the_heartbeat_runs(unit_state, link):
    assert unit_state("fwcluster-heartbeat") == "active"


def test_every_peer_is_heard_within_seconds_on_an_idle_cluster(host, link):
    before = _heard(host)
    time.sleep(2.5)
    after = _heard(host)
    assert sorted(after) == sorted(link["peers"])
    assert [peer for peer in link["peers"] if after[peer] <= before[peer]] == []


def _errors(host, link):
    """The error counters of conntrackd -s that say the link fails: send, receive, malformed, and lost
    messages with a single peer (several peers' interleaved sequences count as lost: conntrackd keeps
    one receive sequence per link, so the status does not judge them either)."""
    send, recv, malformed, lost = [int(count) for count in _ERRORS.findall(host.check_output("conntrackd -s"))]
    return {"send": send, "recv": recv, "malformed": malformed, "lost": lost if len(link["peers"]) == 1 else 0}


def test_an_idle_node_counts_no_replication_error(host, link):
    assert _errors(host, link) == {"send": 0, "recv": 0, "malformed": 0, "lost": 0}
    time.sleep(5)
    assert _errors(host, link) == {"send": 0, "recv": 0, "malformed": 0, "lost": 0}
