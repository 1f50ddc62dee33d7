# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that order a rollout: which host site.yml changes when.

rollout_order(hostvars, hosts, sample)
    The hosts in the order site.yml changes them, one at a time: nodes that
    are master of no VRRP instance first, then by how many instances they are
    master of, then by node id; so the current primary is changed last and
    the cluster never loses its serving node to a bad change first.

rollout_waves(hostvars, hosts, sample)
    The same order cut into waves that site.yml changes together: a wave
    holds at most one host of each redundancy group (the plan's
    redundancy_group: the nodes of a cluster, each side's balancer pair), so
    no change ever takes two hosts that back each other up at once. Wave k
    holds the k-th host of every group in rollout_order; a single group (a
    cluster without load balancers) is one host per wave. Returns a list of lists of host names.

Example:
    waves: "{{ hostvars | fwcluster.netfilter.rollout_waves(ansible_play_hosts_all, 'sample') }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plain import plain


def rollout_order(hostvars, hosts, sample):
    """hosts sorted by (VRRP instances this host is master of, node id, name); see the module docstring."""
    if isinstance(hosts, str):
        raise AnsibleFilterError("rollout_order: hosts must be a list of host names")

    def key(host):
        host_vars = hostvars[host] if host in hostvars else {}
        result = plain(host_vars.get(sample)) or {}
        instances = (result.get("keepalived") or {}).get("instances") or []
        masters = len([instance for instance in instances if instance.get("state") == "MASTER"])
        node = plain(host_vars.get("fwcluster_node")) or {}
        node_id = node.get("node_id")
        return (masters, node_id if isinstance(node_id, int) else 0, str(host))

    return sorted(hosts, key=key)


def rollout_waves(hostvars, hosts, sample):
    """rollout_order cut into waves of at most one host per redundancy group; see the module docstring."""
    if isinstance(hosts, str):
        raise AnsibleFilterError("rollout_waves: hosts must be a list of host names")
    waves = []
    alone = []      # a host whose plan names no redundancy group shares its wave with nobody
    taken = {}      # redundancy group -> how many of its hosts are placed (the wave of the next one)
    for host in rollout_order(hostvars, hosts, sample):
        host_vars = hostvars[host] if host in hostvars else {}
        group = (plain(host_vars.get("fwcluster_node")) or {}).get("redundancy_group")
        if not isinstance(group, str) or not group:
            alone.append([host])
            continue
        wave = taken.get(group, 0)
        taken[group] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(host)
    return waves + alone


class FilterModule(object):
    def filters(self):
        return {"rollout_order": rollout_order, "rollout_waves": rollout_waves}
