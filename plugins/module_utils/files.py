# Copyright: sovstack developers
# Apache License 2.0
"""Configuration files written on a host, each only when it differs (the service_host module)."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import tempfile
from typing import Any


def _uid(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else pwd.getpwnam(text).pw_uid


def _gid(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else grp.getgrnam(text).gr_gid


def _differs(path: str, uid: int, gid: int, mode: int) -> bool:
    info = os.lstat(path)
    return (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode)


def checksum(data: bytes) -> str:
    """A file's change marker: its SHA-1, as Ansible's checksum."""
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - a change marker, not a signature


def write_files(
    directories: dict[str, Any],
    files: list[dict[str, Any]],
    contents: list[str],
    check: bool,
    purge: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Make each directory (a group: root, that group, 0750; or a mapping of owner, group and
    mode) and write each file atomically where its content, owner, group or mode differs, then
    remove the files of the `purge` directories that `files` does not name; (the paths changed
    or removed, the SHA-1 of every file). Raises OSError, KeyError (an unknown user or group)
    or ValueError (a bad mode)."""
    changed: list[str] = []
    checksums: dict[str, str] = {}
    for path, spec in directories.items():
        if isinstance(spec, dict):
            uid, gid = _uid(spec.get("owner", 0)), _gid(spec.get("group", 0))
            mode = int(str(spec.get("mode", "0750")), 8)
        else:
            uid, gid, mode = 0, _gid(spec), 0o750
        if not os.path.isdir(path):
            changed.append(path)
            if not check:
                os.makedirs(path, mode=mode, exist_ok=True)
                os.chown(path, uid, gid)
                os.chmod(path, mode)
        elif _differs(path, uid, gid, mode):
            changed.append(path)
            if not check:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
    for entry, content in zip(files, contents, strict=True):
        path, uid, gid = entry["path"], _uid(entry["owner"]), _gid(entry["group"])
        mode = int(str(entry["mode"]), 8)
        data = content.encode()
        checksums[path] = checksum(data)
        try:
            with open(path, "rb") as handle:
                same = handle.read() == data
        except FileNotFoundError:
            same = False
        if same and not _differs(path, uid, gid, mode):
            continue
        changed.append(path)
        if check:
            continue
        if same:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
            continue
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".sovstack-")
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
    named = {entry["path"] for entry in files}
    for directory in purge or []:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if path not in named and os.path.isfile(path) and not os.path.islink(path):
                changed.append(path)
                if not check:
                    os.unlink(path)
    return changed, checksums
