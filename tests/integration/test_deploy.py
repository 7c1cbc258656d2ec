"""The control plane deployed on the 3 hosts of the "docker" rig, two of them docker hosts and
one a podman host (so every service runs on both engines in one deploy), for real: HAProxy and keepalived
holding the VIP, Galera, RabbitMQ, memcached and keystone, used from this machine with
openstacksdk; a second deploy changes nothing, a reconfigure restarts only keystone, one
host's loss moves the VIP, and a fully stopped database comes back with its rows."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import openstack
import pytest
import yaml

from tests.conftest import sovstack

from ansible_collections.sovstack.cloud.plugins.module_utils import catalog  # isort: skip
from tests.integration.conftest import Rig, recap, run_dir

# Uses the deploy's rig: one group with the other files that do, in order on one worker (conftest.py).
pytestmark = pytest.mark.xdist_group("tdock")

CATALOG = catalog.load()
CONTAINERS = [name for entry in CATALOG.values() for name in entry["containers"]]
ENGINE = "ENGINE"  # in on(): the host's container engine


def on(rig: Rig, host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command inside a rig host (its container on this machine's dockerd); ENGINE as the
    first word is the host's own container engine (docker or podman)."""
    if argv[:1] == (ENGINE,):
        argv = (rig.engines[host], *argv[1:])
    proc = subprocess.run(
        ["docker", "exec", f"sovstack-{rig.name}-{host}", *argv], capture_output=True, text=True, check=False
    )
    if check:
        assert proc.returncode == 0, f"{host}: {argv}: {proc.stdout}{proc.stderr}"
    return proc


def started_at(rig: Rig) -> dict[str, str]:
    """StartedAt of every service container on every host."""
    found = {}
    for host in rig.hosts:
        for name in CONTAINERS:
            proc = on(rig, host, ENGINE, "inspect", "--format", "{{.State.StartedAt}}", name)
            found[f"{host}/{name}"] = proc.stdout.strip()
    return found


def sql(rig: Rig, host: str, statement: str) -> str:
    return on(rig, host, ENGINE, "exec", "mariadb", "mariadb", "-N", "-B", "-e", statement).stdout.strip()


def connect(inventory: Path) -> openstack.connection.Connection:
    """The admin, from the clouds.yaml the deploy wrote (it trusts the internal CA)."""
    config = openstack.config.loader.OpenStackConfig(config_files=[str(inventory / "clouds.yaml")])
    return openstack.connection.Connection(config=config.get_one("sovstack"))


def vip_holder(rig: Rig, vip: str) -> list[str]:
    return [h for h in rig.hosts if f" {vip}/" in on(rig, h, "ip", "-4", "-o", "addr", "show").stdout]


