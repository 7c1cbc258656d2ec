"""`sovstack rig up|down|status` against the real engine, and its refusals of bad input."""

from __future__ import annotations

import os
import subprocess

import pytest

from sovstack.rig import IMAGE_LABEL, LABEL
from tests.conftest import BIN, sovstack
from tests.integration.conftest import RIGS, rig_up

LIFE = ("tlife", "10.77.12.0/24")


def labelled(client, name: str) -> dict[str, list[str]]:
    """Everything on the engine that carries rig `name`'s label."""
    flt = {"label": f"{LABEL}={name}"}
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=flt)),
        "volumes": sorted(v.name for v in client.volumes.list(filters=flt)),
        "networks": sorted(n.name for n in client.networks.list(filters=flt)),
    }


def started(client, names: list[str]) -> dict[str, str]:
    return {n: client.containers.get(n).attrs["State"]["StartedAt"] for n in names}


def test_up_warm_changes_nothing_and_down_removes_only_its_own(rigs, engine_client, sovstack_home):
    name, subnet = LIFE
    cold = rig_up(name, subnet, "docker", hosts=2)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    made = labelled(engine_client, name)
    assert made["containers"] == [f"sovstack-{name}-node1", f"sovstack-{name}-node2"]
    assert made["networks"] == [f"sovstack-{name}"]
    assert len(made["volumes"]) == 4
    assert f"inventory: {sovstack_home / 'rigs' / name / 'inventory'}" in cold.stdout

    other = {n: labelled(engine_client, n) for n, _ in RIGS.values()}
    before = started(engine_client, made["containers"])
    hosts_yml = sovstack_home / "rigs" / name / "inventory" / "topology.yml"
    mtime = hosts_yml.stat().st_mtime_ns

    warm = rig_up(name, subnet, "docker", hosts=2)
    assert warm.returncode == 0, warm.stderr
    assert "node1: 10.77.12.11 (unchanged)" in warm.stdout
    assert "node2: 10.77.12.12 (unchanged)" in warm.stdout
    assert "(created)" not in warm.stdout and "(started)" not in warm.stdout
    assert started(engine_client, made["containers"]) == before
    assert hosts_yml.stat().st_mtime_ns == mtime

    status = sovstack("rig", "status", "--name", name)
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("running    ssh ok") == 2

    shrink = rig_up(name, subnet, "docker", hosts=1)
    assert shrink.returncode == 1
    assert "has 2 hosts; it does not shrink to 1" in shrink.stderr

    image = engine_client.containers.get(made["containers"][0]).image.id
    down = sovstack("rig", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert labelled(engine_client, name) == {"containers": [], "volumes": [], "networks": []}
    assert not (sovstack_home / "rigs" / name).exists()
    # Nothing else: the other rigs and the image they still run on stay.
    assert {n: labelled(engine_client, n) for n, _ in RIGS.values()} == other
    assert engine_client.images.get(image).labels.get(IMAGE_LABEL)

    gone = sovstack("rig", "status", "--name", name)
    assert gone.returncode == 1
    assert gone.stdout.strip() == f"rig {name!r} is not up"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--subnet", RIGS["docker"][1]],
            f"--subnet {RIGS['docker'][1]} clashes with {RIGS['docker'][1]} "
            f"(route via sr-{RIGS['docker'][0]})",
        ),
        (
            ["--subnet", "172.17.0.0/24"],
            "--subnet 172.17.0.0/24 clashes with 172.17.0.0/16 (route via docker0)",
        ),
        (
            ["--subnet", "10.88.4.0/24"],
            "--subnet 10.88.4.0/24 clashes with 10.88.0.0/16 (podman's default network)",
        ),
        (["--hosts", "0"], "argument --hosts: must be between 1 and 32, got 0"),
        (["--engine", "lxc"], "argument --engine: 'lxc' unknown: use docker or podman"),
        (["--subnet", "10.77.13.0/29"], "--subnet 10.77.13.0/29 is too small for 3 hosts"),
    ],
)
def test_bad_input_one_line_nothing_changed(args, message, rigs, engine_client, sovstack_home):
    everything = {n: labelled(engine_client, n) for n in ("clash", *(r for r, _ in RIGS.values()))}
    proc = sovstack("rig", "up", "--name", "clash", *args)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sovstack: error: ") and message in lines[0], lines[0]
    assert proc.stdout == ""
    assert {n: labelled(engine_client, n) for n in everything} == everything
    assert not (sovstack_home / "rigs" / "clash").exists()


def test_status_of_the_shared_rigs(rigs):
    for rig in rigs.values():
        proc = sovstack("rig", "status", "--name", rig.name)
        assert proc.returncode == 0, proc.stdout
        assert f"engine {rig.engine}" in proc.stdout
        for name, address in rig.hosts.items():
            assert f"{name:8} {address:15} {rig.engines[name]:7} running    ssh ok" in proc.stdout


def test_failed_run_summarizes_host_and_task(rigs, tmp_path):
    inventory = tmp_path / "topology.yml"
    inventory.write_text(
        "plugin: sovstack.cloud.topology\nnetworks:\n  management: {cidr: 10.77.10.0/24}\n"
        "hosts:\n  ghost: {address: 10.77.10.99, roles: [control, compute]}\n"
        "vars:\n  ansible_ssh_common_args: -o ConnectTimeout=3 -o StrictHostKeyChecking=no\n"
    )
    proc = sovstack("bootstrap", "-i", str(inventory))
    assert proc.returncode == 1
    assert "FAILED: sovstack.cloud.bootstrap" in proc.stdout
    assert "  ghost: Gathering Facts: " in proc.stdout
    assert "ghost: ok=0 changed=0 unreachable=1" in proc.stdout


def test_rig_inventory_is_a_topology(rigs):
    rig = rigs["docker"]
    text = (rig.inventory / "topology.yml").read_text()
    assert text.startswith("plugin: sovstack.cloud.topology\n")


def test_broken_topology_stops_the_run_before_any_host(rigs, tmp_path):
    """A topology of the rig's own hosts with one mistake: bootstrap fails naming the file and
    key, and no host changed (the override below would rewrite /etc/default/chrony)."""
    rig = rigs["docker"]
    broken = tmp_path / "topology.yml"
    broken.write_text((rig.inventory / "topology.yml").read_text().replace("- storage\n", "- storaeg\n", 1))
    before = {name: rig.host(name).file("/etc/default/chrony").content_string for name in rig.hosts}
    proc = sovstack("bootstrap", "-i", str(broken), "-e", "host_chrony_daemon_opts=-F 1 -x -r")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "sovstack: error: invalid inventory, nothing was run:",
        f"  {broken}: hosts.node1.roles: unknown role 'storaeg' (did you mean 'storage'?); "
        "roles: control, network, compute, storage, k8s",
    ]
    # The same through plain ansible-playbook: the inventory plugin fails the run.
    env = {**os.environ, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True"}
    plain = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(broken),
            "sovstack.cloud.bootstrap",
            "-e",
            "host_chrony_daemon_opts='-F 1 -x -r'",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert plain.returncode != 0
    assert "hosts.node1.roles: unknown role 'storaeg'" in plain.stdout + plain.stderr
    assert {name: rig.host(name).file("/etc/default/chrony").content_string for name in rig.hosts} == before
