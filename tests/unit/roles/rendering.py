"""Render the roles' templates from a cluster plan, as the roles do, and check files with a daemon's checker.

Shared by the template tests of every architecture.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess

import jinja2
import yaml

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "roles")


def _role_defaults():
    """Every role's defaults (roles/*/defaults/main.yml), read from the files so a test renders what a run would."""
    defaults = {"ansible_managed": "Ansible managed"}
    for path in sorted(glob.glob(os.path.join(ROLES, "*", "defaults", "main.yml"))):
        with open(path) as handle:
            defaults.update(yaml.safe_load(handle) or {})
    return defaults


ROLE_DEFAULTS = _role_defaults()


def host_part(plan, host):
    """The host's part of the plan: a node's, or (sandwich) a load balancer's."""
    return plan["nodes"].get(host) or plan["balancers"][host]


def render(role, template, plan, host, **overrides):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLES, role, "templates")),
        trim_blocks=True,  # Ansible's template module default
        undefined=jinja2.StrictUndefined,
    )
    env.filters["to_nice_json"] = lambda value, indent=4: json.dumps(value, indent=indent, sort_keys=True)
    context = dict(ROLE_DEFAULTS, fwcluster_plan=plan, fwcluster_node=host_part(plan, host), inventory_hostname=host)
    context.update(overrides)  # a variable the inventory sets over a role default
    return env.get_template(template).render(**context)


def check(command, text, tmp_path):
    """Write text to a file and require command FILE to accept it."""
    path = tmp_path / "candidate"
    path.write_text(text)
    result = subprocess.run(command + [str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, "%s refused:\n%s\n%s\n--- file ---\n%s" % (
        " ".join(command), result.stdout, result.stderr, text)


def check_conntrackd(text, tmp_path):
    """Require conntrackd to parse text as its configuration.

    conntrackd has no check-only option: ``-s`` (print statistics) reads the
    whole file first, then fails to reach the daemon's socket. A file it can
    parse ends in that connection error; one it cannot, in a parser error.
    """
    path = tmp_path / "conntrackd.conf"
    path.write_text(text)
    result = subprocess.run(["conntrackd", "-C", str(path), "-s"], capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "[ERROR]" in line and "can't connect" not in line]
    assert "can't connect" in output and not errors, "conntrackd refused:\n%s\n--- file ---\n%s" % (output, text)
