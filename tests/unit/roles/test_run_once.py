"""A run_once task of the roles and playbooks serves every cluster of the play, not only the first host's.

run_once runs a task on the first host of the batch: its own fwcluster_plan and
fwcluster_node are that host's cluster's. A fleet (several clusters in one
play) got keepalived started on the first cluster's nodes only that way, found
by the fleet lab. A run_once task reads the plans through hostvars (or the
hosts' facts by name), never the bare variables.
"""

from __future__ import annotations

import glob
import os
import re

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir)
# fwcluster_plan or fwcluster_node used as the running host's own variable: not an attribute
# (hostvars[h].fwcluster_plan), not a name in quotes (selectattr('fwcluster_node.keepalived')).
BARE = re.compile(r"(?<![.\w'\"])fwcluster_(plan|node)\b")


def tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always", "tasks"):
            yield from tasks(task.get(key))


def run_once_tasks():
    paths = glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml")) + \
        glob.glob(os.path.join(ROOT, "playbooks", "*.yml")) + glob.glob(os.path.join(ROOT, "playbooks", "tasks", "*.yml"))
    found = []
    for path in sorted(paths):
        with open(path, encoding="utf-8") as handle:
            for task in tasks(yaml.safe_load(handle)):
                if task.get("run_once"):
                    found.append((os.path.relpath(path, ROOT), task))
    return found


def test_there_are_run_once_tasks():
    assert len(run_once_tasks()) >= 8


def test_no_run_once_task_reads_the_first_hosts_plan():
    # The plan role's own validation is the exception that proves the rule: it builds every cluster's plan.
    readers = [(path, task.get("name")) for path, task in run_once_tasks()
               if not path.startswith(os.path.join("roles", "plan"))
               and BARE.search(yaml.safe_dump(dict((key, value) for key, value in task.items() if key != "name")))]
    assert readers == []


def test_the_rule_catches_the_bare_variable():
    assert BARE.search("loop: '{{ fwcluster_plan.nodes.values() | list }}'")
    assert not BARE.search("loop: \"{{ hostvars[h].fwcluster_plan.nodes }}\"")
    assert not BARE.search("loop: \"{{ hosts | selectattr('fwcluster_node.keepalived') }}\"")
