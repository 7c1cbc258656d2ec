"""Checks of a deployed layer, one implementation each: functions that take a testinfra host
(and what else they need: the host's container engine, the other hosts, the VIP) and
assert. The pytest suite (tests/integration) and the Molecule scenarios' testinfra
verifiers (molecule/*/tests) call the same functions."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import testinfra


@dataclass
class Inventory:
    """The hosts of an inventory as Ansible sees it: names, addresses, groups and host vars."""

    path: Path
    hostvars: dict[str, dict]
    groups: dict[str, list[str]]

    @classmethod
    def load(cls, path: Path) -> Inventory:
        env = {**os.environ, "ANSIBLE_INVENTORY_IGNORE_REGEX": r"^(overrides|clouds\.yaml|sovstack-ca\.crt)$"}
        proc = subprocess.run(
            ["ansible-inventory", "-i", str(path), "--list"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, f"ansible-inventory -i {path}: {proc.stderr}"
        data = json.loads(proc.stdout)
        hostvars = data["_meta"]["hostvars"]

        def members(group: str) -> set[str]:
            entry = data.get(group) or {}
            found = set(entry.get("hosts", []))
            for child in entry.get("children", []):
                found |= members(child)
            return found

        groups = {name: sorted(members(name)) for name in data if name != "_meta"}
        groups["all"] = sorted(hostvars)
        return cls(path, hostvars, groups)

    def addresses(self) -> dict[str, str]:
        """Every host's name and address (ansible_host)."""
        return {name: str(v["ansible_host"]) for name, v in sorted(self.hostvars.items())}

    def engine(self, name: str) -> str:
        """The container engine of a host (its `container_engine`: docker or podman)."""
        return str(self.hostvars[name].get("container_engine", "docker"))

    def host(self, name: str) -> testinfra.host.Host:
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={self.path}")
