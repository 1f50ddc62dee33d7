# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers of a node's live cluster state: pure functions over the daemons' own output.

The node_status_info module collects the text (keepalived's JSON dump,
``conntrackd -s``, ``iptables-save -t mangle`` and ``-c -t raw``, ``ip -j addr``) and these
functions turn it into plain data, so that the parsing is unit-tested against
output captured from the real daemons.

Stdlib only and Python 3.8 syntax: this file ships to the nodes inside the module.
"""

from __future__ import annotations

import json
import re

# keepalived's vrrp_t.state values (keepalived/include/vrrp.h).
VRRP_STATES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT"}

_CT_ACTIVE = re.compile(r"^current active connections:\s*([0-9]+)", re.M)
_CT_FAILED = re.compile(r"^connections (created|updated|destroyed):\s*[0-9]+\s+failed:\s*([0-9]+)", re.M)
_CT_ERRORS = re.compile(r"([0-9]+) Error send\s+([0-9]+) Error recv")
_CT_TRACKING = re.compile(r"([0-9]+) Malformed msgs\s+([0-9]+) Lost msgs")
_CT_SECTION = re.compile(r"^cache (internal|external):\s*$", re.M)
# With a cache disabled (DisableInternalCache, DisableExternalCache) conntrackd
# prints these sections instead, without a flow count.
_CT_NO_CACHE = re.compile(r"^(?:internal bypass|external inject):\s*$", re.M)
_FLOW_PROTO = re.compile(r"^\s*([a-z0-9]+)\s+[0-9]+\s")
_FLOW_FIELD = re.compile(r"\b(src|dst|sport|dport)=(\S+)")
_CLUSTER_RULE = re.compile(r"(?:^|\s)-m cluster(?:\s|$)")
_NODEMASK = re.compile(r"--cluster-local-nodemask\s+(0x[0-9a-fA-F]+|[0-9]+)")
_LOCAL_NODE = re.compile(r"--cluster-local-node\s+([0-9]+)")
_TOTAL_NODES = re.compile(r"--cluster-total-nodes\s+([0-9]+)")


class StatusParseError(Exception):
    """Output that does not look like the daemon's: the message says which and why."""


def keepalived_instances(dump_text):
    """The VRRP instances of keepalived's JSON dump (``kill -s <keepalived --signum=JSON>``).

    Returns a list of {name, state, vrid, interface, priority, effective_priority, vips,
    last_transition, become_master, track_interfaces, track_scripts}, sorted by name;
    track_scripts are the tracked scripts' commands as keepalived runs them.
    """
    try:
        dump = json.loads(dump_text)
    except ValueError as error:
        raise StatusParseError("keepalived's JSON dump does not parse: %s" % error)
    if not isinstance(dump, list):
        raise StatusParseError("keepalived's JSON dump is not a list of instances")
    instances = []
    for entry in dump:
        data = entry.get("data", {}) if isinstance(entry, dict) else {}
        stats = entry.get("stats", {}) if isinstance(entry, dict) else {}
        if "iname" not in data:
            raise StatusParseError("keepalived's JSON dump has an instance without a name")
        instances.append({
            "name": data["iname"],
            "state": VRRP_STATES.get(data.get("state"), "UNKNOWN(%s)" % data.get("state")),
            "vrid": data.get("vrid"),
            "interface": data.get("ifp_ifname"),
            "priority": data.get("base_priority"),
            "effective_priority": data.get("effective_priority"),
            # "10.10.1.254/24 dev eth1 scope global set": the address is the first word.
            "vips": [vip.split()[0] for vip in data.get("vips", []) if vip.strip()],
            "last_transition": data.get("last_transition"),
            "become_master": stats.get("become_master"),
            "track_interfaces": list(data.get("track_ifp") or []),
            # "'/etc/keepalived/fwcluster-check-conntrackd.sh'": keepalived quotes each word.
            "track_scripts": [script.replace("'", "") for script in data.get("track_script") or []],
        })
    return sorted(instances, key=lambda instance: instance["name"])


