"""The host scenario's verifier: every check of tests/checks/host.py on every rig host."""

from __future__ import annotations

from tests.checks import Inventory
from tests.checks import host as checks


def test_engine_runs_containers(inventory: Inventory, name: str) -> None:
    checks.engine_runs_containers(inventory.host(name), inventory.engine(name))


def test_python_sdk_reaches_the_engine(inventory: Inventory, name: str) -> None:
    checks.python_sdk_reaches_the_engine(inventory.host(name), inventory.engine(name))


def test_engine_trusts_the_registry(inventory: Inventory, name: str) -> None:
    registry = inventory.hostvars[name]["sovstack_registry"]
    checks.engine_trusts_the_registry(inventory.host(name), inventory.engine(name), registry)


def test_sysctl_set_live_and_persisted(inventory: Inventory, name: str) -> None:
    checks.sysctl_set_live_and_persisted(inventory.host(name))


def test_chrony_runs(inventory: Inventory, name: str) -> None:
    checks.chrony_runs(inventory.host(name), inventory.hostvars[name]["host_chrony_daemon_opts"])


def test_etc_hosts_names_every_host(inventory: Inventory, name: str) -> None:
    checks.etc_hosts_names_every_host(inventory.host(name), inventory.addresses())


def test_service_user_and_config_dir(inventory: Inventory, name: str) -> None:
    checks.service_user_and_config_dir(inventory.host(name))
