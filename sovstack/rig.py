"""The local test rig: systemd "bare-metal" hosts in containers on one Linux machine.

Every object the rig makes carries the label ``sovstack.rig=<name>``; ``down`` removes
exactly the labelled objects and the rig's state directory, nothing else.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml
from docker.types import IPAMConfig, IPAMPool

from sovstack.errors import SovstackError
from sovstack.paths import collection_root, state_home

LABEL = "sovstack.rig"
IMAGE_LABEL = "sovstack.rig.image"
HOME_LABEL = "sovstack.rig.state"  # the state directory (SSH key, inventory) the host belongs to
IMAGE_REPO = "sovstack/rig-host"
DEFAULT_NAME = "rig"
DEFAULT_SUBNET = "10.77.0.0/24"
ENGINES = ("docker", "podman")
MAX_HOSTS = 32
REGISTRY_PORT = 4000  # not 5000: keystone listens there on the control hosts
FIRST_HOST_OFFSET = 11  # node1 gets .11; .1 is the gateway, .2-.10 stay free for services
RESERVED = {"podman's default network": ipaddress.ip_network("10.88.0.0/16")}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")

# What goes into the host image. Changing any of it changes the image tag, so a new
# definition builds a new image and an unchanged one is reused.
# The Debian release of the hosts (`rig up --suite`): a rig is made of one. Both are tested:
# Debian 12 by every rig of the test suite, Debian 13 by tests/integration/test_debian13_hosts.py.
# Debian 12 stays the default: in a rig host on this machine (cgroup v1), trixie's podman 5.4
# (crun 1.21) cannot start a container that is given a device ("crun: write file
# `devices.allow`: Operation not permitted"), which libvirt, Open vSwitch and Ceph need.
# Its docker.io 26.1 runs them, and the control plane deploys on trixie hosts of either engine.
HOST_SUITES = ("bookworm", "trixie")
DEFAULT_HOST_SUITE = "bookworm"
HOST_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "iputils-ping",
    "ca-certificates",
    "gnupg",
    "procps",
    "sudo",
    "less",
)
HOSTKEYS_UNIT = """\
[Unit]
Description=Generate this host's own SSH host keys
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
"""
# The flags that let systemd and a nested container engine run in a container without
# --privileged (which this machine's root cannot grant, see ENVIRONMENT.md).
HOST_CAP_DROP = ["SYS_RESOURCE"]
HOST_SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]
# This machine's devices that the hosts' services need: /dev/net/tun for the tap devices of
# Open vSwitch's userspace datapath (its internal ports) and of the guests.
HOST_DEVICES = ("/dev/net/tun",)
HOST_TMPFS = {"/run": "rw,exec", "/run/lock": "rw", "/tmp": "rw,exec"}  # noqa: S108 (in the host)

Say = Callable[[str], None]


@dataclass
class RigHost:
    name: str
    address: str
    container: str
    engine: str = "docker"  # the container engine of this host's services


@dataclass
class RigState:
    name: str
    subnet: str
    engine: str  # as given to `rig up --engine`: one engine, or one per host (docker,podman,docker)
    image: str
    hosts: list[RigHost]
    suite: str = "bookworm"  # the hosts' Debian release (a rig made before the choice: bookworm)

    @classmethod
    def load(cls, path: Path) -> RigState:
        data = json.loads(path.read_text())
        # a rig made before engines per host: every host runs the rig's one engine
        data["hosts"] = [RigHost(**{"engine": data["engine"], **host}) for host in data["hosts"]]
        return cls(**data)


def parse_engines(text: str, hosts: int) -> list[str]:
    """`--engine` as each host's engine: one engine for every host, or one per host, in order
    (docker,podman,docker: node2 runs podman, node1 and node3 docker)."""
    engines = [e.strip() for e in text.split(",")]
    unknown = sorted({e for e in engines if e not in ENGINES})
    if unknown:
        raise SovstackError(
            f"--engine {text}: {', '.join(map(repr, unknown))} unknown: use {' or '.join(ENGINES)}"
        )
    if len(engines) == 1:
        return engines * hosts
    if len(engines) != hosts:
        raise SovstackError(
            f"--engine {text} names {len(engines)} engines for {hosts} hosts: "
            "name one engine, or one per host"
        )
    return engines


def rig_dir(name: str) -> Path:
    return state_home() / "rigs" / name


def inventory_path(name: str = DEFAULT_NAME) -> Path:
    return rig_dir(name) / "inventory"


def require_root() -> None:
    if os.geteuid() != 0:
        raise SovstackError("the rig needs root (it runs containers and a network): run as root")


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise SovstackError(
            f"rig name {name!r} is invalid: use up to 12 lowercase letters, digits and '-', "
            "starting with a letter"
        )


def parse_subnet(text: str, hosts: int) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise SovstackError(f"--subnet {text}: {exc}") from None
    if not isinstance(subnet, ipaddress.IPv4Network):
        raise SovstackError(f"--subnet {text}: the rig needs an IPv4 network")
    if subnet.num_addresses < FIRST_HOST_OFFSET + hosts + 1:
        raise SovstackError(f"--subnet {text} is too small for {hosts} hosts: use a /24 or larger")
    return subnet


def host_routes() -> dict[ipaddress.IPv4Network, str]:
    """This machine's IPv4 routes: network -> the device it is on."""
    found: dict[ipaddress.IPv4Network, str] = {}
    routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]))
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast", "local"):
            continue
        net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        found[net] = route.get("dev", "?")
    return found


