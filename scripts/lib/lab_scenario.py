"""A lab scenario's molecule.yml as Molecule reads it, for the scripts that read it too.

Molecule expands environment variables in molecule.yml before it parses it:
the scenarios' inventory links name ${FWCLUSTER_LAB_INVENTORY:-../../inventories}
(the test command's cross product sets it, scripts/test.sh --matrix).
scripts/demo.sh and benchmark/bench.py read the file through this.
"""

import os
import pathlib
import re

import yaml

# $NAME, ${NAME}, ${NAME:-default} and ${NAME-default}, as Molecule (after docker-compose) spells them.
_VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)(?:(:?-)([^}]*))?\})")


def expand(text, environ=None):
    """TEXT with each variable replaced by its value (a default where it is unset, or empty with :-)."""
    environ = os.environ if environ is None else environ

    def value(found):
        name = found.group(1) or found.group(2)
        if found.group(3) == ":-" and not environ.get(name):
            return found.group(4)
        if found.group(3) == "-" and name not in environ:
            return found.group(4)
        return environ.get(name, "")
    return _VARIABLE.sub(value, text)


def molecule_config(scenario_dir):
    """The scenario's molecule.yml, expanded and parsed."""
    return yaml.safe_load(expand((pathlib.Path(scenario_dir) / "molecule.yml").read_text(encoding="utf-8")))


def inventory_links(scenario_dir):
    """{hosts, group_vars, host_vars: absolute path} of the inventory the scenario links."""
    links = ((molecule_config(scenario_dir).get("provisioner") or {}).get("inventory") or {}).get("links") or {}
    return dict((kind, (pathlib.Path(scenario_dir) / path).resolve()) for kind, path in links.items())
