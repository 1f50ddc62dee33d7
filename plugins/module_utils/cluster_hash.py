# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which node id the cluster match gives a flow: the kernel's xt_cluster hash, in Python.

xt_cluster hashes the original direction's source address of a flow's conntrack
entry with jhash_1word and the cluster's seed (jhash() of its 4 bytes: the same
number), and scales the hash to the number of nodes (net/netfilter/xt_cluster.c:
reciprocal_scale). A node forwards the flows of the node ids it owns; the
switchover waits only for those.
nftables' "jhash ct original ip saddr" gives the same numbers; an IPv6 flow is
nftables' only: "jhash ct original ip6 saddr", jhash() of the 16-byte address
(xt_cluster hashes only its first 4 bytes: docs/hash-ipv6/).

Stdlib only and Python 3.8 syntax.
"""

from __future__ import annotations

import socket

_MASK = 0xFFFFFFFF


def _rol32(value, shift):
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _mix(a, b, c):
    """include/linux/jhash.h: __jhash_mix()."""
    a = (a - c) & _MASK
    a ^= _rol32(c, 4)
    c = (c + b) & _MASK
    b = (b - a) & _MASK
    b ^= _rol32(a, 6)
    a = (a + c) & _MASK
    c = (c - b) & _MASK
    c ^= _rol32(b, 8)
    b = (b + a) & _MASK
    a = (a - c) & _MASK
    a ^= _rol32(c, 16)
    c = (c + b) & _MASK
    b = (b - a) & _MASK
    b ^= _rol32(a, 19)
    a = (a + c) & _MASK
    c = (c - b) & _MASK
    c ^= _rol32(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a, b, c):
    """include/linux/jhash.h: __jhash_final()."""
    c ^= b
    c = (c - _rol32(b, 14)) & _MASK
    a ^= c
    a = (a - _rol32(c, 11)) & _MASK
    b ^= a
    b = (b - _rol32(a, 25)) & _MASK
    c ^= b
    c = (c - _rol32(b, 16)) & _MASK
    a ^= c
    a = (a - _rol32(c, 4)) & _MASK
    b ^= a
    b = (b - _rol32(a, 14)) & _MASK
    c ^= b
    c = (c - _rol32(b, 24)) & _MASK
    return c


def jhash(data, initval):
    """include/linux/jhash.h: jhash() of a byte string, its words read little-endian (as on x86 and arm64)."""
    a = b = c = (0xDEADBEEF + len(data) + initval) & _MASK
    while len(data) > 12:
        a, b, c = _mix((a + _word(data, 0)) & _MASK, (b + _word(data, 4)) & _MASK, (c + _word(data, 8)) & _MASK)
        data = data[12:]
    if not data:
        return c
    data = data + bytes(12 - len(data))  # the tail's missing bytes count as zero
    return _final((a + _word(data, 0)) & _MASK, (b + _word(data, 4)) & _MASK, (c + _word(data, 8)) & _MASK)


def _word(data, offset):
    return int.from_bytes(data[offset:offset + 4], "little")


def node_id_of(address, seed, total_nodes):
    """The node id (0-based) the cluster gives a flow from this source address.

    The kernel hashes the address as stored (network byte order) read as
    native 32-bit words: little-endian on the machines this runs on. IPv4:
    xt_cluster's jhash_1word (and nftables' jhash) of the 4 bytes; IPv6:
    nftables' jhash of the 16 bytes.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return (jhash(socket.inet_pton(family, address), seed) * total_nodes) >> 32


def flow_addresses(key):
    """The source and destination addresses of a flow key "proto src:sport>dst:dport" or "proto src>dst".

    An IPv6 address with a port is bracketed ("tcp [2001:db8::1]:40000>[2001:db8::2]:80"),
    as node_status.conntrackd_flow_keys writes it.
    """
    parts = key.split(" ", 1) if isinstance(key, str) else []
    if len(parts) != 2 or ">" not in parts[1]:
        raise ValueError("not a flow key (proto src:sport>dst:dport): %r" % (key,))
    return tuple(_address(end) for end in parts[1].split(">", 1))


def _address(end):
    if end.startswith("["):
        return end[1:].split("]", 1)[0]
    if end.count(":") == 1:
        return end.split(":", 1)[0]
    return end


def flow_source(key):
    """The source address of a flow key (flow_addresses)."""
    return flow_addresses(key)[0]
