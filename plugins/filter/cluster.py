# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that hand the inventory to the plan (plugins/module_utils/plan/) and read its plans.

cluster_inputs(hostvars, all_hosts, play_hosts)
    Groups hosts into clusters by fwcluster_name and returns, for every cluster with
    a member among the play hosts, {name: {"cluster": group variables,
    "nodes": {host: host variables}, "balancers": {host: host variables}}}; hosts
    with fwcluster_balancer_side are load balancers, not firewall nodes.
    Cluster variables must be equal on every member; a play host without
    fwcluster_name is refused.
node_plan(plans, cluster_name, host)
    One node's part of its cluster's plan, what the roles read as fwcluster_node
    (a load balancer's part comes from the plan's balancers).
owned_flows(flows, seed, total_nodes, node_ids)
    The flows (keys "proto src:sport>dst:dport") that the cluster match of a
    hash cluster gives one of node_ids.
hash_node_ids(addresses, seed, total_nodes)
    {address: node id} for IPv4 and IPv6 source addresses: which node of a
    hash cluster forwards a flow from each.

The plans themselves are built by the validate_node_ids module, the one validator.

Example:
    clusters: "{{ hostvars | fwcluster.netfilter.cluster_inputs(groups['all'], ansible_play_hosts_all) }}"
"""

from __future__ import annotations

import math

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover
    Mapping = dict

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_hash import flow_source, node_id_of
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plain import plain
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import (
    CLUSTER_VARIABLES,
    BALANCER_VARIABLES,
    CONNECTION_VARIABLES,
    NODE_VARIABLES,
    PlanError,
)


def _same(left, right):
    """Equality that tells 1 from true from 1.0, as the model does.

    A NaN is not equal to itself; the same NaN on every member (one group_vars file) is the
    same value here, so that the model refuses it for what it is, not as a difference.
    """
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and math.isnan(left) and math.isnan(right):
        return True
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    return left == right


def _defined(host_vars, names):
    return dict((name, plain(host_vars[name])) for name in names if name in host_vars)


def _filter_error(error):
    return AnsibleFilterError(str(error))


def cluster_inputs(hostvars, all_hosts, play_hosts):
    """{cluster name: {"cluster": group variables, "nodes": {host: host variables}}}."""
    try:
        return _cluster_inputs(hostvars, all_hosts, play_hosts)
    except PlanError as error:
        raise _filter_error(error)


def _cluster_inputs(hostvars, all_hosts, play_hosts):
    if isinstance(all_hosts, str) or isinstance(play_hosts, str):
        raise AnsibleFilterError("cluster_inputs: all_hosts and play_hosts must be lists of host names")
    wanted = []
    for host in play_hosts:
        name = hostvars[host].get("fwcluster_name") if host in hostvars else None
        if name is None:
            raise PlanError(host, "fwcluster_name", "is required on every host of this play: the cluster the "
                            "host belongs to (put the host in a cluster's group)")
        if not isinstance(name, str):
            raise PlanError(host, "fwcluster_name", "must be a string, got %s" % type(name).__name__)
        if name not in wanted:
            wanted.append(str(name))

    clusters = {}
    reference = {}  # cluster name -> the member whose cluster variables the others must match
    for host in all_hosts:
        if host not in hostvars:
            continue
        host_vars = hostvars[host]
        name = host_vars.get("fwcluster_name")
        if name not in wanted:
            continue
        cluster_vars = _defined(host_vars, CLUSTER_VARIABLES)
        if name not in clusters:
            clusters[name] = {"cluster": cluster_vars, "nodes": {}, "balancers": {}}
            reference[name] = host
        else:
            expected = clusters[name]["cluster"]
            for variable in CLUSTER_VARIABLES:
                mine, theirs = cluster_vars.get(variable), expected.get(variable)
                if (variable in cluster_vars) != (variable in expected) or not _same(mine, theirs):
                    raise PlanError(host, variable, "differs from %s's value; cluster variables must be equal "
                                    "on every member of cluster %s (set them in the cluster's group_vars, "
                                    "not per host)" % (reference[name], name))
        if host_vars.get("fwcluster_balancer_side") is not None:
            clusters[name]["balancers"][str(host)] = _defined(host_vars, BALANCER_VARIABLES + CONNECTION_VARIABLES)
        else:
            clusters[name]["nodes"][str(host)] = _defined(host_vars, NODE_VARIABLES + CONNECTION_VARIABLES)
    return clusters


def node_plan(plans, cluster_name, host):
    """One node's part of its cluster's plan (what the roles read as fwcluster_node)."""
    if not isinstance(plans, Mapping) or cluster_name not in plans:
        raise AnsibleFilterError("node_plan: no plan for cluster %s" % cluster_name)
    nodes = plans[cluster_name].get("nodes") or {}
    if host in nodes:
        return nodes[host]
    balancers = plans[cluster_name].get("balancers") or {}
    if host in balancers:
        return balancers[host]
    raise AnsibleFilterError("node_plan: %s is not a node of cluster %s" % (host, cluster_name))


def owned_flows(flows, seed, total_nodes, node_ids):
    """The flows whose source address xt_cluster gives one of node_ids, in their order."""
    try:
        seed, total_nodes = int(seed), int(total_nodes)
        wanted = set(int(node_id) for node_id in node_ids)
        return [flow for flow in flows if node_id_of(flow_source(flow), seed, total_nodes) in wanted]
    except (TypeError, ValueError, OSError) as error:
        raise AnsibleFilterError("owned_flows: %s" % error)


def hash_node_ids(addresses, seed, total_nodes):
    """{address: the node id the cluster gives a flow from it} for IPv4 and IPv6 source addresses."""
    if isinstance(addresses, (str, bytes)) or not isinstance(addresses, (list, tuple)):
        raise AnsibleFilterError("hash_node_ids: expected a list of IPv4 or IPv6 addresses, got %r" % (addresses,))
    try:
        seed, total_nodes = int(seed), int(total_nodes)
        if total_nodes < 1:
            raise ValueError("total_nodes must be 1 or more, got %d" % total_nodes)
        return dict((address, node_id_of(address, seed, total_nodes)) for address in addresses)
    except (TypeError, ValueError, OSError) as error:
        raise AnsibleFilterError("hash_node_ids: %s" % error)


class FilterModule(object):
    def filters(self):
        return {
            "cluster_inputs": cluster_inputs,
            "node_plan": node_plan,
            "owned_flows": owned_flows,
            "hash_node_ids": hash_node_ids,
        }
