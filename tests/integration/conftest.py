"""The rigs the integration tests share: one with docker hosts, one with podman hosts,
made once per session and bootstrapped once (both at the same time)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import testinfra
import yaml

from tests.conftest import BIN, sovstack

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
        # An address on the rig network held for the registry (issue: image pipeline).
        self.registry = self.subnet.rsplit(".", 1)[0] + ".2:5000"

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
    data = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts = {h: v["ansible_host"] for h, v in data["all"]["children"]["rig"]["hosts"].items()}
    return Rig(name, engine, subnet, inventory, hosts)


@pytest.fixture(scope="session")
def engine_client() -> docker.DockerClient:
    return docker.from_env(version="auto")


@pytest.fixture(scope="session")
def rigs(sovstack_home: Path):
    made = {}
    try:
        for engine, (name, subnet) in RIGS.items():
            proc = rig_up(name, subnet, engine)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            made[engine] = load_rig(name, engine, subnet, sovstack_home)
        yield made
    finally:
        for name, _ in RIGS.values():
            sovstack("rig", "down", "--name", name, "--keep-image")


def run_bootstraps(rigs: dict[str, Rig]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Bootstrap every rig at once, as separate `sovstack bootstrap` processes."""
    procs = {
        engine: subprocess.Popen(
            [str(BIN / "sovstack"), *rig.bootstrap_args()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for engine, rig in rigs.items()
    }
    done = {}
    for engine, proc in procs.items():
        out, err = proc.communicate(timeout=1800)
        done[engine] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.fixture(scope="session")
def bootstrapped(rigs):
    results = run_bootstraps(rigs)
    for engine, proc in results.items():
        assert proc.returncode == 0, f"{engine}:\n{proc.stdout}\n{proc.stderr}"
    return results


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
