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


def _role_vars():
    """Every role's vars (roles/*/vars/main.yml): constants of the roles, some made of their defaults."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROLES, "*", "vars", "main.yml"))):
        with open(path) as handle:
            found.update(yaml.safe_load(handle) or {})
    return found


ROLE_VARS = _role_vars()


def _resolved(value, env, context):
    """A role variable as Ansible reads it: its strings templated with the context (nested mappings too)."""
    if isinstance(value, dict):
        return dict((key, _resolved(item, env, context)) for key, item in value.items())
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(**context)
    return value


def host_part(plan, host):
    """The host's part of the plan: a node's, or (sandwich) a load balancer's."""
    return plan["nodes"].get(host) or plan["balancers"][host]


def templates_of(plan, node):
    """[(role, template)] the roles write on a host with this part of the plan, in the roles' order.

    The conditions are those of the roles' lists of files (``__fwcluster_*_files`` in
    roles/*/vars/main.yml) and of their tasks, as site.yml runs them on every host:
    firewall, conntrackd, keepalived, balancer.
    """
    if plan["backend"] == "nftables":
        templates = [("firewall", "rules.nft.j2")]
    else:
        templates = [("firewall", "rules.v4.j2"), ("firewall", "rules.v6.j2")]
    templates.extend([("firewall", "sysctl.conf.j2"), ("firewall", "fwcluster-netfilter.service.j2")])
    if "hash" in node:  # fwcluster_node.hash is defined
        templates.extend([("firewall", "fwcluster-hash-owner.j2"), ("firewall", "fwcluster-hash-links.j2"),
                          ("firewall", "fwcluster-hash-links.service.j2")])
    # every node: with no routes, the script removes what an earlier plan set
    templates.extend([("firewall", "fwcluster-routes.j2"), ("firewall", "fwcluster-routes.service.j2")])
    if node["replication"] is not None:
        templates.extend([("conntrackd", "conntrackd.conf.j2"), ("conntrackd", "fwcluster-resync-gate.sh.j2"),
                          ("conntrackd", "conntrackd-dropin.conf.j2"), ("conntrackd", "fwcluster-heartbeat.service.j2")])
    if node["keepalived"] is not None:
        notify = "fwcluster-notify-hash.sh.j2" if "hash" in node else "fwcluster-notify.sh.j2"
        templates.append(("keepalived", notify))
        for script in node["keepalived"].get("scripts", []):
            templates.append(("keepalived", ROLE_VARS["__fwcluster_keepalived_checks"][script["name"]]["src"]))
        templates.extend([("keepalived", "keepalived-dropin.conf.j2"),
                          ("keepalived", "keepalived.conf.j2")])
    if node.get("balancer") is not None:
        templates.extend([("balancer", "balancer.json.j2"), ("balancer", "fwcluster-balancer.service.j2")])
    return templates


def _environment(role):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLES, role, "templates")),
        trim_blocks=True,  # Ansible's template module default
        undefined=jinja2.StrictUndefined,
    )
    env.filters["to_nice_json"] = lambda value, indent=4: json.dumps(value, indent=indent, sort_keys=True)
    return env


def template_context(plan, host, **overrides):
    """The variables a role's template sees on host: role defaults, overrides, the plan, the role vars it reads."""
    context = dict(ROLE_DEFAULTS, fwcluster_plan=plan, fwcluster_node=host_part(plan, host), inventory_hostname=host)
    context.update(overrides)  # a variable the inventory sets over a role default
    # The mappings of role vars the templates read (a role var made of a whole
    # expression, such as a list of the role's files, is the tasks' business;
    # so are the files themselves, whose content is a template lookup).
    env = _environment("keepalived")
    context.update((name, _resolved(value, env, context)) for name, value in ROLE_VARS.items()
                   if isinstance(value, dict) and "lookup(" not in json.dumps(value))
    return context


def render(role, template, plan, host, **overrides):
    env = _environment(role)
    context = template_context(plan, host, **overrides)
    text = env.get_template(template).render(**context)
    # Jinja drops the source's final newline; Ansible's templating puts back as many
    # newlines as the source ends with (ansible.template, preserve_trailing_newlines),
    # so the file a role writes ends as its template does.
    source = env.loader.get_source(env, template)[0]
    missing = _trailing_newlines(source) - _trailing_newlines(text)
    return text + "\n" * missing if missing > 0 else text


def _trailing_newlines(text):
    return len(text) - len(text.rstrip("\n"))


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
