"""The collection as an operator gets it: installed from the wheel, and as a Galaxy tarball."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)


@pytest.mark.parametrize(
    "module", ["sysctl", "container", "container_info", "image", "volume", "job", "service_host"]
)
def test_ansible_doc_renders_every_module_from_any_directory(module, tmp_path):
    proc = run(str(BIN / "ansible-doc"), f"sovstack.cloud.{module}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"SOVSTACK.CLOUD.{module.upper()}" in proc.stdout.upper()
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"):
        assert section in proc.stdout, section
    assert "check_mode" in proc.stdout and "diff_mode" in proc.stdout


@pytest.mark.parametrize(
    ("role", "option"),
    [
        ("host", "host_container_engine"),
        ("prechecks", "prechecks_images_lock"),
        ("registry", "registry_tls_certificate"),
    ],
)
def test_ansible_doc_renders_every_role_spec(role, option, tmp_path):
    proc = run(str(BIN / "ansible-doc"), "-t", "role", f"sovstack.cloud.{role}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert option in proc.stdout


def test_ansible_doc_renders_the_inventory_plugin(tmp_path):
    proc = run(str(BIN / "ansible-doc"), "-t", "inventory", "sovstack.cloud.topology", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sovstack.cloud.topology" in proc.stdout and "EXAMPLES" in proc.stdout


@pytest.mark.parametrize("playbook", ["bootstrap", "prechecks", "registry"])
def test_collection_playbook_runs_by_name_from_any_directory(playbook, tmp_path):
    proc = run(
        str(BIN / "ansible-playbook"),
        f"sovstack.cloud.{playbook}",
        "--syntax-check",
        "-i",
        "localhost,",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "playbook: " in proc.stdout


def test_galaxy_tarball_installs_offline(tmp_path):
    build = run(
        str(BIN / "ansible-galaxy"),
        "collection",
        "build",
        str(REPO),
        "--output-path",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    tarball = tmp_path / "sovstack-cloud-0.1.0.tar.gz"
    assert tarball.is_file()
    target = tmp_path / "installed"
    install = run(
        str(BIN / "ansible-galaxy"),
        "collection",
        "install",
        "--offline",
        "--force",
        "-p",
        str(target),
        str(tarball),
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr
    root = target / "ansible_collections" / "sovstack" / "cloud"
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["name"] == "cloud"
    for path in (
        "plugins/modules/sysctl.py",
        "plugins/modules/container.py",
        "plugins/modules/job.py",
        "plugins/doc_fragments/container_options.py",
        "plugins/inventory/topology.py",
        "plugins/doc_fragments/engine.py",
        "plugins/module_utils/topology.py",
        "roles/host/tasks/main.yml",
        "roles/prechecks/tasks/main.yml",
        "playbooks/prechecks.yml",
        "inventories/halfrack/topology.yml",
    ):
        assert (root / path).is_file(), path
    for left_out in ("tests", "sovstack", "collections", ".ci"):
        assert not (root / left_out).exists(), left_out
    listing = run(
        str(BIN / "ansible-galaxy"), "collection", "list", "-p", str(target), "--format", "json", cwd=tmp_path
    )
    assert listing.returncode == 0, listing.stderr
    assert "sovstack.cloud" in listing.stdout
