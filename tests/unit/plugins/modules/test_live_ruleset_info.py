"""live_ruleset_info against real iptables: the "live" ruleset is a scratch network namespace's.

The module's commands run in that namespace (its run_command prefixed with
ip netns exec), so its own scratch namespace for the file is one level down,
as on a node.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.modules import live_ruleset_info

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
              pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed")]

RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -o eth3 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:FWCLUSTER-OWN - [0:0]
-A PREROUTING -i eth1 -j FWCLUSTER-OWN
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 22 -m comment --comment "management" -j ACCEPT
COMMIT
"""


@pytest.fixture
def live(monkeypatch):
    """A namespace that runs RULES; returns a function that runs a command in it."""
    name = "fwcluster-drift-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    prefix = ["ip", "netns", "exec", name]
    real_run = AnsibleModule.run_command

    def in_namespace(self, args, *rest, **kwargs):
        return real_run(self, prefix + list(args), *rest, **kwargs)

    monkeypatch.setattr(AnsibleModule, "run_command", in_namespace)
    try:
        subprocess.run(prefix + ["iptables-restore"], input=RULES, text=True, check=True)
        yield lambda *argv: subprocess.run(prefix + list(argv), check=True, capture_output=True)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    return str(path)


def test_the_rules_as_loaded_are_no_drift(live, rules_file, run_module):
    live("iptables", "-L", "-n", "-t", "security")    # listing a table may create it, empty: not drift
    ok, result = run_module(live_ruleset_info.main, {"rules": rules_file}, check_mode=True)
    assert ok, result
    assert result["drift"] is False and result["changed"] is False
    ipv4 = result["families"]["ipv4"]
    assert ipv4["differences"] == [] and ipv4["rendered_digest"] == ipv4["live_digest"]


def test_a_rule_added_by_hand_is_drift_and_named(live, rules_file, run_module):
    live("iptables", "-I", "INPUT", "2", "-s", "192.0.2.7", "-j", "ACCEPT")
    ok, result = run_module(live_ruleset_info.main, {"rules": rules_file})
    assert ok and result["drift"] is True
    ipv4 = result["families"]["ipv4"]
    assert ipv4["differences"] == ["+filter: -A INPUT -s 192.0.2.7/32 -j ACCEPT"]
    assert ipv4["rendered_digest"] != ipv4["live_digest"]


def test_a_flushed_table_is_drift(live, rules_file, run_module):
    live("iptables", "-t", "raw", "-F")
    ok, result = run_module(live_ruleset_info.main, {"rules": rules_file})
    # left empty, the table is as good as gone: all of it is missing
    assert ok and result["families"]["ipv4"]["differences"] == [
        "-raw: :PREROUTING ACCEPT", "-raw: :OUTPUT ACCEPT", "-raw: -A OUTPUT -o eth3 -j CT --notrack"]


def test_a_dynamic_chain_may_change_its_rules(live, rules_file, run_module):
    live("iptables", "-t", "mangle", "-A", "FWCLUSTER-OWN", "-j", "MARK", "--set-xmark", "0x1/0x1")
    ok, result = run_module(live_ruleset_info.main, {"rules": rules_file})
    assert ok and result["drift"] is True
    ok, result = run_module(live_ruleset_info.main, {"rules": rules_file, "dynamic_chains": ["FWCLUSTER-OWN"]})
    assert ok and result["drift"] is False


def test_a_missing_file_is_drift(live, tmp_path, run_module):
    ok, result = run_module(live_ruleset_info.main, {"rules": str(tmp_path / "nothing.v4")})
    assert ok and result["drift"] is True
    assert result["families"]["ipv4"]["rendered_digest"] is None
    assert result["families"]["ipv4"]["differences"] == ["no rules file %s" % (tmp_path / "nothing.v4")]


def test_a_file_the_kernel_refuses_fails_the_module(live, tmp_path, run_module):
    bad = tmp_path / "bad.v4"
    bad.write_text("*filter\n-A NOSUCHCHAIN -j ACCEPT\nCOMMIT\n")
    ok, result = run_module(live_ruleset_info.main, {"rules": str(bad)})
    assert not ok and "loading %s into a scratch network namespace failed" % bad in result["msg"]


