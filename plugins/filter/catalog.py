# Copyright: sovstack developers
# Apache License 2.0
"""Filters over a service's catalog entry (plugins/module_utils/catalog.py) for the engine."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.sovstack.cloud.plugins.filter.config import locked_image


def catalog_containers(
    containers: list[dict[str, Any]], entry: dict[str, Any], group_names: list[str]
) -> list:
    """The role's container definitions that run on a host of these groups, each with the
    image and groups of its catalog entry (C(catalog_name), default its name: per-host instances
    such as one OSD per device share one catalog container). A container whose C(enabled) is
    false is left out (the engine removes it where it runs)."""
    found = []
    for container in containers:
        if not container.get("enabled", True):
            continue
        key = container.get("catalog_name", container["name"])
        listed = entry["containers"].get(key)
        if listed is None:
            raise AnsibleFilterError(
                f"{entry['name']}: container {key!r} is not in the service's catalog entry "
                f"(roles/{entry['name']}/meta/service.yml, containers): add it there"
            )
        if any(group in group_names for group in listed["groups"]):
            found.append(
                {k: v for k, v in container.items() if k not in ("enabled", "catalog_name")}
                | {"image": listed["image"], "groups": listed["groups"]}
            )
    return found


def catalog_hosts(entry: dict[str, Any], groups: dict[str, list[str]]) -> list[str]:
    """The hosts a service runs on: those of its containers' groups, in the inventory's order."""
    hosts: list[str] = []
    for container in entry["containers"].values():
        for group in container["groups"]:
            for host in groups.get(group, []):
                if host not in hosts:
                    hosts.append(host)
    return hosts


# The options of a container definition that the engine hands to the container engine as they
# are (docs/services.md); the others (files, config_path, uid, group) it turns into these.
PASSED = (
    "command",
    "environment",
    "user",
    "tmpfs",
    "devices",
    "pid_mode",
    "ipc_mode",
    "cgroupns_mode",
    "cap_add",
    "ulimits",
    "sysctls",
    "device_cgroup_rules",
    "privileged",
    "healthcheck",
    "stop_timeout",
)


def _file_path(config_root: str, container: dict[str, Any], entry: dict[str, Any]) -> str:
    """Where a container's file is rendered on the host: ROOT/CONTAINER/DEST (the directory
    the container mounts at its config path)."""
    return f"{config_root}/{container['name']}/{entry['dest']}"


def service_containers(here: list[dict[str, Any]], config_root: str, lock_path: str) -> list:
    """The containers of catalog_containers as module sovstack.cloud.service_host takes them:
    each from the image the lock pins, its rendered files mounted read-only at its config path
    (and listed in C(config_files), so that a change restarts it), host networking, every
    capability dropped and no new privileges unless the definition says otherwise, restarted
    by the engine unless stopped."""
    found = []
    for container in here:
        directory = f"{config_root}/{container['name']}"
        files = [_file_path(config_root, container, entry) for entry in container.get("files", [])]
        mounts = [f"{directory}:{container['config_path']}:ro"] if files else []
        found.append(
            {
                "name": container["name"],
                "image": locked_image(lock_path, container["image"]),
                "network_mode": container.get("network_mode", "host"),
                "volumes": mounts + list(container.get("volumes", [])),
                "cap_drop": container.get("cap_drop", ["ALL"]),
                "security_opt": container.get("security_opt", ["no-new-privileges"]),
                "restart_policy": "unless-stopped",
                "config_files": files,
                **{key: container[key] for key in PASSED if key in container},
            }
        )
    return found


def service_files(here: list[dict[str, Any]], config_root: str) -> list:
    """Every file of a host's containers of a service: C(path) (C(ROOT/CONTAINER/DEST)),
    C(owner) root, C(group) the container's uid, C(mode) (default 0640), and the C(src)
    template, C(dest) and C(format) (default text) it is rendered and merged from."""
    return [
        {
            "path": _file_path(config_root, container, entry),
            "owner": "root",
            "group": str(container.get("uid", 0)),
            "mode": str(entry.get("mode", "0640")),
            "src": entry["src"],
            "dest": entry["dest"],
            "format": entry.get("format", "text"),
        }
        for container in here
        for entry in container.get("files", [])
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "catalog_containers": catalog_containers,
            "catalog_hosts": catalog_hosts,
            "service_containers": service_containers,
            "service_files": service_files,
        }
