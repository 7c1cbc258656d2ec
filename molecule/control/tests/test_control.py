"""The control scenario's verifier: every check of tests/checks/control.py on the rig's control
hosts and, from this machine, through the VIP."""

from __future__ import annotations

from typing import Any

import pytest
import testinfra
import yaml

from tests.checks import Inventory
from tests.checks import control as checks


@pytest.fixture(scope="module")
def controls(inventory: Inventory) -> dict[str, testinfra.host.Host]:
    return {name: inventory.host(name) for name in inventory.groups["control"]}


@pytest.fixture(scope="module")
def secrets(inventory: Inventory) -> dict[str, Any]:
    return yaml.safe_load((inventory.path / "group_vars" / "all" / "secrets.yml").read_text())


@pytest.fixture(scope="module")
def vip(inventory: Inventory) -> str:
    return inventory.hostvars[inventory.groups["control"][0]]["sovstack_vip"]


def test_service_containers_run(inventory: Inventory, control_name: str) -> None:
    checks.containers_running(inventory.host(control_name), inventory.engine(control_name))


def test_galera_members_synced(inventory: Inventory, control_name: str) -> None:
    size = len(inventory.groups["control"])
    checks.galera_synced(inventory.host(control_name), inventory.engine(control_name), size)


def test_rabbitmq_one_cluster(inventory: Inventory, control_name: str) -> None:
    checks.rabbitmq_cluster(
        inventory.host(control_name), inventory.engine(control_name), inventory.groups["control"]
    )


def test_secret_files_not_world_readable(inventory: Inventory, control_name: str) -> None:
    checks.secret_files_not_world_readable(inventory.host(control_name))


def test_vip_held_by_one_host(controls: dict[str, testinfra.host.Host], vip: str) -> None:
    checks.vip_held_by_one(controls, vip)


def test_durable_queues_are_quorum_queues(inventory: Inventory, secrets: dict[str, Any]) -> None:
    first, last = inventory.groups["control"][0], inventory.groups["control"][-1]
    url = f"amqp://openstack:{secrets['rabbitmq_password']}@{inventory.addresses()[last]}:5672//"
    checks.durable_queues_are_quorum_queues(
        inventory.host(first), inventory.engine(first), inventory.host(last), inventory.engine(last), url
    )


def test_keystone_through_the_vip(inventory: Inventory, vip: str) -> None:
    checks.keystone_through_the_vip(inventory.path, vip)


def test_vip_speaks_tls(inventory: Inventory, vip: str, secrets: dict[str, Any]) -> None:
    checks.vip_speaks_tls(inventory.path, vip, secrets["sovstack_ca"])
