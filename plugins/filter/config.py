# Copyright: sovstack developers
# Apache License 2.0
"""Filters of the service engine: operator overrides merged into a rendered config file, and
the problems of an overrides directory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError


def override_paths(overrides_dir: str, service: str, file: str, host: str, groups: list[str]) -> list[Path]:
    base = Path(overrides_dir) / service
    candidates = [base / file, *(base / group / file for group in groups), base / host / file]
    return [path for path in candidates if path.is_file()]


Sections = list[tuple[str, list[tuple[str, str | None]]]]


def parse_ini(text: str, source: str) -> Sections:
    """An INI text as its sections, each with its options in order. A key may repeat (oslo's
    MultiStrOpt, such as several `[DEFAULT] transport_url` or `[filter] ... ` lines): every
    occurrence is kept. A key alone on its line (MariaDB's flags) has no value; a line that starts
    with white space continues the value before it; comments and blank lines are dropped."""
    sections: Sections = []
    options: list[tuple[str, str | None]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if line[0].isspace() and options:
            key, value = options[-1]
            options[-1] = (key, f"{value or ''}\n{stripped}")
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                raise AnsibleFilterError(
                    f"cannot merge {source}: line {number}: {stripped!r} is not a [section]"
                )
            options = []
            sections.append((stripped[1:-1].strip(), options))
            continue
        if options is None:
            raise AnsibleFilterError(
                f"cannot merge {source}: line {number}: {stripped!r} comes before any [section]"
            )
        key, sep, value = stripped.partition("=")
        options.append((key.strip(), value.strip() if sep else None))
    return sections


def merge_ini(text: str, overrides: list[tuple[str, str]]) -> str:
    """The rendered file with each override's options: an option an override sets replaces every
    occurrence of it in its section (an override that repeats a key sets all its values); new
    options and sections are added at the end."""
    merged = parse_ini(text, "rendered")
    for name, override in overrides:
        for section, options in parse_ini(override, name):
            target = next((opts for sect, opts in merged if sect == section), None)
            if target is None:
                merged.append((section, list(options)))
                continue
            present = {key for key, _ in target}
            target[:] = _in_place(target, options) + [opt for opt in options if opt[0] not in present]
    out = io.StringIO()
    for section, options in merged:
        out.write(f"[{section}]\n")
        for key, value in options:
            out.write(f"{key}\n" if value is None else f"{key} = {value}\n")
        out.write("\n")
    return out.getvalue()


def _in_place(target: list[tuple[str, str | None]], options: list[tuple[str, str | None]]) -> list:
    """target with each key the override sets replaced, at its first occurrence, by the
    override's values for it (all of them, for a repeated key); its other occurrences dropped."""
    keys = {key for key, _ in options}
    result: list[tuple[str, str | None]] = []
    done: set[str] = set()
    for key, value in target:
        if key not in keys:
            result.append((key, value))
        elif key not in done:
            result.extend(opt for opt in options if opt[0] == key)
            done.add(key)
    return result


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


def config_merge_files(
    texts: list[str],
    files: list[dict[str, Any]],
    overrides_dir: str,
    service: str,
    host: str,
    groups: list[str],
) -> list[str]:
    """config_merge of each rendered file, with the C(dest) and C(format) of its entry in
    `files` (the service_files filter's), in their order."""
    if len(texts) != len(files):
        raise AnsibleFilterError(f"{service}: {len(texts)} rendered files for {len(files)} files")
    return [
        config_merge(text, overrides_dir, service, entry["dest"], host, groups, entry.get("format", "text"))
        for text, entry in zip(texts, files, strict=True)
    ]


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


def locked_image(lock_path: str, name: str) -> str:
    """The reference, by digest, of image `name` in the image lock (empty: the lock that
    `sovstack images push` writes, $SOVSTACK_HOME/images/images.lock.yml)."""
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
    entry = (lock.get("images") or {}).get(name)
    if not entry or not str(entry.get("digest", "")).startswith("sha256:"):
        raise AnsibleFilterError(
            f"image {name}: no entry in the image lock {lock_path}: build and push it "
            f"(sovstack images build --only {name} --push)"
        )
    return f"{lock['registry']}/{lock.get('namespace', 'sovstack')}/{name}@{entry['digest']}"


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
            "config_merge_files": config_merge_files,
            "override_problems": override_problems,
            "locked_image": locked_image,
            "rabbitmq_password_hash": rabbitmq_password_hash,
        }
