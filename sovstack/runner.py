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

from sovstack.errors import SovstackError
from sovstack.inventory import INVENTORY_IGNORE, check_inventory
from sovstack.paths import collection_root, collections_path, state_home

MESSAGE_LINES = 60
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
        items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
        if items:  # a loop: what each failed item says, not "One or more items failed"
            message = "\n".join(
                f"{r.get('_ansible_item_label', r.get('item', '?'))}: "
                + str(r.get("msg") or r.get("stderr") or r.get("censored") or "failed").strip()
                for r in items
            )
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


def ansible_env() -> dict[str, str]:
    """The environment of every ansible-playbook sovstack runs. Host key checking is Ansible's
    default (on); only the rig's own inventory turns it off, for its hosts."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
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


def run_playbook(
    name: str,
    inventory: Path,
    *,
    limit: str | None = None,
    extravars: dict[str, Any] | None = None,
    out: TextIO = sys.stdout,
    require_secrets: bool = False,
    vault_password_file: Path | None = None,
) -> RunResult:
    """Run sovstack.cloud.<name> against the inventory and report its progress on out, after
    the inventory's checks (with require_secrets, every secret of meta/secrets.yml must be set).
    The vault password file (vault_password_file, else $ANSIBLE_VAULT_PASSWORD_FILE) decrypts
    for the checks and for Ansible alike."""
    import ansible_runner  # imported here: it is slow to import and only runs need it

    checked = check_inventory(inventory, require_secrets, vault_password_file)
    password = checked.password
    playbook = playbook_path(name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = state_home() / "runs" / f"{stamp}-{name}"
    run_dir.mkdir(parents=True, mode=0o700)
    envvars = ansible_env()
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
