#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Ensure a named volume on Docker or Podman is present or absent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: volume
short_description: Ensure a named volume of the host's engine is present or absent
version_added: "0.1.0"
description:
  - Creates a named volume, or removes it. Removing a volume that a container uses fails and
    names the containers.
  - A present volume whose labels or driver differ from the task is reported and left alone,
    as recreating it would lose its data.
options:
  name:
    description: The volume's name.
    type: str
    required: true
  state:
    description: C(present) or C(absent).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: Volume driver.
    type: str
    default: local
  labels:
    description: Labels of a new volume.
    type: dict
attributes:
  check_mode:
    support: full
    description: Reports whether the volume would be created or removed.
  diff_mode:
    support: full
    description: Shows the volume's presence before and after.
extends_documentation_fragment:
  - sovstack.cloud.engine
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: Keep Galera's data in a volume
  sovstack.cloud.volume:
    name: mariadb
    labels:
      sovstack.service: mariadb

- name: Remove it (fails while a container uses it)
  sovstack.cloud.volume:
    name: mariadb
    state: absent
"""

RETURN = r"""
volume:
  description: The volume (name, driver, mountpoint, labels); empty when absent.
  returned: always
  type: dict
mismatch:
  description: Options of an existing volume that differ from the task (left as they are).
  returned: always
  type: list
  elements: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    APIError,
    NotFound,
    connect,
)


def summary(info: dict[str, Any] | None) -> dict[str, Any]:
    if not info:
        return {}
    return {k.lower(): info.get(k) for k in ("Name", "Driver", "Mountpoint", "Labels")}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            driver=dict(type="str", default="local"),
            labels=dict(type="dict"),
            **ENGINE_ARGS,
        ),
        supports_check_mode=True,
    )
    client = connect(module)
    name = module.params["name"]
    try:
        info = client.inspect_volume(name)
    except NotFound:
        info = None
    existed = info is not None
    changed = False
    mismatch = []
    if module.params["state"] == "present":
        if info is None:
            changed = True
            if not module.check_mode:
                info = client.create_volume(
                    name, driver=module.params["driver"], labels=module.params["labels"]
                )
        else:
            if info.get("Driver") != module.params["driver"]:
                mismatch.append("driver")
            wanted = module.params["labels"] or {}
            have = info.get("Labels") or {}
            if any(have.get(k) != str(v) for k, v in wanted.items()):
                mismatch.append("labels")
    elif info is not None:
        users = [c["Names"][0].lstrip("/") for c in client.containers(all=True, filters={"volume": name})]
        if users:
            module.fail_json(
                msg=f"volume {name} is in use by {', '.join(sorted(users))}: remove those containers first"
            )
        changed = True
        if not module.check_mode:
            try:
                client.remove_volume(name)
            except APIError as exc:
                module.fail_json(msg=f"removing volume {name} failed: {exc}")
        info = None
    result = dict(changed=changed, volume=summary(info), mismatch=mismatch)
    if module._diff:
        result["diff"] = dict(
            before="present\n" if existed else "absent\n",
            after="present\n" if module.params["state"] == "present" else "absent\n",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
