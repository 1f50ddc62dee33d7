#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rendered_files
short_description: Install a role's rendered files on a node in one module run
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - Writes each file of O(files) whose content, mode or owner differs from what the node has, in the order
    given, each checked first by its own checker (O(files[].validate)) and then moved into place in one
    rename; creates the directories of O(directories) first. One module run for all of a role's files,
    where a C(ansible.builtin.template) task per file costs a run each (the roles render the content on the
    controller with the C(ansible.builtin.template) lookup).
  - A file that fails its checker is not installed, and the run stops there with the checker's output; the
    files before it in O(files) stay installed (order them so that those are the ones the next need, as a
    daemon's scripts before its configuration).
  - The roles relay each changed path (RV(changed_paths)) to the handler it concerns.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change (and its diff) and writes nothing; the checkers do not run.
  diff_mode:
    support: full
    details: The old and new content of every file that changes.
  platform:
    platforms: posix
options:
  files:
    description: The files, installed in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Where the file goes (absolute).
        type: path
        required: true
      content:
        description: What it holds (the rendered template).
        type: str
        required: true
      mode:
        description: Its mode, in octal (V(0644)).
        type: str
        required: true
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group.
        type: str
        default: root
      validate:
        description:
          - The command that checks the new content before it is installed, with C(%s) where the path of the
            new file goes (V(keepalived -t -f %s)); split like a shell word list, run without a shell.
        type: str
  directories:
    description: Directories made (or given this mode) before any file is written.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory (absolute).
        type: path
        required: true
      mode:
        description: Its mode, in octal (V(0755)).
        type: str
        required: true
  absent:
    description: Files removed after O(files) are installed (those an earlier run installed that are not wanted now).
    type: list
    elements: path
    default: []
"""

EXAMPLES = r"""
- name: Install keepalived's notify script and configuration
  fwcluster.netfilter.rendered_files:
    files:
      - path: /usr/local/sbin/fwcluster-notify
        content: "{{ lookup('ansible.builtin.template', 'fwcluster-notify.sh.j2') }}"
        mode: "0750"
      - path: /etc/keepalived/keepalived.conf
        content: "{{ lookup('ansible.builtin.template', 'keepalived.conf.j2') }}"
        mode: "0640"
        validate: keepalived -t -f %s
  register: keepalived_files

- name: Reload keepalived when its configuration changed
  ansible.builtin.debug:
    msg: keepalived.conf changed
  changed_when: "'/etc/keepalived/keepalived.conf' in keepalived_files.changed_paths"
  notify: Reload keepalived
"""

RETURN = r"""
changed_paths:
  description: The files and directories changed (in check mode, that would change), in the order handled.
  returned: always
  type: list
  elements: str
  sample: [/etc/keepalived/keepalived.conf]
"""

import grp
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native


def _mode(module, item):
    try:
        mode = int(item["mode"], 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg="%s: mode must be octal digits such as 0644, got %r" % (item["path"], item["mode"]))
    return mode


def _ids(module, item):
    try:
        return pwd.getpwnam(item["owner"]).pw_uid, grp.getgrnam(item["group"]).gr_gid
    except KeyError:
        module.fail_json(msg="%s: no user %r or group %r on the node" % (item["path"], item["owner"], item["group"]))


def _check_path(module, path):
    if not os.path.isabs(path):
        module.fail_json(msg="%s: the path must be absolute" % path)


def _directory(module, item, changed):
    path, mode = item["path"], _mode(module, item)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        changed.append(path)
        if not module.check_mode:
            os.makedirs(path, mode)
            os.chmod(path, mode)  # makedirs' mode is masked by the umask
        return
    if not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg="%s: exists and is not a directory" % path)
    if stat.S_IMODE(st.st_mode) != mode:
        changed.append(path)
        if not module.check_mode:
            os.chmod(path, mode)


def _check_input(module):
    """Every path, mode, owner and checker refused before anything is written."""
    for item in module.params["directories"]:
        _check_path(module, item["path"])
        _mode(module, item)
    for item in module.params["files"]:
        _check_path(module, item["path"])
        _mode(module, item)
        _ids(module, item)
        if item.get("validate") is not None and "%s" not in item["validate"]:
            module.fail_json(msg="%s: validate must name the new file as %%s, got %r" % (item["path"], item["validate"]))
    for path in module.params["absent"]:
        _check_path(module, path)


def _validate(module, item, tmp, changed):
    command = item["validate"]
    argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(command)]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="%s: the new content failed its check (%s, exit %d); nothing of it was installed"
                         % (item["path"], command, rc), stdout=out, stderr=err, changed_paths=changed[:-1])


def _file(module, item, changed, diffs):
    path, mode = item["path"], _mode(module, item)
    uid, gid = _ids(module, item)
    want = to_bytes(item["content"], errors="surrogate_or_strict")
    try:
        with open(path, "rb") as f:
            have = f.read()
        st = os.stat(path)
    except FileNotFoundError:
        have, st = None, None
    if have == want:
        if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (mode, uid, gid):
            changed.append(path)
            if not module.check_mode:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
        return
    changed.append(path)
    if module._diff:
        diffs.append({"before_header": path, "after_header": path,
                      "before": to_native(have or b"", errors="surrogate_or_strict"), "after": item["content"]})
    if module.check_mode:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg="%s: its directory %s does not exist (list it in directories)" % (path, directory),
                         changed_paths=changed)
    # A temporary file beside the target: the rename is atomic, and the
    # checker reads exactly what gets installed.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(want)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        if item.get("validate"):
            _validate(module, item, tmp, changed)
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _absent(module, path, changed):
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            module.fail_json(msg="%s: is a directory, not a file to remove" % path, changed_paths=changed)
        changed.append(path)
        if not module.check_mode:
            os.unlink(path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", required=True),
                owner=dict(type="str", default="root"),
                group=dict(type="str", default="root"),
                validate=dict(type="str"),
            )),
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                mode=dict(type="str", required=True),
            )),
            absent=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    _check_input(module)
    changed, diffs = [], []
    for item in module.params["directories"]:
        _directory(module, item, changed)
    for item in module.params["files"]:
        _file(module, item, changed, diffs)
    for path in module.params["absent"]:
        _absent(module, path, changed)
    result = dict(changed=bool(changed), changed_paths=changed)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
