"""Bootstrap a 3-host rig of docker and podman hosts and one of podman hosts; check the hosts,
each by its own engine, with testinfra; bootstrap again and find nothing changed and nothing
restarted."""

from __future__ import annotations

import pytest

from tests.checks import host as checks
from tests.integration.conftest import changed_events, recap, run_bootstraps, run_dir

ENGINES = ["docker", "podman"]


@pytest.fixture(params=ENGINES)
def rig(request, rigs, bootstrapped):
    return rigs[request.param]


def test_progress_one_line_per_play_and_role(rig, bootstrapped):
    out = bootstrapped[rig.engine].stdout
    lines = out.splitlines()
    assert any(line.endswith("play  Bootstrap hosts") for line in lines), out
    assert sum(line.endswith("  role  host") for line in lines) == 1, out
    assert sorted(recap(out)) == sorted(rig.hosts)
    assert (run_dir(out) / "artifacts" / "run" / "job_events").is_dir()


def test_engine_runs_containers(rig):
    for name, engine in rig.engines.items():
        host = rig.host(name)
        # the rig's default hosts: Debian 12 (test_debian13_hosts has Debian 13's)
        assert host.system_info.codename == "bookworm", name
        checks.engine_runs_containers(host, engine)
        # one engine per host: the other is not installed
        assert not host.package("podman" if engine == "docker" else "docker.io").is_installed, name


def test_python_sdk_reaches_the_engine(rig):
    checks.python_sdk_reaches_the_engine(rig.host("node1"), rig.engine)


def test_engine_trusts_the_registry(rig):
    checks.engine_trusts_the_registry(rig.host("node1"), rig.engine, rig.registry)


def test_sysctl_set_live_and_persisted(rig):
    for name in rig.hosts:
        # The rig's inventory leaves kernel-global parameters (shared with this machine) alone.
        checks.sysctl_set_live_and_persisted(rig.host(name), kernel_global=False)


def test_chrony_up_without_touching_the_shared_clock(rig):
    for name in rig.hosts:
        checks.chrony_runs(rig.host(name), "-F 1 -x")


def test_etc_hosts_names_every_host(rig):
    for name in rig.hosts:
        checks.etc_hosts_names_every_host(rig.host(name), rig.hosts)


def test_service_user_and_config_dir(rig):
    for name in rig.hosts:
        checks.service_user_and_config_dir(rig.host(name))


def started_at(rig):
    return {name: checks.units_started_at(rig.host(name), engine) for name, engine in rig.engines.items()}


def test_second_bootstrap_changes_and_restarts_nothing(rigs, bootstrapped):
    before = {engine: started_at(rig) for engine, rig in rigs.items()}
    again = run_bootstraps(rigs)
    for engine, proc in again.items():
        assert proc.returncode == 0, proc.stdout + proc.stderr
        hosts = recap(proc.stdout)
        assert sorted(hosts) == sorted(rigs[engine].hosts)
        assert all(counts["changed"] == 0 for counts in hosts.values()), proc.stdout
        assert changed_events(run_dir(proc.stdout)) == []
        assert started_at(rigs[engine]) == before[engine]
