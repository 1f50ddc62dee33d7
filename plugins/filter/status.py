# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter that judges every cluster of a play from its nodes' node_status_info reports.

cluster_health(hostvars, hosts, first, second, rules=None, configs=None)
    For each cluster among hosts (by their fwcluster_plan), the assessment of
    plugins/module_utils/cluster_health.py: table rows, problems, warnings.
    first and second name the host variables that hold the two samples
    registered from node_status_info; rules, if given, the one registered
    from live_ruleset_info (drift is then a problem); configs, if given, the
    one holding {daemon file: whether it differs from the rendered one}.

fleet_table(assessments)
    The lines of one table with a row per cluster (state, nodes up, problems,
    warnings, rules digest) from cluster_health's result.

Example:
    report: "{{ hostvars | fwcluster.netfilter.cluster_health(ansible_play_hosts_all, 'sample1', 'sample2') }}"
    lines: "{{ report | fwcluster.netfilter.fleet_table }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_health import assess, fleet
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plain import plain


def cluster_health(hostvars, hosts, first, second, rules=None, configs=None):
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
        plan = plain(plan)
        plans.setdefault(plan["name"], plan)
        samples.setdefault(plan["name"], ({}, {}, {}, {}))
        samples[plan["name"]][0][host] = plain(host_vars.get(first))
        samples[plan["name"]][1][host] = plain(host_vars.get(second))
        if rules is not None:
            samples[plan["name"]][2][host] = plain(host_vars.get(rules))
        if configs is not None:
            samples[plan["name"]][3][host] = plain(host_vars.get(configs))
    return dict((name, assess(plan, samples[name][0], samples[name][1], samples[name][2] if rules is not None else None,
                              samples[name][3] if configs is not None else None))
                for name, plan in plans.items())


def fleet_table(assessments):
    """Text lines: a header, then one row per cluster of cluster_health's result."""
    if not hasattr(assessments, "items"):
        raise AnsibleFilterError("fleet_table: expects cluster_health's result, {cluster name: assessment}")
    return fleet(plain(assessments))


class FilterModule(object):
    def filters(self):
        return {"cluster_health": cluster_health, "fleet_table": fleet_table}
