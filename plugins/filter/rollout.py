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
    cluster without load balancers) is one host per wave. A cluster that
    carried no traffic when the run began (carried_traffic below: a new
    deployment) protects no service: all its hosts go in the first wave.
    Returns a list of lists of host names.

carried_traffic(hostvars, host, sample)
    Whether the cluster of host served when SAMPLE was read: some host of
    its plan (nodes and balancers) was master of a VRRP instance, or held
    one of the addresses it was asked about (the cluster's VIPs). A cluster
    none of whose hosts did held no gateway address, so no flow crossed it:
    a new deployment, or one whose every host is down.

rollout_report(hostvars, hosts, failed, check_mode=False)
    One line per cluster among hosts (by their fwcluster_plan), saying what
    site.yml did to it: the hosts it changed, nothing to change, or where a
    failure stopped it (the host, the step it failed: its checks, its dry run
    or its change) and the hosts that change left unchanged. failed: the
    hosts that failed in the run. In check mode, the hosts it would change.

Example:
    waves: "{{ hostvars | fwcluster.netfilter.rollout_waves(ansible_play_hosts_all, 'sample') }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plain import plain


def _sample(hostvars, host, sample):
    """The node_status_info result HOST registered as SAMPLE ({} when it has none)."""
    return plain((hostvars[host] if host in hostvars else {}).get(sample)) or {}


def _masters(result):
    """How many VRRP instances a node_status_info result says its node is master of."""
    instances = (result.get("keepalived") or {}).get("instances") or []
    return len([instance for instance in instances if instance.get("state") == "MASTER"])


def rollout_order(hostvars, hosts, sample):
    """hosts sorted by (VRRP instances this host is master of, node id, name); see the module docstring."""
    if isinstance(hosts, str):
        raise AnsibleFilterError("rollout_order: hosts must be a list of host names")

    def key(host):
        host_vars = hostvars[host] if host in hostvars else {}
        node = plain(host_vars.get("fwcluster_node")) or {}
        node_id = node.get("node_id")
        return (_masters(_sample(hostvars, host, sample)), node_id if isinstance(node_id, int) else 0, str(host))

    return sorted(hosts, key=key)


def _members(plan):
    """Every host a cluster plan names: its nodes and its load balancers."""
    return list(plan.get("nodes") or []) + list(plan.get("balancers") or [])


def carried_traffic(hostvars, host, sample):
    """Whether some host of HOST's cluster was serving when SAMPLE was read; see the module docstring."""
    host_vars = hostvars[host] if host in hostvars else {}
    cluster = plain(host_vars.get("fwcluster_plan")) or {}
    members = _members(cluster)
    if not members:
        return True     # no plan to name the cluster's hosts: assume a service, the safe side
    # Serving: master of a VRRP instance, or holding an address it was asked about (the VIPs).
    return any(_masters(result) or result.get("vips_held")
               for result in (_sample(hostvars, member, sample) for member in members))


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
        # A new deployment: no service to protect, every host at once.
        wave = taken.get(group, 0) if carried_traffic(hostvars, host, sample) else 0
        taken[group] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(host)
    return waves + alone


# The facts site.yml sets on a host as it passes each step.
STEP_FACTS = ("__fwcluster_checked", "__fwcluster_dry_run_done", "fwcluster_change_pending", "__fwcluster_deployed")


def _step_facts(hostvars, host):
    """Only the step facts of a host (its other variables are not templated)."""
    host_vars = hostvars[host] if host in hostvars else {}
    return dict((name, plain(host_vars.get(name))) for name in STEP_FACTS)


def _failed_step(host_vars):
    """Which step of site.yml a failed host failed, from the facts each step sets when it ends."""
    if not host_vars.get("__fwcluster_checked"):
        return "its checks"
    if not host_vars.get("__fwcluster_dry_run_done"):
        return "its dry run"
    return "its change"


def rollout_report(hostvars, hosts, failed, check_mode=False):
    """[line per cluster]: what site.yml changed, or where a failure stopped it; see the module docstring."""
    if isinstance(hosts, str) or isinstance(failed, str):
        raise AnsibleFilterError("rollout_report: hosts and failed must be lists of host names")
    clusters = {}
    for host in hosts:
        plan = plain((hostvars[host] if host in hostvars else {}).get("fwcluster_plan"))
        if isinstance(plan, dict) and plan.get("name"):
            clusters.setdefault(plan["name"], plan)
    lines = []
    for name in sorted(clusters):
        plan = clusters[name]
        members = sorted(host for host in _members(plan) if host in hosts)
        facts = dict((host, _step_facts(hostvars, host)) for host in members)
        pending = [host for host in members if facts[host].get("fwcluster_change_pending")]
        changed = [host for host in members if facts[host].get("__fwcluster_deployed")]
        broken = [host for host in members if host in failed]
        head = "%s (%s): " % (name, plan.get("architecture", "?"))
        if broken:
            untouched = [host for host in pending if host not in changed and host not in broken]
            failures = "; ".join("%s failed %s" % (host, _failed_step(facts[host])) for host in broken)
            lines.append(head + "STOPPED: " + failures
                         + ("; changed: %s" % ", ".join(changed) if changed else "")
                         + ("; left unchanged: %s" % ", ".join(untouched) if untouched else ""))
        elif check_mode:
            lines.append(head + ("would change %s" % ", ".join(pending) if pending else "nothing to change"))
        else:
            lines.append(head + ("changed %s" % ", ".join(changed) if changed else "nothing to change"))
    return lines


class FilterModule(object):
    def filters(self):
        return {"rollout_order": rollout_order, "rollout_waves": rollout_waves, "carried_traffic": carried_traffic,
                "rollout_report": rollout_report}
