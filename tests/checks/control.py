"""Checks of the control plane (playbook sovstack.cloud.deploy: HAProxy/keepalived holding
the VIP, MariaDB Galera, RabbitMQ, memcached, keystone). Commands inside a service container
run through the host's own engine (docker or podman, the inventory's container_engine)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

import openstack
import testinfra

from ansible_collections.sovstack.cloud.plugins.module_utils import catalog  # isort: skip

# Every container of the catalog's services (roles/NAME/meta/service.yml) by its name, but for
# the entries that run as instances named NAME_ID (one OSD per device: ceph_osd_0, ...).
INSTANCES = ("ceph_osd",)
CONTAINERS = [
    name for entry in catalog.load().values() for name in entry["containers"] if name not in INSTANCES
]


def service_containers(host: testinfra.host.Host, engine: str) -> list[str]:
    """CONTAINERS and the instances the host runs (ceph_osd_ID: its OSDs)."""
    names = host.check_output(f"{engine} ps -a --format '{{{{.Names}}}}'").split()
    return CONTAINERS + sorted(
        name
        for name in names
        if any(name.startswith(f"{base}_") and name[len(base) + 1 :].isdigit() for base in INSTANCES)
    )


# Files with secrets on a control host: mode, owner and group by numeric id.
SECRET_FILES = {
    "/etc/sovstack/keystone/keystone.conf": "640 0 42401",
    "/etc/sovstack/keepalived/keepalived.conf": "600 0 0",
    "/etc/sovstack/haproxy/vip.pem": "600 0 42413",
    "/var/lib/sovstack/rabbitmq/.erlang.cookie": "400 42411 42411",
    "/etc/sovstack/ovn_nb_db/ovn.pem": "600 0 0",
    "/etc/sovstack/ovn_controller/ovn.pem": "600 0 0",
    "/etc/sovstack/ceph_mon/ceph.client.admin.keyring": "640 0 64045",
    "/etc/sovstack/ceph_mgr/ceph.mgr.keyring": "640 0 64045",
}


def in_container(
    host: testinfra.host.Host, engine: str, container: str, *argv: str, env: dict[str, str] | None = None
) -> str:
    """The output of a command in one of the host's service containers; fails on non-zero."""
    options = [f"--env={key}={value}" for key, value in (env or {}).items()]
    words = [*options, container, *argv]
    proc = host.run(f"{engine} exec " + " ".join(["%s"] * len(words)), *words)
    assert proc.rc == 0, (
        f"{host.backend.hostname}: {engine} exec {container} {argv}: {proc.stdout}{proc.stderr}"
    )
    return proc.stdout


def sql(host: testinfra.host.Host, engine: str, statement: str) -> str:
    """One SQL statement in the host's MariaDB, tab-separated rows without a header."""
    return in_container(host, engine, "mariadb", "mariadb", "-N", "-B", "-e", statement).strip()


def containers_running(host: testinfra.host.Host, engine: str, names: list[str] | None = None) -> None:
    """Every service container runs, and a container with a health check is healthy."""
    for name in names or service_containers(host, engine):
        out = host.check_output(f"{engine} inspect --format '{{{{json .State}}}}' %s", name)
        state = json.loads(out)
        assert state["Status"] == "running", f"{name}: {state['Status']}"
        health = state.get("Health") or state.get("Healthcheck")
        if health:
            assert health["Status"] == "healthy", f"{name}: {health['Status']}"


def started_at(host: testinfra.host.Host, engine: str, names: list[str] | None = None) -> dict[str, str]:
    """When each service container last started (equal before and after: not restarted)."""
    return {
        name: host.check_output(f"{engine} inspect --format '{{{{.State.StartedAt}}}}' %s", name)
        for name in names or service_containers(host, engine)
    }


