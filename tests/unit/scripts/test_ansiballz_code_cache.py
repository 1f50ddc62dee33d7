"""scripts/lib/ansiballz_code_cache.py: Ansible's module payloads compiled once, and run the same.

Each case runs a fresh interpreter, as a module run does: the hook loaded,
a payload zip put first on sys.path, a package and a module imported from it.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import zipfile

import pytest

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "scripts", "lib")
if not os.path.exists(os.path.join(LIB, "ansiballz_code_cache.py")):
    pytest.skip("scripts/ is not part of a built collection (galaxy.yml build_ignore)", allow_module_level=True)

# What the interpreter reports: which loader imported the module, its file,
# the package's search path, its value, and the file a traceback names.
PROBE = """
import json, sys, traceback
import ansiballz_code_cache
sys.path.insert(0, sys.argv[1])
import pkg.mod
try:
    pkg.mod.fail()
except RuntimeError:
    frame = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({"loader": type(pkg.mod.__loader__).__name__, "file": pkg.mod.__file__,
                  "path": list(pkg.__path__), "value": pkg.mod.VALUE, "traceback": frame}))
"""

MODULE = 'VALUE = "%s"\n\ndef fail():\n    raise RuntimeError("in the payload")\n'


def payload(directory, value, name="ansible_ping_payload.zip"):
    """A zip laid out as Ansible's: a package and a module in it."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/mod.py", MODULE % value)
    return path


def run(archive, cache):
    env = dict(os.environ, PYTHONPATH=LIB, FWCLUSTER_ANSIBALLZ_CACHE=str(cache))
    # -S: no .pth file of this interpreter loads an installed copy of the hook
    done = subprocess.run([sys.executable, "-S", "-c", PROBE, archive], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_payload_imports_through_the_hook_and_fills_the_cache(tmp_path):
    archive = payload(tmp_path / "ansible_ping_payload_x1", "source")
    seen = run(archive, tmp_path / "cache")
    assert seen == {
        "loader": "PayloadImporter",
        "file": os.path.join(archive, "pkg", "mod.py"),
        "path": [os.path.join(archive, "pkg")],
        "value": "source",
        "traceback": "pkg/mod.py",
    }
    assert len(os.listdir(tmp_path / "cache")) == 2   # the package and the module


def test_the_next_run_takes_the_code_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    run(payload(tmp_path / "ansible_ping_payload_x1", "source"), cache)
    # Each cached entry replaced by other code: the next run executes it.
    for entry in os.listdir(cache):
        with open(cache / entry, "rb") as handle:
            code = marshal.load(handle)
        if "VALUE" in code.co_names:
            with open(cache / entry, "wb") as handle:
                marshal.dump(compile(MODULE % "cached", code.co_filename, "exec"), handle)
    assert run(payload(tmp_path / "ansible_ping_payload_x2", "source"), cache)["value"] == "cached"


def test_changed_source_is_compiled_again(tmp_path):
    cache = tmp_path / "cache"
    run(payload(tmp_path / "ansible_ping_payload_x1", "old"), cache)
    assert run(payload(tmp_path / "ansible_ping_payload_x2", "new"), cache)["value"] == "new"
    assert len(os.listdir(cache)) == 3   # one package, the module twice


def test_a_damaged_cache_entry_is_compiled_again(tmp_path):
    cache = tmp_path / "cache"
    run(payload(tmp_path / "ansible_ping_payload_x1", "source"), cache)
    for entry in os.listdir(cache):
        (cache / entry).write_bytes(b"\x00")
    assert run(payload(tmp_path / "ansible_ping_payload_x2", "source"), cache)["value"] == "source"


def test_other_zips_are_left_to_zipimport(tmp_path):
    seen = run(payload(tmp_path, "source", name="library.zip"), tmp_path / "cache")
    assert seen["loader"] == "zipimporter"
    assert not (tmp_path / "cache").exists()
