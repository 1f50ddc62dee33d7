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
  malformed, lost), and none appears over a few idle seconds: nothing of
  the nodes' own (the controller's SSH sessions included) is replicated.

Hosts without replication (a multipath firewall, a load balancer) are skipped.
"""

from __future__ import annotations

import re
import time

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_status import (
    conntrackd_stats,
    replication_heard,
    replication_heard_nft,
)

# Every host of Molecule's inventory (its groups are the platforms', not the
# example inventory's): the hosts that do not replicate skip.
testinfra_hosts = ["ansible://all"]

HEARD_WITHIN = 2.5  # seconds: the heartbeat pings each peer every second
IDLE_FOR = 5.0      # seconds without a new replication error


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


def _heard(plan, node):
    """Packets counted from each peer by its raw rule, as the backend lists them."""
    if plan["backend"] == "nftables":
        return replication_heard_nft(node.check_output("nft list table ip fwcluster"))
    return replication_heard(node.check_output("iptables-save -c -t raw"))


def test_every_peers_messages_are_counted_by_its_raw_rule(host, plan, link):
    if plan["backend"] == "nftables":
        rules = host.check_output("nft list chain ip fwcluster raw_prerouting").splitlines()
        untracked = [rule for rule in rules if " counter " in rule and " notrack " in rule]
    else:
        rules = host.check_output("iptables-save -t raw").splitlines()
        untracked = [rule for rule in rules if "-j CT --notrack" in rule]
    for address, peer in sorted(link["peer_hosts"].items()):
        assert any(address in rule and "replication from %s" % peer in rule for rule in untracked), (peer, rules)


def _errors(node):
    """The error counters of conntrackd -s: send, receive, malformed, lost."""
    return conntrackd_stats(node.check_output("conntrackd -s"))["errors"]


def _judged(errors, link):
    """The counters that say the link fails, as the status judges them (plugins/module_utils/cluster_health.py).

    conntrackd follows one message sequence per link: where several peers
    send (multicast to two or more), their interleaved sequences count as
    lost whenever two of them send close together, which a cluster does
    while it is "idle" too (flows of earlier traffic expiring, the
    heartbeat's pushes). So "lost" counts only with one peer.
    """
    return dict((kind, count) for kind, count in errors.items() if kind != "lost" or len(link["peers"]) <= 1)


@pytest.fixture(scope="module")
def idle_samples(plan, lab_hosts):
    """Every replicating node read three times, all nodes in one pass each time: at the start, HEARD_WITHIN
    seconds later, and IDLE_FOR seconds after the start. One wait for the whole cluster, not one per node.

    {node: {"heard": [raw counters per peer at start, then HEARD_WITHIN later],
            "errors": [conntrackd's errors at start, then IDLE_FOR later]}}
    """
    nodes = {name: lab_hosts[name] for name, node in sorted(plan["nodes"].items()) if node.get("replication")}

    def read(what):
        for name, node in nodes.items():
            found = _heard(plan, node) if what == "heard" else _errors(node)
            samples.setdefault(name, {}).setdefault(what, []).append(found)

    samples = {}
    start = time.monotonic()
    read("heard")
    read("errors")
    time.sleep(max(0.0, start + HEARD_WITHIN - time.monotonic()))
    read("heard")
    time.sleep(max(0.0, start + IDLE_FOR - time.monotonic()))
    read("errors")
    return samples


def test_the_heartbeat_runs(unit_state, link):
    assert unit_state("fwcluster-heartbeat") == "active"


def test_every_peer_is_heard_within_seconds_on_an_idle_cluster(idle_samples, name, link):
    before, after = idle_samples[name]["heard"]
    assert sorted(after) == sorted(link["peers"])
    assert [peer for peer in link["peers"] if after[peer] <= before.get(peer, 0)] == []


def test_an_idle_node_counts_no_replication_error(idle_samples, name, link):
    first, last = (_judged(errors, link) for errors in idle_samples[name]["errors"])
    no_error = dict((kind, 0) for kind in first)
    assert last == first  # nothing grows while the cluster is idle
    if link["transport"] == "tcp":
        # Over TCP the first send on a connection whose peer restarted (the
        # deploy restarts conntrackd) fails, once, and conntrackd connects
        # again: send errors from before the idle samples are history.
        first = dict(first, send=0)
    assert first == no_error
