"""Module tests: run a module's main() in-process, exit_json/fail_json turned into return values."""

from __future__ import annotations

import contextlib
import json

import pytest

from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19: a module reads its arguments from basic._ANSIBLE_ARGS
    @contextlib.contextmanager
    def patch_module_args(args):
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = None


class ModuleExit(Exception):
    def __init__(self, result):
        super(ModuleExit, self).__init__(result)
        self.result = result


class ModuleFail(Exception):
    def __init__(self, result):
        super(ModuleFail, self).__init__(result)
        self.result = result


def _exit_json(self, **result):
    result.setdefault("changed", False)
    raise ModuleExit(result)


def _fail_json(self, msg, **result):
    result["failed"] = True
    result["msg"] = msg
    raise ModuleFail(result)


def _run_module(monkeypatch, main, args, check_mode=False):
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        try:
            main()
        except ModuleExit as done:
            return True, done.result
        except ModuleFail as failed:
            return False, failed.result
    pytest.fail("the module returned without exit_json or fail_json")


@pytest.fixture
def run_module(monkeypatch):
    """run_module(main, args, check_mode=False) -> (True, result) on exit_json, (False, result) on fail_json."""
    def run(main, args, check_mode=False):
        return _run_module(monkeypatch, main, args, check_mode)
    return run
