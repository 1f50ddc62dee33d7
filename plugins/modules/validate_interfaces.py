#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_interfaces
short_description: Check that a node has the interfaces and addresses its plan uses
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - The node's live check of its segments, before any change. It changes nothing.
  - Every interface the plan uses on the node (one per segment; a load balancer's toward the firewalls and
    toward its front network) must exist, be up, and hold the node's address on it with its prefix.
  - The replication link is checked by M(fwcluster.netfilter.validate_replication_link), which also asks
    every peer.
  - Every failure names the host, the variable and what is wrong, and lists every other interface that is
    wrong too.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The checks only read; check mode runs the same checks.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Needs Linux (C(/sys/class/net), C(ip) from iproute2).
options:
  name:
    description:
      - The node's inventory name, used in messages. Defaults to the node's host name.
    type: str
  interfaces:
    description:
      - What each interface is for (a segment's name) to the interface's name on this node (the plan's
        C(nodes[host].interfaces)).
    type: dict
    required: true
  addresses:
    description:
      - What each interface is for to the node's address on it, with prefix (the plan's C(nodes[host].addresses)).
        Every key of O(interfaces) needs one.
    type: dict
    required: true
seealso:
  - module: fwcluster.netfilter.validate_replication_link
  - module: fwcluster.netfilter.validate_node_ids
"""

EXAMPLES = r"""
- name: Check the interfaces of the node's segments
  fwcluster.netfilter.validate_interfaces:
    name: "{{ inventory_hostname }}"
    interfaces: "{{ fwcluster_node.interfaces }}"
    addresses: "{{ fwcluster_node.addresses }}"
"""

RETURN = r"""
interfaces:
  description: Every interface checked, by what it is for.
  returned: always
  type: dict
  contains:
    interface:
      description: The interface's name on the node.
      type: str
    operstate:
      description: Its operational state (C(/sys/class/net/IF/operstate)); null when it does not exist.
      type: str
    addresses:
      description: The IPv4 addresses with prefix it holds.
      type: list
      elements: str
    problem:
      description: What is wrong with it; null when nothing is.
      type: str
  sample:
    inside: {interface: eth1, operstate: up, addresses: [10.10.1.1/24], problem: null}
    outside: {interface: lan9, operstate: null, addresses: [], problem: interface lan9 does not exist on this node}
host:
  description: The host that failed the check.
  returned: failure
  type: str
  sample: pb-fw1
variable:
  description: The variable of the first interface found wrong.
  returned: failure
  type: str
  sample: fwcluster_interfaces.outside
rule:
  description: What is wrong with it.
  returned: failure
  type: str
  sample: interface lan9 does not exist on this node
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_links import (
    LinkError,
    interface_addresses,
    interface_state,
)


def check_interface(module, host, purpose, interface, wanted):
    """{interface, operstate, addresses, problem} of one interface; raises nothing."""
    found = {"interface": interface, "operstate": None, "addresses": [], "problem": None}
    try:
        found["operstate"] = interface_state(host, interface, "fwcluster_interfaces.%s" % purpose)
        found["addresses"] = interface_addresses(module, host, interface, "fwcluster_interfaces.%s" % purpose)
    except LinkError as error:
        found["problem"] = error.rule
        found["variable"] = error.variable
        return found
    if wanted not in found["addresses"]:
        found["problem"] = "%s is not configured on %s (it holds %s)" % (
            wanted, interface, ", ".join(found["addresses"]) or "no IPv4 address")
        found["variable"] = "fwcluster_addresses.%s" % purpose
    return found


def check_node(module):
    params = module.params
    host = params["name"] or socket.gethostname()
    interfaces, addresses = params["interfaces"], params["addresses"]
    missing = sorted(set(interfaces) - set(addresses))
    if missing:
        raise LinkError(host, "fwcluster_addresses.%s" % missing[0], "no address given for the %s interface %s"
                        % (missing[0], interfaces[missing[0]]))
    result = {}
    for purpose in sorted(interfaces):
        result[purpose] = check_interface(module, host, purpose, str(interfaces[purpose]), str(addresses[purpose]))
    wrong = [purpose for purpose in sorted(result) if result[purpose]["problem"]]
    if wrong:
        first = result[wrong[0]]
        also = ["%s: %s" % (purpose, result[purpose]["problem"]) for purpose in wrong[1:]]
        raise LinkError(host, first["variable"], first["problem"] + (" (also %s)" % "; ".join(also) if also else ""),
                        {"interfaces": _returned(result)})
    return {"interfaces": _returned(result)}


def _returned(result):
    return dict((purpose, dict((key, value) for key, value in found.items() if key != "variable"))
                for purpose, found in result.items())


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            interfaces=dict(type="dict", required=True),
            addresses=dict(type="dict", required=True),
        ),
        supports_check_mode=True,
    )
    try:
        result = check_node(module)
    except LinkError as error:
        module.fail_json(msg=str(error), host=error.host, variable=error.variable, rule=error.rule, **error.result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
