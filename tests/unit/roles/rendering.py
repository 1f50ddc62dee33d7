"""Render the roles' templates from a cluster plan, as the roles do, and check files with a daemon's checker.

Shared by the template tests of every architecture.
"""

from __future__ import annotations

import json
import os
import subprocess

import jinja2

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "roles")

# The role defaults the templates read (roles/*/defaults/main.yml).
ROLE_DEFAULTS = {
    "fwcluster_keepalived_notify_script": "/etc/keepalived/fwcluster-notify.sh",
    "fwcluster_keepalived_state_file": "/run/fwcluster/vrrp-state",
    "fwcluster_conntrackd_config": "/etc/conntrackd/conntrackd.conf",
    "fwcluster_conntrackd_socket": "/var/run/conntrackd.ctl",
    "fwcluster_conntrackd_socket_buffer": 1249280,
    "fwcluster_conntrackd_netlink_buffer": 2097152,
    "fwcluster_conntrackd_netlink_buffer_max": 8388608,
    "fwcluster_conntrackd_hash_size": 32768,
    "fwcluster_conntrackd_hash_limit": 131072,
    "fwcluster_firewall_rules_dir": "/etc/fwcluster",
    "fwcluster_firewall_hash_state_dir": "/run/fwcluster",
    "fwcluster_firewall_hash_links_script": "/usr/local/sbin/fwcluster-hash-links",
    "fwcluster_balancer_script": "/usr/local/lib/fwcluster/balancer_health.py",
    "fwcluster_balancer_config": "/etc/fwcluster/balancer.json",
    "fwcluster_balancer_state_file": "/run/fwcluster/balancer-health.json",
    "ansible_managed": "Ansible managed",
}


def host_part(plan, host):
    """The host's part of the plan: a node's, or (sandwich) a load balancer's."""
    return plan["nodes"].get(host) or plan["balancers"][host]


def render(role, template, plan, host):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLES, role, "templates")),
        trim_blocks=True,  # Ansible's template module default
        undefined=jinja2.StrictUndefined,
    )
    env.filters["to_nice_json"] = lambda value, indent=4: json.dumps(value, indent=indent, sort_keys=True)
    context = dict(ROLE_DEFAULTS, fwcluster_plan=plan, fwcluster_node=host_part(plan, host), inventory_hostname=host)
    return env.get_template(template).render(**context)


def check(command, text, tmp_path):
    """Write text to a file and require command FILE to accept it."""
    path = tmp_path / "candidate"
    path.write_text(text)
    result = subprocess.run(command + [str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, "%s refused:\n%s\n%s\n--- file ---\n%s" % (
        " ".join(command), result.stdout, result.stderr, text)
