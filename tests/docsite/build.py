"""Build the collection's documentation site with antsibull-docs, warnings as errors.

    python3 tests/docsite/build.py DEST

Needs antsibull-docs and Sphinx on PATH (tests/docsite/requirements.txt; the
test command's docs step makes build/venv-docs) and ansible-doc (the project
venv), with the collection on ANSIBLE_COLLECTIONS_PATH (scripts/env.sh). It
runs ``antsibull-docs sphinx-init`` for fwcluster.netfilter into DEST, then
DEST/build.sh: antsibull-docs writes the RST of every module, filter and role
(failing on a documentation error), Sphinx builds the HTML with -W.

The pages antsibull-docs generates link two labels of Ansible's own
documentation (the common return values, the configuration settings), which
Sphinx resolves through intersphinx. These machines cannot fetch
docs.ansible.com's inventory, so DEST gets a local one holding those two
labels with their addresses there, and no other intersphinx source (Python's
and Jinja's, which the pages do not use). Any other unresolved reference still
fails the build.
"""

import pathlib
import re
import subprocess
import sys
import zlib

COLLECTION = "fwcluster.netfilter"
ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# The labels of Ansible's documentation that antsibull-docs' page templates link.
ANSIBLE_LABELS = (
    ("common_return_values", "reference_appendices/common_return_values.html#common-return-values",
     "Return Values"),
    ("ansible_configuration_settings", "reference_appendices/config.html#ansible-configuration-settings",
     "Ansible Configuration Settings"),
)
MAPPING = re.compile(r"^intersphinx_mapping = \{.*?^\}", re.M | re.S)


def write_inventory(path):
    """A Sphinx inventory (objects.inv, version 2) of ANSIBLE_LABELS."""
    lines = "".join("%s std:label -1 %s %s\n" % label for label in ANSIBLE_LABELS)
    header = "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n" \
             "# The remainder of this file is compressed using zlib.\n"
    path.write_bytes(header.encode() + zlib.compress(lines.encode()))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    dest = pathlib.Path(sys.argv[1]).resolve()
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    dest.mkdir(parents=True)
    subprocess.run(["antsibull-docs", "sphinx-init", "--use-current", "--squash-hierarchy", "--fail-on-error",
                    "--dest-dir", str(dest), COLLECTION], check=True)
    inventory = dest / "ansible_devel.inv"
    write_inventory(inventory)
    conf = dest / "conf.py"
    text, count = MAPPING.subn("intersphinx_mapping = {\n    'ansible_devel': (%r, %r),\n}"
                               % (ANSIBLE_DOCS, str(inventory)), conf.read_text())
    if count != 1:
        sys.exit("build.py: no intersphinx_mapping block in %s (antsibull-docs changed its conf.py)" % conf)
    conf.write_text(text)
    subprocess.run(["bash", str(dest / "build.sh")], check=True)
    print("documentation site: %s" % (dest / "build" / "html" / "index.html"))


if __name__ == "__main__":
    main()
