"""The deployed multipath cluster's forward path (verify.yml runs these).

It is stateless: the forward chains use no conntrack match and drop by
default, and the raw table leaves forwarded packets untracked; in the
cluster's backend (the nodes' fwcluster_backend), the other one holds nothing.
In both families: the example is dual stack.
"""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://duo"]
# (nft family, iptables command) of each address family
FAMILIES = [("ip", "iptables"), ("ip6", "ip6tables")]


def backend(host):
    return host.ansible.get_variables().get("fwcluster_backend", "iptables")


@pytest.mark.parametrize("nft_family, iptables", FAMILIES)
def test_the_forward_path_is_stateless(host, nft_family, iptables):
    if backend(host) == "nftables":
        table = host.check_output("nft list table %s fwcluster" % nft_family)
        forward = table[table.index("chain filter_forward"):]
        assert " ct " not in forward
        assert "policy drop;" in forward.splitlines()[1]
        assert "\n-A " not in host.check_output("%s-save" % iptables)
    else:
        rules = host.check_output("{0} -S FORWARD; {0} -S fwcluster-request; {0} -S fwcluster-reply".format(iptables))
        assert "conntrack" not in rules
        assert "--ctstate" not in rules
        assert "-P FORWARD DROP" in rules
        assert "fwcluster" not in host.check_output("nft list tables")


@pytest.mark.parametrize("nft_family, iptables", FAMILIES)
def test_forwarded_packets_are_not_tracked(host, nft_family, iptables):
    if backend(host) == "nftables":
        assert "fib daddr type != local notrack" in host.check_output(
            "nft list chain %s fwcluster raw_prerouting" % nft_family)
    else:
        assert "! --dst-type LOCAL -j CT --notrack" in host.check_output("%s -t raw -S PREROUTING" % iptables)
