"""The rigs the integration tests share: one with docker hosts, one with podman hosts,
made once per session and bootstrapped once (both at the same time)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import testinfra

from tests.conftest import BIN, HOME, KEEP_RIGS, sovstack

REUSE_IMAGES = os.environ.get("SOVSTACK_TEST_REUSE_IMAGES") == "1"
# The images of the control plane (and what they build on), built for bookworm as well.
CONTROL_PLANE_IMAGES = ("haproxy", "keepalived", "memcached", "mariadb", "rabbitmq", "keystone")
BOOKWORM_HOME = HOME / "bookworm"
# SOVSTACK_TEST_RIG_SET=N (1-9) gives this run rigs of its own (tdockN on 10.78.2N.0/24, tpodN
# on 10.78.2N+1.0/24), so that two checkouts can run their suites on one machine at once.
RIG_SET = os.environ.get("SOVSTACK_TEST_RIG_SET", "")
if RIG_SET:
    _n = int(RIG_SET)
    RIGS = {
        "docker": (f"tdock{_n}", f"10.78.{2 * _n}.0/24"),
        "podman": (f"tpod{_n}", f"10.78.{2 * _n + 1}.0/24"),
    }
else:
    RIGS = {"docker": ("tdock", "10.77.10.0/24"), "podman": ("tpod", "10.77.11.0/24")}


@dataclass
class Rig:
    name: str
    engine: str
    subnet: str
    inventory: Path
    hosts: dict[str, str]  # name -> address
    registry: str = field(init=False)

    def __post_init__(self) -> None:
        # The test registry runs on node1 (tests/integration/playbooks/prepare_engines.yml).
        self.registry = self.hosts["node1"] + ":4000"

    def host(self, name: str) -> testinfra.host.Host:
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={self.inventory}")

    def bootstrap_args(self) -> list[str]:
        return [
            "bootstrap",
            "-i",
            str(self.inventory),
            "-e",
            f"sovstack_registry={self.registry}",
            "-e",
            "sovstack_registry_insecure=true",
        ]


def rig_up(name: str, subnet: str, engine: str, hosts: int = 3) -> subprocess.CompletedProcess[str]:
    return sovstack(
        "rig", "up", "--name", name, "--subnet", subnet, "--engine", engine, "--hosts", str(hosts)
    )


def load_rig(name: str, engine: str, subnet: str, home: Path) -> Rig:
    inventory = home / "rigs" / name / "inventory"
    state = json.loads((home / "rigs" / name / "rig.json").read_text())
    hosts = {h["name"]: h["address"] for h in state["hosts"]}
    return Rig(name, engine, subnet, inventory, hosts)


@pytest.fixture(scope="session")
def engine_client() -> docker.DockerClient:
    return docker.from_env(version="auto")


@pytest.fixture(scope="session")
def rigs(sovstack_home: Path):
    made = {}
    try:
        for engine, (name, subnet) in RIGS.items():
            if not KEEP_RIGS:
                # tdock and tpod are the tests' own: one left by a run that was killed (its
                # state in another test home) goes first, as it would at the end of a run.
                sovstack("rig", "down", "--name", name, "--keep-image", check=True)
            proc = rig_up(name, subnet, engine)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            made[engine] = load_rig(name, engine, subnet, sovstack_home)
            # The cloud's secrets, as an operator makes them once (kept rigs keep theirs).
            secrets = made[engine].inventory / "group_vars" / "all" / "secrets.yml"
            sovstack(
                "secrets",
                "merge" if secrets.is_file() else "generate",
                "-i",
                str(made[engine].inventory),
                check=True,
            )
        yield made
    finally:
        for name, _ in RIGS.values():
            if not KEEP_RIGS:
                sovstack("rig", "down", "--name", name, "--keep-image")


def run_at_once(commands: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Commands as separate processes at the same time; their results by key."""
    procs = {
        key: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, argv in commands.items()
    }
    done = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=1800)  # reads both pipes: no process blocks on a full one
        done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def run_bootstraps(rigs: dict[str, Rig]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Bootstrap every rig at once, as separate `sovstack bootstrap` processes."""
    return run_at_once(
        {engine: [str(BIN / "sovstack"), *rig.bootstrap_args()] for engine, rig in rigs.items()}
    )


@pytest.fixture(scope="session")
def started(rigs) -> dict[str, subprocess.CompletedProcess[str]]:
    """The slow starts, at the same time: every rig bootstrapped, and the images built."""
    commands = {engine: [str(BIN / "sovstack"), *rig.bootstrap_args()] for engine, rig in rigs.items()}
    # The suite builds the whole family from scratch (a fresh debootstrap, every image), as
    # a new site would; a developer may reuse the engine's images (SOVSTACK_TEST_REUSE_IMAGES=1).
    rebuild = [] if REUSE_IMAGES else ["--rebuild"]
    commands["images"] = [str(BIN / "sovstack"), "images", "build", *rebuild]
    # An existing Debian 12 cloud is still patched: the control plane's images of bookworm
    # build too (in a state home of their own, so that the set of the default suite stays
    # the one push and deploy take).
    commands["bookworm"] = [
        "env",
        f"SOVSTACK_HOME={BOOKWORM_HOME}",
        str(BIN / "sovstack"),
        "images",
        "build",
        "--suite",
        "bookworm",
        "--only",
        ",".join(CONTROL_PLANE_IMAGES),
        *rebuild,
    ]
    return run_at_once(commands)


@pytest.fixture(scope="session")
def bookworm_built(started) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`sovstack images build --suite bookworm` of the control plane's images; its state home."""
    proc = started["bookworm"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, BOOKWORM_HOME


@pytest.fixture(scope="session")
def bootstrapped(started):
    results = {engine: proc for engine, proc in started.items() if engine in RIGS}
    for engine, proc in results.items():
        assert proc.returncode == 0, f"{engine}:\n{proc.stdout}\n{proc.stderr}"
    return results


@pytest.fixture(scope="session")
def images_built(started) -> subprocess.CompletedProcess[str]:
    """`sovstack images build` of the whole family (images/images.yml) on this machine's dockerd."""
    proc = started["images"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """The per-host recap lines `sovstack` prints: `  node1: ok=14 changed=0 ...`."""
    hosts = {}
    for line in stdout.splitlines():
        head, sep, rest = line.strip().partition(": ")
        if sep and rest.startswith("ok="):
            hosts[head] = {k: int(v) for k, v in (pair.split("=") for pair in rest.split())}
    return hosts


def run_dir(stdout: str) -> Path:
    first = stdout.splitlines()[0]
    return Path(first.split("(log: ", 1)[1].rstrip(")"))


def changed_events(directory: Path) -> list[dict]:
    """Task results that reported a change, from the runner's event JSON of that run."""
    events = []
    for path in sorted((directory / "artifacts" / "run" / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "runner_on_ok" and event["event_data"]["res"].get("changed"):
            events.append(event)
    return events


def run_module(rig: Rig, module: str, args: dict, *flags: str, host: str = "node1") -> dict:
    """One module on one rig host, ad hoc, as an operator would; its result with `status`
    (SUCCESS, CHANGED, FAILED!) and, before it, any diff text."""
    env = {**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1"}
    argv = [str(BIN / "ansible"), "-i", str(rig.inventory), host, "-m", module, "-a", json.dumps(args)]
    proc = subprocess.run([*argv, *flags], capture_output=True, text=True, env=env, check=False)
    diff, sep, rest = proc.stdout.partition(f"{host} | ")
    assert sep, proc.stdout + proc.stderr
    result = json.loads(rest[rest.index("{") :])
    result["status"] = rest.split(" ", 1)[0]
    result["diff_text"] = diff
    return result


def run_playbooks(rigs: dict[str, Rig], playbook: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """A playbook on every rig at once; the completed processes by engine."""
    return run_at_once(
        {
            engine: [str(BIN / "ansible-playbook"), "-i", str(rig.inventory), str(playbook)]
            for engine, rig in rigs.items()
        }
    )


PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.fixture(scope="session")
def engines_prepared(rigs, bootstrapped, images_built):
    """Two registries on node1 of each rig (role sovstack.cloud.registry) with the test images in them."""
    for engine, proc in run_playbooks(rigs, PLAYBOOKS / "prepare_engines.yml").items():
        assert proc.returncode == 0, f"{engine}:\n{proc.stdout}\n{proc.stderr}"
    return rigs


@pytest.fixture(scope="session")
def images_pushed(engines_prepared, images_built):
    """The whole image set pushed to the registry on node1 of the docker rig; the lock in
    $SOVSTACK_HOME/images/images.lock.yml."""
    rig = engines_prepared["docker"]
    proc = sovstack("images", "push", "--registry", rig.registry, "--insecure")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return rig, proc
