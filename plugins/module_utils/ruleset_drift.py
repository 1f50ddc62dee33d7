# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a node's live ruleset match its rendered rules file?

Both sides are read the same way, by iptables-save (or nft list for the
nftables backend): the live ruleset as it is, the file as the kernel parses
it, loaded into a scratch network namespace (``unshare --net``) that nothing
else sees. So the comparison is in the tool's own listing form, with no
parser of the rules of ours.

normalized(save_text, dynamic_chains) drops what is not the ruleset:
comments, counters, tables left empty with every built-in chain accepting
(listing a table can create it), and the rules of DYNAMIC_CHAINS, which a
hook edits at run time (the node ids a hash node owns); those chains
themselves still count.
"""

from __future__ import annotations

import difflib
import hashlib
import re

_COUNTERS = re.compile(r"\s*\[\d+:\d+\]$")
_NFT_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")


def normalized(save_text, dynamic_chains=()):
    """{table: [lines]} of iptables-save output, without what is not the ruleset (see the module docstring)."""
    tables = {}
    table = None
    for line in save_text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            tables[table] = []
        elif table is None:
            continue
        elif line == "COMMIT":
            table = None
        elif line.startswith(":"):
            tables[table].append(_COUNTERS.sub("", line))
        elif not any(line.startswith("-A %s " % chain) for chain in dynamic_chains):
            tables[table].append(line)
    return dict((name, lines) for name, lines in tables.items() if not _empty(lines))


def normalized_nft(list_text, dynamic_chains=()):
    """{"FAMILY TABLE": [lines]} of nft list output: each table's chains and rules as nft lists them.

    The rules of DYNAMIC_CHAINS (chain names) are left out, as in normalized();
    the chains themselves still count. Counters' values are left out too.
    """
    tables = {}
    table = chain = None
    for line in list_text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("table ") and line.endswith("{"):
            table = line[len("table "):-1].strip()
            tables[table] = []
        elif table is None:
            continue
        elif line.startswith("chain ") and line.endswith("{"):
            chain = line[len("chain "):-1].strip()
            tables[table].append("chain " + chain)
        elif line == "}":
            if chain is None:
                table = None
            chain = None
        elif chain is None or chain not in dynamic_chains or line.startswith(("type ", "policy ")):
            line = _NFT_COUNTER.sub("counter", line)  # what a rule counted is not the ruleset
            tables[table].append(line if chain is None else "%s: %s" % (chain, line))
    return tables


def _empty(lines):
    """A table with built-in chains only, each accepting, and no rule: as if it did not exist."""
    return all(line.startswith(":") and line.split()[1] == "ACCEPT" for line in lines)


def text(tables):
    """The normalized tables as one text, tables in name order."""
    return "".join("*%s\n%sCOMMIT\n" % (name, "".join(line + "\n" for line in tables[name]))
                   for name in sorted(tables))


def digest(tables):
    """A short fingerprint of the normalized tables (sha256, 12 hex digits)."""
    return hashlib.sha256(text(tables).encode("utf-8")).hexdigest()[:12]


def _flat(tables):
    return ["%s: %s" % (name, line) for name in sorted(tables) for line in tables[name]]


def differences(rendered, live, limit=20):
    """What differs, each line "-table: line" (rendered only) or "+table: line" (live only); at most LIMIT."""
    lines = [line for line in difflib.unified_diff(_flat(rendered), _flat(live), n=0, lineterm="")
             if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    return lines[:limit] + (["... %d more" % (len(lines) - limit)] if len(lines) > limit else [])
