"""Nothing changed: every rendered file and every refusal message is byte for byte the committed snapshot.

The snapshot (expected/, see snapshot.py) was taken before the model's refactor. A change
of the model, a template, a role default or a message shows here as a unified diff per
file. When the change is intended, rewrite the snapshot with

    .venv/bin/python tests/unit/golden/update.py --update

and commit expected/ with the change. The tests after the first two show that the
comparison can fail: a changed plan, a changed template output, a lost file and a changed
message are each caught.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.fwcluster.netfilter.tests.unit.golden import cases, snapshot

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
SHOWN_LINES = 400  # of the differences, in the failure message; update.py prints them all


@pytest.fixture(scope="module")
def committed():
    return snapshot.read()


@pytest.fixture(scope="module")
def now():
    return snapshot.take()


def _report(found):
    lines = "".join(found).splitlines()
    shown = "\n".join(lines[:SHOWN_LINES])
    if len(lines) > SHOWN_LINES:
        shown += "\n... %d more lines (python tests/unit/golden/update.py prints them all)" % (len(lines) - SHOWN_LINES)
    return "%d file(s) differ from the golden snapshot:\n%s\nIf the change is intended: " \
           "python tests/unit/golden/update.py --update, and commit tests/unit/golden/expected/" % (len(found), shown)


def test_rendered_files_are_the_snapshot(committed, now):
    rendered = dict((path, text) for path, text in now.items() if path.startswith(snapshot.RENDERED + "/"))
    expected = dict((path, text) for path, text in committed.items() if path.startswith(snapshot.RENDERED + "/"))
    found = snapshot.differences(expected, rendered)
    assert not found, _report(found)


def test_refusal_messages_are_the_snapshot(committed, now):
    found = snapshot.differences({snapshot.REFUSALS: committed.get(snapshot.REFUSALS, "")},
                                 {snapshot.REFUSALS: now[snapshot.REFUSALS]})
    assert not found, _report(found)


def test_the_snapshot_covers_every_example_every_template_and_the_refusal_tables(committed):
    case_names = set(path.split("/")[1] for path in committed if path.startswith(snapshot.RENDERED + "/"))
    assert set(cases.EXAMPLES) <= case_names
    assert len(case_names) == len(cases.EXAMPLES) + len(cases.VARIANTS)
    templates = set()
    for role in os.listdir(os.path.join(REPO_ROOT, "roles")):
        directory = os.path.join(REPO_ROOT, "roles", role, "templates")
        if os.path.isdir(directory):
            templates.update(name[:-len(".j2")] for name in os.listdir(directory) if name.endswith(".j2"))
    file_names = set(path.rsplit("/", 1)[1] for path in committed if path.startswith(snapshot.RENDERED + "/"))
    assert templates == file_names
    assert len(cases.refusals()) > 150


def test_the_snapshot_is_deterministic_and_holds_no_path_of_this_machine(now):
    again = snapshot.take()
    assert snapshot.differences(now, again) == []
    for path, text in now.items():
        assert REPO_ROOT not in text and "/tmp/" not in text, path


# --------------------------------------------------------------------------
# The comparison can fail
# --------------------------------------------------------------------------

def _primary_backup_files(change=None):
    cluster, nodes, balancers = [case[1:] for case in cases.inventories() if case[0] == "primary_backup"][0]
    if change is not None:
        change(cluster, nodes)
    return dict(("%s/primary_backup/%s" % (snapshot.RENDERED, path), text)
                for path, text in snapshot.render_inventory(cluster, nodes, balancers).items())


def test_a_changed_plan_is_caught(committed):
    def slower_adverts(cluster, nodes):
        cluster["fwcluster_vrrp"]["advert_int"] = 2

    files = _primary_backup_files(slower_adverts)
    expected = dict((path, committed[path]) for path in files)
    found = snapshot.differences(expected, files)
    assert [entry.splitlines()[0] for entry in found] == [
        "--- expected/rendered/primary_backup/pb-fw1/keepalived.conf",
        "--- expected/rendered/primary_backup/pb-fw2/keepalived.conf",
    ]
    assert "-\tadvert_int 1.0\n+\tadvert_int 2.0\n" in found[0]
    # unchanged, the same inventory is the snapshot
    assert snapshot.differences(expected, _primary_backup_files()) == []


def test_a_changed_byte_a_lost_file_and_a_new_file_are_caught(committed):
    files = _primary_backup_files()
    expected = dict((path, committed[path]) for path in files)
    rules = "%s/primary_backup/pb-fw1/rules.nft" % snapshot.RENDERED
    conntrackd = "%s/primary_backup/pb-fw2/conntrackd.conf" % snapshot.RENDERED
    files[rules] = files[rules].replace("ct state invalid drop", "ct state invalid  drop", 1)
    files[conntrackd] = files[conntrackd].rstrip("\n")  # only the final newline
    unit = files.pop("%s/primary_backup/pb-fw1/fwcluster-netfilter.service" % snapshot.RENDERED)
    files["%s/primary_backup/pb-fw1/surprise.conf" % snapshot.RENDERED] = unit
    found = snapshot.differences(expected, files)
    assert len(found) == 4, found
    text = "".join(found)
    assert "+\t\tct state invalid  drop" in text
    assert "pb-fw1/fwcluster-netfilter.service: in the snapshot, no longer rendered" in text
    assert "pb-fw1/surprise.conf: rendered, not in the snapshot" in text
    assert "--- expected/rendered/primary_backup/pb-fw2/conntrackd.conf" in text


def test_a_changed_refusal_message_is_caught(committed):
    changed = committed[snapshot.REFUSALS].replace("ids must be unique", "ids must differ", 1)
    found = snapshot.differences({snapshot.REFUSALS: committed[snapshot.REFUSALS]}, {snapshot.REFUSALS: changed})
    assert len(found) == 1 and "+ \"plan: duplicate id\": \"pb-fw2: fwcluster_node_id: node id 0 is already " \
                               "used by pb-fw1; ids must differ\"," in found[0]


def test_write_then_read_is_byte_exact(tmp_path):
    sample = {"rendered/a/h/file": "tab\there\r\nno final newline", "refusals.json": "{}\n"}
    snapshot.write(sample, str(tmp_path / "expected"))
    (tmp_path / "expected" / "stale").write_text("x")
    snapshot.write(sample, str(tmp_path / "expected"))  # a rewrite drops files no longer rendered
    assert snapshot.read(str(tmp_path / "expected")) == sample
