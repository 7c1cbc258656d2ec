"""Image definitions, their hashes and the lock file, without building anything."""

from __future__ import annotations

import http.server
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from sovstack import images
from sovstack.errors import SovstackError
from sovstack.registry import Lock

DEFS = images.load_definitions()
OPTIONS = images.BuildOptions.make(None, None, "http://deb.debian.org/debian")
FILES = images.definitions_path().parent / "files"


def test_the_family_has_every_service_the_cloud_runs():
    services = {name for name, image in DEFS.items() if not image.abstract}
    assert {
        "mariadb", "rabbitmq", "memcached", "haproxy", "keepalived", "keystone", "glance-api",
        "placement-api", "nova-api", "nova-conductor", "nova-scheduler", "nova-novncproxy",
        "nova-compute", "nova-libvirt", "neutron-server", "ovn-northd", "ovn-nb-db", "ovn-sb-db",
        "ovn-controller", "openvswitch-db", "openvswitch-vswitchd", "ceph", "cinder-api",
        "cinder-scheduler", "cinder-volume", "horizon", "toolbox", "registry",
    } <= services  # fmt: skip
    for name in services:
        assert DEFS[name].command and DEFS[name].healthcheck and DEFS[name].version, name
        assert images.ancestry(DEFS, name)[0] == "base"


def test_only_adds_the_parents_in_build_order():
    assert images.select(DEFS, ["keystone"]) == ["base", "openstack-base", "keystone"]
    assert images.select(DEFS, ["nova-api", "memcached"]) == [
        "base", "memcached", "openstack-base", "nova-base", "nova-api"
    ]  # fmt: skip


def test_unknown_image_is_named_with_a_suggestion():
    with pytest.raises(SovstackError, match=r"^unknown image 'kestone' \(did you mean 'keystone'\?\)"):
        images.select(DEFS, ["kestone"])


def test_a_change_rebuilds_the_image_and_its_children_only():
    before = images.definition_hashes(DEFS, OPTIONS, FILES)
    changed = dict(DEFS)
    changed["nova-base"] = replace(DEFS["nova-base"], packages=(*DEFS["nova-base"].packages, "less"))
    after = images.definition_hashes(changed, OPTIONS, FILES)
    differ = {name for name in DEFS if before[name] != after[name]}
    assert differ == {name for name in DEFS if "nova-base" in images.ancestry(DEFS, name)}
    assert differ == {
        "nova-base",
        "nova-api",
        "nova-conductor",
        "nova-scheduler",
        "nova-novncproxy",
        "nova-compute",
    }
    assert images.definition_hashes(DEFS, OPTIONS, FILES) == before  # stable


def test_another_suite_or_source_rebuilds_everything():
    before = images.definition_hashes(DEFS, OPTIONS, FILES)
    other = images.BuildOptions.make(None, ["deb http://mirror.example/debian bookworm main"], "unused")
    after = images.definition_hashes(DEFS, other, FILES)
    assert all(before[name] != after[name] for name in DEFS)
    assert other.mirror == "http://mirror.example/debian"


def test_files_are_part_of_the_definition(tmp_path):
    root = tmp_path / "files"
    (root / "ceph").mkdir(parents=True)
    (root / "ceph" / "start").write_text("one")
    first = images.definition_hashes(DEFS, OPTIONS, root)
    (root / "ceph" / "start").write_text("two")
    second = images.definition_hashes(DEFS, OPTIONS, root)
    assert {n for n in DEFS if first[n] != second[n]} == {"ceph"}


def test_default_sources_are_the_suite_its_updates_and_security():
    assert OPTIONS.suite == images.DEFAULT_SUITE == "trixie"
    assert [s.line for s in OPTIONS.apt_sources] == [
        "deb http://deb.debian.org/debian trixie main",
        "deb http://deb.debian.org/debian trixie-updates main",
        "deb http://deb.debian.org/debian-security trixie-security main",
    ]
    bookworm = images.BuildOptions.make("bookworm", None, "http://deb.debian.org/debian")
    assert bookworm.apt_sources[0].line == "deb http://deb.debian.org/debian bookworm main"
    # sources without --suite name it
    assert (
        images.BuildOptions.make(None, ["deb http://m.example/debian bookworm main"], "x").suite == "bookworm"
    )
    with pytest.raises(SovstackError, match=r"^--suite 'Trixie;' is not a Debian suite name"):
        images.BuildOptions.make("Trixie;", None, "http://deb.debian.org/debian")


def test_the_suite_is_in_every_tag_and_two_suites_share_none():
    bookworm = images.BuildOptions.make("bookworm", None, "http://deb.debian.org/debian")
    ours = images.definition_hashes(DEFS, OPTIONS, FILES)
    theirs = images.definition_hashes(DEFS, bookworm, FILES)
    assert (
        images.tag_of("keystone", ours["keystone"], "trixie")
        == f"sovstack/keystone:trixie-{ours['keystone']}"
    )
    assert not {images.tag_of(n, ours[n], "trixie") for n in DEFS} & {
        images.tag_of(n, theirs[n], "bookworm") for n in DEFS
    }


