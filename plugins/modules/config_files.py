#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Write a service's configuration files on a host in one call, each only when it differs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Write a set of configuration files in one call, each only when it differs
version_added: "0.1.0"
description:
  - The service engine's way of writing every configuration file of a service on a host in one
    round trip instead of one task per file. Each directory is made (owner, group, mode kept as
    given); each file is written atomically only when its content, owner, group or mode differs.
  - Returns the SHA-1 of every file as written, so that the caller can give each container a
    hash of its configuration.
  - File contents are never shown (the option is C(no_log)); the diff names the files only.
options:
  directories:
    description:
      - Directories to make first, as a mapping of path to group (a name or an id); each owned
        by root, mode C(0750).
    type: dict
    default: {}
  files:
    description: Files, each C(path), C(owner), C(group) (names or ids) and C(mode) (an octal string).
    type: list
    elements: dict
    required: true
  contents:
    description:
      - The content of each file of O(files), in the same order. Never logged or returned (it
        may hold secrets).
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
    description: Reports which files would change; writes nothing.
  diff_mode:
    support: partial
    description: Names the files that change, never their content.
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: The configuration of keystone
  sovstack.cloud.config_files:
    directories:
      /etc/sovstack/keystone: "42401"
    files:
      - {path: /etc/sovstack/keystone/keystone.conf, owner: root, group: "42401", mode: "0640"}
    contents:
      - "{{ lookup('ansible.builtin.template', 'keystone.conf.j2') }}"
  no_log: true
"""

RETURN = r"""
checksums:
  description: The SHA-1 of each file's content, by path.
  type: dict
  returned: always
changed_files:
  description: The files written (or that would be, in check mode).
  type: list
  elements: str
  returned: always
"""

import grp
import hashlib
import os
import pwd
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def _uid(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else pwd.getpwnam(text).pw_uid


def _gid(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else grp.getgrnam(text).gr_gid


def _differs(path: str, uid: int, gid: int, mode: int) -> bool:
    info = os.lstat(path)
    return (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="dict", default={}),
            files=dict(type="list", elements="dict", required=True),
            contents=dict(type="list", elements="str", required=True, no_log=True),
        ),
        supports_check_mode=True,
    )
    changed: list[str] = []
    checksums: dict[str, str] = {}
    files, contents = module.params["files"], module.params["contents"]
    if len(files) != len(contents):
        module.fail_json(msg=f"{len(files)} files but {len(contents)} contents: give one content per file")
    try:
        for path, group in module.params["directories"].items():
            uid, gid, mode = 0, _gid(group), 0o750
            if not os.path.isdir(path):
                changed.append(path)
                if not module.check_mode:
                    os.makedirs(path, mode=mode, exist_ok=True)
                    os.chown(path, uid, gid)
                    os.chmod(path, mode)
            elif _differs(path, uid, gid, mode):
                changed.append(path)
                if not module.check_mode:
                    os.chown(path, uid, gid)
                    os.chmod(path, mode)
        for entry, content in zip(files, contents, strict=True):
            path, uid, gid = entry["path"], _uid(entry["owner"]), _gid(entry["group"])
            mode = int(str(entry["mode"]), 8)
            data = content.encode()
            checksums[path] = hashlib.sha1(data).hexdigest()  # noqa: S324 - a change marker, as ansible's checksum
            try:
                with open(path, "rb") as handle:
                    same = handle.read() == data
            except FileNotFoundError:
                same = False
            if same and not _differs(path, uid, gid, mode):
                continue
            changed.append(path)
            if module.check_mode:
                continue
            if same:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
                continue
            directory = os.path.dirname(path)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".sovstack-")
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
    except (OSError, KeyError, ValueError) as exc:
        module.fail_json(msg=f"cannot write the configuration: {exc}", changed_files=changed)
    result: dict[str, Any] = dict(changed=bool(changed), changed_files=changed, checksums=checksums)
    if module._diff:
        result["diff"] = {"before": "", "after": "".join(f"{p}\n" for p in changed)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
