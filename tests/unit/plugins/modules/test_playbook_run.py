"""The filters and both validators through ansible-playbook on localhost: module packaging included."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import ansible_collections.fwcluster.netfilter as collection

PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
INVENTORY = os.path.join(list(collection.__path__)[0], "inventories", "primary_backup", "hosts.yml")

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


@pytest.mark.skipif(not os.path.exists(PLAYBOOK_BIN), reason="ansible-playbook is not installed beside pytest")
def test_playbook(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(python=sys.executable))
    root = os.path.dirname(os.path.dirname(os.path.dirname(list(collection.__path__)[0])))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root, ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    completed = subprocess.run([PLAYBOOK_BIN, "-i", INVENTORY, str(playbook)], cwd=str(tmp_path), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    output = completed.stdout.decode()
    assert completed.returncode == 0, output
    assert "PRIORITY=254 PEER=192.168.100.2 LINK=lo/unknown" in output
    assert "PRIORITY=250 PEER=192.168.100.1 LINK=lo/unknown" in output


@pytest.mark.skipif(not os.path.exists(PLAYBOOK_BIN), reason="ansible-playbook is not installed beside pytest")
@pytest.mark.parametrize("architecture, node", [("sandwich", "sw-fw1"), ("multipath", "mp-fw1")])
def test_switchover_refuses_other_architectures(tmp_path, architecture, node):
    """playbooks/switchover.yml on the example inventory stops before any change, naming the variable."""
    base = list(collection.__path__)[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(base)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root, ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    completed = subprocess.run(
        [PLAYBOOK_BIN, "-i", os.path.join(base, "inventories", architecture, "hosts.yml"),
         os.path.join(base, "playbooks", "switchover.yml"), "-e", "fwcluster_switchover_node=" + node,
         "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=" + sys.executable],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    output = completed.stdout.decode()
    assert completed.returncode != 0, output
    assert "fwcluster_architecture: cluster" in output and "is %s" % architecture in output, output
    assert "which has no planned switchover" in output
    assert "changed=0" in output and "changed=1" not in output
    assert "Stop keepalived" not in output
