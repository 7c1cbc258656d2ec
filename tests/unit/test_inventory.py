"""The inventory as a whole, refused before any host is touched: no topology, a file that is
not one, two topologies, vars for groups or hosts the topology lacks, vars Ansible would never
read, secrets readable by others, an encrypted file without its password; every hint a message
gives works as written. Host key checking is on except for the rig's own hosts."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from sovstack import rig, secrets
from sovstack.errors import SovstackError
from sovstack.inventory import check_inventory, load
from sovstack.runner import ansible_env
from tests.conftest import BIN, REPO, sovstack

BROKEN = sorted(p for p in (REPO / "tests" / "data" / "inventories" / "broken").iterdir() if p.is_dir())
TOPOLOGY = """\
plugin: sovstack.cloud.topology
networks:
  management: {cidr: 127.0.0.0/24}
hosts:
  node1: {address: 127.0.0.2, roles: [control, compute]}
vars:
  ansible_port: 1
"""


def expected(directory: Path) -> list[str]:
    """The corpus directory's `# expect:` lines (in expect.txt, which Ansible ignores), then
    the missing secrets file that prechecks also names."""
    lines = (directory / "expect.txt").read_text().splitlines()
    found = [line[len("# expect: ") :].replace("{inventory}", str(directory)) for line in lines]
    return [
        *found,
        f"{directory}/group_vars/all/secrets.yml: no secrets file: "
        f"run `sovstack secrets generate -i {directory}`",
    ]


def refusal(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The problems of `sovstack: error: invalid inventory, nothing was run:`, one a line."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "sovstack: error: invalid inventory, nothing was run:", proc.stderr
    return [line.strip() for line in lines[1:]]


@pytest.fixture
def own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SOVSTACK_HOME of this test alone, for counting its runs: the suite's shared home also
    gets the runs of the tests another worker runs at the same time."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SOVSTACK_HOME", str(home))
    return home


def runs(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "runs").iterdir()) if (home / "runs").is_dir() else []


@pytest.mark.parametrize("directory", BROKEN, ids=lambda p: p.name)
def test_a_broken_inventory_is_refused_before_any_host(directory, own_home):
    before = runs(own_home)
    proc = sovstack("prechecks", "-i", str(directory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    assert refusal(proc) == expected(directory)
    assert runs(own_home) == before  # no run was started: no host was contacted


def test_the_corpus_covers_every_class():
    assert {p.name for p in BROKEN} >= {
        "empty",
        "only-group-vars",
        "empty-topology",
        "two-topologies",
        "plain-inventory-beside",
        "other-plugin",
        "unknown-group",
        "unknown-host",
        "shadowed",
        "engine-network",
    }


def test_an_inventory_file_that_is_not_a_topology(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    web1: {}\n")
    with pytest.raises(SovstackError) as err:
        check_inventory(path)
    assert str(err.value).splitlines()[1:] == [
        f"  {path}: not a topology: it has no `plugin:` key: sovstack reads an inventory of one "
        "topology file (plugin: sovstack.cloud.topology, docs/topology.md): fix it, or pass -i a topology"
    ]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "topology.yml").write_text(TOPOLOGY)
    return directory


def run_hint(message: str) -> None:
    """Run the command a message gives between backticks, exactly as written."""
    hint = re.findall(r"`([^`]+)`", message)[-1]
    subprocess.run(["sh", "-c", hint], check=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})


def test_secrets_readable_by_others_are_refused_and_the_hint_fixes_it(inventory, own_home):
    secrets.generate(inventory)
    path = secrets.secrets_path(inventory)
    path.chmod(0o640)
    other = inventory / "group_vars" / "control.yml"
    other.write_text("rabbitmq_password: set-here-too\n")
    other.chmod(0o604)
    before = runs(own_home)
    proc = sovstack("deploy", "-i", str(inventory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    problems = refusal(proc)
    assert problems == [
        f"{path}: readable by group or others (mode 0640) though it holds secrets: run `chmod 600 {path}`",
        f"{other}: readable by group or others (mode 0604) though it holds secrets: run `chmod 600 {other}`",
    ]
    assert "set-here-too" not in proc.stderr
    assert runs(own_home) == before
    for message in problems:
        run_hint(message)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    check_inventory(inventory, require_secrets=True)


def test_the_vault_hint_works_as_written(inventory, tmp_path, own_home):
    """An encrypted secrets file without its password names --vault-password-file; prechecks and
    deploy take it, decrypt with it for the checks, and hand it to Ansible."""
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    secrets.generate(inventory, password)
    path = secrets.secrets_path(inventory)
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": ""}
    problems = refusal(sovstack("prechecks", "-i", str(inventory), env=env))
    assert problems == [
        f"{path} is encrypted with ansible-vault: give its password file with "
        "--vault-password-file FILE, or set ANSIBLE_VAULT_PASSWORD_FILE"
    ]
    # The hint, as written: the option on the same command. The checks decrypt the file with it
    # (a secret taken out is named), before any host is touched.
    plain = secrets.read(path, password).text.splitlines(keepends=True)
    kept = "".join(line for line in plain if not line.startswith("keystone_admin_password:"))
    path.write_bytes(secrets.encrypt(kept, password))
    path.chmod(0o600)
    for command in ("prechecks", "deploy"):
        proc = sovstack(command, "-i", str(inventory), "--vault-password-file", str(password), env=env)
        assert refusal(proc) == [
            f"{path}: keystone_admin_password: secret missing: run `sovstack secrets merge -i {inventory}`"
        ]
    # With every secret there, the run starts and Ansible reads the encrypted file with the same
    # password file: the only host (a closed port on this machine) is unreachable, nothing else fails.
    secrets.merge(inventory, password)
    before = runs(own_home)
    proc = sovstack("prechecks", "-i", str(inventory), "--vault-password-file", str(password), env=env)
    assert proc.returncode == 1
    assert "invalid inventory" not in proc.stderr
    assert "node1: ok=0 changed=0 unreachable=1 failures=0" in proc.stdout, proc.stdout
    assert "port 1: Connection refused" in proc.stdout
    assert "decrypt" not in (proc.stdout + proc.stderr)
    assert len(runs(own_home)) == len(before) + 1
    missing = sovstack("prechecks", "-i", str(inventory), "--vault-password-file", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert missing.stderr == f"sovstack: error: --vault-password-file {tmp_path / 'nope'}: no such file\n"


def test_each_file_is_read_and_decrypted_once(inventory, tmp_path, monkeypatch):
    password = tmp_path / "vault-pass"
    password.write_text("pw\n")
    secrets.generate(inventory, password)
    (inventory / "group_vars" / "control.yml").write_bytes(
        secrets.encrypt("memcached_memory_mb: 128\n", password)
    )
    (inventory / "group_vars" / "control.yml").chmod(0o600)
    decrypted: list[Path] = []
    real = secrets.decrypt

    def counting(path: Path, *args: object) -> tuple[str, str]:
        decrypted.append(path)
        return real(path, *args)

    monkeypatch.setattr(secrets, "decrypt", counting)
    inv = check_inventory(inventory, require_secrets=True, vault_password_file=password)
    assert sorted(decrypted) == sorted(
        [secrets.secrets_path(inventory), inventory / "group_vars" / "control.yml"]
    )
    assert inv.secrets is not None and set(inv.secrets.values) == set(secrets.load_spec())
    assert [v.variables for v in inv.vars_files if v.name == "control"] == [{"memcached_memory_mb": 128}]


def test_the_rig_inventory_passes(tmp_path):
    """The inventory `rig up` writes (its topology and group_vars/all/rig.yml) is a valid one."""
    state = rig.RigState("inp", "10.78.43.0/24", "docker", "img", [rig.RigHost("node1", "10.78.43.11", "c")])
    directory = tmp_path / "inventory"
    (directory).mkdir()
    import yaml

    (directory / "topology.yml").write_text(yaml.safe_dump(rig.topology_data(state, tmp_path / "key")))
    rig.write_group_vars(directory)
    inv = check_inventory(directory)
    assert inv.hosts() == ["node1"]


def ssh_command(inventory: Path, tmp_path: Path) -> str:
    """The ssh command line Ansible runs for node1 of the inventory (with sovstack's ansible.cfg
    and environment), against a closed port on this machine."""
    proc = subprocess.run(
        [str(BIN / "ansible"), "node1", "-i", str(inventory), "-m", "ansible.builtin.ping", "-vvv",
         "-e", "ansible_host=127.0.0.2", "-e", "ansible_port=1"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **ansible_env(), "ANSIBLE_NOCOLOR": "1"},
        check=False,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if "SSH: EXEC ssh" in line]
    assert lines, proc.stdout + proc.stderr
    return lines[0]


def test_host_key_checking_is_off_only_for_the_rig(inventory, tmp_path):
    assert "StrictHostKeyChecking" not in ssh_command(inventory, tmp_path)
    state = rig.RigState("inp", "10.78.43.0/24", "docker", "img", [rig.RigHost("node1", "10.78.43.11", "c")])
    rig_inventory = tmp_path / "rig"
    rig_inventory.mkdir()
    import yaml

    (rig_inventory / "topology.yml").write_text(yaml.safe_dump(rig.topology_data(state, tmp_path / "key")))
    command = ssh_command(rig_inventory, tmp_path)
    assert "StrictHostKeyChecking=no" in shlex.split(command)


def test_load_reads_the_overrides_dir_and_names(inventory):
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "o.yml").write_text("sovstack_overrides_dir: /srv/overrides\n")
    inv = load(inventory)
    assert inv.overrides_dir() == Path("/srv/overrides")
    assert inv.groups() == ["all", "ungrouped", "control", "network", "compute", "storage", "k8s"]
