"""Every task that can change a host notifies "fwcluster change pending".

site.yml runs the roles in check mode on every host first and rolls out only
the hosts whose tasks notified that topic: a changing task that forgot it
would leave its host out of the rollout, its change never made.
"""

from __future__ import annotations

import glob
import os

import pytest
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir)
ROLES = ("firewall", "conntrackd", "keepalived", "balancer")
TOPIC = "fwcluster change pending"
# Modules that change the host in these roles; a systemd_service task only
# with state or enabled (without, it reads the unit's status).
CHANGING = {"ansible.builtin.apt", "ansible.builtin.template", "ansible.builtin.copy",
            "ansible.builtin.file", "ansible.posix.sysctl", "ansible.builtin.systemd_service",
            "fwcluster.netfilter.rendered_files"}
# Modules that only read, and the plays' own control flow.
READING = {"ansible.builtin.assert", "ansible.builtin.stat", "ansible.builtin.include_role", "ansible.builtin.include_tasks", "ansible.builtin.import_tasks",
           "ansible.builtin.meta", "ansible.builtin.set_fact", "fwcluster.netfilter.validate_replication_link",
           "fwcluster.netfilter.validate_interfaces"}
KEYWORDS = {"name", "when", "register", "notify", "loop", "loop_control", "changed_when", "failed_when",
            "until", "retries", "delay", "delegate_to", "run_once", "vars", "listen", "tags", "check_mode",
            "ignore_unreachable"}


def role_tasks():
    for role in ROLES:
        for path in sorted(glob.glob(os.path.join(ROOT, "roles", role, "tasks", "*.yml"))):
            with open(path) as handle:
                for task in yaml.safe_load(handle) or []:
                    yield "%s/%s: %s" % (role, os.path.basename(path), task["name"]), task


def module_of(task):
    modules = [key for key in task if key not in KEYWORDS]
    assert len(modules) == 1, "cannot tell the module of %r" % task
    return modules[0]


def notifies(task):
    notify = task.get("notify") or []
    return TOPIC in ([notify] if isinstance(notify, str) else notify)


def changes(task):
    module = module_of(task)
    if task.get("changed_when") is False or task.get("check_mode") is True:
        return False    # check_mode: true, a comparison that writes nothing (the status's drift)
    if "changed_when" in task:
        return True     # a condition that can be true: a read that finds something to change (drift)
    if module == "ansible.builtin.systemd_service":
        return bool({"state", "enabled"} & set(task[module]))
    if module in CHANGING:
        return True
    if module in ("ansible.builtin.command", "ansible.builtin.shell"):
        return True
    assert module in READING, "%s: a module this test does not know: %s" % (task["name"], module)
    return False


@pytest.mark.parametrize("label,task", list(role_tasks()), ids=lambda value: value if isinstance(value, str) else "")
def test_a_changing_task_notifies_the_pending_change(label, task):
    if changes(task):
        assert notifies(task), "%s can change the host but does not notify %r" % (label, TOPIC)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_listens_to_the_pending_change(role):
    with open(os.path.join(ROOT, "roles", role, "handlers", "main.yml")) as handle:
        handlers = yaml.safe_load(handle)
    listening = [h for h in handlers if h.get("listen") == TOPIC]
    assert len(listening) == 1
    assert listening[0]["ansible.builtin.set_fact"] == {"fwcluster_change_pending": True}


def test_the_check_catches_a_task_without_the_topic():
    task = {"name": "Render a file", "ansible.builtin.template": {"src": "a.j2", "dest": "/etc/a"}}
    assert changes(task) and not notifies(task)
    assert changes(dict(task, notify=["Reload it", TOPIC])) and notifies(dict(task, notify=["Reload it", TOPIC]))
    assert not changes(dict(task, changed_when=False))
