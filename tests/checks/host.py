"""Checks of the host layer (role sovstack.cloud.host, playbook sovstack.cloud.bootstrap)."""

from __future__ import annotations

import json

import testinfra

# A tiny image made on the host itself from its own /usr/bin/true: no registry needed.
TINY_IMAGE = (
    "tar -C / -ch usr/bin/true lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2 2>/dev/null"
    " | {engine} import - sovstack-test/true >/dev/null"
)
# The long-running units the bootstrap manages, by container engine: a second bootstrap must
# not restart any of them.
UNITS = {"docker": ["docker", "chrony"], "podman": ["podman.socket", "chrony"]}


def engine_runs_containers(host: testinfra.host.Host, engine: str) -> None:
    """The engine's service runs and is enabled, and runs a container."""
    if engine == "docker":
        service = host.service("docker")
        assert service.is_running and service.is_enabled
    else:
        assert host.service("podman.socket").is_running
        assert host.service("podman.socket").is_enabled
        assert host.service("podman-restart.service").is_enabled
    host.run_test(TINY_IMAGE.format(engine=engine))
    ran = host.run(f"{engine} run --rm sovstack-test/true /usr/bin/true")
    assert ran.rc == 0, ran.stderr


def python_sdk_reaches_the_engine(host: testinfra.host.Host, engine: str) -> None:
    """The docker Python SDK (what the container modules use) talks to the host's engine."""
    socket = "unix:///run/podman/podman.sock" if engine == "podman" else "unix:///var/run/docker.sock"
    code = (
        f"import docker; print(docker.DockerClient(base_url='{socket}').version()['Components'][0]['Name'])"
    )
    out = host.check_output(f'python3 -c "{code}"')
    assert out == ("Podman Engine" if engine == "podman" else "Engine")


def engine_trusts_the_registry(host: testinfra.host.Host, engine: str, registry: str) -> None:
    """The engine pulls from the plain-HTTP registry HOST:PORT."""
    if engine == "docker":
        config = json.loads(host.check_output("docker info --format '{{json .RegistryConfig.IndexConfigs}}'"))
        assert config[registry]["Secure"] is False
    else:
        info = json.loads(host.check_output("podman info --format json"))
        assert registry in info["registries"]
        assert info["registries"][registry]["Insecure"] is True


def sysctl_set_live_and_persisted(host: testinfra.host.Host, kernel_global: bool = False) -> None:
    """The per-namespace kernel parameters hold, live and in sysctl.d; kernel-global ones only
    where the inventory sets them (the rig leaves them alone: kernel_global=False)."""
    assert host.sysctl("net.ipv4.ip_forward") == 1
    assert host.sysctl("net.ipv4.ip_nonlocal_bind") == 1
    assert host.sysctl("net.ipv4.conf.all.rp_filter") == 2
    conf = host.file("/etc/sysctl.d/60-sovstack.conf")
    assert conf.contains("^net.ipv4.ip_forward = 1$")
    assert conf.contains("vm.max_map_count") == kernel_global


def chrony_runs(host: testinfra.host.Host, daemon_opts: str) -> None:
    """chronyd runs, answers, and has the inventory's options (host_chrony_daemon_opts)."""
    service = host.service("chrony")
    assert service.is_running and service.is_enabled
    assert host.run("chronyc -n tracking").rc == 0
    assert host.file("/etc/default/chrony").contains(f'DAEMON_OPTS="{daemon_opts}"')


def etc_hosts_names_every_host(host: testinfra.host.Host, addresses: dict[str, str]) -> None:
    """Every host of the inventory resolves to its address ({name: address})."""
    for other, address in addresses.items():
        assert host.check_output(f"getent hosts {other}").split()[0] == address, other


def service_user_and_config_dir(host: testinfra.host.Host) -> None:
    """The service user sovstack (42400, no login) owns /etc/sovstack, mode 0750."""
    user = host.user("sovstack")
    assert (user.uid, user.gid, user.shell) == (42400, 42400, "/usr/sbin/nologin")
    conf = host.file("/etc/sovstack")
    assert conf.is_directory and conf.user == "sovstack" and conf.group == "sovstack"
    assert conf.mode == 0o750


def units_started_at(host: testinfra.host.Host, engine: str) -> dict[str, str]:
    """When each long-running unit of the bootstrap last started (compare before and after a
    second bootstrap: equal means nothing restarted)."""
    return {
        unit: host.check_output(f"systemctl show -p ActiveEnterTimestampMonotonic {unit}")
        for unit in UNITS[engine]
    }
