# Copyright: sovstack developers
# Apache License 2.0
"""Filters over a service's catalog entry (plugins/module_utils/catalog.py) for the engine."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def catalog_containers(
    containers: list[dict[str, Any]], entry: dict[str, Any], group_names: list[str]
) -> list:
    """The role's container definitions that run on a host of these groups, each with the
    image and group of its catalog entry (C(catalog_name), default its name: per-host instances
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
        if listed["group"] in group_names:
            found.append(
                {k: v for k, v in container.items() if k not in ("enabled", "catalog_name")}
                | {"image": listed["image"], "group": listed["group"]}
            )
    return found


def catalog_hosts(entry: dict[str, Any], groups: dict[str, list[str]]) -> list[str]:
    """The hosts a service runs on: those of its containers' groups, in the inventory's order."""
    hosts: list[str] = []
    for container in entry["containers"].values():
        for host in groups.get(container["group"], []):
            if host not in hosts:
                hosts.append(host)
    return hosts


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"catalog_containers": catalog_containers, "catalog_hosts": catalog_hosts}
