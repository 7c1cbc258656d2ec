"""The topology checks: every broken topology of the corpus is rejected with its exact
messages; the reference topologies pass; and the inventory plugin turns a rejection into a
failed run that names the file and the key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.sovstack.cloud.plugins.module_utils import topology

from tests.conftest import BIN, REPO, expected_problems

BROKEN = sorted((REPO / "tests" / "data" / "topologies" / "broken").glob("*.yml"))
REFERENCE = [REPO / "inventories" / name / "topology.yml" for name in ("aio", "halfrack")]


def test_the_corpus_is_large():
    assert len(BROKEN) >= 25


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_topology_is_rejected_with_its_messages(path):
    with pytest.raises(topology.TopologyError) as err:
        topology.load(str(path))
    assert err.value.problems == expected_problems(path)


@pytest.mark.parametrize("path", REFERENCE, ids=lambda p: p.parent.name)
def test_reference_topologies_pass(path):
    parsed = topology.load(str(path))
    assert parsed.groups()["control"]
    for name in parsed.hosts:
        assert parsed.hostvars(name)["ansible_host"]


def test_halfrack_shape_and_addresses():
    parsed = topology.load(str(REFERENCE[1]))
    sizes = {role: len(hosts) for role, hosts in parsed.groups().items()}
    assert sizes == {"control": 3, "network": 2, "compute": 8, "storage": 5, "k8s": 3}
    cmp3 = parsed.hostvars("cmp3")
    assert (cmp3["ansible_host"], cmp3["storage_address"], cmp3["tunnel_address"]) == (
        "10.10.0.18",
        "10.20.0.18",
        "10.30.0.18",
    )
    assert cmp3["encap_address"] == cmp3["tunnel_address"]  # tunnel_network: tunnel
    assert parsed.hostvars("ctl1")["encap_address"] == "10.30.0.11"
    assert cmp3["sovstack_networks"]["storage"]["vlan"] == 20
    assert (
        cmp3["container_engine"]
        if "container_engine" in cmp3
        else parsed.vars["container_engine"] == "docker"
    )


def test_the_tenant_mtu_is_what_the_tunnel_network_leaves_unless_given():
    cmp3 = topology.load(str(REFERENCE[1])).hostvars("cmp3")
    assert cmp3["sovstack_networks"]["tunnel"]["mtu"] == 1500
    assert cmp3["sovstack_tenant_mtu"] == 1500 - 58
    text = (
        "networks:\n"
        "  management: {cidr: 10.1.0.0/24, vip: 10.1.0.10, mtu: 9000}\n"
        "hosts:\n"
        "  a1: {index: 1, roles: [control, compute]}\n"
    )
    assert topology.load("t.yml", text).hostvars("a1")["sovstack_tenant_mtu"] == 9000 - 58
    given = topology.load("t.yml", text + "tenant_mtu: 1500\n")
    assert given.hostvars("a1")["sovstack_tenant_mtu"] == 1500


def inventory(path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def test_plugin_builds_the_inventory(tmp_path):
    proc = inventory(REFERENCE[1], tmp_path, "--list")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["control"]["hosts"] == ["ctl1", "ctl2", "ctl3"]
    net2 = data["_meta"]["hostvars"]["net2"]
    # plain strings (trusted, as any YAML inventory): testinfra and other readers take them as they are
    assert net2["ansible_host"] == "10.10.0.15"
    assert net2["container_engine"] == "docker"
    assert net2["sovstack_networks"]["storage"]["address"] == "10.20.0.15"


@pytest.mark.parametrize("name", ["several-problems", "even-control", "duplicate-host-name"])
def test_plugin_fails_the_run_naming_file_and_keys(name, tmp_path):
    path = REPO / "tests" / "data" / "topologies" / "broken" / f"{name}.yml"
    proc = inventory(path, tmp_path, "--list")
    assert proc.returncode != 0
    text = " ".join(proc.stderr.split())
    for line in expected_problems(path):
        assert " ".join(line.split()) in text, proc.stderr


def test_index_skips_gateway_and_vip_without_a_range():
    parsed = topology.check(
        "t.yml",
        {
            "networks": {"management": {"cidr": "10.0.0.0/24", "gateway": "10.0.0.1", "vip": "10.0.0.10"}},
            "hosts": {
                f"h{i}": {"index": i, "roles": ["control", "compute"] if i == 1 else ["compute"]}
                for i in (1, 8, 9)
            },
        },
    )
    assert [parsed.hostvars(h)["ansible_host"] for h in ("h1", "h8", "h9")] == [
        "10.0.0.2",
        "10.0.0.9",
        "10.0.0.11",
    ]
    assert parsed.networks["management"].capacity() == 252
