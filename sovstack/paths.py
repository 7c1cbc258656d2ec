"""Where the collection and sovstack's state live."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from sovstack.errors import SovstackError


def collection_root() -> Path:
    """The sovstack.cloud collection this package ships with.

    An installed wheel carries it in site-packages/ansible_collections/sovstack/cloud; a
    checkout (or an editable install) is the collection itself.
    """
    parent = Path(__file__).resolve().parent.parent
    for candidate in (parent / "ansible_collections" / "sovstack" / "cloud", parent):
        if (candidate / "galaxy.yml").is_file():
            return candidate
    raise SovstackError(f"the sovstack.cloud collection is missing beside {parent}: reinstall sovstack")


def collections_path() -> Path:
    """The directory that holds ansible_collections/sovstack/cloud, for ANSIBLE_COLLECTIONS_PATH."""
    root = collection_root()
    if root.parent.parent.name == "ansible_collections":
        return root.parent.parent.parent
    return root / "collections"


def inventory_dir(inventory: Path) -> Path:
    """The directory of an inventory: itself, or the one that holds the inventory file
    (where Ansible looks for its group_vars, and sovstack keeps what lives beside it)."""
    return inventory.parent if inventory.is_file() else inventory


def state_home() -> Path:
    """sovstack's state: the rig, run logs. $SOVSTACK_HOME, default ~/.sovstack."""
    return Path(os.environ.get("SOVSTACK_HOME") or Path.home() / ".sovstack")


def collection_module(name: str, package: str = "plugins.module_utils") -> ModuleType:
    """A Python module of this package's own collection (plugins/module_utils/NAME, or NAME
    in another package of the collection), the same code Ansible runs."""
    path = str(collections_path())
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(f"ansible_collections.sovstack.cloud.{package}.{name}")
