"""The golden snapshot: every file the roles render from a plan, and every refusal message, as of today.

For each inventory of cases.inventories(), every host (firewall nodes and sandwich
balancers) gets the files its roles would write, rendered from the plan the way the roles
render them (tests/unit/roles/rendering.py), under expected/rendered/CASE/HOST/FILE. FILE is
the template's name without .j2 (``sysctl.conf`` is /etc/sysctl.d/90-fwcluster.conf).
expected/refusals.json maps each case of
cases.refusals() to the exact text of its refusal.

test_golden.py renders everything again and compares it byte for byte with expected/.
update.py rewrites expected/ when a change of a file or of a message is intended.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil

from ansible.errors import AnsibleFilterError

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import PlanError, build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.golden import cases
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import host_part, render, templates_of

EXPECTED = os.path.join(os.path.dirname(os.path.realpath(__file__)), "expected")
RENDERED = "rendered"
REFUSALS = "refusals.json"


def render_host(plan, host):
    """{file name: text} of one host."""
    node = host_part(plan, host)
    files = dict((template[:-len(".j2")], render(role, template, plan, host)) for role, template in templates_of(plan, node))
    return files


def render_inventory(cluster, nodes, balancers):
    """{HOST/FILE: text} of every host of one inventory."""
    plan = build_plan(cluster, nodes, balancers or None)
    files = {}
    for host in sorted(list(plan["nodes"]) + list(plan.get("balancers", {}))):
        for name, text in render_host(plan, host).items():
            files["%s/%s" % (host, name)] = text
    return files


def refusal_messages():
    """{case id: str(refusal)}, in the order of cases.refusals()."""
    messages = {}
    for case_id, attempt in cases.refusals():
        assert case_id not in messages, "two refusal cases are named %r" % case_id
        try:
            attempt()
        except (PlanError, AnsibleFilterError) as error:
            messages[case_id] = str(error)
        else:
            raise AssertionError("refusal case %r was accepted" % case_id)
    return messages


def take():
    """The whole snapshot as it renders today: {path under expected/: text}."""
    snapshot = {}
    for name, cluster, nodes, balancers in cases.inventories():
        for path, text in render_inventory(cluster, nodes, balancers).items():
            snapshot["%s/%s/%s" % (RENDERED, name, path)] = text
    snapshot[REFUSALS] = json.dumps(refusal_messages(), indent=1) + "\n"
    return snapshot


def read(directory=EXPECTED):
    """The committed snapshot: {path under directory: text}, read as bytes and decoded (no newline translation)."""
    snapshot = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                snapshot[os.path.relpath(path, directory).replace(os.sep, "/")] = handle.read().decode("utf-8")
    return snapshot


def write(snapshot, directory=EXPECTED):
    """Replace directory's content by snapshot (files that are no longer rendered go)."""
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    for path, text in snapshot.items():
        target = os.path.join(directory, *path.split("/"))
        if not os.path.isdir(os.path.dirname(target)):
            os.makedirs(os.path.dirname(target))
        with open(target, "wb") as handle:
            handle.write(text.encode("utf-8"))


def differences(expected, actual):
    """Human-readable differences between two snapshots: [] when they are byte for byte the same."""
    found = []
    for path in sorted(set(expected) | set(actual)):
        if path not in actual:
            found.append("%s: in the snapshot, no longer rendered\n" % path)
        elif path not in expected:
            found.append("%s: rendered, not in the snapshot\n" % path)
        elif expected[path] != actual[path]:
            diff = "".join(difflib.unified_diff(expected[path].splitlines(True), actual[path].splitlines(True),
                                                "expected/" + path, "now/" + path))
            # A difference the line diff cannot show (e.g. only the final newline): say so.
            found.append(diff or "%s: differs (%r != %r at the end)\n" % (path, expected[path][-20:], actual[path][-20:]))
    return found
