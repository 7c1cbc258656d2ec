#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""A service on one host in one call: its configuration files, its containers, and the removal
of the containers it no longer runs there."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_host
short_description: A service's files and containers on one host, in one call
version_added: "0.1.0"
description:
  - The service engine's one round trip per service and host. It writes the service's
    configuration files (each atomically, only where its content, owner, group or mode differs),
    ensures each of its containers in the order given exactly as M(sovstack.cloud.container)
    does (recreated only when its definition changed, restarted when the files it reads
    changed, then healthy), and removes the containers labelled with the service that the
    list no longer names.
  - Each container's config hash is the SHA-1 of the SHA-1s of its O(containers[].config_files),
    as written by this same call; a file that changed restarts only the containers that read it.
  - File contents are never shown (the option is C(no_log)); the diff names the files only.
  - The first container that does not become healthy fails the call, naming it, with the last
    lines of its log; the containers after it are not touched.
options:
  name:
    description: The service; its containers carry the label C(sovstack.service=NAME).
    type: str
    required: true
  state:
    description:
      - C(healthy) writes the files, ensures every container and waits until each is healthy,
        then removes the service's other containers.
      - C(plan) writes the files and reports in RV(would_change) which containers C(healthy)
        would change, in RV(unhealthy) the others it would wait for, and in RV(would_remove)
        the ones it would remove; it touches no container (the engine drains those first, and
        skips C(healthy) when all three are empty).
      - C(config) writes the files only; the engine is not asked.
    type: str
    choices: [healthy, plan, config]
    default: healthy
  directories:
    description:
      - Directories to make first, as a mapping of path to a group (a name or an id; owned by
        root, mode C(0750)) or to a mapping of C(owner), C(group) and C(mode).
    type: dict
    default: {}
  purge:
    description:
      - Directories whose files O(files) does not name are removed (keys a source no longer
        holds, for example); subdirectories and links are left alone.
    type: list
    elements: path
    default: []
  files:
    description: Files, each C(path), C(owner), C(group) (names or ids) and C(mode) (an octal string).
    type: list
    elements: dict
    default: []
  contents:
    description:
      - The content of each file of O(files), in the same order. Never logged or returned (it
        may hold secrets).
    type: list
    elements: str
    default: []
  containers:
    description:
      - The service's containers on this host, each with the options of
        M(sovstack.cloud.container) (without C(state), C(config_hash), C(healthy_timeout) and
        C(state_dir), which this module sets), and C(config_files).
      - An empty list removes every container of the service from this host.
    type: list
    elements: dict
    default: []
  healthy_timeout:
    description: Seconds each container may take to become healthy.
    type: int
    default: 120
  state_dir:
    description: Where the config hash last applied to each container is kept.
    type: path
    default: /var/lib/sovstack/containers
attributes:
  check_mode:
    support: full
    description: Reports what would change; writes and touches nothing.
  diff_mode:
    support: partial
    description: Names the files that change and each container's options that differ, never a file's content.
extends_documentation_fragment:
  - sovstack.cloud.engine
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: Memcached on this host
  sovstack.cloud.service_host:
    name: memcached
    directories:
      /etc/sovstack/memcached: "0"
    files:
      - {path: /etc/sovstack/memcached/memcached.conf, owner: root, group: "0", mode: "0640"}
    contents:
      - "{{ lookup('ansible.builtin.template', 'memcached.conf.j2') }}"
    containers:
      - name: memcached
        image: registry.example:4000/sovstack/memcached@sha256:...
        network_mode: host
        volumes: [/etc/sovstack/memcached:/etc/memcached:ro]
        healthcheck: {test: "memcstat --servers=127.0.0.1", interval: 5s}
        restart_policy: unless-stopped
        config_files: [/etc/sovstack/memcached/memcached.conf]
  no_log: true
"""

RETURN = r"""
changed_files:
  description: The directories and files written or removed (or that would be, in check mode and C(plan)).
  type: list
  elements: str
  returned: always
checksums:
  description: The SHA-1 of each file's content, by path.
  type: dict
  returned: always
actions:
  description: What was done to each container that changed, by name (C(create), C(restart), ...).
  type: dict
  returned: always
  sample: {keystone: [restart]}
would_change:
  description: The containers that C(healthy) would change (with O(state=plan)).
  type: list
  elements: str
  returned: always
unhealthy:
  description:
    - The containers that would not change but are not running healthy (with O(state=plan)).
    - C(healthy) would wait for them, and fail at one that restarts or times out.
  type: list
  elements: str
  returned: always
would_remove:
  description: The containers of the service that C(healthy) would remove (with O(state=plan)).
  type: list
  elements: str
  returned: always
removed:
  description: The containers of the service removed from this host.
  type: list
  elements: str
  returned: always
containers:
  description: Each container after the call, as M(sovstack.cloud.container_info) describes it, by name.
  type: dict
  returned: when O(state=healthy) and not in check mode
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.containers import (
    CONTAINER_ARGS,
    Container,
    converge,
)
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    APIError,
    EngineError,
    connect,
    health_of,
)
from ansible_collections.sovstack.cloud.plugins.module_utils.files import checksum, write_files