def test_a_build_of_another_suite_starts_a_new_built_set(tmp_path):
    said: list[str] = []
    images.record_built(
        tmp_path, "trixie", [images.Built("base", "sovstack/base:trixie-1", True)], said.append
    )
    images.record_built(
        tmp_path, "trixie", [images.Built("mariadb", "sovstack/mariadb:trixie-2", True)], said.append
    )
    assert said == []
    assert images.read_built(tmp_path / "built.json") == {
        "suite": "trixie",
        "images": {"base": "sovstack/base:trixie-1", "mariadb": "sovstack/mariadb:trixie-2"},
    }
    images.record_built(
        tmp_path, "bookworm", [images.Built("base", "sovstack/base:bookworm-3", True)], said.append
    )
    assert images.read_built(tmp_path / "built.json") == {
        "suite": "bookworm",
        "images": {"base": "sovstack/base:bookworm-3"},
    }
    assert said == ["images: the built set is now bookworm's (it was trixie's; those images stay)"]


def test_apt_source_with_options_and_a_bad_one():
    source = images.AptSource.parse(
        "deb [trusted=yes arch=amd64] http://repo.site/debian trixie main contrib"
    )
    assert (source.uri, source.suite) == ("http://repo.site/debian", "trixie")
    with pytest.raises(SovstackError, match=r"^apt source 'deb ftp://x bookworm main' is not `deb"):
        images.AptSource.parse("deb ftp://x bookworm main")


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


def test_unreachable_and_wrong_apt_sources_are_named():
    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = f"deb http://127.0.0.1:{server.server_port}/debian bookwurm main"
        with pytest.raises(SovstackError) as err:
            images.check_sources(images.BuildOptions.make(None, [line], "unused"))
        assert str(err.value) == (
            f"apt source {line!r}: http://127.0.0.1:{server.server_port}/debian/dists/bookwurm/Release "
            "answered 404: is 'bookwurm' a suite there?"
        )
    finally:
        server.shutdown()
    line = "deb http://127.0.0.1:9/debian bookworm main"
    with pytest.raises(SovstackError, match=r"^apt source .* is unreachable: "):
        images.check_sources(images.BuildOptions.make(None, [line], "unused"))


BROKEN = {
    "unknown key": (
        {"base": {"packages": [], "version": ["true"], "abstract": True, "pakages": []}},
        "images.base.pakages: unknown key (did you mean 'packages'?)",
    ),
    "missing parent": (
        {
            "base": {"version": ["true"], "abstract": True},
            "web": {"parent": "bsae", "command": ["x"], "healthcheck": ["x"], "version": ["x"]},
        },
        "images.web.parent: no image 'bsae' (did you mean 'base'?)",
    ),
    "no healthcheck": (
        {"base": {"version": ["true"], "command": ["sleep"]}},
        "images.base: a service image needs `command` and `healthcheck`",
    ),
    "two roots": (
        {"a": {"version": ["true"], "abstract": True}, "b": {"version": ["true"], "abstract": True}},
        "exactly one image has no parent (the debootstrap root), not ['a', 'b']",
    ),
    "loop": (
        {
            "base": {"version": ["true"], "abstract": True},
            "a": {"parent": "b", "version": ["true"], "abstract": True},
            "b": {"parent": "a", "version": ["true"], "abstract": True},
        },
        "images.a: its parents form a loop",
    ),
    "bad type": (
        {"base": {"version": "true", "abstract": True}},
        "images.base.version: expected a list",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_definitions_name_the_file_image_and_key(tmp_path: Path, case: str):
    data, message = BROKEN[case]
    path = tmp_path / "images.yml"
    path.write_text(yaml.safe_dump({"images": data}))
    with pytest.raises(SovstackError) as err:
        images.load_definitions(path)
    assert str(err.value) == f"{path}: {message}"


def test_lock_round_trip_and_bad_locks(tmp_path: Path):
    lock = Lock("10.0.0.1:5000", "sovstack", {"keystone": {"digest": "sha256:" + "a" * 64, "tag": "x"}})
    path = tmp_path / "images.lock.yml"
    lock.dump(path)
    assert Lock.load(path) == lock
    path.write_text("images:\n  keystone: {tag: x}\n")
    with pytest.raises(SovstackError, match=r"images.keystone: no `digest: sha256:...`$"):
        Lock.load(path)
    path.write_text("- not a lock\n")
    with pytest.raises(SovstackError, match=r"not a sovstack lock file"):
        Lock.load(path)


def test_registry_archive_is_written_again_only_for_another_image(tmp_path: Path):
    writes = []

    def write(path: Path) -> None:
        writes.append(path)
        path.write_text(str(len(writes)))

    images.registry_archive(tmp_path, "sovstack/registry:aa", "sha256:1", write)
    images.registry_archive(tmp_path, "sovstack/registry:aa", "sha256:1", write)
    assert len(writes) == 1
    images.registry_archive(tmp_path, "sovstack/registry:aa", "sha256:2", write)  # rebuilt, same tag
    images.registry_archive(tmp_path, "sovstack/registry:bb", "sha256:2", write)
    assert len(writes) == 3
    assert (tmp_path / "registry.tar.tag").read_text() == "sovstack/registry:bb sha256:2\n"
