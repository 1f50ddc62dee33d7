"""The nftables backend: every kind of match and verdict as an nft file spells it, the tables it writes.

That the kernel reads these lines as the iptables backend's are read (same
verdicts, same NAT, same owner) is proven packet by packet in tests/netns/.
"""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import rules
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import nftables
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import ARP, Rule, Table

NET = ipaddress.ip_network("10.10.1.0/24")
ANY = ipaddress.ip_network("0.0.0.0/0")
VIP = ipaddress.ip_address("10.10.1.254")


@pytest.mark.parametrize("rule, text", [
    (Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT), 'iifname "lo" accept'),
    # what matches anything is left out, as in every backend
    (Rule("FORWARD", [rules.in_interface(None), rules.source(ANY), rules.destination(None), rules.protocol("all"),
                      rules.destination_ports([])], rules.DROP), "drop"),
    (Rule("FORWARD", [rules.out_interface("eth2"), rules.source(NET), rules.destination(VIP),
                      rules.protocol("tcp"), rules.destination_ports([443]), rules.ct_state("NEW")],
          rules.reject("tcp"), "web"),
     'oifname "eth2" ip saddr 10.10.1.0/24 ip daddr 10.10.1.254 meta l4proto tcp tcp dport 443 ct state new '
     'reject with tcp reset comment "web"'),
    # ports of a rule take its protocol's header; a list is an anonymous set, a range low-high
    (Rule("FORWARD", [rules.protocol("udp"), rules.source_ports([53, (8000, 8100)])], rules.reject("udp")),
     "meta l4proto udp udp sport { 53, 8000-8100 } reject"),
    (Rule("x", [rules.protocol("tcp"), rules.tcp_not_syn(), rules.source_ports([(1, 1024)])], rules.RETURN),
     "meta l4proto tcp tcp flags & (fin|syn|rst|ack) != syn tcp sport 1-1024 return"),
    (Rule("INPUT", [rules.protocol("icmp"), rules.icmp_type(rules.ICMP_REQUEST), rules.packet_length(128)],
          rules.ACCEPT), "meta l4proto icmp icmp type echo-request ip length 128 accept"),
    (Rule("INPUT", [rules.protocol("112")], rules.ACCEPT), "meta l4proto 112 accept"),
    (Rule("INPUT", [rules.ct_state("RELATED", "ESTABLISHED")], rules.ACCEPT), "ct state related,established accept"),
    # iptables' virtual state DNAT is a status bit of the connection
    (Rule("FORWARD", [rules.ct_state("DNAT")], rules.ACCEPT), "ct status dnat accept"),
    # a user chain of the same table
    (Rule("FORWARD", verdict=rules.jump("fwcluster-request")), "jump filter_fwcluster-request"),
    (rules.untracked_forwarding(), "fib daddr type != local notrack"),
    (Rule("PREROUTING", [rules.in_interface("eth1"), rules.not_marked(0x40000000, 0x40000000)], rules.DROP),
     'iifname "eth1" meta mark & 0x40000000 != 0x40000000 drop'),
    # xt_cluster's node id k is jhash's value k (no offset); owned packets become host packets
    (Rule("OWN", [rules.cluster_nodes(1 << 2, 3, 0x5eed)], rules.set_mark(0x40, 0x40)),
     "jhash ct original ip saddr mod 3 seed 0x00005eed 2 meta pkttype set host "
     "meta mark set meta mark & 0xffffffbf ^ 0x00000040"),
    (Rule("OWN", [rules.cluster_nodes(0b101, 3, 1)], rules.ACCEPT),
     "jhash ct original ip saddr mod 3 seed 0x00000001 { 0, 2 } meta pkttype set host accept"),
    (Rule("POSTROUTING", [rules.out_interface("eth2"), rules.protocol("tcp")], rules.snat(VIP, (1024, 32767))),
     'oifname "eth2" meta l4proto tcp snat to 10.10.1.254:1024-32767'),
    (Rule("POSTROUTING", [rules.out_interface("eth2")], rules.snat(VIP)), 'oifname "eth2" snat to 10.10.1.254'),
    (Rule("PREROUTING", [], rules.dnat(VIP, 8443)), "dnat to 10.10.1.254:8443"),
    (Rule("PREROUTING", [rules.in_interface("eth1")], rules.hash_mark("destination", 16, 0x100, 0x5eed1234)),
     'iifname "eth1" meta mark set jhash ip daddr mod 16 seed 0x5eed1234 offset 256'),
])
def test_rule_text(rule, text):
    assert nftables.rule_text(rule, "filter") == text


