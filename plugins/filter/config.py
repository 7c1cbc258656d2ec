# Copyright: sovstack developers
# Apache License 2.0
"""Filters of the service engine: operator overrides merged into a rendered config file, and
the problems of an overrides directory."""

from __future__ import annotations

import configparser
import io
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError


def override_paths(overrides_dir: str, service: str, file: str, host: str, groups: list[str]) -> list[Path]:
    base = Path(overrides_dir) / service
    candidates = [base / file, *(base / group / file for group in groups), base / host / file]
    return [path for path in candidates if path.is_file()]


def _parser() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case of options
    return parser


def merge_ini(text: str, overrides: list[tuple[str, str]]) -> str:
    merged = _parser()
    try:
        merged.read_string(text, source="rendered")
        for name, override in overrides:
            merged.read_string(override, source=name)
    except configparser.Error as exc:
        raise AnsibleFilterError(
            f"cannot merge {exc.source if hasattr(exc, 'source') else ''}: {exc}"
        ) from None
    out = io.StringIO()
    for section in ([merged.default_section] if merged.defaults() else []) + merged.sections():
        out.write(f"[{section}]\n")
        items = merged.defaults() if section == merged.default_section else merged._sections[section]  # type: ignore[attr-defined]
        for key, value in items.items():
            out.write(f"{key} = {value}\n")
        out.write("\n")
    return out.getvalue()


def config_merge(
    text: str,
    overrides_dir: str,
    service: str,
    file: str,
    host: str,
    groups: list[str],
    format: str = "text",
) -> str:
    paths = override_paths(
        overrides_dir, service, file, host, [g for g in groups if g not in ("all", "ungrouped")]
    )
    if not paths:
        return text
    if format == "ini":
        return merge_ini(text, [(str(p), p.read_text()) for p in paths])
    return paths[-1].read_text()


def override_problems(
    overrides_dir: str, services: dict[str, list[str]], names: list[str], only: str | None = None
) -> list[str]:
    """Every file of the overrides directory that matches no service file, no group and no host:
    `services` maps each service to its file names, `names` are the inventory's groups and hosts;
    `only`: the directory of that service alone."""
    root = Path(overrides_dir)
    if not root.is_dir():
        return []
    problems = []
    for entry in sorted(root.iterdir()):
        if only is not None and entry.name != only:
            continue
        if entry.name not in services:
            problems.append(f"{entry}: no service {entry.name!r}; known: {', '.join(sorted(services))}")
            continue
        if not entry.is_dir():
            problems.append(f"{entry}: not a directory: put the overrides of {entry.name} in {entry}/")
            continue
        files = services[entry.name]
        for item in sorted(entry.iterdir()):
            if item.is_dir():
                if item.name not in names:
                    problems.append(f"{item}: no group or host {item.name!r} in the inventory")
                    continue
                children = sorted(item.iterdir())
            else:
                children = [item]
            for child in children:
                if child.name not in files:
                    problems.append(
                        f"{child}: {entry.name} has no file {child.name!r}; its files: {', '.join(files)}"
                    )
    return problems


def _read_lock(lock_path: str) -> tuple[str, dict[str, Any]]:
    """The image lock's path and content (empty path: $SOVSTACK_HOME/images/images.lock.yml)."""
    import os

    import yaml

    if not lock_path:
        home = os.environ.get("SOVSTACK_HOME") or os.path.expanduser("~/.sovstack")
        lock_path = os.path.join(home, "images", "images.lock.yml")

    try:
        with open(lock_path) as handle:
            lock = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleFilterError(
            f"cannot read the image lock {lock_path}: {exc}: build and push the images "
            "(sovstack images build --push), or set sovstack_images_lock"
        ) from None
    return lock_path, lock


def locked_image(lock_path: str, name: str) -> str:
    """The reference, by digest, of image `name` in the image lock (empty: the lock that
    `sovstack images push` writes, $SOVSTACK_HOME/images/images.lock.yml)."""
    lock_path, lock = _read_lock(lock_path)
    entry = (lock.get("images") or {}).get(name)
    if not entry or not str(entry.get("digest", "")).startswith("sha256:"):
        raise AnsibleFilterError(
            f"image {name}: no entry in the image lock {lock_path}: build and push it "
            f"(sovstack images build --only {name} --push)"
        )
    return f"{lock['registry']}/{lock.get('namespace', 'sovstack')}/{name}@{entry['digest']}"


def release(releases: dict[str, Any], lock_path: str, name: str) -> Any:
    """The entry of `releases` (a role's settings per Debian suite, variable `name`) for the
    suite of the images the image lock pins."""
    lock_path, lock = _read_lock(lock_path)
    suite = lock.get("suite")
    if not suite:
        raise AnsibleFilterError(
            f"the image lock {lock_path} names no Debian suite (written by an older sovstack):"
            " push the images again (sovstack images push)"
        )
    if suite not in releases:
        raise AnsibleFilterError(
            f"the images of {lock_path} are built from Debian {suite}, and {name} has settings for"
            f" {', '.join(sorted(releases))} only: build one of those (sovstack images build --suite"
            f" {sorted(releases)[-1]}) or add {suite} to {name}"
        )
    return releases[suite]


def rabbitmq_password_hash(password: str, user: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256 of a password: base64(salt + sha256(salt +
    password)), with a salt derived from the user and the password, so that the same password
    gives the same definitions file (and no restart) on every run."""
    import base64
    import hashlib

    salt = hashlib.sha256(f"sovstack-rabbitmq:{user}:{password}".encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "config_merge": config_merge,
            "override_problems": override_problems,
            "locked_image": locked_image,
            "release": release,
            "rabbitmq_password_hash": rabbitmq_password_hash,
        }
