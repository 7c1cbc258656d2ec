from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from ansible_collections.sovstack.cloud.plugins.module_utils import topology

from sovstack import rig
from sovstack.errors import SovstackError

net = ipaddress.ip_network


def test_subnet_must_fit_the_hosts():
    assert rig.parse_subnet("10.77.0.0/24", 32) == net("10.77.0.0/24")
    with pytest.raises(SovstackError, match=r"--subnet 10.77.0.0/28 is too small for 8 hosts"):
        rig.parse_subnet("10.77.0.0/28", 8)
    with pytest.raises(SovstackError, match=r"--subnet 10.77.0.1/24: 10.77.0.1/24 has host bits set"):
        rig.parse_subnet("10.77.0.1/24", 3)
    with pytest.raises(SovstackError, match="needs an IPv4 network"):
        rig.parse_subnet("fd00::/64", 3)


@pytest.mark.parametrize("name", ["rig", "ci-2", "a"])
def test_good_names(name):
    rig.check_name(name)


@pytest.mark.parametrize("name", ["", "Rig", "2rig", "rig_x", "much-too-long-name", "a/b"])
def test_bad_names(name):
    with pytest.raises(SovstackError, match="is invalid"):
        rig.check_name(name)


def test_clash_with_a_route():
    routes = {net("172.17.0.0/16"): "docker0"}
    with pytest.raises(SovstackError) as err:
        rig.check_clash(net("172.17.5.0/24"), "rig", routes, {})
    assert str(err.value) == (
        "--subnet 172.17.5.0/24 clashes with 172.17.0.0/16 (route via docker0): choose a free one"
    )


def test_clash_with_another_network_and_podman():
    networks = {net("10.80.0.0/16"): ("lab", "")}
    with pytest.raises(SovstackError) as err:
        rig.check_clash(net("10.80.0.0/12"), "rig", {}, networks)
    assert "10.80.0.0/16 (docker network lab)" in str(err.value)
    assert "10.88.0.0/16 (podman's default network)" in str(err.value)


def test_own_network_and_bridge_are_no_clash():
    subnet = net("10.77.0.0/24")
    networks = {subnet: ("sovstack-rig", "rig")}
    routes = {subnet: rig.bridge_name("rig")}
    rig.check_clash(subnet, "rig", routes, networks)
    with pytest.raises(SovstackError, match="docker network sovstack-rig"):
        rig.check_clash(subnet, "other", routes, networks)


def test_bridge_names_fit_linux():
    assert len(rig.bridge_name("abcdefghijkl")) <= 15


@pytest.mark.parametrize(("hosts", "controls"), [(1, 1), (2, 1), (3, 3), (4, 3), (7, 3)])
def test_rig_topology_passes_the_topology_checks(hosts, controls, tmp_path):
    state = rig.RigState(
        name="rig",
        subnet="10.77.0.0/24",
        engine="podman",
        image="img",
        hosts=[rig.RigHost(f"node{i}", f"10.77.0.{10 + i}", f"c{i}", "podman") for i in range(1, hosts + 1)],
    )
    data = rig.topology_data(state, tmp_path / "key")
    parsed = topology.check("rig/topology.yml", data)
    assert parsed.vars["container_engine"] == "podman"
    assert parsed.vars["sovstack_registry"] == "10.77.0.11:4000"
    assert parsed.groups()["control"] == [f"node{i}" for i in range(1, controls + 1)]
    assert parsed.groups()["compute"] == sorted(h.name for h in state.hosts)
    for host in state.hosts:  # the addresses the rig gave its containers
        assert parsed.hostvars(host.name)["ansible_host"] == host.address


def test_engines_one_for_all_or_one_per_host():
    assert rig.parse_engines("podman", 3) == ["podman"] * 3
    assert rig.parse_engines("docker,podman,docker", 3) == ["docker", "podman", "docker"]
    with pytest.raises(SovstackError, match="names 2 engines for 3 hosts"):
        rig.parse_engines("docker,podman", 3)
    with pytest.raises(SovstackError, match="'crio' unknown: use docker or podman"):
        rig.parse_engines("docker,crio,docker", 3)


def test_a_rig_of_mixed_engines_gives_each_host_its_engine(tmp_path):
    engines = ["docker", "podman", "docker"]
    state = rig.RigState(
        name="rig",
        subnet="10.77.0.0/24",
        engine=",".join(engines),
        image="img",
        hosts=[rig.RigHost(f"node{i}", f"10.77.0.{10 + i}", f"c{i}", e) for i, e in enumerate(engines, 1)],
    )
    parsed = topology.check("rig/topology.yml", rig.topology_data(state, tmp_path / "key"))
    assert "container_engine" not in parsed.vars
    assert [parsed.hostvars(h.name)["container_engine"] for h in state.hosts] == engines


