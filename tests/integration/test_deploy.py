"""The control plane deployed on the 3 hosts of the "docker" rig, two of them docker hosts and
one a podman host (so every service runs on both engines in one deploy), for real: HAProxy and keepalived
holding the VIP, Galera, RabbitMQ, memcached and keystone, used from this machine with
openstacksdk; a second deploy changes nothing, a reconfigure restarts only keystone, one
host's loss moves the VIP, and a fully stopped database comes back with its rows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import testinfra
import yaml

from sovstack.secrets import load_spec
from tests.checks import control as checks
from tests.conftest import sovstack
from tests.integration.conftest import Rig, changed_events, recap, run_dir

CONTAINERS = checks.CONTAINERS
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


def host(rig: Rig, name: str) -> testinfra.host.Host:
    """A rig host for the shared checks (tests/checks), through this machine's dockerd."""
    return testinfra.get_host(f"docker://sovstack-{rig.name}-{name}")


def started_at(rig: Rig) -> dict[str, str]:
    """StartedAt of every service container on every host, by HOST/CONTAINER."""
    return {
        f"{name}/{container}": at
        for name, engine in rig.engines.items()
        for container, at in checks.started_at(host(rig, name), engine).items()
    }


def sql(rig: Rig, name: str, statement: str) -> str:
    return checks.sql(host(rig, name), rig.engines[name], statement)


def wsrep(rig: Rig, name: str) -> dict[str, str]:
    return checks.wsrep_status(host(rig, name), rig.engines[name])


def vip_holder(rig: Rig, vip: str) -> list[str]:
    return checks.vip_holders({name: host(rig, name) for name in rig.hosts}, vip)


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
    for name, engine in rig.engines.items():
        checks.containers_running(host(rig, name), engine)


def test_token_project_user_and_catalog_through_the_vip(deployed):
    rig, _, _, vip = deployed
    checks.keystone_through_the_vip(rig.inventory, vip)


def test_the_vip_speaks_tls_with_a_certificate_of_the_internal_ca(deployed):
    rig, _, secrets, vip = deployed
    checks.vip_speaks_tls(rig.inventory, vip, secrets["sovstack_ca"])


def test_galera_has_three_synced_members(deployed):
    rig = deployed[0]
    for name, engine in rig.engines.items():
        checks.galera_synced(host(rig, name), engine, 3)


def test_rabbitmq_runs_three_nodes_in_one_cluster(deployed):
    rig = deployed[0]
    for name, engine in rig.engines.items():
        checks.rabbitmq_cluster(host(rig, name), engine, list(rig.hosts))


def test_rabbitmq_makes_durable_queues_quorum_queues(deployed):
    """A client on a docker host, the queue seen on the podman host."""
    rig, _, secrets, _ = deployed
    url = f"amqp://openstack:{secrets['rabbitmq_password']}@{rig.hosts['node2']}:5672//"
    checks.durable_queues_are_quorum_queues(
        host(rig, "node1"), rig.engines["node1"], host(rig, "node3"), rig.engines["node3"], url
    )


def test_config_files_with_secrets_are_not_world_readable(deployed):
    rig = deployed[0]
    for name in rig.hosts:
        checks.secret_files_not_world_readable(host(rig, name))


