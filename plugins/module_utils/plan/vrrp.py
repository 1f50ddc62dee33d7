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


def unicast_peers(cluster, node, segment_name):
    """(unicast_src, unicast_peers) of a node's instance on a segment: empty unless VRRP is unicast."""
    if not cluster.vrrp["unicast"]:
        return None, []
    peers = [str(other.addresses[segment_name].ip) for other in cluster.nodes if other is not node]
    return str(node.addresses[segment_name].ip), peers


def instance(name, segment, interface, vrid, priority_value, advert_int, preempt, vips, unicast=(None, [])):
    """One VRRP instance; every node starts BACKUP and the election decides."""
    return {
        "name": name,
        "segment": segment,
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
