# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that judges every cluster of a play from its nodes' node_status_info reports.

cluster_health(hostvars, hosts, first, second)
    For each cluster among hosts (by their fwcluster_plan), the assessment of
    plugins/module_utils/cluster_health.py: table rows, problems, warnings.
    first and second name the host variables that hold the two samples
    registered from node_status_info.

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
    primary_backup, multipath or hash cluster) is one host per wave, as
    before. Returns a list of lists of host names.

Example:
    report: "{{ hostvars | fwcluster.netfilter.cluster_health(ansible_play_hosts_all, 'sample1', 'sample2') }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.filter.cluster import _plain
from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_health import assess


def cluster_health(hostvars, hosts, first, second):
    """{cluster name: assessment} for every cluster with a host among hosts."""
    if isinstance(hosts, str):
        raise AnsibleFilterError("cluster_health: hosts must be a list of host names")
    plans = {}
    samples = {}
    for host in hosts:
        host_vars = hostvars[host] if host in hostvars else {}
        plan = host_vars.get("fwcluster_plan")
        if plan is None:
            raise AnsibleFilterError("cluster_health: %s has no fwcluster_plan; run the fwcluster.netfilter.plan "
                                     "role first" % host)
        plan = _plain(plan)
        plans.setdefault(plan["name"], plan)
        samples.setdefault(plan["name"], ({}, {}))
        samples[plan["name"]][0][host] = _plain(host_vars.get(first))
        samples[plan["name"]][1][host] = _plain(host_vars.get(second))
    return dict((name, assess(plan, samples[name][0], samples[name][1])) for name, plan in plans.items())


def rollout_order(hostvars, hosts, sample):
    """hosts sorted by (VRRP instances this host is master of, node id, name); see the module docstring."""
    if isinstance(hosts, str):
        raise AnsibleFilterError("rollout_order: hosts must be a list of host names")

    def key(host):
        host_vars = hostvars[host] if host in hostvars else {}
        result = _plain(host_vars.get(sample)) or {}
        instances = (result.get("keepalived") or {}).get("instances") or []
        masters = len([instance for instance in instances if instance.get("state") == "MASTER"])
        node = _plain(host_vars.get("fwcluster_node")) or {}
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
        group = (_plain(host_vars.get("fwcluster_node")) or {}).get("redundancy_group")
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
        return {"cluster_health": cluster_health, "rollout_order": rollout_order, "rollout_waves": rollout_waves}
