"""Fixtures of the lab's testinfra tests (molecule/SCENARIO/tests/).

molecule/shared/testinfra.yml runs pytest with this plugin (``-p lab_fixtures``)
and testinfra's ansible backend over Molecule's inventory: each test reaches its
node over SSH as Ansible does (the inventory's address, the lab run's key, the
lab's known_hosts with StrictHostKeyChecking=yes). The expectation is the
cluster plan, which that playbook computes and writes as JSON
(FWCLUSTER_LAB_PLAN), and the image each lab host was created from
(FWCLUSTER_LAB_IMAGES).
"""

from __future__ import annotations

import json
import os

import pytest
import testinfra


@pytest.fixture(scope="session")
def plan():
    """The cluster plan (the plan role's fwcluster_plan)."""
    with open(os.environ["FWCLUSTER_LAB_PLAN"]) as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def images():
    """{lab host: the image it was created from} (localhost/fwcluster-node:RELEASE)."""
    return json.loads(os.environ["FWCLUSTER_LAB_IMAGES"])


@pytest.fixture(scope="module")
def name(host):
    """The node's inventory name."""
    return host.ansible.get_variables()["inventory_hostname"]


@pytest.fixture(scope="module")
def addresses(host):
    """The node's addresses of both families, without prefix."""
    return [line.split()[3].split("/")[0] for line in host.check_output("ip -o addr show").splitlines()]


@pytest.fixture(scope="module")
def unit_state(host):
    """unit_state(UNIT): systemctl is-active's answer (active, inactive, failed...)."""
    return lambda unit: host.run("systemctl is-active %s", unit).stdout.strip()


@pytest.fixture(scope="session")
def lab_hosts(request):
    """{inventory name: testinfra Host} of every host of the inventory, reached as the tests' own host is.

    For the tests that sample the whole cluster at once (one wait for all
    nodes instead of one per node).
    """
    option = request.config.option
    hosts = testinfra.get_hosts(["ansible://all"], connection=option.connection, ssh_config=option.ssh_config,
                                ssh_identity_file=option.ssh_identity_file, sudo=option.sudo,
                                sudo_user=option.sudo_user, ansible_inventory=option.ansible_inventory,
                                force_ansible=option.force_ansible)
    return {each.backend.get_hostname(): each for each in hosts}
