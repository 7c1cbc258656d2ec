"""Bootstrap a 3-host rig of docker and podman hosts and one of podman hosts; check the hosts,
each by its own engine, with testinfra; bootstrap again and find nothing changed and nothing
restarted."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import changed_events, recap, run_bootstraps, run_dir

# Uses the deploy's rig: one group with the other files that do, in order on one worker (conftest.py).
pytestmark = pytest.mark.xdist_group("tdock")

ENGINES = ["docker", "podman"]
# A tiny image made on the host itself from its own /usr/bin/true: no registry needed.
TINY_IMAGE = (
    "tar -C / -ch usr/bin/true lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2 2>/dev/null"
    " | {engine} import - sovstack-test/true >/dev/null"
)


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
        if engine == "docker":
            service = host.service("docker")
            assert service.is_running and service.is_enabled
            assert not host.package("podman").is_installed
        else:
            assert host.service("podman.socket").is_running
            assert host.service("podman.socket").is_enabled
            assert host.service("podman-restart.service").is_enabled
            assert not host.package("docker.io").is_installed
        host.run_test(TINY_IMAGE.format(engine=engine))
        ran = host.run(f"{engine} run --rm sovstack-test/true /usr/bin/true")
        assert ran.rc == 0, ran.stderr


def test_python_sdk_reaches_the_engine(rig):
    socket = "unix:///run/podman/podman.sock" if rig.engine == "podman" else "unix:///var/run/docker.sock"
    code = (
        f"import docker; print(docker.DockerClient(base_url='{socket}').version()['Components'][0]['Name'])"
    )
    out = rig.host("node1").check_output(f'python3 -c "{code}"')
    assert out == ("Podman Engine" if rig.engine == "podman" else "Engine")


def test_engine_trusts_the_registry(rig):
    host = rig.host("node1")
    if rig.engine == "docker":
        config = json.loads(host.check_output("docker info --format '{{json .RegistryConfig.IndexConfigs}}'"))
        assert config[rig.registry]["Secure"] is False
    else:
        info = json.loads(host.check_output("podman info --format json"))
        assert rig.registry in info["registries"]
        assert info["registries"][rig.registry]["Insecure"] is True


def test_sysctl_set_live_and_persisted(rig):
    for name in rig.hosts:
        host = rig.host(name)
        assert host.sysctl("net.ipv4.ip_forward") == 1
        assert host.sysctl("net.ipv4.ip_nonlocal_bind") == 1
        assert host.sysctl("net.ipv4.conf.all.rp_filter") == 2
        conf = host.file("/etc/sysctl.d/60-sovstack.conf")
        assert conf.contains("^net.ipv4.ip_forward = 1$")
        # The rig's inventory leaves kernel-global parameters (shared with this machine) alone.
        assert not conf.contains("vm.max_map_count")


def test_chrony_up_without_touching_the_shared_clock(rig):
    for name in rig.hosts:
        host = rig.host(name)
        service = host.service("chrony")
        assert service.is_running and service.is_enabled
        assert host.run("chronyc -n tracking").rc == 0
        assert host.file("/etc/default/chrony").contains('DAEMON_OPTS="-F 1 -x"')


def test_etc_hosts_names_every_host(rig):
    for name in rig.hosts:
        host = rig.host(name)
        for other, address in rig.hosts.items():
            assert host.check_output(f"getent hosts {other}").split()[0] == address


def test_service_user_and_config_dir(rig):
    for name in rig.hosts:
        host = rig.host(name)
        user = host.user("sovstack")
        assert (user.uid, user.gid, user.shell) == (42400, 42400, "/usr/sbin/nologin")
        conf = host.file("/etc/sovstack")
        assert conf.is_directory and conf.user == "sovstack" and conf.group == "sovstack"
        assert conf.mode == 0o750


UNITS = {"docker": ["docker", "chrony"], "podman": ["podman.socket", "chrony"]}


def started_at(rig):
    return {
        (name, unit): rig.host(name).check_output(f"systemctl show -p ActiveEnterTimestampMonotonic {unit}")
        for name, engine in rig.engines.items()
        for unit in UNITS[engine]
    }


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
