"""Shared by the scenarios' testinfra verifiers (molecule/*/tests): the scenario's rig, from
the inventory its create step linked into molecule's ephemeral directory. The checks
themselves are the pytest suite's (tests/checks)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The checkout's root, for tests.checks (molecule runs pytest in the scenario's directory).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.checks import Inventory


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    assert ephemeral, "run the verifier through molecule (molecule verify -s SCENARIO)"
    path = Path(ephemeral) / "rig"
    assert path.is_dir(), f"{path}: no rig inventory; run `molecule create` first"
    return Inventory.load(path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `name` runs once per host of the scenario's rig; one that takes
    `control_name`, once per host of its group control."""
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "rig"
    for argument, group in (("name", "all"), ("control_name", "control")):
        if argument in metafunc.fixturenames:
            assert path.is_dir(), f"{path}: no rig inventory; run `molecule create` first"
            names = Inventory.load(path).groups.get(group, [])
            assert names, f"{path}: no host in group {group}"  # a check of no host checks nothing
            metafunc.parametrize(argument, names)