def test_second_deploy_changes_nothing_and_restarts_nothing(deployed):
    rig = deployed[0]
    before = started_at(rig)
    proc = sovstack("deploy", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    changed = [
        f"{event['event_data']['host']}: {event['event_data']['task']}"
        for event in changed_events(run_dir(proc.stdout))
    ]
    assert all(counts["changed"] == 0 for counts in recap(proc.stdout).values()), (changed, proc.stdout)
    assert started_at(rig) == before


def nbctl(rig: Rig, host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """ovn-nbctl on a host's NB member (a follower forwards a write to the leader)."""
    return on(
        rig,
        host,
        ENGINE,
        "exec",
        "ovn_nb_db",
        "ovn-nbctl",
        "--no-leader-only",
        "--timeout=30",
        *argv,
        check=check,
    )


def sbctl(rig: Rig, host: str, *argv: str) -> str:
    """ovn-sbctl on a host's SB member: its output."""
    return on(
        rig, host, ENGINE, "exec", "ovn_sb_db", "ovn-sbctl", "--no-leader-only", "--timeout=30", *argv
    ).stdout


def vsctl(rig: Rig, host: str, *argv: str) -> str:
    """ovs-vsctl on a host's switch database: its output."""
    return on(rig, host, ENGINE, "exec", "openvswitch_db", "ovs-vsctl", "--timeout=30", *argv).stdout


def raft_servers(rig: Rig, host: str, kind: str) -> tuple[str, int]:
    """(Status, how many servers) of a host's member of the NB or SB raft cluster."""
    name = {"nb": "OVN_Northbound", "sb": "OVN_Southbound"}[kind]
    ctl = f"/run/ovn/ovn{kind}_db.ctl"
    out = on(
        rig, host, ENGINE, "exec", f"ovn_{kind}_db", "ovn-appctl", "-t", ctl, "cluster/status", name
    ).stdout
    status = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Status:"))
    return status, len(re.findall(r"\([0-9a-f]+ at (?:ssl|tcp):", out))


def test_ovn_has_a_chassis_per_host_and_both_raft_clusters_every_member_over_tls(deployed):
    rig = deployed[0]
    out = sbctl(rig, "node1", "--format=json", "--columns=name", "list", "Chassis")
    assert sorted(row[0] for row in json.loads(out)["data"]) == sorted(rig.hosts)
    for name in rig.hosts:
        for kind in ("nb", "sb"):
            assert raft_servers(rig, name, kind) == ("cluster member", 3), (name, kind)
    # the members and their clients speak TLS, on the management address
    listening = on(rig, "node2", "ss", "-Htlnp").stdout
    for port in (6641, 6642, 6643, 6644):
        assert f"{rig.hosts['node2']}:{port} " in listening, port
    remote = vsctl(rig, "node3", "get", "Open_vSwitch", ".", "external_ids:ovn-remote")
    assert remote.strip().strip('"').split(",") == [f"ssl:{a}:6642" for a in rig.hosts.values()]
    # a client without a certificate sees the internal CA's certificate (and is refused)
    hello = on(
        rig,
        "node2",
        "sh",
        "-c",
        f"timeout 10 openssl s_client -connect {rig.hosts['node1']}:6641 </dev/null 2>&1",
        check=False,
    )
    assert "sovstack internal CA" in hello.stdout, hello.stdout


def test_ovn_trace_delivers_between_ports_bound_on_two_chassis(deployed):
    """A logical switch with a port on node1's br-int and one on node3's (a podman host);
    each binds to its host's chassis, and ovn-trace delivers from one to the other."""
    rig = deployed[0]
    ports = {
        "node1": ("lp-one", "0a:00:00:00:00:01", "192.168.77.1"),
        "node3": ("lp-three", "0a:00:00:00:00:03", "192.168.77.3"),
    }
    nbctl(rig, "node1", "--may-exist", "ls-add", "ls-test")
    try:
        for name, (port, mac, ip) in ports.items():
            nbctl(rig, "node1", "--may-exist", "lsp-add", "ls-test", port)
            nbctl(rig, "node1", "lsp-set-addresses", port, f"{mac} {ip}")
            vsctl(rig, name, "--may-exist", "add-port", "br-int", port, "--", "set", "Interface", port,
                  "type=internal", f"external_ids:iface-id={port}")  # fmt: skip
        deadline = time.monotonic() + 60
        bound: dict[str, str] = {}
        while time.monotonic() < deadline and len(bound) < len(ports):
            for port, _, _ in ports.values():
                chassis = sbctl(rig, "node2", "--bare", "--columns=chassis", "find", "Port_Binding",
                                f"logical_port={port}").strip()  # fmt: skip
                if chassis:
                    bound[port] = sbctl(
                        rig, "node2", "--bare", "--columns=name", "list", "Chassis", chassis
                    ).strip()
            time.sleep(1)
        assert bound == {"lp-one": "node1", "lp-three": "node3"}
        flow = (
            'inport == "lp-one" && eth.src == 0a:00:00:00:00:01 && eth.dst == 0a:00:00:00:00:03 && '
            "ip4.src == 192.168.77.1 && ip4.dst == 192.168.77.3 && ip.ttl == 64"
        )
        trace = on(rig, "node2", ENGINE, "exec", "ovn_sb_db", "ovn-trace", "--no-leader-only",
                   "ls-test", flow).stdout  # fmt: skip
        assert 'output to "lp-three"' in trace, trace
    finally:
        for name, (port, _, _) in ports.items():
            vsctl(rig, name, "--if-exists", "del-port", "br-int", port)
        nbctl(rig, "node1", "--if-exists", "ls-del", "ls-test")


def test_ovn_nb_serves_writes_with_one_member_stopped_and_it_catches_up(deployed):
    rig = deployed[0]
    on(rig, "node3", ENGINE, "stop", "ovn_nb_db")
    try:
        nbctl(rig, "node2", "ls-add", "ls-during-outage")
        assert "ls-during-outage" in nbctl(rig, "node1", "ls-list").stdout
    finally:
        on(rig, "node3", ENGINE, "start", "ovn_nb_db")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            proc = nbctl(rig, "node3", "ls-list", check=False)
            if "ls-during-outage" in proc.stdout and raft_servers(rig, "node3", "nb")[0] == "cluster member":
                break
            time.sleep(2)
        assert "ls-during-outage" in nbctl(rig, "node3", "ls-list").stdout
        assert raft_servers(rig, "node3", "nb") == ("cluster member", 3)
    finally:
        nbctl(rig, "node1", "--if-exists", "ls-del", "ls-during-outage")


def test_a_provider_bridge_takes_the_interface_the_inventory_names(deployed):
    """node2 gets an interface (a veth pair: the rig's kernel has no dummy module) and the
    provider bridge on it, mapped to the provider network; a second run changes nothing."""
    rig = deployed[0]
    on(rig, "node2", "sh", "-c", "ip link add ext0 type veth peer name ext0p && ip link set ext0 up")
    args = ["deploy", "-i", str(rig.inventory), "--services", "openvswitch,ovn", "-l", "node2",
            "-e", "openvswitch_provider_interface=ext0"]  # fmt: skip
    try:
        proc = sovstack(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert vsctl(rig, "node2", "port-to-br", "ext0").strip() == "br-ex"
        assert vsctl(rig, "node2", "get", "Bridge", "br-ex", "datapath_type").strip() == "netdev"
        mappings = vsctl(rig, "node2", "get", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings")
        assert mappings.strip().strip('"') == "physnet1:br-ex"
        again = sovstack(*args)
        assert again.returncode == 0 and recap(again.stdout)["node2"]["changed"] == 0, again.stdout
    finally:
        vsctl(rig, "node2", "--if-exists", "del-br", "br-ex", "--", "remove", "Open_vSwitch", ".",
              "external_ids", "ovn-bridge-mappings")  # fmt: skip
        on(rig, "node2", "ip", "link", "del", "ext0")


def virsh(rig: Rig, host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return on(rig, host, ENGINE, "exec", "nova_libvirt", "virsh", "-c", "qemu:///system", *argv, check=check)


def test_libvirt_on_every_compute_host_offers_guests_of_the_rigs_virt_type(deployed):
    rig = deployed[0]
    for name in rig.hosts:  # every rig host is a compute host
        capabilities = virsh(rig, name, "capabilities").stdout
        assert "<domain type='qemu'" in capabilities, f"{name}: {capabilities}"
        assert "<arch>x86_64</arch>" in capabilities


def ceph_json(rig: Rig, *argv: str, host: str = "node1") -> dict:
    """A ceph command as client.admin in a host's monitor container, its JSON output."""
    return json.loads(on(rig, host, ENGINE, "exec", "ceph_mon", "ceph", *argv, "--format=json").stdout)


def as_client(
    rig: Rig, name: str, key: str, script: str, host: str = "node2"
) -> subprocess.CompletedProcess[str]:
    """A shell script in a host's mgr container as Ceph client NAME (only its key, given by
    the environment: client.admin's keyring is not in that container)."""
    keyring = f"printf '[client.%s]\\n\\tkey = %s\\n' {name} \"$KEY\" > /tmp/keyring; "
    return subprocess.run(
        ["docker", "exec", f"sovstack-{rig.name}-{host}", rig.engines[host], "exec", "-e", f"KEY={key}",
         "ceph_mgr", "sh", "-c", keyring + script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_ceph_is_healthy_with_an_osd_on_every_host_the_pools_and_the_full_quorum(deployed):
    rig = deployed[0]
    status = ceph_json(rig, "status")
    # MON_DISK_LOW is the one warning the rig allows (its monitors share this machine's disk)
    assert status["health"]["status"] == "HEALTH_OK" or set(status["health"]["checks"]) <= {"MON_DISK_LOW"}, (
        status
    )
    assert sorted(status["quorum_names"]) == sorted(rig.hosts)
    osdmap = status["osdmap"].get("osdmap", status["osdmap"])
    assert (osdmap["num_osds"], osdmap["num_up_osds"], osdmap["num_in_osds"]) == (3, 3, 3)
    pgs = status["pgmap"]
    clean = [s["count"] for s in pgs["pgs_by_state"] if s["state_name"].startswith("active+clean")]
    assert sum(clean) == pgs["num_pgs"], pgs  # scrubbing counts: active+clean+scrubbing
    tree = ceph_json(rig, "osd", "tree")
    hosts = {n["name"]: n["children"] for n in tree["nodes"] if n["type"] == "host"}
    assert sorted(hosts) == sorted(rig.hosts) and all(len(c) == 1 for c in hosts.values()), hosts
    pools = {p["pool_name"]: p for p in ceph_json(rig, "osd", "pool", "ls", "detail")}
    for name in ("images", "vms", "volumes", "backups"):
        assert (pools[name]["size"], pools[name]["min_size"]) == (3, 2), name
        assert pools[name]["pg_autoscale_mode"] == "on", name
        assert list(pools[name]["application_metadata"]) == ["rbd"], name
    # the mgr's modules load (the autoscaler among them): none failed
    assert "MGR_MODULE_DEPENDENCY" not in status["health"]["checks"]
    assert "MGR_MODULE_ERROR" not in status["health"]["checks"]


def test_a_client_key_reaches_its_own_pool_and_is_refused_on_another(deployed):
    """glance's key writes and reads an object in the images pool; the same key may not
    write to the volumes pool, nor read the cluster's keys."""
    rig, _, secrets, _ = deployed
    key = secrets["ceph_glance_key"]
    client = "rados --id glance --keyring /tmp/keyring"
    proc = as_client(
        rig,
        "glance",
        key,
        f"echo sovstack-was-here | {client} -p images put test-object -"
        f" && {client} -p images get test-object -",
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "sovstack-was-here", proc.stderr
    proc = as_client(rig, "glance", key, f"echo no | {client} -p volumes put test-object -")
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr, (proc.stdout, proc.stderr)
    proc = as_client(rig, "glance", key, "ceph --id glance --keyring /tmp/keyring auth ls")
    assert proc.returncode != 0 and "access denied" in proc.stderr.lower(), (proc.stdout, proc.stderr)
    on(rig, "node1", ENGINE, "exec", "ceph_mon", "rados", "-p", "images", "rm", "test-object")


def test_libvirt_holds_the_keys_of_nova_and_cinder_and_the_ceph_client_configuration(deployed):
    rig, _, secrets, _ = deployed
    for name in rig.hosts:
        for client in ("nova", "cinder"):
            value = virsh(rig, name, "secret-get-value", secrets[f"ceph_{client}_secret_uuid"]).stdout.strip()
            assert value == secrets[f"ceph_{client}_key"], (name, client)
        conf = on(rig, name, ENGINE, "exec", "nova_libvirt", "cat", "/etc/ceph/ceph.conf").stdout
        assert f"fsid = {secrets['ceph_fsid']}" in conf and "[client]" in conf, conf


# The smallest guest: no disk, no network; SeaBIOS finds nothing to boot and waits, running.
TINY_DOMAIN = """<domain type='qemu'>
  <name>sovstack-test-tiny</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><serial type='pty'/></devices>
</domain>
"""


def wait_healthy(rig: Rig, name: str, container: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = on(rig, name, ENGINE, "inspect", "--format", "{{.State.Health.Status}}", container).stdout
        if status.strip() == "healthy":
            return
        time.sleep(2)
    raise AssertionError(f"{name}: {container} is not healthy after {timeout} s")


# What a restart of nova_libvirt does to a running guest, measured on the rig's hosts (cgroup
# v1): docker (cgroupfs) stops only the container's processes and QEMU, in cgroups of its own,
# runs on; podman's systemd scope keeps QEMU in its name=systemd cgroup and stops it with the
# container (docs/services.md, "libvirt", says so: patching moves guests away first).
@pytest.mark.parametrize(("name", "outlives"), [("node1", True), ("node3", False)], ids=["docker", "podman"])
def test_a_tiny_guest_defines_starts_and_stops_and_a_libvirt_restart_keeps_it_on_docker(
    deployed, name, outlives
):
    rig = deployed[0]
    script = 'printf %s "$1" > /tmp/tiny.xml'
    on(rig, name, ENGINE, "exec", "nova_libvirt", "sh", "-c", script, "sh", TINY_DOMAIN)
    virsh(rig, name, "define", "/tmp/tiny.xml")
    try:
        virsh(rig, name, "start", "sovstack-test-tiny")
        assert virsh(rig, name, "domstate", "sovstack-test-tiny").stdout.strip() == "running"
        pid = on(rig, name, "cat", "/run/libvirt/qemu/sovstack-test-tiny.pid").stdout.strip()
        assert "qemu-system-x86_64" in on(rig, name, "cat", f"/proc/{pid}/cmdline").stdout
        # libvirtd put the guest in cgroups of its own (/machine/...), not the container's
        cgroup = on(rig, name, "cat", f"/proc/{pid}/cgroup").stdout
        assert "/machine/qemu-" in cgroup, cgroup
        on(rig, name, ENGINE, "restart", "nova_libvirt")
        wait_healthy(rig, name, "nova_libvirt")
        alive = on(rig, name, "kill", "-0", pid, check=False).returncode == 0
        state = virsh(rig, name, "domstate", "sovstack-test-tiny").stdout.strip()
        assert (alive, state) == ((True, "running") if outlives else (False, "shut off"))
        if not outlives:  # the new libvirtd starts it again
            virsh(rig, name, "start", "sovstack-test-tiny")
            assert virsh(rig, name, "domstate", "sovstack-test-tiny").stdout.strip() == "running"
        virsh(rig, name, "destroy", "sovstack-test-tiny")
        assert virsh(rig, name, "domstate", "sovstack-test-tiny").stdout.strip() == "shut off"
    finally:
        virsh(rig, name, "destroy", "sovstack-test-tiny", check=False)
        virsh(rig, name, "undefine", "sovstack-test-tiny", check=False)


def northd_status(rig: Rig) -> dict[str, str]:
    """Each host's ovn-northd: active, or standby."""
    found = {}
    for name in rig.hosts:
        out = on(
            rig, name, ENGINE, "exec", "ovn_northd", "ovn-appctl", "-t", "/run/ovn/ovn-northd.ctl", "status"
        ).stdout
        found[name] = out.split(":", 1)[1].strip()
    return found


def northd_args(rig: Rig, name: str) -> list[str]:
    return json.loads(on(rig, name, ENGINE, "inspect", "--format", "{{json .Args}}", "ovn_northd").stdout)


def wait_one_northd_active(rig: Rig) -> None:
    deadline = time.monotonic() + 60
    while (
        sorted(northd_status(rig).values()) != ["active", "standby", "standby"]
        and time.monotonic() < deadline
    ):
        time.sleep(2)
    assert sorted(northd_status(rig).values()) == ["active", "standby", "standby"]


def restarted(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(key for key in before if before[key] != after[key])


def test_reconfigure_restarts_only_what_changed_and_tokens_keep_issuing_through_its_roll(deployed):
    """A changed keystone setting, a changed OVN setting and a changed setting of Ceph's OSDs,
    then `sovstack reconfigure` of everything: only keystone, ovn-northd and the OSDs restart,
    keystone host by host, each drained in every HAProxy first, the OSDs host by host with
    noout, one ovn-northd is active again after, and Ceph is healthy without noout. Meanwhile a bounded client
    (about three requests a second, only to the rig's VIP, at most 15 minutes) issues tokens:
    not one request fails. It re-scopes a token (no password hash per request, which would load
    the machine more than the roll). Set back, the same two restart again, and nothing else."""
    rig, _, secrets, vip = deployed
    url = f"https://{vip}:5000/v3/auth/tokens"
    ca = str(rig.inventory / "sovstack-ca.crt")
    scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
    user = {"name": "admin", "domain": {"id": "default"}, "password": secrets["keystone_admin_password"]}
    first = requests.post(
        url,
        json={"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}},
        verify=ca,
        timeout=60,
    )
    assert first.status_code == 201, first.text
    token = first.headers["X-Subject-Token"]
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}, "scope": scope}}
    results: list[tuple[str, int | str]] = []
    done = threading.Event()

    def issue() -> None:
        deadline = time.monotonic() + 900
        with requests.Session() as session:
            while not done.is_set() and time.monotonic() < deadline:
                at = time.strftime("%H:%M:%S")
                try:
                    results.append((at, session.post(url, json=body, verify=ca, timeout=30).status_code))
                except requests.RequestException as exc:
                    results.append((at, f"{type(exc).__name__}: {exc}"))
                time.sleep(0.3)

    # what the settings concern: keystone (its token expiration), ovn-northd (its threads) and
    # the OSDs (their recovery's backfills, beside the rig's own OSD setting)
    before = started_at(rig)
    osds = [key for key in before if "/ceph_osd_" in key]
    assert len(osds) == 3, before
    concerned = sorted([f"{h}/{c}" for h in rig.hosts for c in ("keystone", "ovn_northd")] + osds)
    ceph_config = yaml.safe_load((rig.inventory / "group_vars" / "all" / "rig.yml").read_text())[
        "ceph_config"
    ]
    ceph_config["osd"]["osd_max_backfills"] = 2
    settings = rig.inventory / "group_vars" / "all" / "test-reconfigure.yml"
    settings.write_text(
        yaml.safe_dump(
            {"keystone_token_expiration": 7200, "ovn_northd_threads": 2, "ceph_config": ceph_config}
        )
    )
    client = threading.Thread(target=issue)
    client.start()
    try:
        try:
            proc = sovstack("reconfigure", "-i", str(rig.inventory))
            assert proc.returncode == 0, proc.stdout + proc.stderr
        finally:
            done.set()
            client.join()
        after = started_at(rig)
        assert restarted(before, after) == concerned
        conf = on(rig, "node2", "cat", "/etc/sovstack/keystone/keystone.conf").stdout
        assert "expiration = 7200" in conf
        assert "--n-threads=2" in northd_args(rig, "node3")
        osd = osds[-1].split("/")[1]
        assert "osd_max_backfills = 2" in on(rig, "node3", "cat", f"/etc/sovstack/{osd}/ceph.conf").stdout
        assert "noout" not in ceph_json(rig, "osd", "dump")["flags"]
        assert len(results) > 30
        assert [r for r in results if r[1] != 201] == []
        wait_one_northd_active(rig)
    finally:
        settings.unlink()
        before = started_at(rig)
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "keystone,ovn,ceph_osd")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert restarted(before, started_at(rig)) == concerned
    assert "--n-threads=1" in northd_args(rig, "node3")
    wait_one_northd_active(rig)


def test_no_secret_in_the_run_log_or_the_events(deployed):
    _, proc, secrets, _ = deployed
    directory = run_dir(proc.stdout)
    texts = {"stdout": proc.stdout + proc.stderr}
    for path in [
        directory / "artifacts" / "run" / "stdout",
        *(directory / "artifacts" / "run" / "job_events").glob("*.json"),
    ]:
        texts[str(path)] = path.read_text(errors="replace")
    # the CA's certificate is public (clients get it); its key is the secret. A uuid (Ceph's
    # fsid, a libvirt secret's name) is an identifier the file keeps, not a secret.
    identifiers = {name for name, spec in load_spec().items() if spec.kind == "uuid"}
    values = {
        n: v[v.index("-----BEGIN PRIVATE KEY") :] if "PRIVATE KEY" in v else v
        for n, v in secrets.items()
        if n not in identifiers
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
        assert checks.connect(rig.inventory).auth_token
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
                assert checks.connect(rig.inventory).auth_token
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
    finally:
        proc = sovstack("deploy", "-i", str(rig.inventory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    status = wsrep(rig, lost)
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
        assert wsrep(rig, host)["wsrep_cluster_size"] == "3", host
    assert checks.connect(rig.inventory).auth_token


def test_recover_db_refuses_while_a_member_runs(deployed):
    rig = deployed[0]
    proc = sovstack("recover-db", "-i", str(rig.inventory))
    assert proc.returncode != 0
    assert "the cluster is up: node1, node2, node3 in its primary component" in proc.stdout


def test_rotate_keys_gives_every_host_the_same_new_keys_and_old_tokens_stay_valid(deployed):
    rig = deployed[0]
    cloud = checks.connect(rig.inventory)
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
        assert restarted(before, after) == ["node2/keystone"]
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
        assert "node2: Run the containers of mariadb: mariadb " in proc.stdout, proc.stdout
        assert "unknown variable 'no_such_option_at_all=1'" in proc.stdout  # the log's last lines
        after = started_at(rig)
        for key in ("node1/mariadb", "node3/mariadb"):
            assert after[key] == before[key], key
        # The looping member joins the group for a moment at each of its restarts (measured:
        # size 3 right after the failure), and leaves it again: the other two stay Primary.
        deadline = time.monotonic() + 60
        while True:
            status = wsrep(rig, "node1")
            assert status["wsrep_cluster_status"] == "Primary"
            if status["wsrep_cluster_size"] == "2" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert status["wsrep_cluster_size"] == "2"
        # Run again with the override still there: the roll stops at the member that loops
        # (nothing changed for it), it does not go on to break the next one.
        proc = sovstack("reconfigure", "-i", str(rig.inventory), "--services", "mariadb")
        assert proc.returncode != 0
        assert "node2: Run the containers of mariadb" in proc.stdout, proc.stdout
        assert started_at(rig)["node3/mariadb"] == before["node3/mariadb"]
        assert wsrep(rig, "node1")["wsrep_cluster_status"] == "Primary"
    finally:
        # the cluster whole again for the tests after this one, whatever failed above
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
    assert checks.connect(rig.inventory).auth_token