SERVICE_LABEL = "sovstack.service"
SET_HERE = ("state", "config_hash", "healthy_timeout", "state_dir")
ITEM_ARGS = {
    **{key: spec for key, spec in CONTAINER_ARGS.items() if key not in SET_HERE},
    "config_files": dict(type="list", elements="str", default=[]),
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="healthy", choices=["healthy", "plan", "config"]),
            directories=dict(type="dict", default={}),
            purge=dict(type="list", elements="path", default=[]),
            files=dict(type="list", elements="dict", default=[]),
            contents=dict(type="list", elements="str", default=[], no_log=True),
            containers=dict(type="list", elements="dict", default=[], options=ITEM_ARGS),
            healthy_timeout=dict(type="int", default=120),
            state_dir=dict(type="path", default="/var/lib/sovstack/containers"),
            **ENGINE_ARGS,
        ),
        supports_check_mode=True,
    )
    params = module.params
    service, state = params["name"], params["state"]
    files, contents = params["files"], params["contents"]
    if len(files) != len(contents):
        module.fail_json(msg=f"{len(files)} files but {len(contents)} contents: give one content per file")
    result: dict[str, Any] = dict(
        changed_files=[], checksums={}, actions={}, would_change=[], unhealthy=[], would_remove=[], removed=[]
    )
    diff: dict[str, dict[str, Any]] = {"before": {}, "after": {}}
    try:
        result["changed_files"], result["checksums"] = write_files(
            params["directories"], files, contents, module.check_mode, params["purge"]
        )
    except (OSError, KeyError, ValueError) as exc:
        module.fail_json(msg=f"cannot write the configuration of {service}: {exc}", **result)
    if result["changed_files"]:
        diff["before"]["files"], diff["after"]["files"] = [], result["changed_files"]
    if state != "config":
        client = connect(module)
        # The container being ensured, for the message of a failure.
        current: str | None = None
        ensured: list[Container] = []
        try:
            for item in params["containers"]:
                current = item["name"]
                container = ensure(module, client, service, item, state, result)
                ensured.append(container)
                if container.diff["after"]:
                    diff["before"][container.name] = container.diff["before"]
                    diff["after"][container.name] = container.diff["after"]
            current = None
            if state == "healthy":
                remove_others(module, client, service, result)
            else:
                result["would_remove"] = others(module, client, service)
        except (EngineError, APIError) as exc:
            where = f"{current}: " if current else ""
            module.fail_json(msg=f"{params['engine']}: {where}{exc}", **result)
        if state == "healthy" and not module.check_mode:
            result["containers"] = {container.name: container.summary() for container in ensured}
    result["changed"] = bool(result["changed_files"] or result["actions"] or result["removed"])
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


def container_params(
    module: AnsibleModule, service: str, item: dict[str, Any], checksums: dict[str, str]
) -> dict[str, Any]:
    """The container module's options for one container of the service: its config hash is
    the SHA-1 of the SHA-1s of the files it reads, as `checksums` has them."""
    params = module.params
    missing = [path for path in item["config_files"] if path not in checksums]
    if missing:
        # a path not written here would leave the container without its restarts
        module.fail_json(msg=f"{item['name']}: config_files not among the files: {', '.join(missing)}")
    return {
        **{key: value for key, value in item.items() if key != "config_files"},
        "labels": {**(item.get("labels") or {}), SERVICE_LABEL: service},
        "config_hash": checksum(",".join(checksums[path] for path in item["config_files"]).encode()),
        "healthy_timeout": params["healthy_timeout"],
        "state_dir": params["state_dir"],
        "engine": params["engine"],
    }


def ensure(
    module: AnsibleModule, client: Any, service: str, item: dict[str, Any], state: str, result: dict[str, Any]
) -> Container:
    container = Container(module, client, container_params(module, service, item, result["checksums"]))
    if state == "plan":
        container.check = True  # the files are written; the containers only compared
    converge(container, "healthy")
    if container.actions:
        result["actions"][container.name] = container.actions
        if state == "plan":
            result["would_change"].append(container.name)
    elif state == "plan":
        # unchanged, but `healthy` would still wait for it (or stop at it): name it
        info = container.inspect() or {}
        status = info.get("State") or {}
        health = health_of(status).get("Status") or "none"
        if not status.get("Running") or status.get("Restarting") or health not in ("healthy", "none"):
            result["unhealthy"].append(container.name)
    return container


def others(module: AnsibleModule, client: Any, service: str) -> list[str]:
    """The containers labelled with the service that the list no longer names."""
    wanted = {item["name"] for item in module.params["containers"]}
    found = client.containers(all=True, filters={"label": f"{SERVICE_LABEL}={service}"})
    names = (c["Names"][0].lstrip("/") for c in found if c.get("Names"))
    return sorted(name for name in names if name not in wanted)


def remove_others(module: AnsibleModule, client: Any, service: str, result: dict[str, Any]) -> None:
    """Remove the containers labelled with the service that the list no longer names."""
    for name in others(module, client, service):
        gone = Container(
            module,
            client,
            {
                "name": name,
                "engine": module.params["engine"],
                "state_dir": module.params["state_dir"],
                "stop_timeout": None,
            },
        )
        gone.absent()
        result["removed"].append(name)


if __name__ == "__main__":
    main()
