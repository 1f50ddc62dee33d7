"""The deployed multipath cluster's forward path (verify.yml runs these).

It is stateless: the forward chains use no conntrack match and drop by
default, and the raw table leaves forwarded packets untracked; in the
cluster's backend (the nodes' fwcluster_backend), the other one holds nothing.
"""

from __future__ import annotations

testinfra_hosts = ["ansible://duo"]


def backend(host):
    return host.ansible.get_variables().get("fwcluster_backend", "iptables")


def test_the_forward_path_is_stateless(host):
    if backend(host) == "nftables":
        table = host.check_output("nft list table ip fwcluster")
        forward = table[table.index("chain filter_forward"):]
        assert " ct " not in forward
        assert "policy drop;" in forward.splitlines()[1]
        assert "\n-A " not in host.check_output("iptables-save")
    else:
        rules = host.check_output("iptables -S FORWARD; iptables -S fwcluster-request; iptables -S fwcluster-reply")
        assert "conntrack" not in rules
        assert "--ctstate" not in rules
        assert "-P FORWARD DROP" in rules
        assert "fwcluster" not in host.check_output("nft list tables")


def test_forwarded_packets_are_not_tracked(host):
    if backend(host) == "nftables":
        assert "fib daddr type != local notrack" in host.check_output("nft list chain ip fwcluster raw_prerouting")
    else:
        assert "! --dst-type LOCAL -j CT --notrack" in host.check_output("iptables -t raw -S PREROUTING")
