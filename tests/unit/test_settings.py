"""The operator's settings checked as a whole before anything runs: every broken configuration
of the corpus is rejected with its exact messages, naming the file and the key."""

from __future__ import annotations

import pytest

from sovstack.errors import SovstackError
from sovstack.inventory import check_inventory
from tests.conftest import REPO, expected_problems

BROKEN = sorted((REPO / "tests" / "data" / "settings" / "broken").glob("*.yml"))


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_settings_are_rejected_with_their_messages(path):
    with pytest.raises(SovstackError) as err:
        check_inventory(path)
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid inventory, nothing was run:"
    assert [line.strip() for line in lines[1:]] == expected_problems(path)


@pytest.mark.parametrize("name", ["aio", "halfrack"])
def test_reference_inventories_pass(name):
    check_inventory(REPO / "inventories" / name / "topology.yml")


def test_group_vars_and_the_whole_inventory(tmp_path):
    """A directory inventory: its group_vars are checked too, and contradictions across files."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "topology.yml").write_text(
        (REPO / "inventories" / "aio" / "topology.yml").read_text() + "  sovstack_registry_insecure: true\n"
    )
    (tmp_path / "group_vars" / "all.yml").write_text(
        "sovstack_registry: r:5000\nsovstack_registry_ca: PEM\nhost_sysctl_extar: {}\n"
    )
    with pytest.raises(SovstackError) as err:
        check_inventory(tmp_path)
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{tmp_path}/group_vars/all.yml: host_sysctl_extar: unknown setting "
        "(did you mean 'host_sysctl_extra'?): remove it or fix its name",
        f"{tmp_path}/topology.yml: vars.sovstack_registry_insecure: true contradicts sovstack_registry_ca "
        "(a CA is for TLS): drop one of them",
    ]


def test_the_corpus_of_broken_inputs_is_large():
    topologies = list((REPO / "tests" / "data" / "topologies" / "broken").glob("*.yml"))
    inventories = list((REPO / "tests" / "data" / "inventories" / "broken").iterdir())
    assert len(topologies) + len(BROKEN) + len(inventories) >= 55


def test_every_port_option_has_its_limits():
    """A role's int option named *_port is a port: 1-65535, its own number (settings.LIMITS)."""
    from ansible_collections.sovstack.cloud.plugins.module_utils import settings

    options = settings.role_options(REPO / "roles")
    ports = {name for name, spec in options.items() if name.endswith("_port") and spec.get("type") == "int"}
    assert ports <= {name for name, limit in settings.LIMITS.items() if "port" in limit}
    assert set(settings.LIMITS) <= set(settings.schema(REPO / "roles"))
    for limit in settings.LIMITS.values():
        assert limit.get("port") in (None, True) or limit["port"] in settings.LIMITS


def test_vaulted_and_broken_vars_files(tmp_path):
    (tmp_path / "group_vars" / "control").mkdir(parents=True)
    (tmp_path / "topology.yml").write_text((REPO / "inventories" / "aio" / "topology.yml").read_text())
    (tmp_path / "group_vars" / "control" / "secrets.yml").write_text(
        "sovstack_registry_ca: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6136\n"
    )
    (tmp_path / "group_vars" / "all.yml").write_text("container_engine: [docker\n")
    with pytest.raises(SovstackError) as err:
        check_inventory(tmp_path)
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{tmp_path}/group_vars/all.yml: line 2: YAML: expected ',' or ']', "
        "but got '<stream end>': fix the file",
        f"{tmp_path}/group_vars/control/secrets.yml: sovstack_registry_ca: "
        "set, but sovstack_registry is not: name the registry",
    ]
