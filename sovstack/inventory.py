"""An inventory as sovstack reads it, loaded once: its topology, its group_vars and host_vars
files, the decrypted secrets file, the overrides directory. Every check before a run reads this
one object, and the runner hands the same inventory and vault password file to Ansible.

Which files count is Ansible's own rule: every file of an inventory directory (recursively,
without group_vars/, host_vars/, hidden files and Ansible's ignored extensions) is an inventory
source, and must be a topology here; group_vars/NAME and host_vars/NAME (a file with no
extension or .yml, .yaml, .json, or a directory of them) beside it are the variables of NAME.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sovstack import secrets
from sovstack.errors import SovstackError
from sovstack.paths import collection_module, collection_root, inventory_dir

# Files sovstack keeps in an inventory directory that are not inventory: the operator's config
# overrides, and the admin's clouds.yaml and the internal CA's certificate a deploy writes.
INVENTORY_IGNORE = r"^(overrides|clouds\.yaml|sovstack-ca\.crt)$"
# What Ansible itself skips in an inventory directory (ansible.inventory.manager.IGNORED with
# the default INVENTORY_IGNORE_EXTS).
ANSIBLE_IGNORE = (
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
    r"(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
SKIPPED = re.compile(f"{INVENTORY_IGNORE}|{ANSIBLE_IGNORE}")
VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")
TOPOLOGY_PLUGIN = "sovstack.cloud.topology"
BUILTIN_GROUPS = ("all", "ungrouped")
TOPOLOGY_DOC = "docs/topology.md"


@dataclass
class VarsFile:
    """One group_vars or host_vars file: whose variables (kind group or host, and its name),
    and the variables (None: it could not be read or decrypted, a problem of the inventory)."""

    path: Path
    kind: str
    name: str
    entry: Path  # group_vars/NAME.yml, or the directory group_vars/NAME/ that holds path
    variables: dict[Any, Any] | None
    vaulted: bool = False


@dataclass
class Inventory:
    path: Path
    password: secrets.PasswordFile | None
    topology: Any = None  # module_utils.topology.Topology, once it passed its checks
    topology_path: Path | None = None
    vars_files: list[VarsFile] = field(default_factory=list)
    secrets: secrets.SecretsFile | None = None  # group_vars/all/secrets.yml, decrypted
    problems: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return inventory_dir(self.path)

    @property
    def secrets_path(self) -> Path:
        return secrets.secrets_path(self.path)

    def sources(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (file, key prefix, variables) the inventory sets, in Ansible's order of precedence."""
        found: list[tuple[str, str, dict[str, Any]]] = []
        if self.topology is not None:
            path = str(self.topology_path)
            found.append((path, "vars.", self.topology.vars))
            found += [(path, f"hosts.{n}.vars.", h.vars) for n, h in self.topology.hosts.items()]
        for kind in ("group", "host"):
            found += [
                (str(v.path), "", v.variables)
                for v in self.vars_files
                if v.kind == kind and v.variables is not None
            ]
        return found

    def groups(self) -> list[str]:
        return [*BUILTIN_GROUPS, *self.topology.groups()] if self.topology is not None else []

    def hosts(self) -> list[str]:
        return sorted(self.topology.hosts) if self.topology is not None else []

    def overrides_dir(self) -> Path:
        configured = [
            v["sovstack_overrides_dir"] for _, _, v in self.sources() if v.get("sovstack_overrides_dir")
        ]
        return Path(configured[-1]) if configured else self.directory / "overrides"


# --- loading --------------------------------------------------------------------------------


def source_files(inventory: Path) -> list[Path]:
    """The files Ansible parses as inventory: the file itself, or a directory's files, recursively."""
    if inventory.is_file():
        return [inventory]
    found = []
    for entry in sorted(inventory.iterdir()):
        if SKIPPED.search(entry.name):
            continue
        found += source_files(entry) if entry.is_dir() else [entry]
    return found


def _dir_vars_files(directory: Path) -> list[Path]:
    found = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            found += _dir_vars_files(entry)
        elif entry.is_file() and entry.suffix in VARS_EXTENSIONS:
            found.append(entry)
    return found


def vars_entries(directory: Path, kind: str) -> tuple[list[tuple[str, Path, list[Path]]], list[str]]:
    """(NAME, entry, files) of DIRECTORY/KIND_vars: what Ansible loads for group or host NAME;
    and the entries it never loads because another of the same NAME comes first (NAME, then
    NAME.yml, NAME.yaml, NAME.json: Ansible reads the first that exists)."""
    base = directory / f"{kind}_vars"
    if not base.is_dir():
        return [], []
    by_name: dict[str, list[tuple[int, Path]]] = {}
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            by_name.setdefault(entry.name, []).append((0, entry))
        elif entry.is_file() and entry.suffix in VARS_EXTENSIONS:
            name = entry.name[: len(entry.name) - len(entry.suffix)]
            by_name.setdefault(name, []).append((VARS_EXTENSIONS.index(entry.suffix), entry))
    found, shadowed = [], []
    for name, entries in sorted(by_name.items()):
        entries.sort()
        first = entries[0][1]
        found.append((name, first, _dir_vars_files(first) if first.is_dir() else [first]))
        shadowed += [
            f"{entry}: Ansible never reads it: {first} comes first for {kind} {name!r}: "
            f"move its settings into {first if first.is_file() else f'a file in {first}'}, and remove it"
            for _, entry in entries[1:]
        ]
    return found, shadowed


