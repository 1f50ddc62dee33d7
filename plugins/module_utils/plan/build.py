# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build: one cluster's inventory in, its plan (docs/cluster-plan.md) out.

build_plan() is the package's entry point; docs/cluster-plan.md maps its files
(backends/: one module per tool that spells the rules of rules.py in its own
syntax). Stdlib only and Python 3.8 syntax: validate_node_ids ships this
package to the host it runs on. (The package's __init__.py files stay empty,
as ansible-test's empty-init wants of module_utils.)

The shared reader checks the inventory, the cluster's architecture reads and
checks its own keys; then each part of the plan is built once: the shared
fields here, the architecture's contributions beside them, the rules spelled
by the backend. A contribution that would replace a field built here is a
programming error, not a plan.
"""

from __future__ import annotations

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import routes, rules, stateful, vrrp
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import iptables, nftables
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.inventory import (
    CONNECTION_VARIABLES,
    NODE_VARIABLES,
    SHARED_CLUSTER_VARIABLES,
    read_cluster,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.registry import (
    BALANCER_VARIABLES,
    cluster_variables,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.together import check_plans_together

# What the plugins outside this package use of it.
__all__ = ["BALANCER_VARIABLES", "CLUSTER_VARIABLES", "CONNECTION_VARIABLES", "NODE_VARIABLES", "PlanError", "build_plan", "build_plans"]

# The inventory variables the plan reads (the filter cluster_inputs collects exactly these).
CLUSTER_VARIABLES = cluster_variables(SHARED_CLUSTER_VARIABLES)

BACKENDS = {"iptables": iptables, "nftables": nftables}

# The resync gate (roles/conntrackd/templates/fwcluster-resync-gate.sh.j2) and
# the file it writes when the peers' flows are in (/run: a boot starts without).
RESYNC_GATE_COMMAND = "/usr/local/sbin/fwcluster-resync-gate"
RESYNC_GATE_STATE_FILE = "/run/fwcluster/resync-gate"

# What every node gets, whatever the architecture. Strings: sysctl values are text.
BASE_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "1"),
    ("net.ipv4.conf.default.rp_filter", "1"),
    # With tcp_loose=1 a node that never saw a flow's SYN adopts it mid-stream;
    # with 0, a flow survives a failover only through replicated state, which is
    # exactly what the cluster claims and what the tests check.
    ("net.netfilter.nf_conntrack_tcp_loose", "0"),
    # Out-of-window segments stay INVALID (dropped) instead of being waved through.
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "0"),
)


# A dual-stack cluster's nodes route IPv6 too (and, routing, take no router advertisement).
IPV6_SYSCTLS = (
    ("net.ipv6.conf.all.forwarding", "1"),
)


def build_plan(cluster, nodes, balancers=None):
    """The cluster plan of docs/cluster-plan.md, or PlanError naming host, variable and rule.

    cluster: the cluster's group variables; nodes: {host: host variables} of its
    members; balancers: {host: host variables} of the hosts with
    fwcluster_balancer_side, as the cluster_inputs filter collects them.
    """
    model = read_cluster(cluster, nodes, balancers_vars=balancers)
    architecture = model.architecture
    backend = BACKENDS[model.backend]
    plan = {
        "name": model.name,
        "architecture": architecture.name,
        "backend": model.backend,
        "segments": dict((segment.name, _segment_plan(segment)) for segment in model.segments.values()),
        # Every segment VIP without prefix, both families: what a node holding the segments holds.
        "vip_addresses": [str(vip.ip) for segment in model.segments.values() for vip in segment.vips.values()],
        "vrrp": _vrrp(model),
        "tracking": _tracking(model, backend),
        "replication": _replication_summary(model),
        "capabilities": _capabilities(model),
        "nodes": dict((node.name, _node_plan(model, node, backend)) for node in model.nodes),
    }
    _contribute(plan, architecture.plan_fields(model, backend), "the plan")
    return plan


def build_plans(clusters):
    """Every cluster of a play: {name: plan}, or the first refusal (PlanError, its cluster's name attached).

    clusters: {name: {cluster, nodes, balancers}} as the cluster_inputs filter
    returns it. The clusters are checked alone, then together (together.py).
    """
    plans = {}
    for name in sorted(clusters, key=str):
        entry = clusters[name]
        if not isinstance(entry, dict):
            raise PlanError("cluster %s" % name, "clusters", "expected {cluster, nodes} from the cluster_inputs filter")
        try:
            plans[name] = build_plan(entry.get("cluster"), entry.get("nodes"), entry.get("balancers"))
        except PlanError as error:
            error.cluster = name
            raise
    check_plans_together(plans)
    return plans


def _contribute(target, fields, where):
    for key, value in fields.items():
        if key in target:
            raise ValueError("%s: %s is built once, by the build" % (where, key))
        target[key] = value


def _vrrp(cluster):
    settings = cluster.vrrp
    block = {
        "advert_int": settings["advert_int"],
        "version": vrrp.VERSION,
        "unicast": settings["unicast"],
        "preempt": settings["preempt"],
    }
    _contribute(block, cluster.architecture.vrrp_fields(cluster), "the vrrp block")
    block["failover_bound"] = vrrp.failover_bound(settings["advert_int"])
    return block


def _tracking(cluster, backend):
    tracking = dict(cluster.tracking)
    advert_int = cluster.vrrp["advert_int"]
    if tracking["conntrackd"] or tracking["upstream"]:
        # The checks read the peers' raw rules' counters (stateful.replication_untracked) with this.
        tracking["peer_counters_command"] = backend.counters_command("raw", "PREROUTING")
    if tracking["conntrackd"]:
        tracking["answer_timeout"] = vrrp.CONNTRACKD_ANSWER_S
        tracking["peer_wait"] = vrrp.PEER_WAIT_S
        tracking["failover_bound"] = vrrp.tracking_bound(tracking, advert_int)
    if tracking["upstream"]:
        tracking["upstream_timeout"] = vrrp.UPSTREAM_ANSWER_S
        tracking["upstream_listen"] = vrrp.upstream_listen(tracking["interval"])
        tracking["beacon_payload"] = vrrp.UPSTREAM_BEACON_PAYLOAD
        tracking["upstream_failover_bound"] = vrrp.upstream_bound(tracking, advert_int)
    return tracking


def _capabilities(cluster):
    architecture = cluster.architecture
    capabilities = architecture.capabilities
    successors = {}
    if capabilities.planned_switchover:
        successors = dict((node.name, architecture.successor(cluster, node).name) for node in cluster.nodes)
    return {
        # How a planned switchover hands a node's work over: "addresses" (the
        # successor takes the VIPs), "node_ids" (a survivor takes the node's id), or null.
        "switchover": capabilities.planned_switchover or None,
        "successors": successors,
        # Whether nodes own node ids (each id has exactly one owner) and all hold every segment VIP.
        "owned_ids": capabilities.owned_ids,
    }


def _replication_summary(cluster):
    replication = cluster.replication
    if replication is None:
        return None
    return {
        "transport": replication.transport,
        "mode": replication.mode,
        "port": replication.port,
        "network": replication.network.with_prefixlen,
        "multicast_group": str(replication.multicast_group) if replication.multicast_group else None,
        "peer_flows": replication.peer_flows,
    }


def _node_replication(cluster, node):
    replication = cluster.replication
    if replication is None:
        return None
    peers = [other for other in cluster.nodes if other is not node]
    return {
        "interface": node.replication_interface,
        "address": str(node.replication_address.ip),
        "prefix": node.replication_address.network.prefixlen,
        "peers": [str(peer.replication_address.ip) for peer in peers],
        "peer_hosts": dict((str(peer.replication_address.ip), peer.name) for peer in peers),
        "port": replication.port,
        "transport": replication.transport,
        "mode": replication.mode,
        "multicast_group": str(replication.multicast_group) if replication.multicast_group else None,
    }


def _node_conntrackd(cluster, node):
    if cluster.replication is None:
        return None
    # The node's own addresses and the replication link's (every node's, the
    # multicast group): flows to or from the VIPs (SNAT to the VIP included) are
    # exactly the ones that must replicate. The link's traffic is untracked too
    # (stateful.replication_untracked): this is the second guard.
    addresses = ["127.0.0.1"]
    addresses.extend(str(node.addresses[name].ip) for name in cluster.segments)
    # The management address (ansible_host): the controller's SSH sessions and
    # the node's own traffic there are nobody else's to take over.
    addresses.extend(str(member.management_address) for member in cluster.nodes if member.management_address)
    addresses.append(str(node.replication_address.ip))
    addresses.extend(str(peer.replication_address.ip) for peer in cluster.nodes if peer is not node)
    if cluster.replication.multicast_group:
        addresses.append(str(cluster.replication.multicast_group))
    conntrackd = {"ignore_addresses": list(dict.fromkeys(addresses))}  # once each, in this order
    # A dual-stack node's own IPv6 addresses likewise ([] on an IPv4 cluster).
    conntrackd["ignore_addresses6"] = (["::1"] + [str(address.ip) for address in node.addresses6.values()]
                                       if cluster.dual_stack else [])
    conntrackd.update(cluster.architecture.caches(cluster))
    # conntrackd's own StartupResync asks at once, before the link or (over
    # TCP) the connection may be up, and never tells when the answer is in:
    # the resync gate asks once the peers answer and notes when their flows
    # have stopped arriving; until then it holds what would hand this node
    # work (keepalived's start, or forwarding the balancers' probes).
    conntrackd["resync_gate"] = {"holds": cluster.architecture.resync_gate_holds, "command": RESYNC_GATE_COMMAND,
                                 "state_file": RESYNC_GATE_STATE_FILE}
    return conntrackd


def _node_tables(cluster, node):
    """The architecture's tables, with the replication link's traffic untracked (raw) in every one."""
    tables = list(cluster.architecture.ruleset(cluster, node))
    untracked = stateful.replication_untracked(cluster, node)
    if untracked:
        raw = [table for table in tables if table.name == "raw" and table.family == rules.IPV4]
        if raw:
            raw[0].rules[:0] = untracked
        else:
            tables.insert(0, rules.Table("raw", rules.RAW_POLICIES, untracked))
    return tables


def _segment_plan(segment):
    """A segment's VIPs: the IPv4 one as vip, the IPv6 one (dual stack) as vip6, each with its network."""
    plan = {
        "vip": segment.vip.with_prefixlen,
        "vip_address": str(segment.vip.ip),
        "network": segment.vip.network.with_prefixlen,
        "prefix": segment.vip.network.prefixlen,
        "vrid": segment.vrid,
    }
    if segment.vip6 is not None:
        plan.update({
            "vip6": segment.vip6.with_prefixlen,
            "vip6_address": str(segment.vip6.ip),
            "network6": segment.vip6.network.with_prefixlen,
            "prefix6": segment.vip6.network.prefixlen,
        })
    return plan


def _node_plan(cluster, node, backend):
    architecture = cluster.architecture
    plan = {
        "name": node.name,
        "node_id": node.node_id,
        "role": architecture.role(cluster, node),
        "interfaces": dict((name, node.interfaces[name]) for name in cluster.segments),
        "addresses": dict((name, node.addresses[name].with_prefixlen) for name in cluster.segments),
        # The node's IPv6 address on each dual-stack segment ({} when every segment is IPv4 only).
        "addresses6": dict((name, address.with_prefixlen) for name, address in node.addresses6.items()),
        "replication": _node_replication(cluster, node),
        "keepalived": vrrp.track_checks(cluster.tracking, architecture.keepalived(cluster, node)),
        "conntrackd": _node_conntrackd(cluster, node),
        # The hosts the node's upstream check pings, each through the node's interface of its segment.
        "upstream": [{"host": entry["host"], "interface": node.interfaces[entry["segment"]]}
                     for entry in cluster.tracking["upstream"]],
        # Static routes (fwcluster-routes.service): the networks behind the segments' routers.
        "routes": routes.node_routes(cluster, node) + architecture.node_routes(cluster, node),
        "sysctls": dict(BASE_SYSCTLS + (IPV6_SYSCTLS if cluster.dual_stack else ()) + tuple(architecture.sysctls)),
        "ruleset": backend.ruleset(_node_tables(cluster, node)),
        # A dual-stack cluster filters IPv6 as it does IPv4; an IPv4 one closes it.
        "ruleset_ipv6": backend.ruleset(architecture.ruleset6(cluster, node) if cluster.dual_stack
                                        else rules.ipv6_closed(), rules.IPV6),
        # The nodes that back each other up: site.yml never changes two hosts of one group at once.
        "redundancy_group": "%s/nodes" % cluster.name,
    }
    _contribute(plan, architecture.node_fields(cluster, node, backend), "node %s" % node.name)
    return plan
