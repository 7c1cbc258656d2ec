"""Hosts on Debian 13. The rig's hosts run Debian 12 by default, so every other test runs on
bookworm hosts; here a rig of trixie hosts, one docker and one podman, bootstraps, runs a
container on each engine (with a bridge network of its own: podman 5 needs nftables for it)
and changes nothing on a second bootstrap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checks import host as checks
from tests.conftest import sovstack
from tests.integration.conftest import Rig, changed_events, load_rig, recap, run_dir

NAME, SUBNET = "ttrix", "10.77.15.0/24"


@pytest.fixture(scope="module")
def trixie_rig(sovstack_home: Path) -> Iterator[tuple[Rig, str]]:
    sovstack("rig", "down", "--name", NAME, "--keep-image", check=True)  # left by a killed run
    up = sovstack(
        "rig", "up", "--name", NAME, "--subnet", SUBNET, "--engine", "docker,podman", "--hosts", "2",
        "--suite", "trixie",
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "2 Debian trixie hosts" in up.stdout
        rig = load_rig(NAME, SUBNET, sovstack_home)
        proc = sovstack("bootstrap", "-i", str(rig.inventory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield rig, proc.stdout
    finally:
        sovstack("rig", "down", "--name", NAME)


def test_debian_13_hosts_bootstrap_and_run_containers(trixie_rig):
    rig, _ = trixie_rig
    for name, engine in rig.engines.items():
        host = rig.host(name)
        assert host.file("/etc/debian_version").content_string.startswith("13."), name
        assert host.system_info.codename == "trixie"
        checks.engine_runs_containers(host, engine)
        checks.python_sdk_reaches_the_engine(host, engine)
    status = sovstack("rig", "status", "--name", NAME)
    assert f"rig {NAME!r}: Debian trixie, {SUBNET}" in status.stdout


def test_debian_13_second_bootstrap_changes_nothing(trixie_rig):
    rig, _ = trixie_rig
    again = sovstack("bootstrap", "-i", str(rig.inventory))
    assert again.returncode == 0, again.stdout + again.stderr
    hosts = recap(again.stdout)
    assert sorted(hosts) == ["node1", "node2"]
    assert all(counts["changed"] == 0 for counts in hosts.values()), again.stdout
    assert changed_events(run_dir(again.stdout)) == []
