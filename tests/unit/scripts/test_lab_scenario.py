"""scripts/lib/lab_scenario.py: a scenario's molecule.yml expanded as Molecule expands it."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir)
SCRIPT = os.path.join(ROOT, "scripts", "lib", "lab_scenario.py")
if not os.path.exists(SCRIPT):
    pytest.skip("scripts/ is not part of a built collection (galaxy.yml build_ignore)", allow_module_level=True)
SPEC = importlib.util.spec_from_file_location("lab_scenario", SCRIPT)
lab_scenario = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(lab_scenario)


@pytest.mark.parametrize("text, environ, expanded", [
    ("${A:-x}/y", {}, "x/y"),
    ("${A:-x}/y", {"A": ""}, "x/y"),           # :- takes the default for an empty value too
    ("${A-x}/y", {"A": ""}, "/y"),             # - only for an unset one
    ("${A:-x}/y", {"A": "/abs"}, "/abs/y"),
    ("$A and ${B}", {"A": "1"}, "1 and "),
    ("no variable", {"A": "1"}, "no variable"),
])
def test_expand_as_molecule_does(text, environ, expanded):
    assert lab_scenario.expand(text, environ) == expanded


def test_the_inventory_links_follow_fwcluster_lab_inventory(tmp_path, monkeypatch):
    scenario = os.path.join(ROOT, "molecule", "hash")
    monkeypatch.delenv("FWCLUSTER_LAB_INVENTORY", raising=False)
    assert lab_scenario.inventory_links(scenario)["hosts"] == \
        (lab_scenario.pathlib.Path(ROOT) / "inventories" / "hash" / "hosts.yml").resolve()
    monkeypatch.setenv("FWCLUSTER_LAB_INVENTORY", str(tmp_path))
    assert lab_scenario.inventory_links(scenario)["group_vars"] == tmp_path / "hash" / "group_vars"


def test_every_scenario_links_its_example_through_the_variable():
    """The cross product (scripts/test.sh --matrix) reaches each scenario's inventory only so."""
    for name in ("primary_backup", "multipath", "hash", "sandwich"):
        with open(os.path.join(ROOT, "molecule", name, "molecule.yml"), encoding="utf-8") as handle:
            text = handle.read()
        for kind in ("hosts.yml", "group_vars/", "host_vars/"):
            assert "${FWCLUSTER_LAB_INVENTORY:-../../inventories}/%s/%s" % (name, kind) in text, (name, kind)