def test_a_rig_state_of_one_engine_loads_with_its_engine_on_every_host(tmp_path):
    path = tmp_path / "rig.json"
    path.write_text(
        '{"name": "r", "subnet": "10.77.0.0/24", "engine": "podman", "image": "i",'
        ' "hosts": [{"name": "node1", "address": "10.77.0.11", "container": "c1"}]}'
    )
    assert rig.RigState.load(path).hosts[0].engine == "podman"


def test_image_tag_follows_the_definition_and_names_the_suite(monkeypatch):
    tag = rig.image_tag("bookworm")
    assert tag == rig.image_tag("bookworm")
    assert tag.startswith("sovstack/rig-host:bookworm-")
    assert rig.image_tag("trixie").startswith("sovstack/rig-host:trixie-")
    monkeypatch.setattr(rig, "HOST_PACKAGES", (*rig.HOST_PACKAGES, "vim"))
    assert rig.image_tag("bookworm") != tag


def test_a_rig_keeps_its_suite(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVSTACK_HOME", str(tmp_path))
    monkeypatch.setattr(rig, "require_root", lambda: None)
    with pytest.raises(SovstackError, match=r"^--suite sid: the rig's hosts run bookworm or trixie$"):
        rig.up("lab", 3, "docker", None, print, suite="sid")
    state = tmp_path / "rigs" / "lab" / "rig.json"
    state.parent.mkdir(parents=True)
    state.write_text(
        '{"name": "lab", "subnet": "10.77.5.0/24", "engine": "docker", "image": "i", "suite": "trixie",'
        ' "hosts": [{"name": "node1", "address": "10.77.5.11", "container": "c1"}]}'
    )
    with pytest.raises(SovstackError, match=r"runs Debian trixie, not bookworm: `sovstack rig down` first$"):
        rig.up("lab", 1, "docker", None, print, suite="bookworm")


def test_write_if_changed_keeps_mtime_when_equal(tmp_path):
    path = tmp_path / "a" / "f.yml"
    rig.write_if_changed(path, "x: 1\n")
    before = path.stat().st_mtime_ns
    rig.write_if_changed(path, "x: 1\n")
    assert path.stat().st_mtime_ns == before
    rig.write_if_changed(path, "x: 2\n")
    assert path.read_text() == "x: 2\n"


def test_group_vars_go_to_group_vars_all(tmp_path):
    """The rig's variables in group_vars/all/rig.yml, beside where secrets.yml goes; the
    group_vars/all.yml of an older rig is removed."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("old: 1\n")
    rig.write_group_vars(tmp_path)
    template = rig.collection_root() / "inventories" / "rig" / "group_vars" / "all.yml"
    assert (tmp_path / "group_vars" / "all" / "rig.yml").read_text() == template.read_text()
    assert not (tmp_path / "group_vars" / "all.yml").exists()
    assert sorted(p.name for p in (tmp_path / "group_vars").iterdir()) == ["all"]
    rig.write_group_vars(tmp_path)  # again: nothing changes


def test_apt_mirror_is_a_debian_url():
    mirror = rig.apt_mirror()
    assert mirror.startswith(("http://", "https://"))
    assert mirror.rstrip("/").endswith("/debian")


def test_state_round_trip(tmp_path: Path):
    state = rig.RigState("rig", "10.77.0.0/24", "docker", "img", [rig.RigHost("node1", "10.77.0.11", "c")])
    path = tmp_path / "rig.json"
    import dataclasses
    import json

    path.write_text(json.dumps(dataclasses.asdict(state)))
    assert rig.RigState.load(path) == state


def test_rig_up_raises_a_low_inotify_instance_limit(tmp_path):
    """A machine's default of 128 inotify instances boots new rig hosts without sshd once about
    25 run: rig up raises it, says so, and leaves a higher limit alone."""
    from sovstack import rig

    said: list[str] = []
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    rig.ensure_inotify(said.append, limit)
    assert limit.read_text() == f"{rig.INOTIFY_INSTANCES}\n"
    assert said == [
        f"rig: raised fs.inotify.max_user_instances from 128 to {rig.INOTIFY_INSTANCES}"
        " (each systemd host needs some)"
    ]
    limit.write_text("8192\n")
    rig.ensure_inotify(said.append, limit)
    assert limit.read_text() == "8192\n" and len(said) == 1
