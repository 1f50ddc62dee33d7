"""rendering.render writes what Ansible's template module writes, byte for byte.

The template tests and the golden snapshot read files rendered by rendering.render, a plain
Jinja environment with the template module's settings. Here each file the roles write on
every host of the example inventories is rendered again by Ansible's own templating
(the engine behind the template module) and compared.
"""

from __future__ import annotations

import os

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core before 2.19 templates every string
    def trust_as_template(source):
        return source

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import ipv4_only, load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import (
    ROLES,
    host_part,
    render,
    template_context,
    templates_of,
)


def ansible_render(role, template, plan, host):
    """The file as Ansible's templating renders it (trim_blocks, trailing newlines kept)."""
    with open(os.path.join(ROLES, role, "templates", template)) as handle:
        source = handle.read()
    variables = template_context(plan, host)
    # ansible-core 2.19 templates only strings marked as trusted; a role's template file is.
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
@pytest.mark.parametrize("name", ["primary_backup", "multipath", "hash", "sandwich"])
def test_render_is_what_ansible_writes(name, backend):
    cluster, nodes, balancers = load_inventory(name)
    if name == "hash" and backend == "iptables":  # a hash cluster's IPv6 VIPs need nftables
        cluster, nodes = ipv4_only(cluster, nodes)
    cluster = dict(cluster, fwcluster_backend=backend)
    plan = build_plan(cluster, nodes, balancers or None)
    compared = 0
    for host in sorted(list(plan["nodes"]) + list(plan.get("balancers", {}))):
        for role, template in templates_of(plan, host_part(plan, host)):
            assert render(role, template, plan, host) == ansible_render(role, template, plan, host), (host, template)
            compared += 1
    assert compared >= 5 * len(plan["nodes"])  # the rules, the units and the daemons' files


def test_a_file_ends_as_its_template_does():
    # Jinja alone drops a template's final newline; the template module keeps it.
    cluster, nodes, _balancers = load_inventory("primary_backup")
    plan = build_plan(cluster, nodes)
    with open(os.path.join(ROLES, "conntrackd", "templates", "conntrackd.conf.j2")) as handle:
        assert handle.read().endswith("}\n")
    assert render("conntrackd", "conntrackd.conf.j2", plan, "pb-fw1").endswith("}\n")
