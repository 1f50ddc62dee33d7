"""The example inventories of inventories/, as the cluster model takes them."""

from __future__ import annotations

import os

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_inventory(name, inventories=None):
    """(cluster variables, {node: host variables}, {balancer: host variables}) of inventories/NAME.

    The cluster variables are the one group_vars file of the cluster's group
    (group_vars/all/ holds the lab's connection settings, not the cluster's).
    inventories: another directory of inventories than the repository's.
    """
    base = os.path.join(inventories or os.path.join(REPO_ROOT, "inventories"), name)
    group_files = [entry for entry in sorted(os.listdir(os.path.join(base, "group_vars"))) if entry.endswith(".yml")]
    assert len(group_files) == 1, "inventories/%s: expected one cluster group_vars file, got %s" % (name, group_files)
    with open(os.path.join(base, "group_vars", group_files[0])) as handle:
        cluster = yaml.safe_load(handle)
    with open(os.path.join(base, "hosts.yml")) as handle:
        connection = _connection_vars(yaml.safe_load(handle))
    nodes, balancers = {}, {}
    for entry in sorted(os.listdir(os.path.join(base, "host_vars"))):
        with open(os.path.join(base, "host_vars", entry)) as handle:
            host_vars = yaml.safe_load(handle)
        host_vars.update(connection.get(entry[:-len(".yml")], {}))
        target = balancers if "fwcluster_balancer_side" in host_vars else nodes
        target[entry[:-len(".yml")]] = host_vars
    return cluster, nodes, balancers


def _connection_vars(group):
    """{host: {"ansible_host": ...}} from a YAML inventory's nested groups (the plan reads ansible_host)."""
    found = {}
    for host, host_vars in ((group or {}).get("hosts") or {}).items():
        if "ansible_host" in (host_vars or {}):
            found[host] = {"ansible_host": host_vars["ansible_host"]}
    for child in ((group or {}).get("children") or {}).values():
        found.update(_connection_vars(child))
    if "all" in (group or {}):
        found.update(_connection_vars(group["all"]))
    return found


def set_in_cluster(path, value):
    """A change (cluster, nodes) -> None that sets the cluster variable at PATH (a tuple of keys) to VALUE."""
    def mutate(cluster, nodes):
        target = cluster
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def ipv4_only(cluster, nodes, balancers=None):
    """A dual-stack example made IPv4 only: each VIP and address list keeps its IPv4 entry.

    A sandwich's balancers too (their front VIPs, routes, gateways and
    addresses), when given: then (cluster, nodes, balancers) is returned.
    """
    def first_ipv4(value):
        return next(entry for entry in value if ":" not in entry) if isinstance(value, list) else value
    for segment in cluster["fwcluster_segments"].values():
        segment["vip"] = first_ipv4(segment["vip"])
    for host_vars in nodes.values():
        host_vars["fwcluster_addresses"] = dict((name, first_ipv4(value))
                                                for name, value in host_vars["fwcluster_addresses"].items())
    if balancers is None:
        return cluster, nodes
    for side in ("inside", "outside"):
        spec = cluster.get("fwcluster_balancers", {}).get(side) or {}
        for key in ("vip", "gateway"):
            if key in spec:
                spec[key] = first_ipv4(spec[key])
        if "routes" in spec:
            spec["routes"] = [network for network in spec["routes"] if ":" not in network]
    ipv4_only(cluster, balancers)
    return cluster, nodes, balancers


# The IPv6 prefix of each segment of the primary_backup example made dual stack (as the inventory is).
DUAL_STACK_PREFIXES = {"inside": "2001:db8:1::", "outside": "2001:db8:2::"}
# ... and of the multipath example's.
MULTIPATH_PREFIXES = {"inside": "2001:db8:30:1::", "outside": "2001:db8:30:2::"}
# ... and of the hash example's (IPv6 needs its nftables backend).
HASH_PREFIXES = {"inside": "2001:db8:20:1::", "outside": "2001:db8:20:2::"}


def dual_stack(cluster, nodes, prefixes=None):
    """An example with an IPv6 VIP (PREFIX::fe/64) on each segment and each node's PREFIX::<id + 1>.

    prefixes: {segment: IPv6 prefix}, the primary_backup example's by default.
    Takes the example as written (dual stack already) or made IPv4 only.
    """
    prefixes = prefixes or DUAL_STACK_PREFIXES
    ipv4_only(cluster, nodes)
    for name, segment in cluster["fwcluster_segments"].items():
        segment["vip"] = [segment["vip"], prefixes[name] + "fe/64"]
    for host_vars in nodes.values():
        for name in list(host_vars["fwcluster_addresses"]):
            host_vars["fwcluster_addresses"][name] = [host_vars["fwcluster_addresses"][name], "%s%d/64" % (
                prefixes[name], host_vars["fwcluster_node_id"] + 1)]
