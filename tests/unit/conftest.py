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
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_INVENTORY = os.path.join(REPO_ROOT, "inventories", "primary_backup")


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


def load_inventory(name):
    """(cluster variables, {node: host variables}, {balancer: host variables}) of inventories/NAME.

    The cluster variables are the one group_vars file of the cluster's group
    (group_vars/all/ holds the lab's connection settings, not the cluster's).
    """
    base = os.path.join(REPO_ROOT, "inventories", name)
    group_files = [entry for entry in sorted(os.listdir(os.path.join(base, "group_vars"))) if entry.endswith(".yml")]
    assert len(group_files) == 1, "inventories/%s: expected one cluster group_vars file, got %s" % (name, group_files)
    with open(os.path.join(base, "group_vars", group_files[0])) as handle:
        cluster = yaml.safe_load(handle)
    nodes, balancers = {}, {}
    for entry in sorted(os.listdir(os.path.join(base, "host_vars"))):
        with open(os.path.join(base, "host_vars", entry)) as handle:
            host_vars = yaml.safe_load(handle)
        target = balancers if "fwcluster_balancer_side" in host_vars else nodes
        target[entry[:-len(".yml")]] = host_vars
    return cluster, nodes, balancers


def load_example():
    """(cluster variables, {host: host variables}) of inventories/primary_backup."""
    cluster, nodes, _balancers = load_inventory("primary_backup")
    return cluster, nodes


_EXAMPLE = load_example()


@pytest.fixture
def example():
    """A fresh deep copy of the example inventory, free to mutate."""
    return copy.deepcopy(_EXAMPLE)


@pytest.fixture(scope="session")
def example_source():
    """The example inventory itself; copy it before mutating (for hypothesis tests)."""
    return _EXAMPLE


_SANDWICH = load_inventory("sandwich")
_MULTIPATH = load_inventory("multipath")[:2]
_HASH = load_inventory("hash")[:2]


@pytest.fixture
def sandwich():
    """A fresh deep copy of the sandwich example inventory, free to mutate."""
    return copy.deepcopy(_SANDWICH)


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
