"""The deployed multipath cluster's forward path (verify.yml runs these).

It is stateless: the FORWARD chains use no conntrack match and drop by
default, and the raw table leaves forwarded packets untracked.
"""

from __future__ import annotations

testinfra_hosts = ["ansible://duo"]


def test_the_forward_path_is_stateless(host):
    rules = host.check_output("iptables -S FORWARD; iptables -S fwcluster-request; iptables -S fwcluster-reply")
    assert "conntrack" not in rules
    assert "--ctstate" not in rules
    assert "-P FORWARD DROP" in rules


def test_forwarded_packets_are_not_tracked(host):
    assert "! --dst-type LOCAL -j CT --notrack" in host.check_output("iptables -t raw -S PREROUTING")