def conntrackd_stats(text):
    """The counters of ``conntrackd -s`` that say whether replication is healthy.

    internal/external: flows in each cache (None for a cache conntrackd runs
    disabled: DisableInternalCache, DisableExternalCache); errors: the replication link's
    send and receive errors and malformed or lost messages, which only grow
    when replication goes wrong; cache_failures: the caches' failed
    creations, updates and deletions, reported apart.
    """
    caches = {"internal": None, "external": None}
    sections = list(_CT_SECTION.finditer(text))
    if not sections and not _CT_NO_CACHE.search(text):
        raise StatusParseError("conntrackd -s printed no cache statistics")
    for index, section in enumerate(sections):
        end = sections[index + 1].start() if index + 1 < len(sections) else len(text)
        body = text[section.end():end]
        active = _CT_ACTIVE.search(body)
        caches[section.group(1)] = int(active.group(1)) if active else None
    errors = {"send": 0, "recv": 0}
    for match in _CT_ERRORS.finditer(text):
        errors["send"] += int(match.group(1))
        errors["recv"] += int(match.group(2))
    errors["malformed"] = errors["lost"] = 0
    for match in _CT_TRACKING.finditer(text):
        errors["malformed"] += int(match.group(1))
        errors["lost"] += int(match.group(2))
    return {
        "internal": caches["internal"],
        "external": caches["external"],
        "errors": errors,
        "error_total": sum(errors.values()),
        # Cache bookkeeping, not the link: with the external cache disabled
        # (flows injected into the kernel) every peer flow counts here, so it is reported
        # apart and not judged.
        "cache_failures": sum(int(match.group(2)) for match in _CT_FAILED.finditer(text)),
    }


def _bracketed(address):
    return "[%s]" % address if ":" in address else address


def conntrackd_flow_keys(text):
    """The flows of ``conntrackd -i`` or ``-e``, each as "proto src:sport>dst:dport" of its original direction.

    An IPv6 address with a port is bracketed ("tcp [2001:db8::1]:40000>[2001:db8::2]:80").
    Ports are left out for protocols without them (icmp). Sorted and unique.
    """
    keys = set()
    for line in text.splitlines():
        proto = _FLOW_PROTO.match(line)
        if not proto:
            continue
        first = {}
        for name, value in _FLOW_FIELD.findall(line):
            first.setdefault(name, value)  # the original direction comes first
        if "src" not in first or "dst" not in first:
            continue
        if "sport" in first and "dport" in first:
            source, destination = _bracketed(first["src"]), _bracketed(first["dst"])
            keys.add("%s %s:%s>%s:%s" % (proto.group(1), source, first["sport"], destination, first["dport"]))
        else:
            keys.add("%s %s>%s" % (proto.group(1), first["src"], first["dst"]))
    return sorted(keys)


# iptables-save -c -t raw: "[12:960] -A PREROUTING -s 192.168.100.2/32 -i eth3 -m comment --comment
# "fwcluster replication from pb-fw2" -j CT --notrack" (the rule plan/stateful.py renders per peer).
_HEARD_RULE = re.compile(r'^\[([0-9]+):[0-9]+\] -A PREROUTING .*-s ([0-9.]+)(?:/32)? .*'
                         r'--comment "?fwcluster replication from ')


def replication_heard(raw_save):
    """Packets received from each peer on the replication link, by the peer's replication address.

    From ``iptables-save -c -t raw``: the counter of each peer's rule (its
    conntrackd messages and heartbeat pings). {} when there is no such rule.
    """
    heard = {}
    for line in raw_save.splitlines():
        match = _HEARD_RULE.match(line)
        if match:
            heard[match.group(2)] = heard.get(match.group(2), 0) + int(match.group(1))
    return heard


# nft list table ip fwcluster: 'iifname "eth3" ip saddr 192.168.100.2 counter packets 12 bytes 960 notrack
# comment "fwcluster replication from pb-fw2"' (the same rule, spelled by the nftables backend).
_HEARD_RULE_NFT = re.compile(r'ip saddr ([0-9.]+)(?:/32)? .*counter packets ([0-9]+) bytes [0-9]+ .*'
                             r'comment "fwcluster replication from ')


def replication_heard_nft(listing):
    """replication_heard() for the nftables backend, from ``nft list table ip fwcluster``."""
    heard = {}
    for line in listing.splitlines():
        match = _HEARD_RULE_NFT.search(line)
        if match:
            heard[match.group(1)] = heard.get(match.group(1), 0) + int(match.group(2))
    return heard