def docker_networks(client: docker.DockerClient) -> dict[ipaddress.IPv4Network, tuple[str, str]]:
    """Every IPv4 subnet of the engine's networks: subnet -> (network name, its rig label)."""
    found: dict[ipaddress.IPv4Network, tuple[str, str]] = {}
    for net in client.networks.list():
        attrs = net.attrs
        for pool in (attrs.get("IPAM") or {}).get("Config") or []:
            subnet = pool.get("Subnet", "")
            if subnet and ":" not in subnet:
                label = (attrs.get("Labels") or {}).get(LABEL, "")
                found[ipaddress.ip_network(subnet, strict=False)] = (attrs["Name"], label)
    return found


def check_clash(
    subnet: ipaddress.IPv4Network,
    rig: str,
    routes: dict[ipaddress.IPv4Network, str],
    networks: dict[ipaddress.IPv4Network, tuple[str, str]],
) -> None:
    """Refuse a subnet that overlaps anything on this machine but the rig's own network."""
    ours = {net for net, (_, label) in networks.items() if label == rig}
    clashes = [f"{net} ({what})" for what, net in RESERVED.items() if subnet.overlaps(net)]
    clashes += [
        f"{net} (docker network {name})"
        for net, (name, _) in networks.items()
        if net not in ours and subnet.overlaps(net)
    ]
    clashes += [
        f"{net} (route via {dev})"
        for net, dev in routes.items()
        if dev != bridge_name(rig) and subnet.overlaps(net)
    ]
    if clashes:
        raise SovstackError(
            f"--subnet {subnet} clashes with {', '.join(sorted(set(clashes)))}: choose a free one"
        )


def bridge_name(rig: str) -> str:
    """The rig network's Linux bridge (at most 15 characters: the name is at most 12)."""
    return f"sr-{rig}"


