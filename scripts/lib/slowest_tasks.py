# -*- coding: utf-8 -*-
# Copyright: fwcluster.netfilter developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The slowest tasks of a whole Molecule scenario, from its log.

Every playbook run of the lab ends with the ``ansible.posix.profile_tasks``
recap (its slowest tasks, ``NAME ---- 1.23s``); a scenario is a dozen such
runs (create, prepare, check, converge, ...). This ranks the tasks of all of
them, each with the Molecule step it ran in:

    python3 scripts/lib/slowest_tasks.py build/test-logs/molecule_hash.log [--top 10]
"""

from __future__ import annotations

import argparse
import re
import sys

STEP = re.compile(r"\[[^\]>]+> (?P<step>[\w-]+)\] Executing")
RECAP = re.compile(r"^TASKS RECAP \*+")
TIMED = re.compile(r"^(?P<task>.+?) -+ (?P<seconds>\d+\.\d+)s$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def slowest(lines, top):
    """[(seconds, step, task)] of the TOP slowest tasks of every recap in LINES."""
    found = []
    step, in_recap = "?", False
    for raw in lines:
        line = ANSI.sub("", raw.rstrip("\n"))
        match = STEP.search(line)
        if match:
            step, in_recap = match.group("step"), False
        elif RECAP.match(line):
            in_recap = True
        elif in_recap:
            match = TIMED.match(line)
            if match:
                found.append((float(match.group("seconds")), step, match.group("task")))
            elif line and not line.startswith(("=", " ")) and not re.match(r"^\w+day ", line):
                in_recap = False
    return sorted(found, key=lambda item: -item[0])[:top]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    with open(args.log, encoding="utf-8", errors="replace") as handle:
        ranked = slowest(handle, args.top)
    if not ranked:
        print("no profile_tasks recap in %s" % args.log)
        return 0
    print("The %d slowest tasks of %s:" % (len(ranked), args.log))
    for seconds, step, task in ranked:
        print("  %7.2fs  %-12s %s" % (seconds, step, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
