"""Bootstrap a 3-host rig with docker hosts and one with podman hosts; check the hosts with
testinfra; bootstrap again and find nothing changed and nothing restarted."""

from __future__ import annotations

import json

import pytest

from tests.conftest import KEEP_RIGS, sovstack
from tests.integration.conftest import RIG_SET, changed_events, load_rig, recap, run_bootstraps, run_dir

ENGINES = ["docker", "podman"]
# A one-host rig of Debian 13 hosts (the other rigs are Debian 12), its own per rig set.
DEBIAN13_RIG = (
    (f"tdeb{RIG_SET}", f"10.78.{100 + int(RIG_SET)}.0/24") if RIG_SET else ("tdeb", "10.77.12.0/24")
)
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
    for name in rig.hosts:
        host = rig.host(name)
        if rig.engine == "docker":
            service = host.service("docker")
            assert service.is_running and service.is_enabled
        else:
            assert host.service("podman.socket").is_running
            assert host.service("podman.socket").is_enabled
            assert host.service("podman-restart.service").is_enabled
        host.run_test(TINY_IMAGE.format(engine=rig.engine))
        ran = host.run(f"{rig.engine} run --rm sovstack-test/true /usr/bin/true")
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


def started_at(rig, units):
    return {
        (name, unit): rig.host(name).check_output(f"systemctl show -p ActiveEnterTimestampMonotonic {unit}")
        for name in rig.hosts
        for unit in units
    }


def test_second_bootstrap_changes_and_restarts_nothing(rigs, bootstrapped):
    units = {"docker": ["docker", "chrony"], "podman": ["podman.socket", "chrony"]}
    before = {engine: started_at(rig, units[engine]) for engine, rig in rigs.items()}
    again = run_bootstraps(rigs)
    for engine, proc in again.items():
        assert proc.returncode == 0, proc.stdout + proc.stderr
        hosts = recap(proc.stdout)
        assert sorted(hosts) == sorted(rigs[engine].hosts)
        assert all(counts["changed"] == 0 for counts in hosts.values()), proc.stdout
        assert changed_events(run_dir(proc.stdout)) == []
        assert started_at(rigs[engine], units[engine]) == before[engine]


@pytest.fixture(scope="module")
def debian13_rig(sovstack_home):
    """One Debian 13 (trixie) host of its own: both engines, each bootstrapped on it."""
    name, subnet = DEBIAN13_RIG
    if not KEEP_RIGS:
        sovstack("rig", "down", "--name", name, "--keep-image")
    proc = sovstack("rig", "up", "--name", name, "--subnet", subnet, "--suite", "trixie", "--hosts", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 Debian 13 (trixie) hosts" in proc.stdout
    try:
        yield load_rig(name, "docker", subnet, sovstack_home)
    finally:
        if not KEEP_RIGS:
            sovstack("rig", "down", "--name", name, "--keep-image")


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_debian13_host_bootstraps_and_runs_each_engine(debian13_rig, engine):
    """trixie's docker.io 26 (with docker-cli) and podman 5 (with nftables for netavark) in a
    rig host on this machine's cgroup v1; a second bootstrap changes nothing."""
    args = ["bootstrap", "-i", str(debian13_rig.inventory), "-e", f"container_engine={engine}"]
    first = sovstack(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    host = debian13_rig.host("node1")
    assert host.system_info.distribution == "debian" and host.system_info.release.startswith("13")
    host.run_test(TINY_IMAGE.format(engine=engine))
    for network in ("host", "bridge"):  # the services' network, and a network of its own
        ran = host.run(f"{engine} run --rm --network {network} sovstack-test/true /usr/bin/true")
        assert ran.rc == 0, ran.stderr
    again = sovstack(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout)["node1"]["changed"] == 0, again.stdout
