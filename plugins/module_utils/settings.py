# Copyright: sovstack developers
# Apache License 2.0
"""The operator's settings, checked as a whole before anything runs: every variable a topology
or a group_vars/host_vars file sets must be known (a global of this file, or an option of one
of the collection's roles), of the right type, and not contradict another.

Pure code (PyYAML only): the CLI runs it on the controller. Every problem names the file and
the key, and says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible_collections.sovstack.cloud.plugins.module_utils.topology import did_you_mean

# Settings every role shares, set once in the inventory (see docs/configuration.md).
GLOBALS: dict[str, dict[str, Any]] = {
    "container_engine": {"type": "str", "choices": ["docker", "podman"]},
    "sovstack_user": {"type": "str"},
    "sovstack_group": {"type": "str"},
    "sovstack_uid": {"type": "int"},
    "sovstack_gid": {"type": "int"},
    "sovstack_config_dir": {"type": "path"},
    "sovstack_registry": {"type": "str"},
    "sovstack_registry_insecure": {"type": "bool"},
    "sovstack_registry_ca": {"type": "str"},
    "sovstack_images_lock": {"type": "path"},
    "sovstack_vip": {"type": "str"},
    "sovstack_tls_vip": {"type": "bool"},
    "sovstack_overrides_dir": {"type": "path"},
    "sovstack_rig": {"type": "str"},
    "nova_virt_type": {"type": "str", "choices": ["kvm", "qemu"]},
    "ovs_datapath_type": {"type": "str", "choices": ["system", "netdev"]},
}
# Variables of Ansible itself that an inventory may set.
ANSIBLE_PREFIX = "ansible_"

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "path": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "raw": (object,),
}


def role_options(roles_dir: Path) -> dict[str, dict[str, Any]]:
    """Every option of every role's meta/argument_specs.yml (entry point main)."""
    options: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        spec = yaml.safe_load(spec_file.read_text()) or {}
        options.update(((spec.get("argument_specs") or {}).get("main") or {}).get("options") or {})
    return options


def schema(roles_dir: Path) -> dict[str, dict[str, Any]]:
    return {**role_options(roles_dir), **GLOBALS}


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _type_problem(value: Any, spec: dict[str, Any]) -> str | None:
    kind = spec.get("type", "str")
    allowed = _TYPES.get(kind, (object,))
    is_bool = isinstance(value, bool)
    if value is None or (isinstance(value, str) and "{{" in value):
        return None  # unset, or a template resolved at run time
    if (kind in ("int", "float") and is_bool) or not isinstance(value, allowed):
        return f"{value!r} is not {_a(kind)}"
    choices = spec.get("choices")
    if choices and value not in choices:
        return f"{value!r} is not one of {', '.join(str(c) for c in choices)}"
    elements = spec.get("elements")
    if kind == "list" and elements and elements in _TYPES:
        for item in value:
            if not isinstance(item, _TYPES[elements]) or (elements == "int" and isinstance(item, bool)):
                return f"item {item!r} is not {_a(elements)}"
    return None


def check(path: str, prefix: str, variables: dict[str, Any], known: dict[str, dict[str, Any]]) -> list[str]:
    """Problems of one set of variables, each `PATH: PREFIXKEY: what is wrong`."""
    problems = []
    for key in sorted(variables, key=str):
        if str(key).startswith(ANSIBLE_PREFIX):
            continue
        spec = known.get(key)
        if spec is None:
            hint = did_you_mean(str(key), list(known))
            problems.append(f"{path}: {prefix}{key}: unknown setting{hint}: remove it or fix its name")
            continue
        problem = _type_problem(variables[key], spec)
        if problem:
            problems.append(f"{path}: {prefix}{key}: {problem}")
    return problems


def contradictions(merged: dict[str, Any], origin: dict[str, str]) -> list[str]:
    """Settings that contradict each other, over everything the inventory sets; origin names
    where each key was set (`PATH: PREFIXKEY`)."""
    problems = []
    if merged.get("sovstack_registry_ca") and not merged.get("sovstack_registry"):
        problems.append(
            f"{origin['sovstack_registry_ca']}: set, but sovstack_registry is not: name the registry"
        )
    if merged.get("sovstack_registry_ca") and merged.get("sovstack_registry_insecure") is True:
        problems.append(
            f"{origin['sovstack_registry_insecure']}: true contradicts sovstack_registry_ca "
            "(a CA is for TLS): drop one of them"
        )
    return problems


def check_sources(sources: list[tuple[str, str, dict[str, Any]]], roles_dir: Path) -> list[str]:
    """Every (path, prefix, variables) of an inventory, checked one by one and as a whole."""
    known = schema(roles_dir)
    problems: list[str] = []
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path, prefix, variables in sources:
        problems += check(path, prefix, variables, known)
        for key, value in variables.items():
            merged[key] = value
            origin[key] = f"{path}: {prefix}{key}"
    return problems + contradictions(merged, origin)
