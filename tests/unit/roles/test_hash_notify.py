"""The hash cluster's notify script (roles/keepalived/templates/fwcluster-notify-hash.sh.j2), run.

keepalived starts a transition's script without waiting for the one before it. A take commits
conntrackd's external cache first (slow under load), so the release that keepalived starts after
it can end first; the script must still leave the id as the newest transition says. Here the
script runs as rendered, with stand-ins for what it calls on a node: conntrackd (its commit
takes COMMIT_S) and the owner hook (a log of what it was asked). What the real hook and
conntrackd do is proven in the labs (molecule/hash).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render
from ansible_collections.fwcluster.netfilter.tests.unit.roles.test_templates import _hash_plan

COMMIT_S = 0.6
FAKE_CONNTRACKD = """#!/bin/sh
# conntrackd -C FILE -c|-R: a commit takes a while, as under load
case $3 in -c) echo "commit begin" >>"$LOG"; sleep %s; echo "commit end" >>"$LOG" ;; esac
""" % COMMIT_S
FAKE_OWNER = """#!/bin/sh
echo "owner $*" >>"$LOG"
"""
FAKE_LOGGER = """#!/bin/sh
echo "logger $*" >>"$LOG"
"""


@pytest.fixture
def node(tmp_path):
    """The rendered script of hs-fw2 (node id 1) and a run() that calls it as keepalived would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("conntrackd", FAKE_CONNTRACKD), ("owner", FAKE_OWNER), ("logger", FAKE_LOGGER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    plan = _hash_plan()
    plan["hash"] = dict(plan["hash"], owner_command=str(bin_dir / "owner"))
    state_file = tmp_path / "run" / "vrrp-state"
    script = tmp_path / "notify"
    script.write_text(render("keepalived", "fwcluster-notify-hash.sh.j2", plan, "hs-fw2",
                             fwcluster_keepalived_state_file=str(state_file)))
    script.chmod(0o755)
    log = tmp_path / "log"
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), LOG=str(log))

    def start(*args):
        return subprocess.Popen([str(script), *args], env=env)

    def lines():
        return log.read_text().splitlines() if log.exists() else []

    return start, lines, state_file


def _owner_calls(lines):
    return [line for line in lines() if line.startswith("owner ")]


def test_a_release_started_during_a_take_leaves_the_id_released(node):
    start, lines, state_file = node
    take = start("take", "1")
    time.sleep(COMMIT_S / 3)   # the take is in its commit
    release = start("release", "1")
    assert release.wait(timeout=10) == 0 and take.wait(timeout=10) == 0
    # the release was applied, and the late take was not: the id is not owned
    assert _owner_calls(lines) == ["owner release 1"]
    assert any("take 1 dropped" in line for line in lines())
    # hs-fw2's own id: its role is recorded once, as the newest transition says
    assert [line.split()[1] for line in state_file.read_text().splitlines()] == ["backup"]


def test_a_take_started_during_a_release_is_applied_after_it(node):
    start, lines, state_file = node
    release = start("release", "2")
    time.sleep(0.05)
    take = start("take", "2")
    assert release.wait(timeout=10) == 0 and take.wait(timeout=10) == 0
    assert _owner_calls(lines)[-1] == "owner take 2"
    # the take committed the external cache before the hook let id 2's packets in
    assert lines().index("commit end") < lines().index("owner take 2")
    assert not state_file.exists()   # not hs-fw2's own id


def test_transitions_of_different_ids_do_not_drop_each_other(node):
    start, lines, _state_file = node
    first = start("take", "0")
    time.sleep(COMMIT_S / 3)
    second = start("release", "2")
    assert first.wait(timeout=10) == 0 and second.wait(timeout=10) == 0
    assert sorted(_owner_calls(lines)) == ["owner release 2", "owner take 0"]


@pytest.mark.parametrize("args", [("take",), ("take", "1;reboot"), ("take", "../1"), ("own", "1")])
def test_a_transition_without_a_node_id_changes_nothing(node, args):
    start, lines, state_file = node
    assert start(*args).wait(timeout=10) == 1
    assert _owner_calls(lines) == [] and not state_file.exists()
    assert not list(state_file.parent.glob("hash-id*"))
