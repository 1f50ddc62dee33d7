"""The safeguard's confirmation on a real node (verify.yml runs these, no change pending).

confirm.yml disarms the rollback with ``fwcluster-rollback disarm``: in time,
the timer stops and nothing is restored; after the timer has fired (a run of
the roles longer than fwcluster_safeguard_timeout), the node is back on its
snapshot and the confirmation must fail, not report a change that is gone.
Each test snapshots one scratch file only (and the rules, which are the live
ones: restoring them changes nothing), arms the timer as arm.yml does, then
changes the file.
"""

from __future__ import annotations

import time

import pytest

testinfra_hosts = ["ansible://edge"]

TOOL = "/usr/local/sbin/fwcluster-rollback"
SCRATCH = "/run/fwcluster-lab-safeguard"


@pytest.fixture
def armed(host):
    """arm(SECONDS): snapshot the scratch file, arm the timer, then change the file."""
    def arm(seconds):
        host.check_output("rm -rf %s %s.file && echo before > %s.file", SCRATCH, SCRATCH, SCRATCH)
        host.check_output("%s snapshot %s/pending %s.file", TOOL, SCRATCH, SCRATCH)
        host.check_output("systemd-run --quiet --unit=fwcluster-rollback --on-active=%ss "
                          "--timer-property=AccuracySec=100ms %s restore %s/pending", str(seconds), TOOL, SCRATCH)
        host.check_output("echo after > %s.file", SCRATCH)
    yield arm
    host.run("systemctl stop fwcluster-rollback.timer fwcluster-rollback.service; rm -rf %s %s.file",
             SCRATCH, SCRATCH)


def test_a_confirmation_in_time_stops_the_timer_and_restores_nothing(host, armed):
    armed(60)
    disarmed = host.run("%s disarm %s/pending", TOOL, SCRATCH)
    assert disarmed.rc == 0, disarmed.stderr
    assert host.run("systemctl is-active fwcluster-rollback.timer").stdout.strip() == "inactive"
    assert host.file(SCRATCH + ".file").content_string == "after\n"


def test_a_confirmation_after_the_timer_has_fired_fails(host, armed):
    armed(1)
    deadline = time.monotonic() + 15
    while not host.file(SCRATCH + "/pending/restored").exists and time.monotonic() < deadline:
        time.sleep(0.5)
    disarmed = host.run("%s disarm %s/pending", TOOL, SCRATCH)
    assert disarmed.rc == 3, (disarmed.rc, disarmed.stderr)
    assert "the rollback timer fired before the change was confirmed" in disarmed.stderr
    assert host.file(SCRATCH + ".file").content_string == "before\n"  # the restore did run