def test_the_live_namespace_is_never_touched(live, rules_file, run_module):
    before = live("iptables-save").stdout
    run_module(live_ruleset_info.main, {"rules": rules_file, "rules_ipv6": rules_file.replace("v4", "v6")})
    assert [line for line in live("iptables-save").stdout.decode().splitlines() if not line.startswith("#")] \
        == [line for line in before.decode().splitlines() if not line.startswith("#")]


# The nftables backend: its own tables in one file; other tables are not the module's business.
NFT_RULES = """table ip fwcluster
delete table ip fwcluster
table ip fwcluster {
    chain mangle_prerouting {
        type filter hook prerouting priority -150; policy accept;
        iifname "eth1" jump mangle_FWCLUSTER-OWN
    }
    chain mangle_FWCLUSTER-OWN {
    }
    chain filter_input {
        type filter hook input priority 0; policy drop;
        iifname "lo" accept
        iifname "eth3" ip saddr 192.168.100.2 counter accept comment "fwcluster replication from pb-fw2"
        meta l4proto tcp tcp dport 22 accept comment "management"
    }
}
table ip6 fwcluster
delete table ip6 fwcluster
table ip6 fwcluster {
    chain filter_forward {
        type filter hook forward priority 0; policy drop;
    }
}
"""


@pytest.fixture
def nft_live(live, tmp_path):
    if shutil.which("nft") is None:
        pytest.skip("nftables is not installed")
    path = tmp_path / "rules.nft"
    # live, the counted rule has counted (the file's own rule starts at 0)
    path.write_text(NFT_RULES.replace("counter accept", "counter packets 7 bytes 420 accept"))
    live("nft", "-f", str(path))
    path.write_text(NFT_RULES)
    return live, str(path)


def test_nftables_rules_as_loaded_are_no_drift_whatever_other_tables_hold(nft_live, run_module):
    live, path = nft_live
    live("nft", "add table inet docker; add chain inet docker forward { type filter hook forward priority 0; }")
    ok, result = run_module(live_ruleset_info.main, {"rules": path, "backend": "nftables"}, check_mode=True)
    assert ok and result["drift"] is False, result
    assert sorted(result["families"]) == ["ipv4", "ipv6"]
    assert result["families"]["ipv4"]["rendered_digest"] == result["families"]["ipv4"]["live_digest"]


def test_nftables_a_rule_added_by_hand_is_drift_and_named(nft_live, run_module):
    live, path = nft_live
    live("nft", "insert rule ip fwcluster filter_input ip saddr 192.0.2.7 accept")
    ok, result = run_module(live_ruleset_info.main, {"rules": path, "backend": "nftables"})
    assert ok and result["drift"] is True
    assert result["families"]["ipv4"]["differences"] == ["+ip fwcluster: filter_input: ip saddr 192.0.2.7 accept"]
    assert result["families"]["ipv6"]["drift"] is False


def test_nftables_a_deleted_table_is_drift(nft_live, run_module):
    live, path = nft_live
    live("nft", "delete table ip6 fwcluster")
    ok, result = run_module(live_ruleset_info.main, {"rules": path, "backend": "nftables"})
    assert ok and result["families"]["ipv6"]["drift"] is True and result["families"]["ipv4"]["drift"] is False


def test_nftables_the_owner_chain_may_change_its_rules(nft_live, run_module):
    live, path = nft_live
    live("nft", "add rule ip fwcluster mangle_FWCLUSTER-OWN meta mark set 0x1")
    ok, result = run_module(live_ruleset_info.main, {"rules": path, "backend": "nftables"})
    assert ok and result["drift"] is True
    ok, result = run_module(live_ruleset_info.main, {"rules": path, "backend": "nftables",
                                                     "dynamic_chains": ["mangle_FWCLUSTER-OWN"]})
    assert ok and result["drift"] is False


def test_nftables_a_missing_file_is_drift(live, tmp_path, run_module):
    ok, result = run_module(live_ruleset_info.main, {"rules": str(tmp_path / "rules.nft"), "backend": "nftables"})
    assert ok and result["drift"] is True and result["families"]["ipv4"]["rendered_digest"] is None
