"""The execution environment's view of the collection (meta/execution-environment.yml, ee/).

ansible-builder installs what meta/ee-requirements.txt lists on the controller;
a plugin that imports a package not listed there would fail in AWX/AAP only.
"""

from __future__ import annotations

import ast
import glob
import os
import sys

import pytest
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)


def listed_packages():
    with open(os.path.join(ROOT, "meta", "ee-requirements.txt"), encoding="utf-8") as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return {line.split("=")[0].split("<")[0].split(">")[0].strip().lower() for line in lines if line}


def imported_top_modules(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_every_plugin_import_is_the_standard_library_ansible_or_listed():
    allowed = set(sys.stdlib_module_names) | {"ansible", "ansible_collections", "__future__"} | listed_packages()
    found = {}
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        for module in imported_top_modules(path):
            if module.lower() not in allowed:
                found.setdefault(module, []).append(os.path.relpath(path, ROOT))
    assert found == {}, "add these to meta/ee-requirements.txt (or stop importing them): %s" % found


def test_the_metadata_names_files_that_exist():
    with open(os.path.join(ROOT, "meta", "execution-environment.yml"), encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    assert sorted(meta["dependencies"]) == ["python", "system"]
    for path in meta["dependencies"].values():
        assert os.path.isfile(os.path.join(ROOT, path)), path


EE = os.path.join(ROOT, "ee", "execution-environment.yml")


@pytest.mark.skipif(not os.path.exists(EE), reason="ee/ is not part of a built collection (galaxy.yml build_ignore)")
def test_the_definition_installs_this_version_of_the_collection():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    artifact = "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])
    with open(EE, encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    assert [entry["src"] for entry in definition["additional_build_files"]] == [artifact]
    assert definition["dependencies"]["galaxy"]["collections"][0] == {
        "name": "/build/collection/%s" % artifact, "type": "file"}
