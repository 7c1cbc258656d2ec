#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Report containers on Docker or Podman: status, health, image digest, start time, labels."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_info
short_description: Report one or all containers of the host's engine
version_added: "0.1.0"
description:
  - Status, health, image id and digest, start time and labels of one container, or of every
    container, for prechecks, upgrade gates and tests. Changes nothing.
options:
  name:
    description: One container; every container when not given.
    type: str
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so has no diff.
extends_documentation_fragment:
  - sovstack.cloud.engine
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: Is keystone healthy?
  sovstack.cloud.container_info:
    name: keystone
  register: keystone

- name: Gate on it
  ansible.builtin.assert:
    that: keystone.exists and keystone.containers[0].health == 'healthy'

- name: Every container on a podman host
  sovstack.cloud.container_info:
    engine: podman
"""

RETURN = r"""
exists:
  description: Whether the named container exists (with O(name)); whether any exists otherwise.
  returned: always
  type: bool
containers:
  description: The containers, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    id:
      description: Container id.
      type: str
    status:
      description: C(running), C(exited), C(created), C(paused), ...
      type: str
    running:
      description: Whether it runs.
      type: bool
    health:
      description: C(healthy), C(unhealthy), C(starting), or C(none) without a healthcheck.
      type: str
    image:
      description: The image reference it was created from.
      type: str
    image_id:
      description: The id of the image it runs.
      type: str
    image_digests:
      description: Registry digests of that image (C(repo@sha256:...)).
      type: list
      elements: str
    started_at:
      description: When it last started (RFC 3339).
      type: str
    restart_count:
      description: How often the engine restarted it.
      type: int
    labels:
      description: Its labels.
      type: dict
"""

import contextlib
from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    NotFound,
    connect,
    describe,
)

if TYPE_CHECKING:
    from docker import APIClient


def with_digests(client: APIClient, info: dict[str, Any]) -> dict[str, Any]:
    digests: list[str] = []
    with contextlib.suppress(NotFound):
        digests = client.inspect_image(info["Image"]).get("RepoDigests") or []
    return {**describe(info), "image_digests": sorted(digests)}


def main() -> None:
    module = AnsibleModule(argument_spec=dict(name=dict(type="str"), **ENGINE_ARGS), supports_check_mode=True)
    client = connect(module)
    name = module.params["name"]
    if name:
        try:
            found = [client.inspect_container(name)]
        except NotFound:
            found = []
    else:
        found = [client.inspect_container(c["Id"]) for c in client.containers(all=True)]
    containers = sorted((with_digests(client, info) for info in found), key=lambda c: c["name"])
    module.exit_json(changed=False, exists=bool(containers), containers=containers)


if __name__ == "__main__":
    main()
