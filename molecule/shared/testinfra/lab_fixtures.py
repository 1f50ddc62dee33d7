"""Fixtures of the lab's testinfra tests (molecule/SCENARIO/tests/).

molecule/shared/testinfra.yml runs pytest with this plugin (``-p lab_fixtures``)
and testinfra's ansible backend over Molecule's inventory: each test reaches its
node over SSH as Ansible does (the inventory's address, the lab run's key, the
lab's known_hosts with StrictHostKeyChecking=yes). The expectation is the
cluster plan, which that playbook computes and writes as JSON
(FWCLUSTER_LAB_PLAN).
"""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture(scope="session")
def plan():
    """The cluster plan (the plan role's fwcluster_plan)."""
    with open(os.environ["FWCLUSTER_LAB_PLAN"]) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def name(host):
    """The node's inventory name."""
    return host.ansible.get_variables()["inventory_hostname"]


@pytest.fixture(scope="module")
def addresses(host):
    """The node's IPv4 addresses, without prefix."""
    return [line.split()[3].split("/")[0] for line in host.check_output("ip -4 -o addr show").splitlines()]


@pytest.fixture(scope="module")
def unit_state(host):
    """unit_state(UNIT): systemctl is-active's answer (active, inactive, failed...)."""
    return lambda unit: host.run("systemctl is-active %s", unit).stdout.strip()