def wsrep_status(host: testinfra.host.Host, engine: str) -> dict[str, str]:
    rows = sql(host, engine, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines()
    return dict(line.split("\t", 1) for line in rows)


def galera_synced(host: testinfra.host.Host, engine: str, size: int) -> None:
    """The host's MariaDB is a synced member of a primary cluster of `size` members."""
    status = wsrep_status(host, engine)
    assert status["wsrep_cluster_size"] == str(size)
    assert status["wsrep_local_state_comment"] == "Synced"
    assert status["wsrep_cluster_status"] == "Primary"


def rabbitmq_cluster(host: testinfra.host.Host, engine: str, nodes: list[str]) -> None:
    """The host's RabbitMQ runs in one cluster with exactly these hosts (by name)."""
    out = in_container(host, engine, "rabbitmq", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json")
    assert sorted(json.loads(out)["running_nodes"]) == [f"rabbit@{n}" for n in sorted(nodes)]


def durable_queues_are_quorum_queues(
    client: testinfra.host.Host, client_engine: str, server: testinfra.host.Host, server_engine: str, url: str
) -> None:
    """A client (kombu, in the keystone image on `client`) connected to `url` as the openstack
    user: a durable queue declared without a type is a quorum queue (seen on `server`); a
    transient one stays classic, as it must. The test queue is deleted again. Each host with
    its own engine."""
    script = (
        "import kombu, os\n"
        "c = kombu.Connection(os.environ['URL'])\n"
        "kombu.Queue('sovstack_test_durable', channel=c.channel(), durable=True).declare()\n"
        "q = kombu.Queue('sovstack_test_transient', channel=c.channel(), durable=False, auto_delete=True)\n"
        "q.declare()\n"
    )
    in_container(client, client_engine, "keystone", "python3", "-c", script, env={"URL": url})
    out = in_container(server, server_engine, "rabbitmq", "rabbitmqctl", "-q", "list_queues", "name", "type")
    types = dict(line.split("\t") for line in out.splitlines()[1:])
    try:
        assert types["sovstack_test_durable"] == "quorum"
    finally:
        in_container(
            server, server_engine, "rabbitmq", "rabbitmqctl", "-q", "delete_queue", "sovstack_test_durable"
        )


def secret_files_not_world_readable(host: testinfra.host.Host) -> None:
    """Each file with a secret has its mode, owner and group (SECRET_FILES)."""
    for path, expected in SECRET_FILES.items():
        assert host.check_output("stat -c '%%a %%u %%g' %s", path).split() == expected.split(), path


def vip_holders(hosts: dict[str, testinfra.host.Host], vip: str) -> list[str]:
    """The hosts (by name) that hold the VIP now."""
    return [name for name, h in hosts.items() if f" {vip}/" in h.check_output("ip -4 -o addr show")]


def vip_held_by_one(hosts: dict[str, testinfra.host.Host], vip: str) -> None:
    holders = vip_holders(hosts, vip)
    assert len(holders) == 1, f"VIP {vip} held by {holders or 'no host'}"


def connect(inventory_dir: Path) -> openstack.connection.Connection:
    """The admin, from the clouds.yaml the deploy wrote (it trusts the internal CA)."""
    config = openstack.config.loader.OpenStackConfig(config_files=[str(inventory_dir / "clouds.yaml")])
    return openstack.connection.Connection(config=config.get_one("sovstack"))


def keystone_through_the_vip(inventory_dir: Path, vip: str) -> None:
    """From this machine, through the VIP with TLS: the admin gets a token, makes a project
    and a user in it (deleted again), and the catalog names keystone's public endpoint."""
    cloud = connect(inventory_dir)
    assert cloud.config.config["auth"]["auth_url"] == f"https://{vip}:5000/v3"
    assert cloud.config.config["cacert"] == str(inventory_dir / "sovstack-ca.crt")
    assert cloud.auth_token
    project = cloud.identity.create_project(name="sovstack-check", domain_id="default")
    try:
        user = cloud.identity.create_user(
            name="sovstack-check", password="check-password", default_project_id=project.id
        )
        try:
            assert cloud.identity.find_user("sovstack-check").id == user.id
        finally:
            cloud.identity.delete_user(user)
    finally:
        cloud.identity.delete_project(project)
    assert "identity" in {s.type for s in cloud.identity.services()}
    endpoints = {(e.interface, e.url) for e in cloud.identity.endpoints()}
    assert ("public", f"https://{vip}:5000/v3") in endpoints


def vip_speaks_tls(inventory_dir: Path, vip: str, ca_secret: str) -> None:
    """The VIP answers with a certificate of the internal CA (its certificate beside the
    inventory, the public part of the `sovstack_ca` secret) for the VIP's address; plain
    HTTP gets no answer of keystone."""
    ca = inventory_dir / "sovstack-ca.crt"
    assert ca.read_text() in ca_secret
    assert "PRIVATE KEY" not in ca.read_text()
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((vip, 5000), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=vip) as tls,
    ):
        cert = tls.getpeercert()
    assert ("IP Address", vip) in cert["subjectAltName"]
    plain = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{vip}:5000/v3"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert plain.stdout != "200"
