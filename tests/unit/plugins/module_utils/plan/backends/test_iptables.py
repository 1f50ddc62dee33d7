"""The xtables backend: every kind of match and verdict, spelled as iptables-save and arptables-save print them."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import rules
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import iptables
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import ARP, Rule, Table

NET = ipaddress.ip_network("10.10.1.0/24")
ANY = ipaddress.ip_network("0.0.0.0/0")
VIP = ipaddress.ip_address("10.10.1.254")


@pytest.mark.parametrize("rule, line", [
    (Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT), "-A INPUT -i lo -j ACCEPT"),
    # what matches anything is left out: no interface, the whole address space, proto all, no ports
    (Rule("FORWARD", [rules.in_interface(None), rules.source(ANY), rules.destination(None), rules.protocol("all"),
                      rules.destination_ports([])], rules.DROP), "-A FORWARD -j DROP"),
    (Rule("FORWARD", [rules.out_interface("eth2"), rules.source(NET), rules.destination(VIP),
                      rules.protocol("tcp"), rules.destination_ports([443]), rules.ct_state("NEW")],
          rules.reject("tcp"), "web"),
     '-A FORWARD -o eth2 -s 10.10.1.0/24 -d 10.10.1.254 -p tcp --dport 443 -m conntrack --ctstate NEW '
     '-m comment --comment "web" -j REJECT --reject-with tcp-reset'),
    (Rule("FORWARD", [rules.protocol("udp"), rules.source_ports([53, (8000, 8100)])], rules.reject("udp")),
     "-A FORWARD -p udp -m multiport --sports 53,8000:8100 -j REJECT"),
    (Rule("fwcluster-reply", [rules.protocol("tcp"), rules.tcp_not_syn(), rules.source_ports([(1, 1024)])],
          rules.RETURN), "-A fwcluster-reply -p tcp ! --syn --sport 1:1024 -j RETURN"),
    (Rule("INPUT", [rules.protocol("icmp"), rules.icmp_type(rules.ICMP_REQUEST)], rules.ACCEPT),
     "-A INPUT -p icmp --icmp-type echo-request -j ACCEPT"),
    (Rule("INPUT", [rules.ct_state("RELATED", "ESTABLISHED")], rules.ACCEPT),
     "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
    (Rule("FORWARD", verdict=rules.jump("fwcluster-request")), "-A FORWARD -j fwcluster-request"),
    (rules.untracked_forwarding(), "-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack"),
    (Rule("PREROUTING", [rules.in_interface("eth1"), rules.not_marked(0x40000000, 0x40000000)], rules.DROP),
     "-A PREROUTING -i eth1 -m mark ! --mark 0x40000000/0x40000000 -j DROP"),
    (Rule("OWN", [rules.cluster_nodes(1 << 2, 3, 0x5eed)], rules.set_mark(0x40, 0x40)),
     "-A OWN -m cluster --cluster-local-nodemask 0x00000004 --cluster-total-nodes 3 --cluster-hash-seed "
     "0x00005eed -j MARK --set-xmark 0x40/0x40"),
    (Rule("POSTROUTING", [rules.out_interface("eth2")], rules.snat(VIP, (1024, 32767))),
     "-A POSTROUTING -o eth2 -j SNAT --to-source 10.10.1.254:1024-32767"),
    (Rule("POSTROUTING", [rules.out_interface("eth2")], rules.snat(VIP)),
     "-A POSTROUTING -o eth2 -j SNAT --to-source 10.10.1.254"),
    (Rule("PREROUTING", [], rules.dnat(VIP, 8443)), "-A PREROUTING -j DNAT --to-destination 10.10.1.254:8443"),
    (Rule("PREROUTING", [], rules.dnat(VIP)), "-A PREROUTING -j DNAT --to-destination 10.10.1.254"),
    (Rule("PREROUTING", [rules.in_interface("eth1")], rules.hash_mark("destination", 16, 0x100, 0x5eed1234)),
     "-A PREROUTING -i eth1 -j HMARK --hmark-tuple dst --hmark-mod 16 --hmark-offset 256 --hmark-rnd 0x5eed1234"),
    # ARP, as arptables-save prints it
    (Rule("OUTPUT", [rules.out_interface("eth1"), rules.source(VIP), rules.arp_hardware_length(6)],
          rules.arp_source_mac("01:00:5e:0a:01:fe")),
     "-A OUTPUT -o eth1 -s 10.10.1.254 --h-length 6 -j mangle --mangle-mac-s 01:00:5e:0a:01:fe"),
    (Rule("INPUT", [rules.in_interface("eth1"), rules.arp_hardware_length(6),
                    rules.arp_destination_mac("01:00:5e:0a:01:fe")], rules.arp_target_mac("OWN_MAC")),
     "-A INPUT -i eth1 --h-length 6 --destination-mac 01:00:5e:0a:01:fe -j mangle --mangle-mac-d OWN_MAC"),
])
def test_rule_line(rule, line):
    assert iptables.rule_line(rule) == line
    assert iptables.rule_arguments(rule) == line.split(" ", 2)[2]


def test_comments_are_sanitized_and_last_before_the_verdict():
    rule = Rule("INPUT", [rules.protocol("tcp")], rules.ACCEPT, 'say "hi"\n`now`')
    assert iptables.rule_line(rule) == '-A INPUT -p tcp -m comment --comment "say _hi_ _now_" -j ACCEPT'


def test_sanitize_comment():
    assert iptables.sanitize_comment('a "b" `c` $d\n e') == "a _b_ _c_ _d e"
    assert len(iptables.sanitize_comment("x" * 400)) == 255


def test_ruleset_keeps_the_ipv4_tables_only():
    tables = [
        Table("filter", rules.FILTER_POLICIES, [Rule("INPUT", [rules.in_interface("lo")], rules.ACCEPT)]),
        Table("mangle", {}, [Rule("OUTPUT", [rules.arp_hardware_length(6)], rules.arp_source_mac("x"))], family=ARP),
        Table("mangle", rules.MANGLE_POLICIES, [], user_chains=["OWN"]),
    ]
    assert iptables.ruleset(tables) == [
        {"table": "filter", "chains": rules.FILTER_POLICIES, "user_chains": [], "rules": ["-A INPUT -i lo -j ACCEPT"]},
        {"table": "mangle", "chains": rules.MANGLE_POLICIES, "user_chains": ["OWN"], "rules": []},
    ]
    assert iptables.arp_restore(tables[1]) == {
        "command": "arptables-restore",
        "lines": ["*filter", ":INPUT ACCEPT", ":OUTPUT ACCEPT", "-A OUTPUT --h-length 6 -j mangle --mangle-mac-s x",
                  "COMMIT"],
    }
    with pytest.raises(ValueError):
        iptables.arp_restore(tables[0])


def test_a_kind_the_backend_cannot_spell_is_a_programming_error():
    with pytest.raises(KeyError):
        iptables.rule_line(Rule("INPUT", [("no_such_match",)], rules.ACCEPT))


def test_ipv6_tables_are_rendered_apart():
    closed = rules.ipv6_closed()
    assert iptables.ruleset(closed) == []
    (table,) = iptables.ruleset(closed, rules.IPV6)
    assert table["chains"] == {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
    assert "-A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT" in table["rules"]
    assert not any(rule.startswith("-A FORWARD") for rule in table["rules"])
