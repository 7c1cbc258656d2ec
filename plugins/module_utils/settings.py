# Copyright: sovstack developers
# Apache License 2.0
"""The operator's settings, checked as a whole before anything runs: every variable a topology
or a group_vars/host_vars file sets must be known (a global of this file, or an option of one
of the collection's roles), of the right type, and not contradict another.

Pure code (PyYAML only): the CLI runs it on the controller. Every problem names the file and
the key, and says what to do.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.sovstack.cloud.plugins.module_utils import catalog
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
# Range and form beyond the type: what the consumer of each value takes (docs/topology.md,
# "Ranges and forms"). ansible-lint's schema of meta/argument_specs.yml admits no extra keys,
# so they live here, one entry per option:
#   min, max      a whole number's bounds, with `what` it is
#   max_length    a string's longest length, with `what` takes it (a secret's value is never shown)
#   port          1-65535; True: no other port option may take its number, or the name of the
#                 option whose port it checks (it may, and should, be that one's)
# Every int option named *_port of a role must be here (a unit test holds them together); the
# services' own ports are in the catalog (roles/NAME/meta/service.yml), which no option may take.
LIMITS: dict[str, dict[str, Any]] = {
    "registry_port": {"port": True},
    "keepalived_router_id": {"min": 1, "max": 255, "what": "a VRRP router id"},
    "keepalived_password": {"max_length": 8, "what": "VRRP authentication"},
    "ovn_northd_threads": {"min": 1, "max": 256, "what": "a count of ovn-northd's threads"},
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


def _limit_problem(name: str, value: Any) -> str | None:
    """What is wrong with a value of the right type against its LIMITS entry."""
    limit = LIMITS.get(name)
    if limit is None or value is None or (isinstance(value, str) and "{{" in value):
        return None
    if "port" in limit and isinstance(value, int) and not 1 <= value <= 65535:
        return f"{value!r} is not a port (1 to 65535)"
    low, high = limit.get("min"), limit.get("max")
    if isinstance(value, int) and ((low is not None and value < low) or (high is not None and value > high)):
        return f"{value!r} is not {limit['what']} ({low} to {high})"
    longest = limit.get("max_length")
    if longest is not None and isinstance(value, str) and len(value) > longest:
        return f"{len(value)} characters, but {limit['what']} takes at most {longest}: shorten it"
    return None


def check(
    path: str,
    prefix: str,
    variables: dict[str, Any],
    known: dict[str, dict[str, Any]],
    services: Collection[str] = (),
) -> list[str]:
    """Problems of one set of variables, each `PATH: PREFIXKEY: what is wrong`; `services`, the
    catalog's, whose ports and groups are not settings."""
    problems = []
    for key in sorted(variables, key=str):
        if str(key).startswith(ANSIBLE_PREFIX):
            continue
        spec = known.get(key)
        service, _, kind = str(key).rpartition("_")
        if spec is None and kind in ("port", "group") and service in services:
            problems.append(
                f"{path}: {prefix}{key}: not a setting: {service}'s {kind}s are in its catalog entry "
                f"(roles/{service}/meta/service.yml); remove it"
            )
            continue
        if spec is None:
            hint = did_you_mean(str(key), list(known))
            problems.append(f"{path}: {prefix}{key}: unknown setting{hint}: remove it or fix its name")
            continue
        problem = _type_problem(variables[key], spec) or _limit_problem(str(key), variables[key])
        if problem:
            problems.append(f"{path}: {prefix}{key}: {problem}")
    return problems


def port_clashes(
    sets: list[tuple[str, str, str, Any]], known: dict[str, dict[str, Any]], taken: dict[str, int]
) -> list[str]:
    """Two port options on one number, over every value set (path, key, option, value), the
    defaults of the options nothing sets, and the ports of the service catalog (`taken`, name
    -> number, which no option may take)."""
    ports = [name for name, limit in LIMITS.items() if limit.get("port") is True]
    given = {name for _, _, name, _ in sets}
    values = [
        ("", "", name, known[name]["default"])
        for name in ports
        if name not in given and known.get(name, {}).get("default") is not None
    ]
    values += [entry for entry in sets if entry[2] in ports]
    problems = []
    owner: dict[int, tuple[str, str, str]] = {}
    catalog_owner = {number: name for name, number in taken.items()}
    for path, key, name, value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if value in catalog_owner:
            problems.append(
                f"{path or 'default'}: {key or name}: port {value} is the service catalog's "
                f"{catalog_owner[value]} port: give each service a port of its own"
            )
            continue
        if value in owner and owner[value][2] != name:
            first_path, first_key, first = owner[value]
            where = (
                "its default"
                if not first_path
                else first_key
                if first_path == path
                else f"{first_path}: {first_key}"
            )
            problems.append(
                f"{path}: {key}: port {value} is also {first}'s ({where}): "
                "give each service a port of its own"
            )
        owner.setdefault(value, (path, key, name))
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
    entries = catalog.load(roles_dir)
    problems: list[str] = []
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    sets: list[tuple[str, str, str, Any]] = []
    for path, prefix, variables in sources:
        problems += check(path, prefix, variables, known, entries)
        for key, value in variables.items():
            merged[key] = value
            origin[key] = f"{path}: {prefix}{key}"
            sets.append((path, f"{prefix}{key}", str(key), value))
    return problems + contradictions(merged, origin) + port_clashes(sets, known, catalog.ports(entries))
