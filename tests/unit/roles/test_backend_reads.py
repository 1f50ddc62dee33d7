"""Every task of the roles that reads a node's owned ids or replication counters says which backend wrote them.

node_status_info reads them from iptables unless told otherwise (backend=nftables):
a role that reads ownership without passing the plan's backend waits forever on
an nftables cluster (as the switchover's drain once did, found by the lab's cross product).
"""

from __future__ import annotations

import glob
import os

import yaml

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "roles")
MODULE = "fwcluster.netfilter.node_status_info"


def tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def reads_of_the_rules():
    found = []
    for path in sorted(glob.glob(os.path.join(ROLES, "*", "tasks", "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            for task in tasks(yaml.safe_load(handle)):
                if MODULE not in task:
                    continue
                register = task.get("register", "")
                # what the task and the others do with its result: the owned ids, the per-peer counters
                text = yaml.safe_dump(task) + open(path, encoding="utf-8").read()
                if register and any("%s.%s" % (register, part) in text for part in ("cluster", "tracking")):
                    found.append((os.path.relpath(path, ROLES), task["name"], task[MODULE] or {}))
    return found


def test_there_are_such_reads():
    assert len(reads_of_the_rules()) >= 3


def test_each_read_of_owned_ids_or_counters_passes_the_backend():
    missing = [(path, name) for path, name, args in reads_of_the_rules() if "backend" not in args]
    assert missing == []
