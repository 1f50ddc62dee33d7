"""One source for the inventory contract: roles/plan/meta/argument_specs.yml against what the plan reads."""

from __future__ import annotations

import os

import pytest
import yaml

import ansible_collections.fwcluster.netfilter as collection
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan import architecture, inventory, registry
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import (
    BALANCER_VARIABLES,
    CLUSTER_VARIABLES,
    NODE_VARIABLES,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.sandwich import SIDES

SPECS = os.path.join(list(collection.__path__)[0], "roles", "plan", "meta", "argument_specs.yml")


@pytest.fixture(scope="module")
def options():
    with open(SPECS) as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


def _text(option):
    description = option.get("description", "")
    return " ".join(description) if isinstance(description, list) else description


def test_every_variable_the_plan_reads_is_specified_and_nothing_else(options):
    read = set(CLUSTER_VARIABLES) | set(NODE_VARIABLES) | set(BALANCER_VARIABLES)
    assert sorted(options) == sorted(read)


def test_architecture_choices_are_the_registry(options):
    assert options["fwcluster_architecture"]["choices"] == list(registry.ARCHITECTURES)


def test_balancer_side_choices(options):
    assert options["fwcluster_balancer_side"]["choices"] == list(SIDES)


@pytest.mark.parametrize("claim, owners", registry.claims(), ids=lambda value: getattr(value, "key", None))
def test_every_claimed_key_is_described_with_its_architectures(options, claim, owners):
    """A key only some architectures read says which, where a user looks it up."""
    where = {
        architecture.CLUSTER_VARIABLE: claim.key,
        architecture.SEGMENT_KEY: "fwcluster_segments",
        architecture.VRRP_KEY: "fwcluster_vrrp",
        architecture.BALANCER_HOSTS: claim.key,
    }[claim.where]
    text = _text(options[where])
    assert claim.key in text or where == claim.key
    for owner in owners:
        assert "C(%s)" % owner in text, "%s: the description of %s does not name %s" % (claim.key, where, owner)


def test_shared_keys_are_not_claimed():
    shared = set(inventory.SHARED_CLUSTER_VARIABLES) | set(inventory.SEGMENT_KEYS) | set(inventory.VRRP_KEYS)
    assert not shared & set(claim.key for claim, _owners in registry.claims())
