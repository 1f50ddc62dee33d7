# -*- coding: utf-8 -*-
# Copyright: fwcluster.netfilter developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compile Ansible's module payloads once per lab, not twice per module run.

Every Ansible module run unpacks a new zip of the module and its
module_utils and imports them with zipimport, which keeps no bytecode: it
compiles each file again, in fact twice (find_spec asks get_filename, which
zipimport answers by compiling the module, then exec_module compiles it
again). That is about half of a module run's CPU time (0.20 s of a
ansible.builtin.ping, 0.11 s with this hook, on the lab's 2 cores), and the
lab runs thousands of modules.

Loaded at interpreter start by a .pth file (the lab's node images,
molecule/shared/image/build.sh, and the project venv, scripts/setup.sh), it
puts an importer in front of zipimport for Ansible's payload zips only: the
filename comes from the archive's listing, and the code object is kept in a
root-only directory, keyed by the interpreter, the module name and the hash
of the source. The modules run the same code; nothing else is imported
differently.
"""

import hashlib
import marshal
import os
import sys
import zipimport

# the venv's own directory, or /var/cache on a system interpreter
CACHE = os.environ.get("FWCLUSTER_ANSIBALLZ_CACHE") or os.path.join(
    sys.prefix if sys.prefix != sys.base_prefix else "/var", "cache", "ansiballz-code")
# Ansible's payload zips: ansible_<module>_payload.zip in a fresh temporary
# directory (ansible/_internal/_ansiballz/_wrapper.py)
PAYLOAD = "_payload.zip"
INTERPRETER = "%s %s" % (sys.implementation.cache_tag, sys.version)


class PayloadImporter(zipimport.zipimporter):
    """zipimport, with the filename read from the listing and the code cached."""

    def _inner(self, fullname):
        """The module's path inside the zip."""
        name = fullname.rpartition(".")[2]
        return self.prefix + name + ("/__init__.py" if self.is_package(fullname) else ".py")

    def get_filename(self, fullname):
        return os.path.join(self.archive, self._inner(fullname))

    def get_code(self, fullname):
        source = self.get_source(fullname)
        if source is None:   # compiled only, no source in the zip
            return super().get_code(fullname)
        key = hashlib.sha256("\0".join((INTERPRETER, fullname, source)).encode()).hexdigest()
        cached = os.path.join(CACHE, key)
        try:
            with open(cached, "rb") as handle:
                return marshal.load(handle)
        except (OSError, EOFError, ValueError, TypeError):
            pass
        # the name inside the payload: the zip's directory changes every run
        code = compile(source, self._inner(fullname), "exec", dont_inherit=True)
        try:
            os.makedirs(CACHE, mode=0o700, exist_ok=True)
            partial = "%s.%d" % (cached, os.getpid())
            with open(partial, "wb") as handle:
                marshal.dump(code, handle)
            os.replace(partial, cached)   # whole or absent for a concurrent run
        except OSError:
            pass
        return code


def payload_hook(path):
    if PAYLOAD not in path:
        raise ImportError("not an Ansible module payload")
    return PayloadImporter(path)


sys.path_hooks.insert(0, payload_hook)
sys.path_importer_cache.clear()
