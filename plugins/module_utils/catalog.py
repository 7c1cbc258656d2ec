# Copyright: sovstack developers
# Apache License 2.0
"""The service catalog: every service's facts, written once, in its role's meta/service.yml.

The deploy and reconfigure playbooks (through the lookup sovstack.cloud.catalog), the
prechecks' ports and images, the CLI's service names, `sovstack secrets generate`, the docs'
table and the tests' service lists all read it from here. Plain data, no templates: a port, a
group or a secret is the same for every reader.

An entry (docs/services.md, "The catalog"):
  name        the service (and its role, roles/NAME)
  layer       one of LAYERS
  after       the services it needs first (the deploy order follows them, then the layers)
  description one line, for the docs
  containers  NAME: {image: NAME in images/images.yml, group: inventory group of its hosts,
              or a list of groups (a host of any of them runs it)}; the entry adds
              `groups`, always the list
  ports       NAME: {port, container, processes: the process names that may hold it}
  secrets     NAME: {description, length, alphabet (alnum|upper), kind (password|ca|uuid|cephx)}
  databases   the MariaDB databases the service owns
  endpoints   the keystone catalog entries: {type, port: a port NAME, path}
  serial      true: its containers restart one host at a time, stopping at the first that
              does not become healthy
  form_together
              true (with serial): a new cluster forms only with its members started
              together (RabbitMQ 4: each waits for its peers), so while none of its hosts
              has its container yet, every host starts at once; a running one still rolls
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LAYERS = ("infrastructure", "base", "openstack", "kubernetes")
FIELDS = (
    "name",
    "layer",
    "after",
    "description",
    "containers",
    "ports",
    "secrets",
    "databases",
    "endpoints",
    "serial",
    "form_together",
)
CONTAINER_FIELDS = ("image", "group")
PORT_FIELDS = ("port", "container", "processes")
SECRET_FIELDS = ("description", "length", "alphabet", "kind")
ENTRY = Path("meta") / "service.yml"


class CatalogError(ValueError):
    """A catalog entry that cannot be right: the message names the file and the key."""


def roles_dir() -> Path:
    """roles/ of this collection (the checkout's, or the installed collection's)."""
    return Path(__file__).resolve().parents[2] / "roles"


def _check(path: Path, data: Any, role: str) -> dict[str, Any]:
    def fail(key: str, what: str) -> CatalogError:
        return CatalogError(f"{path}: {key}: {what}")

    if not isinstance(data, dict):
        raise fail("(top)", "not a mapping: give name, layer, containers, ...")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown field: use {', '.join(FIELDS)}")
    if data.get("name") != role:
        raise fail("name", f"{data.get('name')!r} is not the role's name {role!r}")
    if data.get("layer") not in LAYERS:
        raise fail("layer", f"{data.get('layer')!r} is not one of {', '.join(LAYERS)}")
    entry: dict[str, Any] = {
        "name": role,
        "layer": data["layer"],
        "after": list(data.get("after") or []),
        "description": str(data.get("description") or ""),
        "containers": {},
        "ports": {},
        "secrets": {},
        "databases": list(data.get("databases") or []),
        "endpoints": list(data.get("endpoints") or []),
        "serial": bool(data.get("serial", False)),
        "form_together": bool(data.get("form_together", False)),
    }
    if entry["form_together"] and not entry["serial"]:
        raise fail("form_together", "only for a serial service (one that rolls): set serial: true")
    containers = data.get("containers")
    if not isinstance(containers, dict) or not containers:
        raise fail("containers", "missing: name each container with its image and group")
    for name, container in containers.items():
        if not isinstance(container, dict) or set(container) - set(CONTAINER_FIELDS):
            raise fail(f"containers.{name}", f"give exactly {' and '.join(CONTAINER_FIELDS)}")
        if not isinstance(container.get("image"), str) or not container["image"]:
            raise fail(f"containers.{name}.image", "missing")
        group = container.get("group")
        listed = [group] if isinstance(group, str) else group
        if (
            not isinstance(listed, list)
            or not listed
            or not all(isinstance(g, str) and g for g in listed)
            or len(set(listed)) != len(listed)
        ):
            raise fail(f"containers.{name}.group", "missing: give a group, or a list of groups each once")
        entry["containers"][name] = {**container, "groups": list(listed)}
    for name, port in (data.get("ports") or {}).items():
        if not isinstance(port, dict) or set(port) - set(PORT_FIELDS):
            raise fail(f"ports.{name}", f"give {', '.join(PORT_FIELDS)}")
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
            raise fail(f"ports.{name}.port", f"{number!r} is not a port (1-65535)")
        container = port.get("container", next(iter(entry["containers"])))
        if container not in entry["containers"]:
            raise fail(f"ports.{name}.container", f"{container!r} is not a container of {role}")
        entry["ports"][name] = {
            "port": number,
            "container": container,
            "processes": list(port.get("processes") or []),
        }
    for name, secret in (data.get("secrets") or {}).items():
        if not isinstance(secret, dict) or set(secret) - set(SECRET_FIELDS):
            raise fail(f"secrets.{name}", f"give {', '.join(SECRET_FIELDS)}")
        entry["secrets"][name] = dict(secret)
    for i, endpoint in enumerate(entry["endpoints"]):
        if not isinstance(endpoint, dict) or endpoint.get("port") not in entry["ports"]:
            raise fail(f"endpoints[{i}].port", "name one of the service's ports")
    return entry


def order(entries: dict[str, dict[str, Any]]) -> list[str]:
    """The services in deploy order: each after the services it names, then by layer, then name."""
    done: list[str] = []
    pending = sorted(entries, key=lambda n: (LAYERS.index(entries[n]["layer"]), n))
    while pending:
        ready = [n for n in pending if all(dep in done for dep in entries[n]["after"])]
        if not ready:
            raise CatalogError(f"the services {', '.join(pending)} wait for each other (their `after`)")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


def load(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every service of the catalog, checked, in deploy order."""
    directory = directory or roles_dir()
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob(f"*/{ENTRY}")):
        role = path.parent.parent.name
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogError(f"{path}: cannot read: {exc}") from None
        entries[role] = _check(path, data, role)
    for name, entry in entries.items():
        for dep in entry["after"]:
            if dep not in entries:
                raise CatalogError(f"{directory / name / ENTRY}: after: {dep!r} is not a service")
    seen: dict[str, str] = {}
    for name, entry in entries.items():
        for kind in ("ports", "secrets"):
            for key in entry[kind]:
                where = f"{kind}.{key}"
                if where in seen:
                    raise CatalogError(f"{directory / name / ENTRY}: {where}: also in {seen[where]}")
                seen[where] = name
    return {name: entries[name] for name in order(entries)}


def ports(entries: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Every named port of the catalog: NAME -> number (names are unique across services)."""
    return {name: port["port"] for entry in entries.values() for name, port in entry["ports"].items()}


def prechecks_ports(entries: dict[str, dict[str, Any]], services: list[str]) -> dict[str, Any]:
    """The prechecks' port list of the services: PORTNAME -> {groups, ports, processes}."""
    found = {}
    for service in services:
        entry = entries[service]
        for name, port in entry["ports"].items():
            groups = entry["containers"][port["container"]]["groups"]
            found[name] = {"groups": groups, "ports": [port["port"]], "processes": port["processes"]}
    return found


def images(entries: dict[str, dict[str, Any]], services: list[str]) -> list[str]:
    """The images the services run, in deploy order, each once."""
    found: list[str] = []
    for service in services:
        for container in entries[service]["containers"].values():
            if container["image"] not in found:
                found.append(container["image"])
    return found


def groups(entry: dict[str, Any]) -> list[str]:
    """The inventory groups a service's containers run on."""
    return sorted({g for c in entry["containers"].values() for g in c["groups"]})
