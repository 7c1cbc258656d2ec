# Copyright: sovstack developers
# Apache License 2.0
"""Kernel parameters: how sovstack.cloud.sysctl names, renders and compares them."""

from __future__ import annotations

import os
import re

KEY_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_*:-]+)+$")
HEADER = "# Managed by sovstack (sovstack.cloud.sysctl): local changes are overwritten.\n"


def check_key(key: str) -> str | None:
    """Return an error message for a key that cannot be a sysctl name, else None."""
    if not KEY_RE.match(key) or ".." in key or "/" in key:
        return f"{key!r} is not a sysctl key (expected dotted lowercase words such as net.ipv4.ip_forward)"
    return None


def normalize(value: object) -> str:
    """Compare values as the kernel prints them: booleans as 0/1, fields split by any blank."""
    if isinstance(value, bool):
        value = int(value)
    return " ".join(str(value).split())


def render(values: dict[str, object]) -> str:
    """The sysctl.d file for these values: one `key = value` a line, sorted by key."""
    lines = [f"{key} = {normalize(values[key])}\n" for key in sorted(values)]
    return HEADER + "".join(lines)


def proc_path(key: str, proc_root: str = "/proc/sys") -> str:
    return os.path.join(proc_root, *key.split("."))


def read_live(key: str, proc_root: str = "/proc/sys") -> str | None:
    """The kernel's current value, or None where this kernel has no such parameter."""
    try:
        with open(proc_path(key, proc_root)) as handle:
            return normalize(handle.read())
    except FileNotFoundError:
        return None


def write_live(key: str, value: object, proc_root: str = "/proc/sys") -> None:
    with open(proc_path(key, proc_root), "w") as handle:
        handle.write(normalize(value) + "\n")
