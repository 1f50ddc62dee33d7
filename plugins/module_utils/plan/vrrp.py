# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived's VRRP instances as the plan describes them, for every architecture."""

from __future__ import annotations

VERSION = 3


def priority(rank):
    """The priority of the rank-th candidate (0: the preferred master).

    Steps of 4 leave room for keepalived track scripts to lower a node without a tie.
    """
    return 254 - 4 * rank


def failover_bound(advert_int):
    """Seconds until a backup has taken over from a dead master.

    A backup declares the master dead after 3 adverts plus skew (< 1 advert);
    one more second covers VIP takeover and gratuitous ARP.
    """
    return round(3 * advert_int + 1.0, 2)


# The conntrackd check: how long conntrackd has to answer `conntrackd -s`, and
# how long a check whose conntrackd is not running listens for a peer's
# (FTFW's conntrackd sends an ALIVE a second at least; a stuck one has been
# waited for that long already).
CONNTRACKD_ANSWER_S = 2
PEER_WAIT_S = 1.5
CONNTRACKD_SCRIPT = "fwcluster_conntrackd"

# The upstream check: how long each upstream host has to answer a ping, and
# the size of the ping a node whose upstream answers sends each peer on every
# check (its beacon, counted apart from the heartbeat's pings by its length).
# A node whose upstream fails listens for a peer's beacon for one interval
# and a half: every healthy peer's check sends one per interval.
UPSTREAM_ANSWER_S = 1
UPSTREAM_LISTEN_EXTRA_S = 0.5
UPSTREAM_BEACON_PAYLOAD = 100
UPSTREAM_BEACON_LENGTH = 20 + 8 + UPSTREAM_BEACON_PAYLOAD  # IPv4 and ICMP headers
UPSTREAM_SCRIPT = "fwcluster_upstream"


def upstream_listen(interval):
    """Seconds a failing upstream check listens for a healthy peer's beacon."""
    return interval + UPSTREAM_LISTEN_EXTRA_S


def _bound(tracking, advert_int, longest_failed_run):
    """Seconds from a failure on the master until a peer holds its VIPs or node ids.

    The first check after the failure starts within one interval. keepalived
    skips the ticks that come while a run goes on, so failed checks come one
    period apart: the first interval tick after the run has ended. fall of
    them put the master in FAULT; its priority-0 advert makes the peer take
    over at once (below one advert, plus gratuitous ARP: one second).
    """
    interval = tracking["interval"]
    period = interval * (int(longest_failed_run // interval) + 1)
    return round(interval + tracking["fall"] * period + advert_int + 1.0, 2)


def tracking_bound(tracking, advert_int):
    """The bound of a stuck or dead conntrackd: a failed check lasts the answer timeout or the peer wait."""
    return _bound(tracking, advert_int, max(CONNTRACKD_ANSWER_S, PEER_WAIT_S))


def upstream_bound(tracking, advert_int):
    """The bound of an upstream host that stops answering the master only (a healthy peer, past its hold-down)."""
    return _bound(tracking, advert_int, upstream_listen(tracking["interval"]))


def track_checks(tracking, keepalived):
    """keepalived with the plan's checks on every instance; FAULT (weight 0) while one fails."""
    if keepalived is None:
        return keepalived
    scripts = []
    if tracking["conntrackd"]:
        # keepalived gives up on a run that takes longer; the check's own waits end before.
        scripts.append(_script(CONNTRACKD_SCRIPT, tracking, CONNTRACKD_ANSWER_S + 2))
    if tracking["upstream"]:
        scripts.append(_script(UPSTREAM_SCRIPT, tracking, int(upstream_listen(tracking["interval"])) + 2))
    if not scripts:
        return keepalived
    keepalived["scripts"] = scripts
    for instance in keepalived["instances"]:
        instance["track_scripts"] = [script["name"] for script in scripts]
    return keepalived


def _script(name, tracking, timeout):
    return {"name": name, "interval": tracking["interval"], "fall": tracking["fall"], "rise": tracking["rise"],
            "timeout": timeout}


def unicast_peers(cluster, node, segment_name, version=4):
    """(unicast_src, unicast_peers) of a node's instance on a segment: empty unless VRRP is unicast."""
    if not cluster.vrrp["unicast"]:
        return None, []
    addresses = (lambda member: member.addresses) if version == 4 else (lambda member: member.addresses6)
    peers = [str(addresses(other)[segment_name].ip) for other in cluster.nodes if other is not node]
    return str(addresses(node)[segment_name].ip), peers


def instance(name, segment, interface, vrid, priority_value, advert_int, preempt, vips, unicast=(None, []),
             family="ipv4"):
    """One VRRP instance; every node starts BACKUP and the election decides."""
    return {
        "name": name,
        "segment": segment,
        "family": family,
        "interface": interface,
        "vrid": vrid,
        "priority": priority_value,
        "state": "BACKUP",
        "advert_int": advert_int,
        "preempt": preempt,
        "vips": list(vips),
        "unicast_src": unicast[0],
        "unicast_peers": list(unicast[1]),
    }


def segment_instance(cluster, node, segment, name, priority_value, preempt):
    """A node's instance for a segment's VIP."""
    return instance(name, segment.name, node.interfaces[segment.name], segment.vrid, priority_value,
                    cluster.vrrp["advert_int"], preempt, [segment.vip.with_prefixlen],
                    unicast_peers(cluster, node, segment.name))


def link_local_vip(vrid):
    """The link-local address a segment's IPv6 virtual router holds besides its VIP: fe80::1:VRID (hex).

    VRRPv3 for IPv6 (RFC 5798, 5.2.9; RFC 9568) lists the virtual router's
    link-local address first in its adverts, and hosts that learn their router
    from it (router advertisements) use that address as their next hop. The
    VRID makes it distinct per virtual router on the link.
    """
    return "fe80::1:%x/64" % vrid


def segment_instance6(cluster, node, segment, name, priority_value, preempt):
    """A node's instance for a dual-stack segment's IPv6 VIP: the same VRID (VRRPv3 numbers each family
    apart, and the virtual MACs differ: 00:00:5e:00:02:VRID), its link-local address first."""
    return instance(name, segment.name, node.interfaces[segment.name], segment.vrid, priority_value,
                    cluster.vrrp["advert_int"], preempt, [link_local_vip(segment.vrid), segment.vip6.with_prefixlen],
                    unicast_peers(cluster, node, segment.name, 6), family="ipv6")