def test_arp_rules():
    output = Rule("OUTPUT", [rules.out_interface("eth1"), rules.source(VIP), rules.arp_hardware_length(6)],
                  rules.arp_source_mac("01:00:5e:0a:01:fe"))
    answer = Rule("INPUT", [rules.in_interface("eth1"), rules.arp_hardware_length(6),
                            rules.arp_destination_mac("01:00:5e:0a:01:fe")], rules.arp_target_mac("OWN_MAC(eth1)"))
    assert nftables.rule_line(output, "mangle", ARP) == (
        'arp fwcluster mangle_output oifname "eth1" arp saddr ip 10.10.1.254 arp hlen 6 '
        "arp saddr ether set 01:00:5e:0a:01:fe")
    restore = nftables.arp_restore(Table("mangle", {}, [output, answer], family=ARP))
    assert restore["command"] == "nft -f -"
    assert restore["lines"] == [
        "table arp fwcluster", "delete table arp fwcluster", "table arp fwcluster {",
        "\tchain mangle_input {", "\t\ttype filter hook input priority 0; policy accept;",
        '\t\tiifname "eth1" arp hlen 6 arp daddr ether 01:00:5e:0a:01:fe arp daddr ether set OWN_MAC(eth1)', "\t}",
        "\tchain mangle_output {", "\t\ttype filter hook output priority 0; policy accept;",
        '\t\toifname "eth1" arp saddr ip 10.10.1.254 arp hlen 6 arp saddr ether set 01:00:5e:0a:01:fe', "\t}",
        "}"]
    with pytest.raises(ValueError):
        nftables.arp_restore(Table("filter", rules.FILTER_POLICIES, []))


def test_comments_are_sanitized_and_last():
    rule = Rule("INPUT", [rules.protocol("tcp")], rules.ACCEPT, 'say "hi"\n`now`')
    assert nftables.rule_text(rule) == 'meta l4proto tcp accept comment "say _hi_ _now_"'
    assert len(nftables.sanitize_comment("x" * 400)) == 128


def test_ruleset_is_one_table_of_the_family_with_base_and_user_chains():
    tables = [
        Table("raw", rules.RAW_POLICIES, [rules.untracked_forwarding()]),
        Table("filter", rules.FILTER_POLICIES, [Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT)]),
        Table("mangle", {}, [Rule("OUTPUT", [rules.arp_hardware_length(6)], rules.arp_source_mac("x"))], family=ARP),
        Table("mangle", rules.MANGLE_POLICIES, [Rule("OWN-IDS", [], rules.ACCEPT)], user_chains=["OWN-IDS"]),
    ]
    (table,) = nftables.ruleset(tables)
    assert (table["family"], table["table"]) == ("ip", "fwcluster")
    assert table["chains"] == [
        {"name": "raw_prerouting", "declaration": "type filter hook prerouting priority -300; policy accept;",
         "rules": ["fib daddr type != local notrack"]},
        # a chain that drops by default is written even without rules; an empty accepting one is not
        {"name": "filter_input", "declaration": "type filter hook input priority 0; policy drop;",
         "rules": ['iifname "lo" accept']},
        {"name": "filter_forward", "declaration": "type filter hook forward priority 0; policy drop;", "rules": []},
        {"name": "mangle_OWN-IDS", "declaration": None, "rules": ["accept"]},
    ]
    text = nftables.table_text([table])
    # never flush ruleset: the file replaces its own table, in one transaction with its deletion
    assert text.startswith("table ip fwcluster\ndelete table ip fwcluster\ntable ip fwcluster {\n")
    assert "flush ruleset" not in text


def test_ipv6_closed_table():
    (table,) = nftables.ruleset(rules.ipv6_closed(), rules.IPV6)
    assert table["family"] == "ip6"
    (chain_input, chain_forward) = table["chains"]
    assert "meta l4proto ipv6-icmp icmpv6 type nd-neighbor-solicit accept" in chain_input["rules"]
    assert chain_forward == {"name": "filter_forward", "rules": [],
                             "declaration": "type filter hook forward priority 0; policy drop;"}


def test_a_kind_the_backend_cannot_spell_is_a_programming_error():
    with pytest.raises(KeyError):
        nftables.rule_text(Rule("INPUT", [("no_such_match",)], rules.ACCEPT))
