"""scripts/lib/slowest_tasks.py: the slowest tasks of a Molecule scenario's log, over all its playbook runs."""

from __future__ import annotations

import importlib.util
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir,
                      "scripts", "lib", "slowest_tasks.py")
if not os.path.exists(SCRIPT):
    pytest.skip("scripts/ is not part of a built collection (galaxy.yml build_ignore)", allow_module_level=True)
SPEC = importlib.util.spec_from_file_location("slowest_tasks", SCRIPT)
slowest_tasks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(slowest_tasks)

# Two playbook runs of one scenario, as profile_tasks ends them (the second
# with colour codes, as a terminal run prints them).
LOG = """\
INFO     [hash > converge] Executing

PLAY RECAP *********************************************************************
hs-fw1                     : ok=62   changed=6    unreachable=0    failed=0

TASKS RECAP ********************************************************************
Thursday 03 December 2026  14:30:33 +0000 (0:00:00.018)       0:02:01.882 *****
===============================================================================
fwcluster.netfilter.keepalived : Wait until the node has settled in the VRRP election --- 4.14s
fwcluster.netfilter.firewall : Render the IPv4 ruleset ------------------ 1.80s
INFO     [hash > converge] Executed: Successful
INFO     [hash > side_effect] Executing
Played before the recap ------------------------------------------------ 99.00s
TASKS RECAP ********************************************************************
Thursday 03 December 2026  14:34:20 +0000 (0:00:00.018)       0:02:35.000 *****
===============================================================================
\x1b[0;32mWait for echoes on the victim's flows after the takeover -------------- 25.35s\x1b[0m
Stop the held flows ----------------------------------------------------- 0.40s
INFO     [hash > destroy] Executing
"""


def test_ranks_every_recap_of_the_log_with_its_step():
    ranked = slowest_tasks.slowest(LOG.splitlines(True), 3)
    assert ranked == [
        (25.35, "side_effect", "Wait for echoes on the victim's flows after the takeover"),
        (4.14, "converge", "fwcluster.netfilter.keepalived : Wait until the node has settled in the VRRP election"),
        (1.80, "converge", "fwcluster.netfilter.firewall : Render the IPv4 ruleset"),
    ]


def test_lines_outside_a_recap_are_not_tasks():
    ranked = slowest_tasks.slowest(LOG.splitlines(True), 10)
    assert [item[2] for item in ranked if item[0] == 99.0] == []
    assert len(ranked) == 4


def test_a_log_without_recap_says_so(tmp_path, capsys):
    log = tmp_path / "empty.log"
    log.write_text("INFO     [hash > create] Executing\n")
    assert slowest_tasks.main([str(log)]) == 0
    assert "no profile_tasks recap" in capsys.readouterr().out
