"""Run a collection playbook through ansible-runner: one progress line per play and role,
the runner's event JSON kept in a run directory, a short summary of what failed."""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from sovstack import secrets
from sovstack.errors import SovstackError
from sovstack.paths import collection_module, collection_root, collections_path, inventory_dir, state_home

MESSAGE_LINES = 60
# Files sovstack keeps in an inventory directory that are not inventory: the operator's config
# overrides, and the admin's clouds.yaml and the internal CA's certificate a deploy writes.
INVENTORY_IGNORE = r"^(overrides|clouds\.yaml|sovstack-ca\.crt)$"
RECAP_KEYS = ("ok", "changed", "unreachable", "failures", "skipped", "rescued", "ignored")


@dataclass
class Failure:
    host: str
    task: str
    message: str


@dataclass
class RunResult:
    rc: int
    status: str
    run_dir: Path
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def changed(self) -> int:
        """Changed tasks summed over all hosts."""
        return sum(host["changed"] for host in self.stats.values())


class Progress:
    """ansible-runner event handler: prints a line when a play or a role starts."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()
        self.role: str | None = None
        self.failures: list[Failure] = []
        self.stats: dict[str, dict[str, int]] = {}

    def line(self, text: str) -> None:
        self.out.write(f"[{time.monotonic() - self.start:7.1f}s] {text}\n")
        self.out.flush()

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            self.role = None
            self.line(f"play  {data.get('play', '')}")
        elif kind == "playbook_on_task_start":
            role = data.get("role") or ""
            if role and role != self.role:
                self.line(f"  role  {role}")
            self.role = role
        elif (
            kind == "runner_on_failed" and not data.get("ignore_errors")
        ) or kind == "runner_on_unreachable":
            self.failures.append(self._failure(data))
        elif kind == "playbook_on_stats":
            hosts: set[str] = set()
            for key in RECAP_KEYS:
                hosts.update((data.get(key) or {}).keys())
            hosts.update((data.get("dark") or {}).keys())
            for host in sorted(hosts):
                self.stats[host] = {key: int((data.get(key) or {}).get(host, 0)) for key in RECAP_KEYS}
                self.stats[host]["unreachable"] = int((data.get("dark") or {}).get(host, 0))
        return True

    @staticmethod
    def _failure(data: dict[str, Any]) -> Failure:
        res = data.get("res") or {}
        message = str(res.get("msg") or res.get("stderr") or res.get("censored") or "failed").strip()
        lines = message.splitlines() or ["failed"]
        # A report (prechecks) is kept whole up to a screen; other messages to their first lines.
        kept = [line[:300] for line in lines[:MESSAGE_LINES]]
        if len(lines) > MESSAGE_LINES:
            kept.append(f"... ({len(lines) - MESSAGE_LINES} more lines in the log)")
        return Failure(host=data.get("host", "?"), task=data.get("task", "?"), message="\n    ".join(kept))


def playbook_path(name: str) -> Path:
    path = collection_root() / "playbooks" / f"{name}.yml"
    if not path.is_file():
        raise SovstackError(f"no playbook sovstack.cloud.{name} in {path.parent}")
    return path


class VarsLoader(yaml.SafeLoader):
    """YAML of group_vars and host_vars; an ansible-vault value stays a (secret) string."""


VarsLoader.add_constructor("!vault", lambda loader, node: "<vaulted>")
VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def inventory_sources(inventory: Path) -> list[Path]:
    """The YAML files of an inventory: the file itself, or a directory's files and its
    group_vars and host_vars."""
    if inventory.is_file():
        return [inventory]
    found = [*inventory.glob("*.yml"), *inventory.glob("*.yaml")]
    for sub in ("group_vars", "host_vars"):
        found += [p for p in (inventory / sub).rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()]
    return sorted(found)


class Hidden:
    """A secret's value that is not a string: the settings check names its type, never the value."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self.kind} value, not shown>"


def hide_secrets(variables: dict[str, Any], secret_names: set[str]) -> dict[str, Any]:
    """The variables, with every secret that is not a string (or unset) replaced by a Hidden."""
    return {
        key: Hidden(value)
        if key in secret_names and value is not None and not isinstance(value, str)
        else value
        for key, value in variables.items()
    }


