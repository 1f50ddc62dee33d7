"""rendered_files on a scratch directory: what it writes, checks, reports and leaves alone."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.fwcluster.netfilter.plugins.modules import rendered_files

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the files are owned by root, as on a node")


@pytest.fixture
def run(run_module):
    """run(check_mode=False, **args): the module with --diff."""
    return lambda check_mode=False, **args: run_module(rendered_files.main, dict(args, _ansible_diff=True), check_mode)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_the_files_in_order_then_changes_nothing(run, tmp_path):
    files = [{"path": str(tmp_path / "a.sh"), "content": "#!/bin/sh\necho a\n", "mode": "0755"},
             {"path": str(tmp_path / "a.conf"), "content": "x = 1\n", "mode": "0640"}]
    ok, result = run(files=files)
    assert ok and result["changed"]
    assert result["changed_paths"] == [files[0]["path"], files[1]["path"]]
    assert (tmp_path / "a.sh").read_text() == "#!/bin/sh\necho a\n" and mode_of(files[0]["path"]) == 0o755
    assert (tmp_path / "a.conf").read_text() == "x = 1\n" and mode_of(files[1]["path"]) == 0o640
    assert [d["after"] for d in result["diff"]] == ["#!/bin/sh\necho a\n", "x = 1\n"]
    assert sorted(os.listdir(tmp_path)) == ["a.conf", "a.sh"]  # no temporary file left
    ok, result = run(files=files)
    assert ok and not result["changed"] and result["changed_paths"] == [] and result["diff"] == []


def test_a_mode_that_differs_is_set_without_rewriting(run, tmp_path):
    path = tmp_path / "rules"
    path.write_text("same\n")
    os.chmod(path, 0o644)
    inode = os.stat(path).st_ino
    ok, result = run(files=[{"path": str(path), "content": "same\n", "mode": "0600"}])
    assert ok and result["changed_paths"] == [str(path)] and result["diff"] == []
    assert mode_of(path) == 0o600 and os.stat(path).st_ino == inode


def test_check_mode_reports_the_change_and_its_diff_but_writes_nothing(run, tmp_path):
    old = tmp_path / "keepalived.conf"
    old.write_text("old\n")
    new_dir = tmp_path / "dropin.d"
    ok, result = run(check_mode=True,
                     directories=[{"path": str(new_dir), "mode": "0755"}],
                     files=[{"path": str(old), "content": "new\n", "mode": "0644"},
                            {"path": str(new_dir / "x.conf"), "content": "x\n", "mode": "0644"}],
                     absent=[str(tmp_path / "missing"), str(old)])
    assert ok and result["changed"]
    assert result["changed_paths"] == [str(new_dir), str(old), str(new_dir / "x.conf"), str(old)]
    assert result["diff"][0] == {"before_header": str(old), "after_header": str(old), "before": "old\n", "after": "new\n"}
    assert old.read_text() == "old\n" and not new_dir.exists()


def test_a_file_that_fails_its_check_is_not_installed_and_the_run_stops(run, tmp_path):
    first, second, third = tmp_path / "gate.sh", tmp_path / "routes.sh", tmp_path / "after.sh"
    second.write_text("true\n")
    ok, result = run(files=[
        {"path": str(first), "content": "exit 0\n", "mode": "0755", "validate": "sh -n %s"},
        {"path": str(second), "content": "if then fi (\n", "mode": "0755", "validate": "sh -n %s"},
        {"path": str(third), "content": "true\n", "mode": "0755"}])
    assert not ok
    assert "routes.sh: the new content failed its check (sh -n %s, exit 2)" in result["msg"]
    assert "Syntax error" in result["stderr"]
    assert result["changed_paths"] == [str(first)]
    assert first.read_text() == "exit 0\n"       # before it: installed
    assert second.read_text() == "true\n"        # itself: the old content kept
    assert not third.exists()                    # after it: not reached
    assert sorted(os.listdir(tmp_path)) == ["gate.sh", "routes.sh"]


def test_the_check_reads_the_new_content(run, tmp_path):
    path = tmp_path / "conf"
    ok, result = run(files=[{"path": str(path), "content": "wanted\n", "mode": "0600", "validate": "grep -qx wanted %s"}])
    assert ok and path.read_text() == "wanted\n"
    ok, result = run(files=[{"path": str(path), "content": "other\n", "mode": "0600", "validate": "grep -qx wanted %s"}])
    assert not ok and path.read_text() == "wanted\n"


def test_directories_are_made_with_their_mode_before_the_files(run, tmp_path):
    directory = tmp_path / "fwcluster"
    ok, result = run(directories=[{"path": str(directory), "mode": "0700"}],
                     files=[{"path": str(directory / "rules.v4"), "content": "*filter\nCOMMIT\n", "mode": "0600"}])
    assert ok and result["changed_paths"] == [str(directory), str(directory / "rules.v4")]
    assert mode_of(directory) == 0o700
    os.chmod(directory, 0o755)
    ok, result = run(directories=[{"path": str(directory), "mode": "0700"}], files=[])
    assert ok and result["changed_paths"] == [str(directory)] and mode_of(directory) == 0o700


def test_files_no_longer_wanted_are_removed(run, tmp_path):
    old = tmp_path / "fwcluster-check-upstream.sh"
    old.write_text("exit 0\n")
    ok, result = run(files=[], absent=[str(old), str(tmp_path / "never-there")])
    assert ok and result["changed_paths"] == [str(old)] and not old.exists()


@pytest.mark.parametrize("item,message", [
    ({"path": "relative/file", "content": "", "mode": "0644"}, "the path must be absolute"),
    ({"path": "/tmp/x", "content": "", "mode": "644x"}, "mode must be octal digits"),
    ({"path": "/tmp/x", "content": "", "mode": "0644", "owner": "no-such-user-here"}, "no user"),
    ({"path": "/tmp/x", "content": "", "mode": "0644", "validate": "true"}, "validate must name the new file as %s"),
])
def test_bad_input_is_refused_before_anything_is_written(run, tmp_path, item, message):
    item = dict(item, path=item["path"].replace("/tmp", str(tmp_path)))
    ok, result = run(files=[item])
    assert not ok and message in result["msg"]
    assert os.listdir(tmp_path) == []


def test_a_file_whose_directory_is_missing_names_it(run, tmp_path):
    path = tmp_path / "missing" / "file"
    ok, result = run(files=[{"path": str(path), "content": "x\n", "mode": "0644"}])
    assert not ok and "its directory %s does not exist" % (tmp_path / "missing") in result["msg"]
