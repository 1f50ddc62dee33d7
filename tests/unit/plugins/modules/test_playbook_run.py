"""The filters and both validators through ansible-playbook on localhost: module packaging included."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.fwcluster.netfilter.tests.unit.playbooks import (
    COLLECTION, MISSING, MISSING_REASON, run_playbook)

INVENTORY = os.path.join(COLLECTION, "inventories", "primary_backup", "hosts.yml")

PLAYBOOK = """
- hosts: edge
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{python}"
  tasks:
    - name: Build the plans
      fwcluster.netfilter.validate_node_ids:
        clusters: "{{{{ hostvars | fwcluster.netfilter.cluster_inputs(groups['all'], ansible_play_hosts_all) }}}}"
      delegate_to: localhost
      run_once: true
      register: validation
    - name: Pick this node's plan
      ansible.builtin.set_fact:
        fwcluster_node: "{{{{ validation.plans | fwcluster.netfilter.node_plan(fwcluster_name, inventory_hostname) }}}}"
    - name: Check a link (the loopback interface stands in for the replication link)
      fwcluster.netfilter.validate_replication_link:
        name: "{{{{ inventory_hostname }}}}"
        interface: lo
        address: 127.0.0.1
        prefix: 8
      register: link
    - name: Show what a template would print
      ansible.builtin.debug:
        msg: >-
          PRIORITY={{{{ fwcluster_node.keepalived.instances[0].priority }}}}
          PEER={{{{ fwcluster_node.replication.peers[0] }}}} LINK={{{{ link.interface }}}}/{{{{ link.operstate }}}}
"""


@pytest.mark.skipif(MISSING, reason=MISSING_REASON)
def test_playbook(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(python=sys.executable))
    returncode, output = run_playbook(tmp_path, INVENTORY, playbook)
    assert returncode == 0, output
    assert "PRIORITY=254 PEER=192.168.100.2 LINK=lo/unknown" in output
    assert "PRIORITY=250 PEER=192.168.100.1 LINK=lo/unknown" in output


@pytest.mark.skipif(MISSING, reason=MISSING_REASON)
@pytest.mark.parametrize("architecture, node", [("sandwich", "sw-fw1"), ("multipath", "mp-fw1")])
def test_switchover_refuses_other_architectures(tmp_path, architecture, node):
    """playbooks/switchover.yml on the example inventory stops before any change, naming the variable."""
    returncode, output = run_playbook(
        tmp_path, os.path.join(COLLECTION, "inventories", architecture, "hosts.yml"),
        os.path.join(COLLECTION, "playbooks", "switchover.yml"), "-e", "fwcluster_switchover_node=" + node,
        "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=" + sys.executable)
    assert returncode != 0, output
    assert "fwcluster_architecture: cluster" in output and "is %s" % architecture in output, output
    assert "which has no planned switchover" in output
    assert "changed=0" in output and "changed=1" not in output
    assert "Stop keepalived" not in output