def settings_problems(settings: Any, sources: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """The settings check over every source; no secret's value is ever shown. Every secret of
    the catalog is a no_log option of its role (a unit test holds them together)."""
    roles = collection_root() / "roles"
    hidden = {name for name, option in settings.schema(roles).items() if option.get("no_log")}
    shown = [(path, prefix, hide_secrets(variables, hidden)) for path, prefix, variables in sources]
    return settings.check_sources(shown, roles)


def vars_text(path: Path, vault_password_file: Path | None) -> str | None:
    """The text of a group_vars/host_vars file, decrypted when it is vault-encrypted as a whole;
    None for such a file when no vault password file is known (its check is skipped)."""
    data = path.read_bytes()
    if not secrets.is_vaulted(data):
        return data.decode(errors="replace")
    if secrets.password_file(vault_password_file) is None:
        return None
    return secrets.decrypt(path, data, vault_password_file)[0]


def vars_source(path: Path, vault_password_file: Path | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The variables of a group_vars/host_vars file (None when there are none to check), and its problems."""
    try:
        text = vars_text(path, vault_password_file)
    except SovstackError as exc:
        return None, [str(exc)]
    if text is None:
        return None, []
    try:
        data = yaml.load(text, Loader=VarsLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return None, [f"{path}: YAML: {getattr(exc, 'problem', None) or exc}"]
    return (data if isinstance(data, dict) else None), []


def service_files(roles: Path) -> dict[str, list[str]]:
    """Each service's config file names, from the descriptions the service roles hand the
    engine (`NAME_service` in roles/NAME/vars/main.yml)."""
    found: dict[str, list[str]] = {}
    for path in sorted(roles.glob("*/vars/main.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for key, value in data.items():
            if key.endswith("_service") and isinstance(value, dict) and "containers" in value:
                found[str(value["name"])] = [
                    str(f["dest"]) for c in value["containers"] for f in c.get("files") or []
                ]
    return found


def overrides_problems(
    inventory: Path, sources: list[tuple[str, str, dict[str, Any]]], names: list[str]
) -> list[str]:
    """Override files that match no service, no file of it, or no group or host."""
    configured = [v["sovstack_overrides_dir"] for _, _, v in sources if v.get("sovstack_overrides_dir")]
    directory = Path(configured[-1]) if configured else inventory_dir(inventory) / "overrides"
    filters = collection_module("filter.config", package="plugins")
    return filters.override_problems(str(directory), service_files(collection_root() / "roles"), names)


def check_inventory(
    inventory: Path, require_secrets: bool = False, vault_password_file: Path | None = None
) -> None:
    """Check every topology and every setting of the inventory before anything runs, and
    report every problem at once; with require_secrets, every secret of the service catalog must
    be set. A vault-encrypted vars file is checked when a vault password file is known
    (vault_password_file, or $ANSIBLE_VAULT_PASSWORD_FILE), and skipped otherwise."""
    topology = collection_module("topology")
    settings = collection_module("settings")
    problems: list[str] = []
    sources: list[tuple[str, str, dict[str, Any]]] = []
    names: list[str] = []  # the inventory's groups and hosts
    for path in inventory_sources(inventory):
        if path != inventory and path.relative_to(inventory).parts[0] in ("group_vars", "host_vars"):
            data, found = vars_source(path, vault_password_file)
            problems += found
            if data is not None:
                sources.append((str(path), "", data))
            continue
        text = path.read_text(errors="replace")
        if "sovstack.cloud.topology" not in text:
            continue
        try:
            parsed = topology.load(str(path), text)
        except topology.TopologyError as exc:
            problems += exc.problems
            continue
        sources.append((str(path), "vars.", parsed.vars))
        names += [*parsed.groups(), *parsed.hosts]
        for name, host in parsed.hosts.items():
            sources.append((str(path), f"hosts.{name}.vars.", host.vars))
    problems += settings_problems(settings, sources)
    problems += overrides_problems(inventory, sources, names)
    if require_secrets:
        problems += secrets.problems(inventory, vault_password_file)
    if problems:
        raise SovstackError("invalid inventory, nothing was run:\n  " + "\n  ".join(problems))


def run_playbook(
    name: str,
    inventory: Path,
    *,
    limit: str | None = None,
    extravars: dict[str, Any] | None = None,
    out: TextIO = sys.stdout,
    require_secrets: bool = False,
) -> RunResult:
    """Run sovstack.cloud.<name> against the inventory and report its progress on out; with
    require_secrets, refuse to run unless every secret of the service catalog is set."""
    import ansible_runner  # imported here: it is slow to import and only runs need it

    if not inventory.exists():
        raise SovstackError(f"inventory {inventory} does not exist: pass -i, or run `sovstack rig up`")
    check_inventory(inventory, require_secrets=require_secrets)
    password = secrets.password_file()
    playbook = playbook_path(name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = state_home() / "runs" / f"{stamp}-{name}"
    run_dir.mkdir(parents=True, mode=0o700)
    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_FORKS": os.environ.get("ANSIBLE_FORKS", "20"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        # An inventory that does not parse (a rejected topology) stops the run before any host.
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        # What sovstack keeps beside the inventory is not inventory (docs/services.md).
        "ANSIBLE_INVENTORY_IGNORE_REGEX": INVENTORY_IGNORE,
        # ansible-playbook from this Python environment, even when its bin/ is not on PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    progress = Progress(out)
    progress.line(f"run   sovstack.cloud.{name} on {inventory} (log: {run_dir})")
    runner = ansible_runner.run(
        private_data_dir=str(run_dir),
        ident="run",
        playbook=str(playbook),
        inventory=str(inventory.resolve()),
        limit=limit,
        extravars=extravars or {},
        envvars=envvars,
        cmdline=f"--vault-password-file {shlex.quote(str(password.path.resolve()))}" if password else None,
        quiet=True,
        event_handler=progress,
    )
    result = RunResult(
        rc=int(runner.rc or 0),
        status=str(runner.status),
        run_dir=run_dir,
        stats=progress.stats,
        failures=progress.failures,
    )
    for host, counts in result.stats.items():
        out.write(f"  {host}: " + " ".join(f"{key}={counts[key]}" for key in RECAP_KEYS) + "\n")
    if result.rc != 0:
        out.write(f"FAILED: sovstack.cloud.{name} ({result.status}, rc={result.rc})\n")
        for failure in result.failures:
            out.write(f"  {failure.host}: {failure.task}: {failure.message}\n")
        if not result.failures:
            stdout = run_dir / "artifacts" / "run" / "stdout"
            tail = stdout.read_text(errors="replace").strip().splitlines()[-5:] if stdout.is_file() else []
            out.writelines(f"  {line}\n" for line in tail)
        out.write(f"  full log: {run_dir / 'artifacts' / 'run' / 'stdout'}\n")
    else:
        progress.line(f"done  sovstack.cloud.{name}: {result.changed()} changed")
    return result
