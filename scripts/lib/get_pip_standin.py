# -*- coding: utf-8 -*-
# Copyright: fwcluster.netfilter developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip.

ansible-test fetches get-pip.py from ci-files.testing.ansible.com, which these
machines cannot reach; it uses a copy in ~/.ansible/test/cache/ when one is
there. scripts/setup.sh places this file there. Like get-pip.py it is run as
__main__ inside a fresh virtual environment with pip's install arguments
(e.g. ``--disable-pip-version-check pip==24.2``): it seeds pip with the
interpreter's own ensurepip, then installs the requested pip from PyPI.
"""

from __future__ import annotations

import ensurepip
import subprocess
import sys


def main() -> None:
    """Seed pip from ensurepip, then install what ansible-test asked for."""
    ensurepip.bootstrap(upgrade=True, default_pip=False)
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    command = [sys.executable, '-m', 'pip', 'install', '--upgrade', '--quiet'] + args
    if subprocess.call(command) != 0:
        # The seeded pip installs the test requirements just as well; only
        # its version differs from the one ansible-test pins.
        sys.stderr.write('get_pip stand-in: could not install %s, keeping the pip of ensurepip\n' % ' '.join(args))


if __name__ == '__main__':
    main()
