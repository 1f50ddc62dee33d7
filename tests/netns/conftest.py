"""The kernel tests need root (namespaces, rules) and the tools the nodes run: skip them, saying why, elsewhere."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.fwcluster.netfilter.tests.netns import netns

TOOLS = ("ip", "iptables-restore", "ip6tables-restore", "arptables-restore", "nft", "ping", "sysctl")


def pytest_collection_modifyitems(config, items):
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    reason = "needs root" if os.geteuid() != 0 else ("needs %s" % ", ".join(missing) if missing else None)
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason="kernel tests: " + reason))


@pytest.fixture
def lab():
    netns.cleanup()  # what an interrupted run left
    made = netns.Lab()
    yield made
    made.close()
