"""Make the collection importable as ansible_collections.fwcluster.netfilter, and share fixtures.

Under ansible-test the checkout already sits at ansible_collections/fwcluster/netfilter;
from a plain checkout, a temporary directory with that layout (a symlink to the repository
root) is put first on sys.path.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _make_collection_importable():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:] == ["ansible_collections", "fwcluster", "netfilter"]:
        root = os.sep.join(parts[:-3])  # ansible-test, or a checkout in a collections path
        if root not in sys.path:
            sys.path.insert(0, root)
        return
    root = tempfile.mkdtemp(prefix="fwcluster-collection-")
    namespace = os.path.join(root, "ansible_collections", "fwcluster")
    os.makedirs(namespace)
    os.symlink(REPO_ROOT, os.path.join(namespace, "netfilter"))
    sys.path.insert(0, root)


_make_collection_importable()

from ansible_collections.fwcluster.netfilter.tests.unit.examples import ipv4_only, load_inventory  # noqa: E402


def load_example():
    """(cluster variables, {host: host variables}) of inventories/primary_backup, IPv4 only, on iptables.

    The example runs nftables; the model's tests read the rules in the iptables
    spelling, which prints each match as written. The nftables spelling has its
    own tests (plan/backends/test_nftables.py, the golden snapshot, tests/netns).
    The example is dual stack; the model's tests start from its IPv4 half, and
    examples.dual_stack() puts the IPv6 half back where a test is about it.
    """
    cluster, nodes, _balancers = load_inventory("primary_backup")
    cluster["fwcluster_backend"] = "iptables"
    return ipv4_only(cluster, nodes)


_EXAMPLE = load_example()


@pytest.fixture
def example():
    """A fresh deep copy of the example inventory, free to mutate."""
    return copy.deepcopy(_EXAMPLE)


@pytest.fixture(scope="session")
def example_source():
    """The example inventory itself; copy it before mutating (for hypothesis tests)."""
    return _EXAMPLE


_SANDWICH_AS_WRITTEN = load_inventory("sandwich")
_SANDWICH = ipv4_only(*copy.deepcopy(_SANDWICH_AS_WRITTEN))  # dual stack as written; see load_example()
_MULTIPATH = ipv4_only(*load_inventory("multipath")[:2])  # dual stack as written; see load_example()
_MULTIPATH[0]["fwcluster_backend"] = "iptables"  # the example runs nftables; see load_example()
_HASH = ipv4_only(*load_inventory("hash")[:2])  # dual stack on nftables as written; see load_example()
_HASH[0]["fwcluster_backend"] = "iptables"  # the model's tests read the cluster match; see load_example()


@pytest.fixture
def sandwich():
    """A fresh deep copy of the sandwich example inventory, free to mutate."""
    return copy.deepcopy(_SANDWICH)


@pytest.fixture
def sandwich_dual_stack():
    """A fresh deep copy of inventories/sandwich as written (dual stack), free to mutate."""
    return copy.deepcopy(_SANDWICH_AS_WRITTEN)


@pytest.fixture
def duo():
    """A fresh deep copy of inventories/multipath (cluster duo), free to mutate."""
    return copy.deepcopy(_MULTIPATH)


@pytest.fixture(scope="session")
def duo_source():
    """inventories/multipath itself; copy it before mutating (for hypothesis tests)."""
    return _MULTIPATH


@pytest.fixture
def hash_example():
    """A fresh deep copy of inventories/hash (cluster mesh), free to mutate."""
    return copy.deepcopy(_HASH)


@pytest.fixture(scope="session")
def inventory_sources():
    """Every example inventory by name, as (cluster, nodes, balancers); copy before mutating."""
    return dict((name, load_inventory(name)) for name in ("primary_backup", "multipath", "hash", "sandwich"))
