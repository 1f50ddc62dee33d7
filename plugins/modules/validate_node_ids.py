#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_node_ids
short_description: Check every cluster's inventory and build its cluster plan, before any host is touched
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - The node-id validator. Run it once on the controller (delegated to C(localhost), with C(run_once)) on the
    output of the P(fwcluster.netfilter.cluster_inputs#filter) filter, before any task changes a node.
  - For each cluster it runs the cluster model, which checks the node ids (integers, unique, exactly 0..n-1,
    2 <= n <= 32), the architecture, the segments, VIPs and VRIDs, the nodes' addresses and interfaces, the
    replication link, the policy and the NAT entries, and the host names and every other name that reaches a
    rendered file, and builds the cluster plan the roles print.
  - Then it checks the clusters together, where the play deploys more than one; clusters whose networks overlap
    must not use the same VRID or the same VIP there.
  - On the first broken rule it fails, naming the host (C(cluster NAME) for group variables), the variable and the
    rule. It changes nothing anywhere.
  - The plan's structure is documented in C(docs/cluster-plan.md) of the collection.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads its arguments; check mode runs the same checks.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  clusters:
    description:
      - Cluster name to C({cluster, nodes}), as returned by the P(fwcluster.netfilter.cluster_inputs#filter) filter.
      - C(cluster) holds the cluster's group variables (C(fwcluster_architecture), C(fwcluster_name),
        C(fwcluster_segments), C(fwcluster_replication), C(fwcluster_vrrp), C(fwcluster_policy), C(fwcluster_nat),
        C(fwcluster_management), C(fwcluster_hash_seed), C(fwcluster_balancers)).
      - C(nodes) maps each member's inventory name to its host variables (C(fwcluster_node_id),
        C(fwcluster_addresses), C(fwcluster_replication_address), C(fwcluster_interfaces)).
      - C(balancers), optional, maps each sandwich load balancer (a host with C(fwcluster_balancer_side)) to its
        host variables (C(fwcluster_balancer_side), C(fwcluster_node_id), C(fwcluster_addresses),
        C(fwcluster_interfaces)); only a C(sandwich) cluster may have them.
    type: dict
    required: true
notes:
  - The plan is pure Python (C(plugins/module_utils/plan/)); every rule of the inventory is checked there once,
    the replication settings included (the replication-link validator then checks each node's link live).
seealso:
  - module: fwcluster.netfilter.validate_replication_link
"""

EXAMPLES = r"""
- name: Check the inventory and build the cluster plans
  fwcluster.netfilter.validate_node_ids:
    clusters: "{{ hostvars | fwcluster.netfilter.cluster_inputs(groups['all'], ansible_play_hosts_all) }}"
  delegate_to: localhost
  run_once: true
  register: fwcluster_validation

- name: Keep each node's part of its plan
  ansible.builtin.set_fact:
    fwcluster_plan: "{{ fwcluster_validation.plans[fwcluster_name] }}"
    fwcluster_node: "{{ fwcluster_validation.plans[fwcluster_name].nodes[inventory_hostname] }}"
"""

RETURN = r"""
plans:
  description: Cluster name to its cluster plan (see C(docs/cluster-plan.md)).
  returned: success
  type: dict
  sample:
    edge:
      name: edge
      architecture: primary_backup
      segments:
        inside: {vip: 10.10.1.254/24, vip_address: 10.10.1.254, network: 10.10.1.0/24, prefix: 24, vrid: 51}
      vrrp: {advert_int: 1.0, version: 3, unicast: false, preempt: false, failover_bound: 4.0}
      replication: {transport: udp, mode: ftfw, port: 3780, network: 192.168.100.0/24, multicast_group: null}
      nodes:
        pb-fw1: {name: pb-fw1, node_id: 0, role: primary}
host:
  description: The host whose variable breaks a rule, or C(cluster NAME) for a group variable.
  returned: failure
  type: str
  sample: pb-fw2
variable:
  description: The variable that breaks the rule.
  returned: failure
  type: str
  sample: fwcluster_node_id
rule:
  description: The rule broken.
  returned: failure
  type: str
  sample: node id 0 is already used by pb-fw1; ids must be unique
cluster:
  description: The cluster whose plan could not be built.
  returned: failure
  type: str
  sample: edge
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plans


def main():
    module = AnsibleModule(
        argument_spec=dict(clusters=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    try:
        plans = build_plans(module.params["clusters"])
    except PlanError as error:
        module.fail_json(msg=str(error), host=error.host, variable=error.variable, rule=error.rule,
                         cluster=getattr(error, "cluster", None))
    module.exit_json(changed=False, plans=plans)


if __name__ == "__main__":
    main()
