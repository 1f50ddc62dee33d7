"""keepalived's notify scripts (roles/keepalived/templates/fwcluster-notify*.sh.j2), run.

keepalived starts a transition's script without waiting for the one before it. A hash take, and a
primary-backup's move to primary, commit conntrackd's external cache first (slow under load), so
a script keepalived starts after it can end first; the scripts must still leave the node as the
newest transition says. Here each script runs as rendered, with stand-ins for what it calls on a
node: conntrackd (its commit takes COMMIT_S) and the hash owner hook (a log of what it was
asked). What the real hook and conntrackd do is proven in the labs (molecule/hash,
molecule/primary_backup).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render
from ansible_collections.fwcluster.netfilter.tests.unit.roles.test_templates import _hash_plan, _two_hash_nodes_on_ftfw

COMMIT_S = 0.6
FAKE_CONNTRACKD = """#!/bin/sh
# conntrackd -C FILE OPTION: a commit (-c) takes a while, as under load
case $3 in -c) echo "commit begin" >>"$LOG"; sleep %s; echo "commit end" >>"$LOG" ;; *) echo "ctd $3" >>"$LOG" ;; esac
""" % COMMIT_S
FAKE_OWNER = """#!/bin/sh
echo "owner $*" >>"$LOG"
"""
FAKE_LOGGER = """#!/bin/sh
echo "logger $*" >>"$LOG"
"""


def _node(tmp_path, template, plan, host):
    """HOST's rendered script and the stand-ins it calls: start(*args) runs it as keepalived
    would, lines() is what the stand-ins were asked, in order; and the state file's path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("conntrackd", FAKE_CONNTRACKD), ("owner", FAKE_OWNER), ("logger", FAKE_LOGGER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if "hash" in plan:
        plan["hash"] = dict(plan["hash"], owner_command=str(bin_dir / "owner"))
    state_file = tmp_path / "run" / "vrrp-state"
    script = tmp_path / "notify"
    script.write_text(render("keepalived", template, plan, host, fwcluster_keepalived_state_file=str(state_file)))
    script.chmod(0o755)
    log = tmp_path / "log"
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), LOG=str(log))

    def start(*args):
        return subprocess.Popen([str(script), *args], env=env)

    def lines():
        return log.read_text().splitlines() if log.exists() else []

    return start, lines, state_file


@pytest.fixture
def node(tmp_path):
    """hs-fw2 (node id 1) of the hash example."""
    return _node(tmp_path, "fwcluster-notify-hash.sh.j2", _hash_plan(), "hs-fw2")


@pytest.fixture
def primary_backup(tmp_path):
    """pb-fw1 of the primary-backup example (a sync group; conntrackd replicates)."""
    return _node(tmp_path, "fwcluster-notify.sh.j2", build_plan(*load_inventory("primary_backup")), "pb-fw1")


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


def test_a_take_commits_the_external_cache_first(node):
    start, lines, _state_file = node
    assert start("take", "2").wait(timeout=10) == 0
    # notrack, no internal cache: a resync is answered from the kernel table, nothing to refill
    assert _conntrackd_calls(lines) == ["commit begin", "commit end"]
    assert lines().index("commit end") < lines().index("owner take 2")


def test_with_an_internal_cache_a_take_refills_it_from_the_kernel(tmp_path):
    """ftfw keeps the internal cache: the taken flows go into it after the id is taken (-R)."""
    plan = _hash_plan(_two_hash_nodes_on_ftfw)
    start, lines, _state_file = _node(tmp_path, "fwcluster-notify-hash.sh.j2", plan, "hs-fw2")
    assert start("take", "0").wait(timeout=10) == 0
    assert _conntrackd_calls(lines) == ["commit begin", "commit end", "ctd -R"]
    assert lines().index("commit end") < lines().index("owner take 0") < lines().index("ctd -R")


@pytest.mark.parametrize("two_node_ftfw", [False, True])
def test_with_the_peers_flows_in_the_kernel_a_take_commits_nothing(tmp_path, two_node_ftfw):
    """fwcluster_replication.peer_flows: kernel: conntrackd wrote the id's flows into the kernel already."""
    def change(cluster, nodes):
        cluster["fwcluster_replication"].update(peer_flows="kernel")
        if two_node_ftfw:
            _two_hash_nodes_on_ftfw(cluster, nodes)
    start, lines, _state_file = _node(tmp_path, "fwcluster-notify-hash.sh.j2", _hash_plan(change), "hs-fw2")
    assert start("take", "0").wait(timeout=10) == 0
    assert _conntrackd_calls(lines) == (["ctd -R"] if two_node_ftfw else [])
    assert "owner take 0" in lines()


@pytest.mark.parametrize("args", [("take",), ("take", "1;reboot"), ("take", "../1"), ("own", "1")])
def test_a_transition_without_a_node_id_changes_nothing(node, args):
    start, lines, state_file = node
    assert start(*args).wait(timeout=10) == 1
    assert _owner_calls(lines) == [] and not state_file.exists()
    assert not list(state_file.parent.glob("hash-id*"))


PRIMARY = ["commit begin", "commit end", "ctd -f", "ctd -R", "ctd -B"]


def _conntrackd_calls(lines):
    return [line for line in lines() if line.startswith(("commit", "ctd "))]


def test_a_backup_started_during_the_primary_sequence_comes_after_it(primary_backup):
    start, lines, state_file = primary_backup
    primary = start("primary")
    time.sleep(COMMIT_S / 3)   # the primary is in its commit
    backup = start("backup")
    assert backup.wait(timeout=10) == 0 and primary.wait(timeout=10) == 0
    # the backup's resend request is not flushed by the primary's sequence ending after it
    assert _conntrackd_calls(lines) == PRIMARY + ["ctd -t", "ctd -n"]
    assert [line.split()[1] for line in state_file.read_text().splitlines()] == ["primary", "backup"]


def test_a_transition_superseded_while_it_waits_is_skipped(primary_backup):
    start, lines, state_file = primary_backup
    first = start("primary")
    time.sleep(COMMIT_S / 3)
    backup = start("backup")
    time.sleep(COMMIT_S / 3)
    second = start("primary")
    assert all(proc.wait(timeout=10) == 0 for proc in (first, backup, second))
    assert _conntrackd_calls(lines) == PRIMARY + PRIMARY
    assert any("transition to backup skipped" in line for line in lines())
    assert [line.split()[1] for line in state_file.read_text().splitlines()] == ["primary", "backup", "primary"]


@pytest.mark.parametrize("args", [(), ("master",), ("primary", "in side"), ("backup", "../x")])
def test_an_unknown_transition_changes_nothing(primary_backup, args):
    start, lines, state_file = primary_backup
    assert start(*args).wait(timeout=10) == 1
    assert _conntrackd_calls(lines) == [] and not state_file.exists()
