"""The rigs the integration tests share, made once per run and bootstrapped once (all at the
same time, while the images build): "docker", whose node1 and node2 run docker and node3 podman,
so that the one deploy of the control plane (test_deploy) runs every service on both engines;
"podman", all podman; and "modules", one docker host. The container-module tests run on node1
of "modules" (docker) and of "podman", never on the deploy's rig, so that they and the deploy
run at the same time (scripts/test.sh runs two pytest-xdist workers: each test file that uses
a rig runs whole on one worker, and the files that use the deploy's rig, test_bootstrap,
test_deploy and test_sysctl_module, are one group, the container modules and the prechecks
(which run on the podman rig) another: XDIST_GROUPS in tests/conftest.py).

What the workers share is made once, by the first that asks (`once`): the rigs, their
bootstrap and the image build, the test registries, the push. The rigs go down when the whole
run is done (tests/conftest.py, pytest_sessionfinish)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import testinfra
from filelock import FileLock

from tests.conftest import BIN, KEEP_RIGS, SHARED, sovstack

REUSE_IMAGES = os.environ.get("SOVSTACK_TEST_REUSE_IMAGES") == "1"
# SOVSTACK_TEST_RIG_SET=N (1-9) gives this run rigs of its own (tdockN on 10.78.2N.0/24, tpodN
# on 10.78.2N+1.0/24), so that two checkouts can run their suites on one machine at once.
RIG_SET = os.environ.get("SOVSTACK_TEST_RIG_SET", "")
if RIG_SET:
    _n = int(RIG_SET)
    RIGS = {
        "docker": (f"tdock{_n}", f"10.78.{2 * _n}.0/24"),
        "podman": (f"tpod{_n}", f"10.78.{2 * _n + 1}.0/24"),
    }
    MODULES_RIG = (f"tmod{_n}", f"10.79.{_n}.0/24")
else:
    RIGS = {"docker": ("tdock", "10.77.10.0/24"), "podman": ("tpod", "10.77.11.0/24")}
    MODULES_RIG = ("tmod", "10.77.14.0/24")
# Every rig of the run: RIGS (bootstrap, deploy, rig tests) and the container modules' docker host.
ALL_RIGS = {**RIGS, "modules": MODULES_RIG}
# Each rig's `rig up --engine` (one engine for every host, or one per host) and host count.
ENGINES = {"docker": "docker,docker,podman", "podman": "podman", "modules": "docker"}
HOSTS = {"docker": 3, "podman": 3, "modules": 1}


@dataclass
class Rig:
    name: str
    engine: str  # node1's: the rig's key in RIGS
    subnet: str
    inventory: Path
    hosts: dict[str, str]  # name -> address
    engines: dict[str, str]  # name -> the engine its services run on
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
    """`sovstack rig up`; engine: one for every host, or one per host (docker,docker,podman)."""
    return sovstack(
        "rig", "up", "--name", name, "--subnet", subnet, "--engine", engine, "--hosts", str(hosts)
    )


def load_rig(name: str, subnet: str, home: Path) -> Rig:
    inventory = home / "rigs" / name / "inventory"
    state = json.loads((home / "rigs" / name / "rig.json").read_text())
    hosts = {h["name"]: h["address"] for h in state["hosts"]}
    engines = {h["name"]: h["engine"] for h in state["hosts"]}
    return Rig(name, engines["node1"], subnet, inventory, hosts, engines)


def once(name: str, make: Callable[[], Any]) -> Any:
    """make() once per test run: the first worker that asks runs it, the others wait for it
    and get its result (JSON), or its failure again."""
    SHARED.mkdir(parents=True, exist_ok=True)
    path = SHARED / f"{name}.json"
    with FileLock(f"{path}.lock"):
        if not path.is_file():
            try:
                path.write_text(json.dumps({"value": make()}))
            except Exception as error:
                path.write_text(json.dumps({"error": f"{type(error).__name__}: {error}"}))
                raise
        result = json.loads(path.read_text())
    if "error" in result:
        raise AssertionError(f"{name} failed in another worker: {result['error']}")
    return result["value"]


def dump(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def load(data: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(data["args"], data["returncode"], data["stdout"], data["stderr"])


@pytest.fixture(scope="session")
def engine_client() -> docker.DockerClient:
    return docker.from_env(version="auto")


def make_rigs(home: Path) -> list[str]:
    names = [name for name, _ in ALL_RIGS.values()]
    (SHARED / "rigs-made.json").write_text(json.dumps({"names": [] if KEEP_RIGS else names}))
    for key, (name, subnet) in ALL_RIGS.items():
        if not KEEP_RIGS:
            # These rigs are the tests' own: one left by a run that was killed (its state in
            # another test home) goes first, as it would at the end of a run.
            sovstack("rig", "down", "--name", name, "--keep-image", check=True)
        proc = rig_up(name, subnet, ENGINES[key], HOSTS[key])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # The cloud's secrets, as an operator makes them once (kept rigs keep theirs).
        inventory = home / "rigs" / name / "inventory"
        secrets = inventory / "group_vars" / "all" / "secrets.yml"
        sovstack("secrets", "merge" if secrets.is_file() else "generate", "-i", str(inventory), check=True)
    return names


@pytest.fixture(scope="session")
def all_rigs(sovstack_home: Path) -> dict[str, Rig]:
    """Every rig of the run by its key in ALL_RIGS, up (made once for all workers)."""
    once("rigs", lambda: make_rigs(sovstack_home))
    return {key: load_rig(name, subnet, sovstack_home) for key, (name, subnet) in ALL_RIGS.items()}


@pytest.fixture(scope="session")
def rigs(all_rigs) -> dict[str, Rig]:
    """The docker rig (the deploy's) and the podman rig."""
    return {key: all_rigs[key] for key in RIGS}


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
def started(all_rigs) -> dict[str, subprocess.CompletedProcess[str]]:
    """The slow starts, at the same time: every rig bootstrapped, and the images built."""

    def make() -> dict[str, Any]:
        commands = {key: [str(BIN / "sovstack"), *rig.bootstrap_args()] for key, rig in all_rigs.items()}
        # The suite builds the whole family from scratch (a fresh debootstrap, every image), as
        # a new site would; a developer may reuse the engine's images (SOVSTACK_TEST_REUSE_IMAGES=1).
        rebuild = [] if REUSE_IMAGES else ["--rebuild"]
        commands["images"] = [str(BIN / "sovstack"), "images", "build", *rebuild]
        return {key: dump(proc) for key, proc in run_at_once(commands).items()}

    return {key: load(proc) for key, proc in once("started", make).items()}


@pytest.fixture(scope="session")
def bootstrapped(started) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every rig's bootstrap passed; the results of the docker and podman rigs, by key."""
    for key in ALL_RIGS:
        assert started[key].returncode == 0, f"{key}:\n{started[key].stdout}\n{started[key].stderr}"
    return {key: started[key] for key in RIGS}


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
def engines_prepared(all_rigs, bootstrapped, images_built) -> dict[str, Rig]:
    """Two registries on node1 of each rig (role sovstack.cloud.registry) with the test images
    in them; the docker and podman rigs, by key."""

    def make() -> dict[str, Any]:
        return {key: dump(p) for key, p in run_playbooks(all_rigs, PLAYBOOKS / "prepare_engines.yml").items()}

    for key, proc in once("engines_prepared", make).items():
        assert proc["returncode"] == 0, f"{key}:\n{proc['stdout']}\n{proc['stderr']}"
    return {key: all_rigs[key] for key in RIGS}


@pytest.fixture(scope="session")
def module_rigs(all_rigs, engines_prepared) -> dict[str, Rig]:
    """Where the container-module tests run, by engine: node1 of the modules rig (docker) and
    of the podman rig; never the deploy's rig."""
    return {"docker": all_rigs["modules"], "podman": all_rigs["podman"]}


@pytest.fixture(scope="session")
def images_pushed(engines_prepared, images_built):
    """The whole image set pushed to the registry on node1 of the docker rig; the lock in
    $SOVSTACK_HOME/images/images.lock.yml."""
    rig = engines_prepared["docker"]

    def make() -> dict[str, Any]:
        return dump(sovstack("images", "push", "--registry", rig.registry, "--insecure"))

    proc = load(once("images_pushed", make))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return rig, proc