@pytest.fixture(scope="module")
def deployed(images_pushed, sovstack_home: Path):
    rig, _ = images_pushed
    proc = sovstack("deploy", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    secrets = yaml.safe_load((rig.inventory / "group_vars" / "all" / "secrets.yml").read_text())
    topology = yaml.safe_load((rig.inventory / "topology.yml").read_text())
    vip = topology["networks"]["management"]["vip"]
    return rig, proc, secrets, vip


def test_the_deploy_rig_runs_both_engines(deployed):
    rig = deployed[0]
    assert sorted(set(rig.engines.values())) == ["docker", "podman"], rig.engines
    for host, engine in rig.engines.items():
        names = on(rig, host, engine, "ps", "--format", "{{.Names}}").stdout.split()
        assert sorted(set(CONTAINERS) & set(names)) == sorted(CONTAINERS), (host, engine, names)


def test_token_project_user_and_catalog_through_the_vip(deployed):
    rig, _, _, vip = deployed
    cloud = connect(rig.inventory)
    assert cloud.config.config["auth"]["auth_url"] == f"https://{vip}:5000/v3"
    assert cloud.config.config["cacert"] == str(rig.inventory / "sovstack-ca.crt")
    assert cloud.auth_token
    project = cloud.identity.create_project(name="demo", domain_id="default")
    user = cloud.identity.create_user(name="demo", password="demo-password", default_project_id=project.id)
    assert cloud.identity.find_user("demo").id == user.id
    services = {s.type for s in cloud.identity.services()}
    assert "identity" in services
    endpoints = {(e.interface, e.url) for e in cloud.identity.endpoints()}
    assert ("public", f"https://{vip}:5000/v3") in endpoints


def test_the_vip_speaks_tls_with_a_certificate_of_the_internal_ca(deployed):
    rig, _, secrets, vip = deployed
    ca = rig.inventory / "sovstack-ca.crt"
    assert ca.read_text() in secrets["sovstack_ca"]
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


def test_galera_has_three_synced_members(deployed):
    rig = deployed[0]
    for host in rig.hosts:
        status = dict(
            line.split("\t") for line in sql(rig, host, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines()
        )
        assert status["wsrep_cluster_size"] == "3", host
        assert status["wsrep_local_state_comment"] == "Synced", host
        assert status["wsrep_cluster_status"] == "Primary", host


def test_rabbitmq_runs_three_nodes_in_one_cluster(deployed):
    rig = deployed[0]
    proc = on(
        rig,
        "node2",
        ENGINE,
        "exec",
        "rabbitmq",
        "rabbitmqctl",
        "-q",
        "cluster_status",
        "--formatter",
        "json",
    )
    status = json.loads(proc.stdout)
    assert sorted(status["running_nodes"]) == [f"rabbit@{h}" for h in sorted(rig.hosts)]


def test_rabbitmq_makes_durable_queues_quorum_queues(deployed):
    """A client (kombu, in the keystone image) as the openstack user: a durable queue declared
    without a type is a quorum queue; a transient one stays classic, as it must."""
    rig, _, secrets, _ = deployed
    script = (
        "import kombu, os\n"
        "c = kombu.Connection(os.environ['URL'])\n"
        "kombu.Queue('sovstack_test_durable', channel=c.channel(), durable=True).declare()\n"
        "q = kombu.Queue('sovstack_test_transient', channel=c.channel(), durable=False, auto_delete=True)\n"
        "q.declare()\n"
    )
    url = f"amqp://openstack:{secrets['rabbitmq_password']}@{rig.hosts['node2']}:5672//"
    on(rig, "node1", ENGINE, "exec", "-e", f"URL={url}", "keystone", "python3", "-c", script)
    queues = on(rig, "node3", ENGINE, "exec", "rabbitmq", "rabbitmqctl", "-q", "list_queues", "name", "type")
    types = dict(line.split("\t") for line in queues.stdout.splitlines()[1:])
    assert types["sovstack_test_durable"] == "quorum"
    on(
        rig,
        "node3",
        ENGINE,
        "exec",
        "rabbitmq",
        "rabbitmqctl",
        "-q",
        "delete_queue",
        "sovstack_test_durable",
    )


def test_config_files_with_secrets_are_not_world_readable(deployed):
    rig = deployed[0]
    for path, mode in [
        ("/etc/sovstack/keystone/keystone.conf", "640 0 42401"),
        ("/etc/sovstack/keepalived/keepalived.conf", "600 0 0"),
        ("/etc/sovstack/haproxy/vip.pem", "600 0 42413"),
        ("/var/lib/sovstack/rabbitmq/.erlang.cookie", "400 42411 42411"),
    ]:
        assert on(rig, "node1", "stat", "-c", "%a %u %g", path).stdout.split() == mode.split(), path


def test_second_deploy_changes_nothing_and_restarts_nothing(deployed):
    rig = deployed[0]
    before = started_at(rig)
    proc = sovstack("deploy", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(counts["changed"] == 0 for counts in recap(proc.stdout).values()), proc.stdout
    assert started_at(rig) == before


def test_reconfigure_restarts_only_keystone(deployed, tmp_path):
    rig = deployed[0]
    before = started_at(rig)
    settings = rig.inventory / "group_vars" / "all" / "test-reconfigure.yml"
    settings.write_text("keystone_token_expiration: 7200\n")
    try:
        proc = sovstack("reconfigure", "-i", str(rig.inventory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        after = started_at(rig)
        changed = sorted(key for key in before if before[key] != after[key])
        assert changed == [f"{h}/keystone" for h in sorted(rig.hosts)]
        conf = on(rig, "node2", "cat", "/etc/sovstack/keystone/keystone.conf").stdout
        assert "expiration = 7200" in conf
    finally:
        settings.unlink()
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "keystone")
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_secret_in_the_run_log_or_the_events(deployed):
    _, proc, secrets, _ = deployed
    directory = run_dir(proc.stdout)
    texts = {"stdout": proc.stdout + proc.stderr}
    for path in [
        directory / "artifacts" / "run" / "stdout",
        *(directory / "artifacts" / "run" / "job_events").glob("*.json"),
    ]:
        texts[str(path)] = path.read_text(errors="replace")
    # the CA's certificate is public (clients get it); its key is the secret
    values = {
        n: v[v.index("-----BEGIN PRIVATE KEY") :] if "PRIVATE KEY" in v else v for n, v in secrets.items()
    }
    hits = [(name, where) for name, value in values.items() for where, text in texts.items() if value in text]
    assert len(texts) > 100
    assert hits == []


def test_the_vip_leaves_a_host_whose_haproxy_stops(deployed):
    """keepalived runs its HAProxy check for real: HAProxy stopped on the VIP's host moves the
    VIP to another host within seconds, and tokens issue through it there."""
    rig, _, _, vip = deployed
    holder = vip_holder(rig, vip)
    assert len(holder) == 1, holder
    lost = holder[0]
    on(rig, lost, ENGINE, "stop", "haproxy")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and vip_holder(rig, vip) in ([], [lost]):
            time.sleep(1)
        assert vip_holder(rig, vip) not in ([], [lost])
        assert connect(rig.inventory).auth_token
    finally:
        on(rig, lost, ENGINE, "start", "haproxy")
    deadline = time.monotonic() + 60
    while (
        on(rig, lost, ENGINE, "inspect", "--format", "{{.State.Health.Status}}", "haproxy").stdout.strip()
        != "healthy"
    ):
        assert time.monotonic() < deadline, f"{lost}: haproxy is not healthy again"
        time.sleep(1)


def test_losing_a_control_host_moves_the_vip_and_tokens_still_issue(deployed):
    rig, _, _, vip = deployed
    holder = vip_holder(rig, vip)
    assert len(holder) == 1, holder
    lost = holder[0]
    on(rig, lost, ENGINE, "kill", *CONTAINERS)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and vip_holder(rig, vip) in ([], [lost]):
            time.sleep(1)
        assert vip_holder(rig, vip) not in ([], [lost])
        deadline = time.monotonic() + 90
        while True:  # HAProxy's checks take the lost backends out within seconds
            try:
                assert connect(rig.inventory).auth_token
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
    finally:
        proc = sovstack("deploy", "-i", str(rig.inventory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    status = dict(
        line.split("\t") for line in sql(rig, lost, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines()
    )
    assert status["wsrep_cluster_size"] == "3"
    assert status["wsrep_local_state_comment"] == "Synced"
    proc = on(
        rig, lost, ENGINE, "exec", "rabbitmq", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json"
    )
    assert len(json.loads(proc.stdout)["running_nodes"]) == 3


def test_recover_db_brings_a_stopped_cluster_back_with_every_row(deployed):
    rig = deployed[0]
    sql(rig, "node1", "CREATE DATABASE IF NOT EXISTS canary")
    sql(rig, "node1", "CREATE TABLE IF NOT EXISTS canary.rows (id INT PRIMARY KEY)")
    sql(rig, "node2", "INSERT INTO canary.rows VALUES (1), (2), (3)")
    sql(rig, "node3", "INSERT INTO canary.rows VALUES (4)")
    for host in ["node3", "node1", "node2"]:  # node2 stops last: the most advanced
        on(rig, host, ENGINE, "stop", "--time", "60", "mariadb")

    proc = sovstack("recover-db", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in rig.hosts:
        assert sql(rig, host, "SELECT COUNT(*) FROM canary.rows") == "4", host
        status = dict(
            line.split("\t") for line in sql(rig, host, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines()
        )
        assert status["wsrep_cluster_size"] == "3", host
    assert connect(rig.inventory).auth_token


def test_recover_db_refuses_while_a_member_runs(deployed):
    rig = deployed[0]
    proc = sovstack("recover-db", "-i", str(rig.inventory))
    assert proc.returncode != 0
    assert "the cluster is up: node1, node2, node3 in its primary component" in proc.stdout


def test_rotate_keys_gives_every_host_the_same_new_keys_and_old_tokens_stay_valid(deployed):
    rig = deployed[0]
    cloud = connect(rig.inventory)
    token = cloud.auth_token

    def keys(host: str) -> dict[str, str]:
        out = on(rig, host, "sh", "-c", "cd /var/lib/sovstack/keystone/fernet-keys && sha256sum *").stdout
        return {line.split()[1]: line.split()[0] for line in out.splitlines()}

    before = keys("node1")
    proc = sovstack("rotate-keys", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {host: keys(host) for host in sorted(rig.hosts)}
    assert after["node1"] != before and len(after["node1"]) == len(before) + 1
    assert after["node2"] == after["node1"] == after["node3"]
    assert cloud.identity.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 200


def test_an_override_for_one_host_restarts_only_its_keystone(deployed):
    rig = deployed[0]
    overrides = rig.inventory / "overrides"
    (overrides / "keystone" / "node2").mkdir(parents=True)
    (overrides / "keystone" / "node2" / "keystone.conf").write_text("[token]\nexpiration = 120\n")
    try:
        before = started_at(rig)
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "keystone")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        after = started_at(rig)
        assert sorted(key for key in before if before[key] != after[key]) == ["node2/keystone"]
        for host, expected in (("node1", "3600"), ("node2", "120")):
            conf = on(rig, host, "cat", "/etc/sovstack/keystone/keystone.conf").stdout
            assert f"expiration = {expected}\n" in conf, host
        (overrides / "keystone" / "keystone.cnf").write_text("[token]\n")
        proc = sovstack("reconfigure", "-i", str(rig.inventory))
        assert proc.returncode == 1
        assert f"{overrides}/keystone/keystone.cnf: keystone has no file 'keystone.cnf'" in proc.stderr
    finally:
        shutil.rmtree(overrides)
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "keystone")
        assert proc.returncode == 0, proc.stdout + proc.stderr


def wsrep(rig: Rig, host: str) -> dict[str, str]:
    return dict(line.split("\t") for line in sql(rig, host, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines())


def test_a_broken_override_stops_the_roll_at_the_first_host_it_restarts(deployed):
    """mariadb rolls one host at a time: an override MariaDB refuses fails the first member it
    restarts (the others after the first member come first, node1 last), and the run stops
    there, naming host and container; the other members keep running, the cluster keeps its
    primary component, and removing the override brings the member back."""
    rig = deployed[0]
    before = started_at(rig)
    override = rig.inventory / "overrides" / "mariadb" / "my.cnf"
    override.parent.mkdir(parents=True)
    override.write_text("[mysqld]\nno_such_option_at_all = 1\n")
    try:
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "mariadb")
        assert proc.returncode != 0
        assert "node2: Run the containers of mariadb: mariadb: mariadb" in proc.stdout, proc.stdout
        assert "unknown variable 'no_such_option_at_all=1'" in proc.stdout  # the log's last lines
        after = started_at(rig)
        for key in ("node1/mariadb", "node3/mariadb"):
            assert after[key] == before[key], key
        status = wsrep(rig, "node1")
        assert status["wsrep_cluster_status"] == "Primary"
        assert status["wsrep_cluster_size"] == "2"
        # Run again with the override still there: the roll stops at the member that loops
        # (nothing changed for it), it does not go on to break the next one.
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "mariadb")
        assert proc.returncode != 0
        assert "node2: Run the containers of mariadb" in proc.stdout, proc.stdout
        assert started_at(rig)["node3/mariadb"] == before["node3/mariadb"]
        assert wsrep(rig, "node1")["wsrep_cluster_status"] == "Primary"
    finally:
        shutil.rmtree(override.parent.parent)
    proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "mariadb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in rig.hosts:
        status = wsrep(rig, host)
        assert (status["wsrep_cluster_size"], status["wsrep_local_state_comment"]) == ("3", "Synced"), host


def test_recover_db_stops_members_outside_a_primary_component_and_recovers(deployed):
    """Two members lost at once: the third is non-primary, the two come back and cannot join.
    recover-db refuses without --stop-members, and with it stops them and brings the cluster
    back with every row."""
    rig = deployed[0]
    sql(rig, "node1", "CREATE DATABASE IF NOT EXISTS canary2")
    sql(rig, "node1", "CREATE TABLE IF NOT EXISTS canary2.rows (id INT PRIMARY KEY)")
    sql(rig, "node1", "INSERT INTO canary2.rows VALUES (1), (2)")
    killers = [
        subprocess.Popen(
            ["docker", "exec", f"sovstack-{rig.name}-{host}", rig.engines[host], "kill", "mariadb"]
        )
        for host in ("node2", "node3")
    ]
    for killer in killers:
        assert killer.wait(timeout=60) == 0
    deadline = time.monotonic() + 60
    while wsrep(rig, "node1")["wsrep_cluster_status"] == "Primary" and time.monotonic() < deadline:
        time.sleep(1)
    assert wsrep(rig, "node1")["wsrep_cluster_status"] != "Primary"

    proc = sovstack("recover-db", "-i", str(rig.inventory))
    assert proc.returncode != 0
    assert "but in no primary component" in proc.stdout, proc.stdout
    assert "sovstack recover-db --stop-members" in proc.stdout
    proc = sovstack("recover-db", "-i", str(rig.inventory), "--stop-members")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in rig.hosts:
        assert sql(rig, host, "SELECT COUNT(*) FROM canary2.rows") == "2", host
        status = wsrep(rig, host)
        assert (status["wsrep_cluster_size"], status["wsrep_cluster_status"]) == ("3", "Primary"), host
    assert connect(rig.inventory).auth_token
