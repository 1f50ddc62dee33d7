"""Run ansible-playbook against this checkout as the installed collection, for the unit tests that need it."""

from __future__ import annotations

import os
import subprocess
import sys

import ansible_collections.fwcluster.netfilter as collection

PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
COLLECTION = list(collection.__path__)[0]
# The folder holding ansible_collections/: what ANSIBLE_COLLECTIONS_PATH names.
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION)))
MISSING = not os.path.exists(PLAYBOOK_BIN)
MISSING_REASON = "ansible-playbook is not installed beside pytest"


def run_playbook(tmp_path, inventory, playbook, *arguments):
    """(return code, output with stderr) of ansible-playbook -i inventory playbook arguments, run in tmp_path."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    completed = subprocess.run([PLAYBOOK_BIN, "-i", str(inventory), str(playbook)] + list(arguments),
                               cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=300, check=False)
    return completed.returncode, completed.stdout.decode()