def resync_gate_state(text):
    """The resync gate's state file (``opened_at=EPOCH peers_answered=A,B flows_received=N waited_s=S settled=yes``).

    None (no file: the gate has not opened since the boot) gives {"open": False}; a file in
    another shape raises StatusParseError.
    """
    if text is None:
        return {"open": False}
    try:
        fields = dict(word.split("=", 1) for word in text.split())
        return {
            "open": True,
            "opened_at": float(fields["opened_at"]),
            "peers_answered": [peer for peer in fields["peers_answered"].split(",") if peer],
            "flows_received": int(fields["flows_received"]),
            "settled": fields["settled"] == "yes",
        }
    except (KeyError, ValueError) as error:
        raise StatusParseError("the resync gate's state file does not parse (%s): %r" % (error, text))


def cluster_ownership(mangle_save):
    """The xt_cluster nodes this node filters for, from ``iptables-save -t mangle``.

    Every rule with the cluster match contributes its local node mask
    (iptables-save prints --cluster-local-nodemask even for rules written with
    --cluster-local-node). Returns {total_nodes, nodemask, node_ids}, where
    node id k is xt_cluster node k+1, i.e. mask bit k; None without such rules.
    """
    mask = 0
    totals = set()
    seen = False
    for line in mangle_save.splitlines():
        if not line.startswith("-A ") or not _CLUSTER_RULE.search(line):
            continue
        seen = True
        total = _TOTAL_NODES.search(line)
        if total:
            totals.add(int(total.group(1)))
        nodemask = _NODEMASK.search(line)
        if nodemask:
            mask |= int(nodemask.group(1), 0)
            continue
        local = _LOCAL_NODE.search(line)
        if local:
            mask |= 1 << (int(local.group(1)) - 1)
    if not seen:
        return None
    return {
        "total_nodes": max(totals) if totals else None,
        "nodemask": "0x%08x" % mask,
        "node_ids": [bit for bit in range(32) if mask & (1 << bit)],
    }


# The owner rules of the nftables backend: "jhash ct original ip saddr mod 3 seed 0x5eed1234 2 ..." or "{ 0, 2 }".
_JHASH_OWNER = re.compile(r"jhash ct original ip6? saddr mod ([0-9]+) seed 0x[0-9a-fA-F]+ (\{[^}]*\}|[0-9]+) ")


def cluster_ownership_nft(listing, chain, listing6=None):
    """cluster_ownership() for the nftables backend: the jhash values the rules of CHAIN accept are the node ids.

    listing6: the ``ip6 fwcluster`` table's; where it has the owner chain (a dual-stack hash
    cluster), its ids are node_ids_ipv6 (an empty list when it owns none).
    """
    owned = _owner_chain_ids(listing, chain)
    if listing6 is None or not re.search(r"^\s*chain %s \{" % re.escape(chain), listing6, re.M):
        return owned  # no IPv6 owner chain: an IPv4-only cluster
    owned6 = _owner_chain_ids(listing6, chain)
    if owned is None and owned6 is None:
        return None
    owned = owned or {"total_nodes": owned6["total_nodes"], "nodemask": "0x00000000", "node_ids": []}
    owned["node_ids_ipv6"] = owned6["node_ids"] if owned6 else []
    return owned


def _owner_chain_ids(listing, chain):
    mask = 0
    totals = set()
    seen = False
    inside = False
    for line in listing.splitlines():
        line = line.strip()
        if line.startswith("chain "):
            inside = line.split()[1] == chain
            continue
        match = _JHASH_OWNER.search(line) if inside else None
        if not match:
            continue
        seen = True
        totals.add(int(match.group(1)))
        for node_id in re.findall(r"[0-9]+", match.group(2)):
            mask |= 1 << int(node_id)
    if not seen:
        return None
    return {"total_nodes": max(totals), "nodemask": "0x%08x" % mask,
            "node_ids": [bit for bit in range(32) if mask & (1 << bit)]}


def interface_addresses(ip_json):
    """Interface name to its addresses of both families with prefix, from ``ip -j addr show``."""
    try:
        entries = json.loads(ip_json or "[]")
    except ValueError as error:
        raise StatusParseError("ip -j addr does not parse: %s" % error)
    addresses = {}
    for entry in entries:
        name = entry.get("ifname")
        for info in entry.get("addr_info", []):
            if info.get("family", "inet") in ("inet", "inet6") and "local" in info:
                addresses.setdefault(name, []).append("%s/%d" % (info["local"], info["prefixlen"]))
    return addresses