def _not_a_topology(path: Path, inventory: Path, why: str) -> str:
    where = f"or move it out of the inventory {inventory}" if inventory.is_dir() else "or pass -i a topology"
    return (
        f"{path}: not a topology: {why}: sovstack reads an inventory of one topology file "
        f"(plugin: {TOPOLOGY_PLUGIN}, {TOPOLOGY_DOC}): fix it, {where}"
    )


def _read_topology(inv: Inventory, path: Path, first: Path | None) -> Any:
    """The topology of one inventory file, or None (its problems added to the inventory's)."""
    topology = collection_module("topology")
    text = path.read_text(errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if TOPOLOGY_PLUGIN not in text:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            inv.problems.append(_not_a_topology(path, inv.path, f"{where}not YAML"))
            return None
        data = {"plugin": TOPOLOGY_PLUGIN}  # a broken topology: its own check names the line
    if data is None:
        inv.problems.append(_not_a_topology(path, inv.path, "the file is empty"))
        return None
    if not isinstance(data, dict) or "plugin" not in data:
        inv.problems.append(_not_a_topology(path, inv.path, "it has no `plugin:` key"))
        return None
    if data["plugin"] != TOPOLOGY_PLUGIN:
        inv.problems.append(
            _not_a_topology(path, inv.path, f"plugin: {data['plugin']!r} is another inventory plugin")
        )
        return None
    if first is not None:
        inv.problems.append(
            f"{path}: plugin: a second topology in the inventory (the first is {first}): an "
            f"inventory is one cloud with one topology: move one of them out of {inv.directory}"
        )
    try:
        return topology.load(str(path), text)
    except topology.TopologyError as exc:
        inv.problems += exc.problems
        return None


def _read_vars(inv: Inventory, kind: str, name: str, entry: Path, path: Path) -> VarsFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        inv.problems.append(f"{path}: cannot read it: {exc.strerror}")
        return VarsFile(path, kind, name, entry, None)
    vault_id: str | None = None
    if secrets.is_vaulted(data):
        if inv.password is None:  # Ansible could not read it either: the run would fail
            inv.problems.append(str(secrets.no_password(path)))
            return VarsFile(path, kind, name, entry, None, vaulted=True)
        try:
            text, vault_id = secrets.decrypt(path, data, inv.password.path)
        except SovstackError as exc:
            inv.problems.append(str(exc))
            return VarsFile(path, kind, name, entry, None, vaulted=True)
    else:
        text = data.decode(errors="replace")
    try:
        variables = secrets.parse(path, text)
    except SovstackError as exc:
        inv.problems.append(str(exc))
        return VarsFile(path, kind, name, entry, None, vaulted=vault_id is not None)
    if path == inv.secrets_path:
        inv.secrets = secrets.SecretsFile(path, text, variables, vault_id)
    return VarsFile(path, kind, name, entry, variables, vaulted=vault_id is not None)


def load(path: Path, vault_password_file: Path | None = None) -> Inventory:
    """Read the whole inventory once; what is wrong with it is in .problems (see check())."""
    if not path.exists():
        raise SovstackError(f"inventory {path} does not exist: pass -i, or run `sovstack rig up`")
    inv = Inventory(path, secrets.password_file(vault_password_file))
    if inv.password is not None and not inv.password.path.is_file():
        raise SovstackError(f"{inv.password.origin} {inv.password.path}: no such file")
    sources = source_files(path)
    for source in sources:
        parsed = _read_topology(inv, source, inv.topology_path)
        if parsed is not None and inv.topology is None:
            inv.topology, inv.topology_path = parsed, source
    if not sources:
        inv.problems.append(
            f"{path}: no topology in the inventory: write one (plugin: {TOPOLOGY_PLUGIN}, "
            f"{TOPOLOGY_DOC}), or pass -i the inventory that holds it"
        )
    for kind in ("group", "host"):
        entries, shadowed = vars_entries(inv.directory, kind)
        inv.problems += shadowed
        for name, entry, files in entries:
            inv.vars_files += [_read_vars(inv, kind, name, entry, file) for file in files]
    return inv


# --- the checks ---------------------------------------------------------------------------


def _did_you_mean(word: str, choices: list[str]) -> str:
    return collection_module("topology").did_you_mean(word, choices)


def unknown_names(inv: Inventory) -> list[str]:
    """group_vars and host_vars for a group or host the topology does not have: Ansible would
    load them for nothing, silently."""
    if inv.topology is None:
        return []
    problems = []
    seen: set[Path] = set()
    for vars_file in inv.vars_files:
        if vars_file.entry in seen:
            continue
        seen.add(vars_file.entry)
        names = inv.groups() if vars_file.kind == "group" else inv.hosts()
        if vars_file.name in names:
            continue
        problems.append(
            f"{vars_file.entry}: {vars_file.kind} {vars_file.name!r} is not a {vars_file.kind} of the "
            f"topology {inv.topology_path}{_did_you_mean(vars_file.name, names)}: its settings would "
            f"apply to no host; the {vars_file.kind}s are {', '.join(names)}: rename or remove it"
        )
    return problems


def engine_network_clashes(inv: Inventory) -> list[str]:
    """A network of the topology inside the network a container engine of its hosts claims."""
    if inv.topology is None:
        return []
    from netaddr import IPNetwork

    topology = collection_module("topology")
    engines = {v["container_engine"] for _, _, v in inv.sources() if v.get("container_engine")} or {"docker"}
    problems = []
    for name, network in inv.topology.networks.items():
        for engine in sorted(engines & set(topology.ENGINE_NETWORKS)):
            claimed = IPNetwork(topology.ENGINE_NETWORKS[engine])
            if network.cidr.first <= claimed.last and claimed.first <= network.cidr.last:
                problems.append(
                    f"{inv.topology_path}: networks.{name}.cidr: {network.cidr} overlaps {claimed}, the "
                    f"network {engine} makes on every host it runs on (container_engine): "
                    "choose another network"
                )
    return problems


def private_files(inv: Inventory, secret_names: set[str]) -> list[str]:
    """The secrets file, and every vars file that sets a secret, must be readable by its owner only."""
    problems = []
    for vars_file in inv.vars_files:
        holds_secret = vars_file.path == inv.secrets_path or bool(
            secret_names & set(vars_file.variables or {})
        )
        mode = stat.S_IMODE(vars_file.path.stat().st_mode)
        if holds_secret and mode & 0o077:
            problems.append(
                f"{vars_file.path}: readable by group or others (mode {mode:04o}) though it holds "
                f"secrets: run `chmod 600 {vars_file.path}`"
            )
    return problems


class Hidden:
    """A secret's value that is not a string: the settings check names its type, never the value."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self.kind} value, not shown>"


def hide_secrets(variables: dict[str, Any], secret_names: set[str]) -> dict[str, Any]:
    """The variables, with every secret that is not a string (or unset) replaced by a Hidden,
    and every value encrypted on its own (`!vault`) by the string '<vaulted>'."""
    return {
        key: "<vaulted>"
        if isinstance(value, secrets.VaultedValue)
        else Hidden(value)
        if key in secret_names and value is not None and not isinstance(value, str)
        else value
        for key, value in variables.items()
    }


def service_files(roles: Path) -> dict[str, list[str]]:
    """Each service's config file names, from the descriptions the service roles hand the
    engine (`NAME_service` in roles/NAME/vars/main.yml)."""
    found: dict[str, list[str]] = {}
    for path in sorted(roles.glob("*/vars/main.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for key, value in data.items():
            if key.endswith("_service") and isinstance(value, dict) and "containers" in value:
                if isinstance(value["containers"], str):  # instances made from facts: the service's files
                    found[str(value["name"])] = [str(f["dest"]) for f in value.get("files") or []]
                    continue
                found[str(value["name"])] = [
                    str(f["dest"]) for c in value["containers"] for f in c.get("files") or []
                ]
    return found


def problems(inv: Inventory, require_secrets: bool = False) -> list[str]:
    """Everything wrong with the inventory, every problem at once; with require_secrets,
    every secret of meta/secrets.yml must be set."""
    settings = collection_module("settings")
    roles = collection_root() / "roles"
    secret_names = {name for name, option in settings.schema(roles).items() if option.get("no_log")}
    sources = [
        (path, prefix, hide_secrets(variables, secret_names)) for path, prefix, variables in inv.sources()
    ]
    found = list(inv.problems)
    found += unknown_names(inv)
    found += engine_network_clashes(inv)
    found += private_files(inv, secret_names)
    found += settings.check_sources(sources, roles)
    filters = collection_module("filter.config", package="plugins")
    found += filters.override_problems(
        str(inv.overrides_dir()), service_files(roles), inv.groups() + inv.hosts()
    )
    if require_secrets and (inv.secrets is not None or not inv.secrets_path.exists()):
        found += secrets.problems(inv.path, inv.secrets)  # (a file that cannot be read is named above)
    return found


def check_inventory(
    path: Path, require_secrets: bool = False, vault_password_file: Path | None = None
) -> Inventory:
    """Load the inventory and check it as a whole before anything runs: raise with every
    problem at once, or return it. A vault-encrypted vars file needs the vault password file
    (vault_password_file, or $ANSIBLE_VAULT_PASSWORD_FILE): Ansible could not read it either."""
    inv = load(path, vault_password_file)
    found = problems(inv, require_secrets)
    if found:
        raise SovstackError("invalid inventory, nothing was run:\n  " + "\n  ".join(found))
    return inv
