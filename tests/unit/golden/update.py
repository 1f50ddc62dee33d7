"""Compare the golden snapshot with what the code renders now, or rewrite it.

    .venv/bin/python tests/unit/golden/update.py            # print the differences; exit 1 if any
    .venv/bin/python tests/unit/golden/update.py --update   # rewrite tests/unit/golden/expected/

Rewrite only when a change of a rendered file or of a refusal message is intended, and
commit expected/ with that change, so that the review shows the files it changes.
"""

from __future__ import annotations

import importlib
import os
import sys


def main(argv):
    if argv not in ([], ["--update"]):
        sys.stderr.write(__doc__)
        return 2
    # tests/unit/conftest.py makes the collection importable from a plain checkout.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    importlib.import_module("conftest")
    snapshot = importlib.import_module("ansible_collections.fwcluster.netfilter.tests.unit.golden.snapshot")
    now = snapshot.take()
    if argv == ["--update"]:
        snapshot.write(now)
        sys.stdout.write("wrote %d files to %s\n" % (len(now), snapshot.EXPECTED))
        return 0
    found = snapshot.differences(snapshot.read(), now)
    sys.stdout.write("".join(found) or "no difference (%d files)\n" % len(now))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
