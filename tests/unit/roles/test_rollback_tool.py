"""roles/safeguard/files/fwcluster-rollback against the real iptables, in a scratch network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir,
                    "roles", "safeguard", "files", "fwcluster-rollback")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables-save") is None,
                                reason="needs root and iptables for a scratch namespace")


@pytest.fixture
def netns():
    name = "fwcluster-rb-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def sh(netns, script):
    return subprocess.run(netns + ["bash", "-c", script], capture_output=True, text=True, check=False)


def rules(netns, table):
    saved = sh(netns, "iptables-save -t %s" % table).stdout
    return [line for line in saved.splitlines() if not line.startswith("#")]


def test_restore_puts_back_rules_and_files(netns, tmp_path):
    etc = tmp_path / "etc"
    (etc / "keep").mkdir(parents=True)
    (etc / "rules").write_text("old\n")
    (etc / "keep" / "a").write_text("a\n")
    snap = tmp_path / "snap"
    before = sh(netns, "iptables -t nat -A POSTROUTING -s 10.0.0.0/8 -j ACCEPT && iptables -P FORWARD DROP")
    assert before.returncode == 0, before.stderr
    nat_before, filter_before = rules(netns, "nat"), rules(netns, "filter")

    taken = sh(netns, "bash %s snapshot %s -u fwcluster-test-none.service %s %s %s"
               % (TOOL, snap, etc / "rules", etc / "keep", etc / "new"))
    assert taken.returncode == 0, taken.stderr
    # The change: rules everywhere, a new table, files edited, added and removed.
    changed = sh(netns, "iptables -P FORWARD ACCEPT; iptables -A INPUT -p tcp --dport 22 -j DROP; "
                        "iptables -t mangle -A PREROUTING -j MARK --set-mark 1; "
                        "iptables -t nat -F POSTROUTING")
    assert changed.returncode == 0, changed.stderr
    (etc / "rules").write_text("new\n")
    (etc / "keep" / "b").write_text("b\n")
    (etc / "new").write_text("created by the change\n")

    restored = sh(netns, "bash %s restore %s" % (TOOL, snap))
    log = (snap / "restore.log").read_text()
    # systemctl has no systemd to talk to in a bare namespace: the unit step
    # fails and says so, everything before it must have been restored.
    assert "restore finished" in log
    assert rules(netns, "nat") == nat_before
    assert rules(netns, "filter") == filter_before
    assert [line for line in rules(netns, "mangle") if line.startswith("-A")] == []
    assert (etc / "rules").read_text() == "old\n"
    assert sorted(os.listdir(etc / "keep")) == ["a"]
    assert not (etc / "new").exists()
    assert "removed %s (it did not exist before)" % (etc / "new") in log
    assert restored.returncode in (0, 1)


def test_restore_without_snapshot_fails(tmp_path):
    result = subprocess.run(["bash", TOOL, "restore", str(tmp_path / "none")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 1 and "no snapshot" in result.stderr


def test_usage(tmp_path):
    result = subprocess.run(["bash", TOOL, "bogus", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "usage" in result.stderr


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")
def test_restore_puts_back_the_nftables_tables_and_removes_new_ones(netns, tmp_path):
    snap = tmp_path / "snap"
    before = sh(netns, "nft 'add table ip fwcluster; add chain ip fwcluster filter_input "
                       "{ type filter hook input priority 0; policy drop; }; "
                       "add rule ip fwcluster filter_input tcp dport 22 accept comment \"management\"'; "
                       "nft add table inet docker")
    assert before.returncode == 0, before.stderr
    listed_before = sh(netns, "nft list table ip fwcluster").stdout
    taken = sh(netns, "bash %s snapshot %s" % (TOOL, snap))
    assert taken.returncode == 0, taken.stderr
    # The change: the table rewritten, an ARP table added (a hash cluster's), another tool's table changed.
    changed = sh(netns, "nft flush chain ip fwcluster filter_input && nft add table arp fwcluster && "
                        "nft add chain inet docker forward")
    assert changed.returncode == 0, changed.stderr
    sh(netns, "bash %s restore %s" % (TOOL, snap))
    assert "restore finished" in (snap / "restore.log").read_text()
    assert sh(netns, "nft list table ip fwcluster").stdout == listed_before
    assert sh(netns, "nft list table arp fwcluster").returncode != 0
    # other tables are not the collection's: left as they are
    assert "chain forward" in sh(netns, "nft list table inet docker").stdout
