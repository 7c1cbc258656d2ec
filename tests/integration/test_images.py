"""The image pipeline for real: the whole family built from Debian packages on this machine's
dockerd, every service image run as its user, a set of them started until healthy; pushed to
the sovstack registry on a rig host, pinned in the lock file, pulled by digest on docker and
podman hosts; exported and imported into the other rig's registry with the same digests."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import docker
import pytest
import yaml
from ansible_collections.sovstack.cloud.plugins.module_utils import catalog

from sovstack import images
from sovstack.registry import Lock, Registry
from tests.conftest import sovstack
from tests.integration.conftest import PLAYBOOKS, run_module, run_playbooks

DEFS = images.load_definitions()
CATALOG = catalog.load()
SERVICES = sorted(name for name, image in DEFS.items() if not image.abstract)

# Services that start here from the image alone, or with a few lines of configuration mounted
# at the image's config path, until their own healthcheck passes.
KEYSTONE_CONF = """\
[database]
connection = sqlite:////var/lib/keystone/keystone.db
[fernet_tokens]
key_repository = /var/lib/keystone/fernet-keys
[credential]
key_repository = /var/lib/keystone/credential-keys
"""
STARTS: dict[str, dict] = {
    "memcached": {},
    "registry": {},
    "rabbitmq": {},
    "haproxy": {},
    "openvswitch-db": {},
    "ovn-nb-db": {},
    "ovn-sb-db": {},
    "mariadb": {
        "command": ["sh", "-c", "mariadb-install-db --skip-test-db >/dev/null && exec mariadbd"],
    },
    "keystone": {
        "files": {"keystone.conf": KEYSTONE_CONF},
        "command": [
            "sh",
            "-c",
            "keystone-manage db_sync && keystone-manage fernet_setup --keystone-user keystone "
            "--keystone-group keystone && exec uwsgi --http-socket 127.0.0.1:5000 --plugin python3 "
            "--wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 2",
        ],
    },
}


@pytest.fixture(scope="module")
def built(images_built, sovstack_home: Path) -> dict[str, str]:
    """The built set (built.json): trixie's, each image's tag by name."""
    data = images.read_built(sovstack_home / "images" / "built.json")
    assert data is not None and data["suite"] == images.DEFAULT_SUITE, data
    return data["images"]


def test_every_image_is_built_with_its_labels(built, engine_client, images_built):
    assert sorted(built) == sorted(DEFS)
    assert f"from {images.release(images.DEFAULT_SUITE)}" in images_built.stdout
    assert engine_client.containers.list(all=True, filters={"label": "sovstack.image.build"}) == []
    for name, tag in built.items():
        attrs = engine_client.images.get(tag).attrs
        labels = attrs["Config"]["Labels"]
        assert labels["sovstack.image.name"] == name
        assert tag.endswith(f":{images.DEFAULT_SUITE}-" + labels["sovstack.image.definition"])
        assert labels["sovstack.image.suite"] == images.DEFAULT_SUITE
        assert labels["org.opencontainers.image.version"], name
        assert labels["org.opencontainers.image.created"].endswith("Z"), name
        assert attrs["Config"]["Entrypoint"] == images.ENTRYPOINT
        assert attrs["Config"]["User"] == DEFS[name].user, name
        assert not attrs["Config"].get("Volumes"), f"{name}: the build's mounts became volumes"
        if not DEFS[name].abstract:
            assert attrs["Config"]["Cmd"] == list(DEFS[name].command), name
            assert attrs["Config"]["Healthcheck"]["Test"] == ["CMD", *DEFS[name].healthcheck], name
            # podman takes the healthcheck from here when it is set
            assert attrs["ContainerConfig"]["Healthcheck"] == attrs["Config"]["Healthcheck"], name


@pytest.mark.parametrize("name", SERVICES)
def test_image_runs_its_version_as_its_user(built, engine_client, name):
    """Through the image's entry point, as the image's user: who runs it, then its version."""
    out = engine_client.containers.run(
        built[name], ["sh", "-c", 'id -un; "$@"', "sh", *DEFS[name].version], remove=True, stderr=True
    )
    lines = out.decode().split("\n")
    assert lines[0] == DEFS[name].user
    label = engine_client.images.get(built[name]).labels["org.opencontainers.image.version"]
    upstream = label.split(":")[-1].split("-")[0].split("+")[0]  # 2:22.0.2-0+deb12u6 -> 22.0.2
    assert upstream in out.decode(), f"{name}: {label} not in {out.decode()!r}"


@pytest.mark.parametrize("name", sorted(STARTS))
def test_service_starts_and_passes_its_healthcheck(built, engine_client, tmp_path, name):
    spec = STARTS[name]
    volumes = {}
    for filename, text in spec.get("files", {}).items():
        path = tmp_path / filename
        path.write_text(text)
        path.chmod(0o644)
        volumes[str(path)] = {"bind": f"{DEFS[name].config}/{filename}", "mode": "ro"}
    healthcheck = {"test": ["CMD", *DEFS[name].healthcheck], "interval": 1_000_000_000, "retries": 3}
    kwargs = {"command": spec["command"]} if "command" in spec else {}
    container = engine_client.containers.run(
        built[name],
        detach=True,
        volumes=volumes,
        healthcheck=healthcheck,
        name=f"sovstack-test-{name}",
        **kwargs,
    )
    try:
        deadline = time.monotonic() + 120
        status = "starting"
        while time.monotonic() < deadline:
            container.reload()
            if container.status != "running":
                break
            status = container.attrs["State"]["Health"]["Status"]
            if status == "healthy":
                break
            time.sleep(1)
        assert status == "healthy", (
            f"{name}: {container.status} {status}\n{container.logs()[-2000:].decode()}"
        )
        uid = container.exec_run(["id", "-un"]).output.decode().strip()
        assert uid == DEFS[name].user
    finally:
        container.remove(force=True)


def test_second_build_rebuilds_nothing(built, engine_client):
    ids = {name: engine_client.images.get(tag).id for name, tag in built.items()}
    proc = sovstack("images", "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 built, {len(DEFS)} up to date" in proc.stdout
    assert {name: engine_client.images.get(tag).id for name, tag in built.items()} == ids


def test_build_names_an_unknown_image_and_builds_nothing(built):
    proc = sovstack("images", "build", "--only", "keystone,kestone")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "sovstack: error: unknown image 'kestone' (did you mean 'keystone'?): see images/images.yml"
    )


def test_build_names_an_unreachable_apt_source(built):
    source = "deb http://127.0.0.1:9/debian bookworm main"
    proc = sovstack("images", "build", "--only", "memcached", "--apt-source", source)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"sovstack: error: apt source {source!r} is unreachable: ")
    assert "building" not in proc.stdout


@pytest.fixture(scope="module")
def pushed(images_pushed, built, sovstack_home):
    """The whole set pushed to the registry on node1 of the docker rig."""
    rig, proc = images_pushed
    return rig, Lock.load(sovstack_home / "images" / "images.lock.yml"), proc


def test_lock_pins_every_image_as_the_registry_holds_it(pushed, built, sovstack_home):
    rig, lock, _ = pushed
    assert lock.registry == rig.registry
    assert sorted(lock.images) == sorted(DEFS)
    assert lock.suite == images.DEFAULT_SUITE
    assert yaml.safe_load((sovstack_home / "images" / "images.lock.yml").read_text())["suite"] == "trixie"
    registry = Registry(rig.registry, insecure=True)
    for name, entry in lock.images.items():
        assert entry["image"] == f"{rig.registry}/sovstack/{name}@{entry['digest']}"
        assert registry.manifest_digest(f"sovstack/{name}", entry["tag"]) == entry["digest"]
        assert built[name].endswith(":" + entry["tag"])
    verify = sovstack("images", "verify", "--insecure")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_sbom_lists_every_package_with_its_version(pushed, built, engine_client, sovstack_home):
    _, lock, _ = pushed
    sbom = json.loads((sovstack_home / "images" / "sbom" / "keystone.spdx.json").read_text())
    assert sbom["spdxVersion"] == "SPDX-2.3"
    versions = {p["name"]: p["versionInfo"] for p in sbom["packages"]}
    label = engine_client.images.get(built["keystone"]).labels["org.opencontainers.image.version"]
    assert versions["keystone"] == label
    assert label.startswith("2:27."), label  # keystone of OpenStack 2025.1
    assert sbom["creationInfo"]["comment"] == "built from Debian trixie"
    purls = [p["externalRefs"][0]["referenceLocator"] for p in sbom["packages"]]
    assert all(purl.endswith("&distro=trixie") for purl in purls), purls[:3]
    dpkg = engine_client.containers.run(
        built["keystone"], ["dpkg-query", "-W", "-f", "${Package} ${Version}\n"], remove=True
    )
    assert dict(line.split(" ", 1) for line in dpkg.decode().splitlines()) == versions
    assert lock.images["keystone"]["version"] == label
    assert lock.images["keystone"]["package"] == "keystone"
    assert lock.images["keystone"]["suite"] == "trixie"


def test_second_push_sends_nothing(pushed, sovstack_home):
    rig, lock, _ = pushed
    proc = sovstack(
        "images", "push", "--registry", rig.registry, "--insecure", "--only", "keystone,memcached"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    digest = lock.images["keystone"]["digest"]
    assert f"push keystone: up to date in {rig.registry} ({digest[:19]}...)" in proc.stdout
    assert "saved" not in proc.stdout
    assert Lock.load(sovstack_home / "images" / "images.lock.yml") == lock


def test_push_over_tls_with_a_login(pushed, tmp_path):
    """node1:4001 is the registry role with TLS (a CA of its own) and an htpasswd login."""
    rig, lock, _ = pushed
    ca = tmp_path / "ca.crt"
    ca.write_text(rig.host("node1").file("/root/registry-test/ca.crt").content_string)
    address = f"{rig.hosts['node1']}:4001"
    target = tmp_path / "tls" / "images.lock.yml"
    args = ["images", "push", "--registry", address, "--only", "memcached", "--lock", str(target)]
    login = {"SOVSTACK_REGISTRY_USER": "sovstack", "SOVSTACK_REGISTRY_PASSWORD": "s3cret-test"}

    proc = sovstack(*args, env=login)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"sovstack: error: registry {address}: TLS failed (")
    assert proc.stderr.strip().endswith("give its CA with --registry-ca")
    proc = sovstack(
        *args, "--registry-ca", str(ca), env={"SOVSTACK_REGISTRY_USER": "", "SOVSTACK_REGISTRY_PASSWORD": ""}
    )
    assert proc.stderr.strip() == (
        f"sovstack: error: registry {address} wants a login:"
        " set SOVSTACK_REGISTRY_USER and SOVSTACK_REGISTRY_PASSWORD"
    )
    proc = sovstack(*args, "--registry-ca", str(ca), env={**login, "SOVSTACK_REGISTRY_PASSWORD": "wrong"})
    assert proc.stderr.strip() == f"sovstack: error: registry {address} refused the login"

    proc = sovstack(*args, "--registry-ca", str(ca), env=login)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "s3cret-test" not in proc.stdout + proc.stderr
    # the same image has the same digest in every registry
    assert Lock.load(target).images["memcached"]["digest"] == lock.images["memcached"]["digest"]
    verify = sovstack("images", "verify", "--lock", str(target), "--registry-ca", str(ca), env=login)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_verify_names_the_image_whose_digest_the_registry_lacks(pushed, sovstack_home, tmp_path):
    lock = Lock.load(sovstack_home / "images" / "images.lock.yml")
    wrong = "sha256:" + "0" * 64
    lock.images["keystone"]["digest"] = wrong
    path = tmp_path / "images.lock.yml"
    lock.dump(path)
    proc = sovstack("images", "verify", "--insecure", "--lock", str(path))
    assert proc.returncode == 1
    assert f"  keystone: {wrong} is not in {lock.registry}/sovstack/keystone" in proc.stderr


def pull_and_run(rig, entry: dict[str, str]) -> None:
    """A rig host pulls an image by its pinned digest and runs it until healthy (in a network
    namespace of its own: the deploy's services hold ports on the host's)."""
    engine = {"engine": rig.engine}
    result = run_module(rig, "sovstack.cloud.image", {"name": entry["image"], **engine}, host="node2")
    assert result["status"] == "CHANGED", result
    assert result["digest"] == entry["digest"]
    container = {"name": "pinned_image", "image": entry["image"], **engine}
    result = run_module(rig, "sovstack.cloud.container", {**container, "state": "healthy"}, host="node2")
    assert result["status"] == "CHANGED", result
    gone = run_module(rig, "sovstack.cloud.container", {**container, "state": "absent"}, host="node2")
    assert gone["status"] == "CHANGED", gone
    gone = run_module(
        rig, "sovstack.cloud.image", {"name": entry["image"], "state": "absent", **engine}, host="node2"
    )
    assert gone["status"] == "CHANGED", gone


def test_docker_host_pulls_by_the_pinned_digest(pushed):
    rig, lock, _ = pushed
    # not an image the deploy (test_deploy) runs on this rig: the pull is a new one
    pull_and_run(rig, lock.images["registry"])


def test_export_and_import_carry_images_with_the_same_digests(pushed, engines_prepared, tmp_path):
    """Export from this machine, import into the podman rig's registry (a site of its own):
    the digests are the same, and a podman host pulls by them. Two images (the whole set would
    be 3.6 GB, twice on this disk: the archive and the registry)."""
    _, lock, _ = pushed
    target = tmp_path / "cloud.tar"
    proc = sovstack("images", "export", str(target), "--only", "memcached,nova-compute")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    podman_rig = engines_prepared["podman"]
    imported_lock = tmp_path / "site" / "images.lock.yml"
    args = ["images", "import", str(target), "--registry", podman_rig.registry, "--insecure"]
    proc = sovstack(*args, "--lock", str(imported_lock))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = Lock.load(imported_lock)
    assert site.registry == podman_rig.registry
    assert sorted(site.images) == ["memcached", "nova-compute"]
    assert {n: e["digest"] for n, e in site.images.items()} == {
        n: lock.images[n]["digest"] for n in site.images
    }
    assert (imported_lock.parent / "sbom" / "nova-compute.spdx.json").is_file()
    pull_and_run(podman_rig, site.images["memcached"])


def test_import_refuses_a_damaged_export(pushed, tmp_path):
    """An export whose lock does not match its images stops before anything is pushed."""
    source = tmp_path / "small.tar"
    proc = sovstack("images", "export", str(source), "--only", "memcached")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(source) as old, tarfile.open(damaged, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member) if member.isfile() else None
            if member.name == "sovstack/images.lock.yml":
                text = yaml.safe_load(data.read())
                text["images"]["memcached"]["digest"] = "sha256:" + "1" * 64
                raw = yaml.safe_dump(text).encode()
                member.size = len(raw)
                data = io.BytesIO(raw)
            new.addfile(member, data)
    proc = sovstack("images", "import", str(damaged), "--registry", pushed[0].registry, "--insecure")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"sovstack: error: {damaged}: image memcached does not match its lock entry sha256:{'1' * 64}: "
        "the file is damaged"
    )


def test_registry_role_second_run_changes_nothing(engines_prepared):
    """prepare_engines ran the registry role twice on node1 (plain, and TLS with a login)."""
    for engine, proc in run_playbooks(engines_prepared, PLAYBOOKS / "registries.yml").items():
        assert proc.returncode == 0, f"{engine}:\n{proc.stdout}\n{proc.stderr}"
        assert re.search(r"\nnode1\s+: ok=\d+\s+changed=0\s", proc.stdout), proc.stdout


def test_push_names_an_unreachable_registry(built):
    proc = sovstack("images", "push", "--registry", "127.0.0.1:9", "--insecure", "--only", "memcached")
    assert proc.returncode == 1
    assert proc.stderr.startswith("sovstack: error: registry 127.0.0.1:9 is unreachable: ")


def test_prechecks_pass_with_the_lock_and_name_missing_or_wrong_entries(pushed, sovstack_home, tmp_path):
    rig, _, _ = pushed
    lock_file = sovstack_home / "images" / "images.lock.yml"
    registry = ["-e", f"sovstack_registry={rig.registry}", "-e", "sovstack_registry_insecure=true"]
    proc = sovstack(
        "prechecks", "-i", str(rig.inventory), *registry, "-e", f"sovstack_images_lock={lock_file}"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    broken = Lock.load(lock_file)
    del broken.images["keystone"]
    wrong = "sha256:" + "2" * 64
    broken.images["memcached"]["digest"] = wrong
    path = tmp_path / "images.lock.yml"
    broken.dump(path)
    proc = sovstack("prechecks", "-i", str(rig.inventory), *registry, "-e", f"sovstack_images_lock={path}")
    assert proc.returncode == 1, proc.stdout
    assert (
        f"image keystone: no entry in the image lock {path}: build and push it "
        "(sovstack images build --only keystone --push)" in proc.stdout
    )
    assert (
        f"image memcached: {wrong} (image lock {path}) is not in the registry {rig.registry} (" in proc.stdout
    )


def test_rebuild_builds_again_and_the_children_follow_their_new_parent(built, engine_client):
    """--rebuild takes in the mirror's updates: the base is made again from a fresh debootstrap
    under the same tag; then an image built on the old base is stale and builds again, once.
    Last in this file: the rest of the family stays on the old base until its next build."""
    old_base = engine_client.images.get(built["base"]).id
    old_memcached = engine_client.images.get(built["memcached"]).id
    proc = sovstack("images", "build", "--only", "base", "--rebuild")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "images: debootstrap " in proc.stdout
    assert "1 built, 0 up to date" in proc.stdout
    new_base = engine_client.images.get(built["base"]).id
    assert new_base != old_base

    proc = sovstack("images", "build", "--only", "memcached")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 built, 1 up to date" in proc.stdout
    assert engine_client.images.get(built["memcached"]).attrs["Parent"] == new_base
    # the image it replaced is gone (the old base stays: the rest of the family stands on it)
    assert "images: removed 1 image(s) that a rebuild replaced" in proc.stdout
    with pytest.raises(docker.errors.ImageNotFound):
        engine_client.images.get(old_memcached)
    assert engine_client.images.get(old_base).id == old_base
    proc = sovstack("images", "build", "--only", "memcached")
    assert "0 built, 2 up to date" in proc.stdout, proc.stdout + proc.stderr


# The control plane's images (what the catalog's services run, and the registry), with their
# parents: what a Debian 12 cloud needs to be patched.
CONTROL_PLANE = sorted({*catalog.images(CATALOG, list(CATALOG)), "registry"})


def test_bookworm_still_builds_the_control_plane_under_tags_of_its_own(
    built, engine_client, sovstack_home, tmp_path
):
    """`--suite bookworm` (Debian 12, OpenStack Zed) builds in a home of its own, so that this
    run's built set (trixie's, which push and export take) stays as it is."""
    home = tmp_path / "bookworm-home"
    proc = sovstack(
        "images",
        "build",
        "--suite",
        "bookworm",
        "--only",
        ",".join(CONTROL_PLANE),
        env={"SOVSTACK_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"from {images.release('bookworm')}" in proc.stdout
    theirs = images.read_built(home / "images" / "built.json")
    assert theirs is not None and theirs["suite"] == "bookworm"
    assert set(CONTROL_PLANE) <= set(theirs["images"])
    for name, tag in theirs["images"].items():
        assert tag.startswith(f"sovstack/{name}:bookworm-"), tag
        image = engine_client.images.get(tag)
        assert image.labels["sovstack.image.suite"] == "bookworm"
        # the same definition of another suite: another tag, another image
        assert tag != built[name]
        assert image.id != engine_client.images.get(built[name]).id
    versions = {
        name: engine_client.images.get(theirs["images"][name]).labels["org.opencontainers.image.version"]
        for name in ("keystone", "mariadb", "rabbitmq")
    }
    assert versions["keystone"].startswith("2:22."), versions  # Zed
    assert versions["mariadb"].startswith("1:10.11."), versions
    assert versions["rabbitmq"].startswith("3.10."), versions
    # this run's built set is still trixie's
    assert images.read_built(sovstack_home / "images" / "built.json")["suite"] == "trixie"
    # the disk is this machine's tightest resource: the bookworm set goes again
    for name in sorted(theirs["images"], key=lambda n: -len(images.ancestry(DEFS, n))):  # children first
        engine_client.images.remove(theirs["images"][name])
