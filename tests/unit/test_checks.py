"""tests.checks.Inventory, the inventory view the shared checks and the Molecule verifiers use,
on the reference half rack topology, through ansible-inventory as the checks run it."""

from __future__ import annotations

from tests.checks import Inventory
from tests.conftest import REPO

HALFRACK = REPO / "inventories" / "halfrack" / "topology.yml"


def test_groups_hosts_addresses_and_engine():
    inventory = Inventory.load(HALFRACK)
    assert inventory.groups["control"] == ["ctl1", "ctl2", "ctl3"]
    assert inventory.groups["network"] == ["net1", "net2"]
    # all: every host, though ansible-inventory lists them only under their child groups
    assert len(inventory.groups["all"]) == 18
    assert inventory.addresses()["ctl1"] == "10.10.0.11"
    assert inventory.addresses()["sto5"] == "10.10.0.28"
    assert inventory.engine("cmp3") == "docker"
    assert inventory.hostvars["ctl2"]["sovstack_vip"] == "10.10.0.10"