def _run(argv: list[str], *, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SovstackError(f"{' '.join(argv[:3])} failed: {' / '.join(tail)}")
    return proc.stdout


def apt_install(packages: list[str], say: Say) -> None:
    say(f"apt: installing {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
            raise SovstackError(f"{' '.join(argv[:2])} {' '.join(packages)} failed: {tail}")


def ensure_tools(say: Say) -> None:
    missing = [
        pkg for tool, pkg in (("ssh-keygen", "openssh-client"), ("ip", "iproute2")) if not shutil.which(tool)
    ]
    if missing:
        apt_install(missing, say)


def connect_engine(say: Say, *, start: bool) -> docker.DockerClient | None:
    """The local dockerd; with start, install and start it first where none answers."""
    try:
        client = docker.from_env(version="auto", timeout=300)
        client.ping()
        return client
    except docker.errors.DockerException:
        if not start:
            return None
    if not shutil.which("dockerd"):
        apt_install(["docker.io"], say)
    if Path("/run/systemd/system").is_dir():
        say("engine: starting docker.service")
        _run(["systemctl", "enable", "--now", "docker.service"])
    else:
        say("engine: starting dockerd (no systemd here; log in /var/log/sovstack-dockerd.log)")
        with open("/var/log/sovstack-dockerd.log", "ab") as log:
            subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client = docker.from_env(version="auto", timeout=300)
            client.ping()
            return client
        except docker.errors.DockerException:
            time.sleep(0.5)
    raise SovstackError("dockerd did not answer within 60 s: see /var/log/sovstack-dockerd.log")


def apt_mirror() -> str:
    """The Debian mirror this machine uses, so the rig fetches from the same place."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        match = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", path.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.is_file():
        match = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s", sources.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def image_tag(suite: str) -> str:
    definition = json.dumps([suite, HOST_PACKAGES, HOSTKEYS_UNIT, 1]).encode()
    return f"{IMAGE_REPO}:{suite}-{hashlib.sha256(definition).hexdigest()[:12]}"


def ensure_image(client: docker.DockerClient, suite: str, say: Say) -> str:
    tag = image_tag(suite)
    try:
        client.images.get(tag)
        say(f"image: {tag} (cached)")
        return tag
    except docker.errors.ImageNotFound:
        pass
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"], say)
    mirror = apt_mirror()
    started = time.monotonic()
    say(f"image: building {tag} from {suite} ({mirror}), about a minute")
    with tempfile.TemporaryDirectory(prefix="sovstack-rig-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(HOST_PACKAGES)}",
            suite,
            str(root),
            mirror,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = " / ".join(proc.stdout.strip().splitlines()[-3:])
            raise SovstackError(f"debootstrap {suite} from {mirror} failed: {tail}")
        _finish_host_root(root)
        tarball = Path(tmp) / "root.tar"
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."])
        client.api.import_image_from_file(
            str(tarball),
            repository=IMAGE_REPO,
            tag=tag.split(":", 1)[1],
            changes=[
                'CMD ["/sbin/init"]',
                "ENV container=docker",
                f'LABEL {IMAGE_LABEL}="{suite}"',
            ],
        )
    say(f"image: built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _finish_host_root(root: Path) -> None:
    """Make the debootstrapped tree a host: own SSH host keys at first boot, fresh machine-id."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit = root / "etc/systemd/system/sovstack-ssh-hostkeys.service"
    unit.write_text(HOSTKEYS_UNIT)
    wants = root / "etc/systemd/system/ssh.service.requires"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    (root / "etc/machine-id").write_text("")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    # The host container has no console: a getty on it only fails.
    (root / "etc/systemd/system/console-getty.service").symlink_to("/dev/null")
    (root / "etc/systemd/system/getty@tty1.service").symlink_to("/dev/null")


def ensure_network(client: docker.DockerClient, name: str, subnet: ipaddress.IPv4Network, say: Say) -> None:
    net_name = f"sovstack-{name}"
    existing = client.networks.list(names=[net_name])
    if existing:
        attrs = existing[0].attrs
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        if (attrs.get("Labels") or {}).get(LABEL) != name or [c.get("Subnet") for c in configs] != [
            str(subnet)
        ]:
            raise SovstackError(
                f"docker network {net_name} exists but is not rig {name!r} on {subnet}: "
                f"remove it or run `sovstack rig down --name {name}`"
            )
        say(f"network: {net_name} {subnet} (unchanged)")
        return
    gateway = str(subnet.network_address + 1)
    client.networks.create(
        net_name,
        driver="bridge",
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)]),
        options={"com.docker.network.bridge.name": bridge_name(name)},
        labels={LABEL: name},
    )
    say(f"network: {net_name} {subnet} (created, gateway {gateway})")


