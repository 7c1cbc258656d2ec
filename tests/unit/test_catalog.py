"""The service catalog: every service's facts written once (roles/NAME/meta/service.yml), and
everything that lists services derives from it; a service in one place and missing from
another fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sovstack import cli, secrets
from tests.conftest import REPO, sovstack

from ansible_collections.sovstack.cloud.plugins.module_utils import catalog  # isort: skip

CATALOG = catalog.load()
IMAGES = yaml.safe_load((REPO / "images" / "images.yml").read_text())["images"]


def test_the_order_puts_every_service_after_what_it_needs():
    order = list(CATALOG)
    assert order[0] == "haproxy"
    for name, entry in CATALOG.items():
        for dep in entry["after"]:
            assert order.index(dep) < order.index(name), (name, dep)


def test_every_role_with_an_entry_is_a_service_role_and_back():
    """A catalog entry's role describes its containers (NAME_service) for the engine, and a
    role that runs the engine has a catalog entry."""
    engine_users = {
        path.parts[-3]
        for path in (REPO / "roles").glob("*/tasks/*.yml")
        if "name: sovstack.cloud.service" in path.read_text()
    }
    assert engine_users == set(CATALOG)
    for name, entry in CATALOG.items():
        described = yaml.safe_load((REPO / "roles" / name / "vars" / "main.yml").read_text())[
            f"{name}_service"
        ]
        assert described["name"] == name
        if isinstance(described["containers"], str):  # instances made from facts (one OSD per device)
            assert set(re.findall(r"'catalog_name': '(\w+)'", described["containers"])) == set(
                entry["containers"]
            )
            continue
        assert {c.get("catalog_name", c["name"]) for c in described["containers"]} == set(entry["containers"])


def test_every_image_of_the_catalog_is_built_and_deployable():
    for entry in CATALOG.values():
        for container in entry["containers"].values():
            image = IMAGES[container["image"]]
            assert not image.get("abstract"), container


def test_ports_and_secrets_are_unique_and_every_secret_is_a_role_option():
    ports = catalog.ports(CATALOG)
    assert len(set(ports.values())) == len(ports)
    spec = secrets.load_spec()
    assert set(spec) == {s for entry in CATALOG.values() for s in entry["secrets"]}


def test_no_template_writes_a_port_of_the_catalog_as_a_literal():
    numbers = {str(p) for p in catalog.ports(CATALOG).values()}
    found = []
    for path in (REPO / "roles").glob("*/templates/*.j2"):
        for number in re.findall(r"(?<![\d.])(\d{4,5})(?![\d.])", path.read_text()):
            if number in numbers:
                found.append((path.relative_to(REPO), number))
    assert found == []


def test_the_cli_offers_exactly_the_catalog():
    assert list(cli.deploy_services()) == list(CATALOG)
    proc = sovstack("deploy", "--services", "keystne")
    assert proc.returncode == 2
    assert "unknown service 'keystne' (did you mean 'keystone'?)" in proc.stderr
    assert f"the services are {', '.join(CATALOG)}" in proc.stderr


def test_the_docs_table_lists_every_service_with_its_hosts():
    text = (REPO / "docs" / "services.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3 and cells[0] in CATALOG:
            rows[cells[0]] = cells
    assert list(rows) == list(CATALOG)
    for name, entry in CATALOG.items():
        assert rows[name][1] == entry["layer"], name
        assert rows[name][2] == ", ".join(catalog.groups(entry)), name


def test_the_docs_list_the_files_a_new_service_touches():
    text = (REPO / "docs" / "services.md").read_text()
    section = text[text.index("## Adding a service") :]
    for path in ["roles/NAME/meta/service.yml", "roles/NAME/vars/main.yml", "images/images.yml"]:
        assert f"`{path}`" in section


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: other\nlayer: base\ncontainers: {x: {image: x, group: g}}\n",
            "name: 'other' is not the role's name",
        ),
        ("name: demo\nlayer: top\ncontainers: {x: {image: x, group: g}}\n", "layer: 'top' is not one of"),
        ("name: demo\nlayer: base\n", "containers: missing"),
        ("name: demo\nlayer: base\ncontainers: {x: {image: x}}\n", "containers.x.group: missing"),
        ("name: demo\nlayer: base\ncontainers: {x: {image: x, group: []}}\n", "containers.x.group: missing"),
        (
            "name: demo\nlayer: base\ncontainers: {x: {image: x, group: [a, a]}}\n",
            "containers.x.group: missing",
        ),
        (
            "name: demo\nlayer: base\ncontainers: {x: {image: x, group: g}}\nports: {p: {port: 70000}}\n",
            "ports.p.port: 70000 is not a port",
        ),
        (
            "name: demo\nlayer: base\nafter: [nothing]\ncontainers: {x: {image: x, group: g}}\n",
            "after: 'nothing'",
        ),
        (
            "name: demo\nlayer: base\ncontainers: {x: {image: x, group: g}}\nrestart: all\n",
            "restart: unknown field",
        ),
        (
            "name: demo\nlayer: base\ncontainers: {x: {image: x, group: g}}\nform_together: true\n",
            "form_together: only for a serial service",
        ),
    ],
)
def test_a_broken_entry_is_named_by_file_and_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "demo" / "meta" / "service.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(catalog.CatalogError) as err:
        catalog.load(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}/demo/meta/service.yml: {message}"), str(err.value)


def test_services_that_wait_for_each_other_are_refused(tmp_path: Path):
    for name, other in (("a", "b"), ("b", "a")):
        path = tmp_path / name / "meta" / "service.yml"
        path.parent.mkdir(parents=True)
        path.write_text(
            f"name: {name}\nlayer: base\nafter: [{other}]\ncontainers: {{{name}: {{image: x, group: g}}}}\n"
        )
    with pytest.raises(catalog.CatalogError, match="the services a, b wait for each other"):
        catalog.load(tmp_path)


def test_the_engine_joins_containers_with_their_entry_and_drops_disabled_ones():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.sovstack.cloud.plugins.filter import catalog as filters

    entry = {
        "name": "ceph",
        "containers": {
            "ceph_mon": {"image": "ceph", "group": "control", "groups": ["control"]},
            "ceph_osd": {"image": "ceph", "group": "storage", "groups": ["storage"]},
            "ovs": {
                "image": "openvswitch-db",
                "group": ["network", "compute"],
                "groups": ["network", "compute"],
            },
        },
    }
    containers = [
        {"name": "ceph_mon"},
        {"name": "ceph_osd_sdb", "catalog_name": "ceph_osd", "command": ["osd", "sdb"]},
        {"name": "ceph_osd_sdc", "catalog_name": "ceph_osd", "enabled": False},
    ]
    assert filters.catalog_containers(containers, entry, ["storage"]) == [
        {"name": "ceph_osd_sdb", "command": ["osd", "sdb"], "image": "ceph", "groups": ["storage"]}
    ]
    # a container of more than one group runs on a host of any of them
    assert [c["name"] for c in filters.catalog_containers([{"name": "ovs"}], entry, ["compute"])] == ["ovs"]
    assert filters.catalog_containers([{"name": "ovs"}], entry, ["control", "storage"]) == []
    assert [c["name"] for c in filters.catalog_containers(containers, entry, ["control", "storage"])] == [
        "ceph_mon",
        "ceph_osd_sdb",
    ]
    with pytest.raises(
        AnsibleFilterError, match="container 'ceph_rgw' is not in the service's catalog entry"
    ):
        filters.catalog_containers([{"name": "ceph_rgw"}], entry, ["control"])
    groups = {"control": ["n1", "n2"], "storage": ["n2", "n3"], "network": ["n5"], "compute": ["n4", "n3"]}
    assert filters.catalog_hosts(entry, groups) == ["n1", "n2", "n3", "n5", "n4"]
