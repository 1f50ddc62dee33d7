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


def load_example():
    """(cluster variables, {host: host variables}) of inventories/primary_backup."""
    with open(os.path.join(EXAMPLE_INVENTORY, "group_vars", "edge.yml")) as handle:
        cluster = yaml.safe_load(handle)
    nodes = {}
    for host in ("pb-fw1", "pb-fw2"):
        with open(os.path.join(EXAMPLE_INVENTORY, "host_vars", host + ".yml")) as handle:
            nodes[host] = yaml.safe_load(handle)
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


SANDWICH_INVENTORY = os.path.join(REPO_ROOT, "inventories", "sandwich")


def load_sandwich():
    """(cluster variables, {firewall: host variables}, {balancer: host variables}) of inventories/sandwich."""
    with open(os.path.join(SANDWICH_INVENTORY, "group_vars", "stack.yml")) as handle:
        cluster = yaml.safe_load(handle)
    nodes, balancers = {}, {}
    host_vars_dir = os.path.join(SANDWICH_INVENTORY, "host_vars")
    for name in sorted(os.listdir(host_vars_dir)):
        with open(os.path.join(host_vars_dir, name)) as handle:
            host_vars = yaml.safe_load(handle)
        target = balancers if "fwcluster_balancer_side" in host_vars else nodes
        target[name[:-len(".yml")]] = host_vars
    return cluster, nodes, balancers


_SANDWICH = load_sandwich()


@pytest.fixture
def sandwich():
    """A fresh deep copy of the sandwich example inventory, free to mutate."""
    return copy.deepcopy(_SANDWICH)
