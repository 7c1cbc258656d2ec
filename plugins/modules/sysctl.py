#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Set kernel parameters persistently (a sysctl.d file) and live (/proc/sys)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sysctl
short_description: Set kernel parameters in a sysctl.d file and in the running kernel
version_added: "0.1.0"
description:
  - Writes one file under C(/etc/sysctl.d) holding exactly the given parameters, and sets every
    parameter whose running value differs in C(/proc/sys).
  - A second run with the same values changes nothing. Values compare as the kernel prints them,
    so C(4096 87380 6291456) matches the kernel's tab-separated form.
  - A parameter this kernel does not have fails the task naming the key, before anything is written.
options:
  values:
    description:
      - Parameters to set, as a mapping of dotted key to value (for example C(net.ipv4.ip_forward) to C(1)).
    type: dict
    required: true
  path:
    description:
      - The file that holds the parameters. It is owned by this module; other keys in it are removed.
    type: path
    default: /etc/sysctl.d/60-sovstack.conf
  apply:
    description:
      - Also set the running kernel's values. With C(false) only the file is written
        (the values take effect at the next boot).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the file before and after, and each changed running value.
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: Forward packets and bind addresses that are not (yet) local
  sovstack.cloud.sysctl:
    values:
      net.ipv4.ip_forward: 1
      net.ipv4.ip_nonlocal_bind: 1
      net.ipv4.tcp_rmem: 4096 87380 6291456

- name: Persist only, apply at next boot
  sovstack.cloud.sysctl:
    path: /etc/sysctl.d/70-site.conf
    values:
      vm.swappiness: 10
    apply: false
"""

RETURN = r"""
file_changed:
  description: Whether the sysctl.d file was (or in check mode would be) rewritten.
  returned: always
  type: bool
  sample: true
applied:
  description: The parameters whose running value was (or would be) set, with old and new values.
  returned: always
  type: dict
  sample: {"net.ipv4.ip_forward": {"before": "0", "after": "1"}}
path:
  description: The sysctl.d file.
  returned: always
  type: str
  sample: /etc/sysctl.d/60-sovstack.conf
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.sysctl import (
    check_key,
    normalize,
    read_live,
    render,
    write_live,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            values=dict(type="dict", required=True),
            path=dict(type="path", default="/etc/sysctl.d/60-sovstack.conf"),
            apply=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    values = module.params["values"]
    path = module.params["path"]
    apply = module.params["apply"]

    errors = [msg for msg in (check_key(key) for key in sorted(values)) if msg]
    if errors:
        module.fail_json(msg="; ".join(errors))

    live = {key: read_live(key) for key in sorted(values)}
    missing = [key for key, value in live.items() if value is None]
    if missing and apply:
        module.fail_json(
            msg="this kernel has no sysctl {} (no /proc/sys entry): remove it from the values, "
            "or load the kernel feature that provides it".format(", ".join(missing))
        )

    wanted = render(values)
    current = None
    if os.path.exists(path):
        with open(path) as handle:
            current = handle.read()
    file_changed = current != wanted
    applied = {}
    if apply:
        for key in sorted(values):
            after = normalize(values[key])
            if live[key] != after:
                applied[key] = {"before": live[key], "after": after}

    if not module.check_mode:
        if file_changed:
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                module.fail_json(msg=f"the directory of {path} does not exist")
            tmp = path + ".sovstack-tmp"
            with open(tmp, "w") as handle:
                handle.write(wanted)
            os.chmod(tmp, 0o644)
            module.atomic_move(tmp, path)
        for key, change in applied.items():
            try:
                write_live(key, change["after"])
            except OSError as exc:
                module.fail_json(
                    msg="cannot set {} to {}: {}".format(key, change["after"], exc), applied=applied
                )
            now = read_live(key)
            if now != change["after"]:
                module.fail_json(
                    msg="the kernel kept {} at {} instead of {}: the value is out of its range".format(
                        key, now, change["after"]
                    ),
                    applied=applied,
                )

    result = dict(
        changed=file_changed or bool(applied), file_changed=file_changed, applied=applied, path=path
    )
    if module._diff:
        before_live = "".join("{} = {}\n".format(key, change["before"]) for key, change in applied.items())
        after_live = "".join("{} = {}\n".format(key, change["after"]) for key, change in applied.items())
        result["diff"] = [
            dict(before_header=path, after_header=path, before=current or "", after=wanted),
            dict(
                before_header="running kernel",
                after_header="running kernel",
                before=before_live,
                after=after_live,
            ),
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