def ensure_key(directory: Path, say: Say) -> Path:
    key = directory / "ssh" / "id_ed25519"
    if not key.is_file():
        key.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sovstack-rig", "-f", str(key)])
        say(f"ssh: key {key} (created)")
    return key


def ensure_host(
    client: docker.DockerClient, rig: str, host: RigHost, image: str, key: Path, say: Say
) -> None:
    try:
        container = client.containers.get(host.container)
    except docker.errors.NotFound:
        container = None
    if container is not None:
        if container.labels.get(LABEL) != rig:
            raise SovstackError(
                f"container {host.container} exists and is not part of rig {rig!r}: remove it"
            )
        home = container.labels.get(HOME_LABEL)
        if home != str(rig_dir(rig)):
            raise SovstackError(
                f"rig {rig!r} was made with its state in {home}, not {rig_dir(rig)} (SOVSTACK_HOME): "
                f"run `sovstack rig down --name {rig}` first"
            )
        if container.status != "running":
            container.start()
            say(f"{host.name}: {host.address} (started)")
        else:
            say(f"{host.name}: {host.address} (unchanged)")
        return
    volumes: dict[str, dict[str, str]] = {
        str(key) + ".pub": {"bind": "/root/.ssh/authorized_keys", "mode": "ro"}
    }
    for path, suffix in (("/var/lib/docker", "docker"), ("/var/lib/containers", "containers")):
        volume = f"{host.container}-{suffix}"
        client.volumes.create(volume, labels={LABEL: rig})
        volumes[volume] = {"bind": path, "mode": "rw"}
    volumes["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
    net_name = f"sovstack-{rig}"
    api = client.api
    host_config = api.create_host_config(
        binds=volumes,
        cap_add=["ALL"],
        cap_drop=HOST_CAP_DROP,
        security_opt=HOST_SECURITY_OPT,
        device_cgroup_rules=["a *:* rwm"],
        devices=[f"{path}:{path}:rwm" for path in HOST_DEVICES if Path(path).exists()],
        tmpfs=HOST_TMPFS,
        restart_policy={"Name": "unless-stopped"},
        network_mode=net_name,
    )
    # What `--security-opt systempaths=unconfined` means: a writable /proc/sys, so that each
    # host sets its own network sysctls. The SDK has no option for it.
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    created = api.create_container(
        image,
        name=host.container,
        hostname=host.name,
        labels={LABEL: rig, HOME_LABEL: str(rig_dir(rig))},
        stop_signal="SIGRTMIN+3",
        host_config=host_config,
        networking_config=api.create_networking_config(
            {net_name: api.create_endpoint_config(ipv4_address=host.address)}
        ),
    )
    api.start(created["Id"])
    say(f"{host.name}: {host.address} (created)")


def wait_for_ssh(hosts: list[RigHost], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(hosts)
    while waiting:
        if ssh_answers(waiting[0].address):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            names = ", ".join(h.name for h in waiting)
            raise SovstackError(
                f"sshd did not answer on {names} within {timeout:.0f} s: see `sovstack rig status`"
            )
        time.sleep(0.5)


def control_count(hosts: int) -> int:
    """Control hosts of a rig: the largest odd number up to 3 (a quorum needs an odd count)."""
    return min(hosts, 3) if min(hosts, 3) % 2 else min(hosts, 3) - 1


def topology_data(state: RigState, key: Path) -> dict[str, Any]:
    """The rig as a topology for the inventory plugin sovstack.cloud.topology."""
    subnet = ipaddress.ip_network(state.subnet)
    first = subnet.network_address + FIRST_HOST_OFFSET
    controls = control_count(len(state.hosts))
    engines = {host.engine for host in state.hosts}
    hosts: dict[str, dict[str, Any]] = {}
    for index, host in enumerate(state.hosts, start=1):
        roles = ["control", "k8s"] if index <= controls else []
        hosts[host.name] = {"index": index, "roles": [*roles, "network", "compute", "storage"]}
        if len(engines) > 1:
            hosts[host.name]["vars"] = {"container_engine": host.engine}
    engine_vars = {"container_engine": state.hosts[0].engine} if len(engines) == 1 else {}
    return {
        "plugin": "sovstack.cloud.topology",
        "networks": {
            "management": {
                "cidr": state.subnet,
                "gateway": str(subnet.network_address + 1),
                "vip": str(subnet.network_address + FIRST_HOST_OFFSET - 1),
                "range": f"{first}-{first + MAX_HOSTS - 1}",
            }
        },
        "hosts": hosts,
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            # The rig's hosts get new host keys with every `rig up`: host key checking is off
            # for them here, and only here (Ansible's default, on, holds for every other inventory).
            "ansible_ssh_common_args": (
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
            ),
            "ansible_python_interpreter": "/usr/bin/python3",
            **engine_vars,
            "sovstack_rig": state.name,
            # The registry runs on node1 (playbook sovstack.cloud.registry), plain HTTP on the
            # rig's own network.
            "sovstack_registry": f"{first}:{REGISTRY_PORT}",
            "sovstack_registry_insecure": True,
        },
    }


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> None:
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def write_group_vars(inventory: Path) -> None:
    """The rig's variables in group_vars/all/rig.yml, so that the inventory's secrets.yml can sit
    beside them in group_vars/all/; a group_vars/all.yml of an older rig goes."""
    template = collection_root() / "inventories" / "rig" / "group_vars" / "all.yml"
    write_if_changed(inventory / "group_vars" / "all" / "rig.yml", template.read_text())
    (inventory / "group_vars" / "all.yml").unlink(missing_ok=True)


# Every systemd host holds inotify instances of the machine's root user; with the kernel's
# default of 128, a machine that runs a few rigs (about 25 hosts) boots new hosts without sshd.
INOTIFY_INSTANCES = 1024
INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")


def ensure_inotify(say: Say, path: Path = INOTIFY_SYSCTL) -> None:
    """Raise fs.inotify.max_user_instances to INOTIFY_INSTANCES when it is lower (a warning
    where it cannot be written, for example in a container that cannot change it)."""
    try:
        current = int(path.read_text())
    except (OSError, ValueError):
        return
    if current >= INOTIFY_INSTANCES:
        return
    try:
        path.write_text(f"{INOTIFY_INSTANCES}\n")
    except OSError as exc:
        say(
            f"rig: fs.inotify.max_user_instances is {current} and cannot be raised ({exc.strerror}):"
            " hosts may boot without sshd when many run; raise it to "
            f"{INOTIFY_INSTANCES} (sysctl -w fs.inotify.max_user_instances={INOTIFY_INSTANCES})"
        )
        return
    say(
        f"rig: raised fs.inotify.max_user_instances from {current} to {INOTIFY_INSTANCES}"
        " (each systemd host needs some)"
    )


def up(
    name: str, hosts: int, engine: str, subnet_text: str | None, say: Say, suite: str | None = None
) -> RigState:
    check_name(name)
    if suite is not None and suite not in HOST_SUITES:
        raise SovstackError(f"--suite {suite}: the rig's hosts run {' or '.join(HOST_SUITES)}")
    if not 1 <= hosts <= MAX_HOSTS:
        raise SovstackError(f"--hosts must be between 1 and {MAX_HOSTS}, got {hosts}")
    engines = parse_engines(engine, hosts)
    require_root()
    directory = rig_dir(name)
    state_file = directory / "rig.json"
    previous = RigState.load(state_file) if state_file.is_file() else None
    if previous is not None:
        if subnet_text and subnet_text != previous.subnet:
            raise SovstackError(
                f"rig {name!r} runs on {previous.subnet}, not {subnet_text}: `sovstack rig down` first"
            )
        if hosts < len(previous.hosts):
            raise SovstackError(
                f"rig {name!r} has {len(previous.hosts)} hosts; it does not shrink to {hosts}: "
                "`sovstack rig down` first"
            )
        before = [h.engine for h in previous.hosts]
        if engines[: len(before)] != before:
            raise SovstackError(
                f"rig {name!r} was made for engines {','.join(before)}, "
                f"not {','.join(engines[: len(before)])}: `sovstack rig down` first"
            )
        if suite is not None and suite != previous.suite:
            raise SovstackError(
                f"rig {name!r} runs Debian {previous.suite}, not {suite}: `sovstack rig down` first"
            )
    suite = suite or (previous.suite if previous else DEFAULT_HOST_SUITE)
    subnet = parse_subnet(subnet_text or (previous.subnet if previous else DEFAULT_SUBNET), hosts)
    ensure_tools(say)
    ensure_inotify(say)
    # The machine's routes first, so that a clash is refused before an engine is installed or
    # started; then, with the engine up, its networks too.
    check_clash(subnet, name, host_routes(), {})
    client = connect_engine(say, start=True)
    assert client is not None
    check_clash(subnet, name, host_routes(), docker_networks(client))
    image = ensure_image(client, suite, say)
    ensure_network(client, name, subnet, say)
    key = ensure_key(directory, say)
    rig_hosts = [
        RigHost(
            f"node{i}",
            str(subnet.network_address + FIRST_HOST_OFFSET - 1 + i),
            f"sovstack-{name}-node{i}",
            engines[i - 1],
        )
        for i in range(1, hosts + 1)
    ]
    for host in rig_hosts:
        ensure_host(client, name, host, image, key, say)
    wait_for_ssh(rig_hosts)
    say(f"ssh: {len(rig_hosts)} hosts answer")
    state = RigState(name=name, subnet=str(subnet), engine=engine, image=image, hosts=rig_hosts, suite=suite)
    inventory = inventory_path(name)
    write_if_changed(inventory / "topology.yml", yaml.safe_dump(topology_data(state, key), sort_keys=False))
    write_group_vars(inventory)
    write_if_changed(state_file, json.dumps(asdict(state), indent=2) + "\n")
    return state


def down(name: str, keep_image: bool, say: Say) -> None:
    check_name(name)
    require_root()
    # A dockerd that is installed but stopped (after a reboot) still holds the rig's
    # containers in its data: it is started to remove them. None is installed for this.
    client = connect_engine(say, start=shutil.which("dockerd") is not None)
    if client is not None:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={name}"}):
            container.remove(force=True, v=True)
            say(f"removed container {container.name}")
        for volume in client.volumes.list(filters={"label": f"{LABEL}={name}"}):
            volume.remove(force=True)
            say(f"removed volume {volume.name}")
        for network in client.networks.list(filters={"label": f"{LABEL}={name}"}):
            network.remove()
            say(f"removed network {network.name}")
        if not keep_image:
            in_use = {c.image.id for c in client.containers.list(all=True, filters={"label": LABEL})}
            for image in client.images.list(filters={"label": IMAGE_LABEL}):
                if image.id not in in_use:
                    client.images.remove(image.id, force=True)
                    say(f"removed image {', '.join(image.tags) or image.short_id}")
    directory = rig_dir(name)
    if directory.exists():
        shutil.rmtree(directory)
        say(f"removed {directory}")


@dataclass
class HostStatus:
    name: str
    address: str
    state: str
    ssh: bool


def status(name: str) -> tuple[RigState | None, list[HostStatus]]:
    check_name(name)
    state_file = rig_dir(name) / "rig.json"
    if not state_file.is_file():
        return None, []
    state = RigState.load(state_file)
    client = connect_engine(lambda _: None, start=False)
    result = []
    for host in state.hosts:
        container_state = "engine down"
        if client is not None:
            try:
                container_state = client.containers.get(host.container).status
            except docker.errors.NotFound:
                container_state = "missing"
        result.append(HostStatus(host.name, host.address, container_state, ssh_answers(host.address)))
    return state, result


def ssh_answers(address: str) -> bool:
    """Whether an sshd greets on the address."""
    try:
        with socket.create_connection((address, 22), timeout=2) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False
