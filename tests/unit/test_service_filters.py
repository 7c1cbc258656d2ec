"""The service engine's filters, and the secrets every role declares."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.sovstack.cloud.plugins.filter import config

from tests.conftest import REPO

CONF = "[DEFAULT]\ndebug = false\n\n[token]\nexpiration = 3600\nprovider = fernet\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_ini_overrides_merge_option_by_option_most_specific_last(tmp_path: Path):
    write(tmp_path / "keystone" / "keystone.conf", "[token]\nexpiration = 7200\n[cache]\nenabled = true\n")
    write(tmp_path / "keystone" / "control" / "keystone.conf", "[DEFAULT]\ndebug = true\n")
    write(tmp_path / "keystone" / "node2" / "keystone.conf", "[token]\nexpiration = 60\n")
    args = (str(tmp_path), "keystone", "keystone.conf")
    node1 = config.config_merge(CONF, *args, "node1", ["control"], "ini")
    node2 = config.config_merge(CONF, *args, "node2", ["control"], "ini")
    assert node1 == (
        "[DEFAULT]\ndebug = true\n\n"
        "[token]\nexpiration = 7200\nprovider = fernet\n\n"
        "[cache]\nenabled = true\n\n"
    )
    assert "expiration = 60\n" in node2 and "provider = fernet" in node2
    assert config.config_merge(CONF, *args, "node3", ["compute"], "ini").startswith(
        "[DEFAULT]\ndebug = false"
    )


def test_text_files_are_replaced_and_no_override_changes_nothing(tmp_path: Path):
    assert config.config_merge("a\n", str(tmp_path), "haproxy", "haproxy.cfg", "n", ["control"]) == "a\n"
    write(tmp_path / "haproxy" / "haproxy.cfg", "mine\n")
    assert config.config_merge("a\n", str(tmp_path), "haproxy", "haproxy.cfg", "n", ["control"]) == "mine\n"


def test_override_that_matches_nothing_is_named(tmp_path: Path):
    write(tmp_path / "keystone" / "keystone.conf", "")
    write(tmp_path / "keystone" / "keystone.cnf", "")
    write(tmp_path / "keystone" / "nodee1" / "keystone.conf", "")
    write(tmp_path / "keystonee" / "keystone.conf", "")
    services = {"keystone": ["keystone.conf", "keystone-uwsgi.ini"], "mariadb": ["my.cnf"]}
    assert config.override_problems(str(tmp_path), services, ["control", "node1"]) == [
        f"{tmp_path}/keystone/keystone.cnf: keystone has no file 'keystone.cnf';"
        " its files: keystone.conf, keystone-uwsgi.ini",
        f"{tmp_path}/keystone/nodee1: no group or host 'nodee1' in the inventory",
        f"{tmp_path}/keystonee: no service 'keystonee'; known: keystone, mariadb",
    ]
    assert len(config.override_problems(str(tmp_path), services, ["control"], only="keystone")) == 2
    assert config.override_problems(str(tmp_path / "none"), services, []) == []


def test_locked_image_by_digest_and_a_missing_entry_named(tmp_path: Path):
    lock = tmp_path / "images.lock.yml"
    lock.write_text(
        yaml.safe_dump(
            {
                "registry": "r:4000",
                "namespace": "sovstack",
                "images": {"keystone": {"digest": "sha256:" + "a" * 64}},
            }
        )
    )
    assert config.locked_image(str(lock), "keystone") == f"r:4000/sovstack/keystone@sha256:{'a' * 64}"
    with pytest.raises(
        AnsibleFilterError, match=r"image mariadb: no entry in the image lock .*--only mariadb --push"
    ):
        config.locked_image(str(lock), "mariadb")
    with pytest.raises(AnsibleFilterError, match="cannot read the image lock"):
        config.locked_image(str(tmp_path / "none.yml"), "keystone")


def test_rabbitmq_hash_is_rabbits_sha256_and_stable():
    first = config.rabbitmq_password_hash("s3cret", "openstack")
    assert first == config.rabbitmq_password_hash("s3cret", "openstack")
    assert first != config.rabbitmq_password_hash("s3cret", "other")
    raw = base64.b64decode(first)
    assert raw[4:] == hashlib.sha256(raw[:4] + b"s3cret").digest()


def test_repeated_options_survive_the_merge_and_an_override_sets_all_of_them(tmp_path: Path):
    """oslo's MultiStrOpt: a key may repeat. The rendered file's repeats are kept; an override
    that names the key replaces all of them with its own (repeats included); a bare key
    (MariaDB's flags) stays a bare key."""
    rendered = (
        "# managed\n[DEFAULT]\ntransport_url = rabbit://a\ntransport_url = rabbit://b\ndebug = false\n"
        "[mysqld]\nskip-name-resolve\n[filter]\nx = 1\n  continued\n"
    )
    write(tmp_path / "nova" / "nova.conf", "[DEFAULT]\ndebug = true\n[pci]\nalias = {a}\nalias = {b}\n")
    args = (str(tmp_path), "nova", "nova.conf")
    assert config.config_merge(rendered, *args, "node1", ["compute"], "ini") == (
        "[DEFAULT]\ntransport_url = rabbit://a\ntransport_url = rabbit://b\ndebug = true\n\n"
        "[mysqld]\nskip-name-resolve\n\n[filter]\nx = 1\ncontinued\n\n"
        "[pci]\nalias = {a}\nalias = {b}\n\n"
    )
    write(tmp_path / "nova" / "node1" / "nova.conf", "[DEFAULT]\ntransport_url = rabbit://c\n")
    merged = config.config_merge(rendered, *args, "node1", ["compute"], "ini")
    assert merged.startswith("[DEFAULT]\ntransport_url = rabbit://c\ndebug = true\n\n")
    write(tmp_path / "nova" / "node2" / "nova.conf", "debug = true\n")
    with pytest.raises(AnsibleFilterError, match=r"nova\.conf: line 1: 'debug = true' comes before"):
        config.config_merge(rendered, *args, "node2", ["compute"], "ini")


def test_every_secret_is_a_no_log_option_of_its_role_and_back():
    from sovstack import secrets

    spec = secrets.load_spec()
    declared = {}
    for path in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        options = yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
        for name, option in options.items():
            if option.get("no_log") and option.get("required"):
                declared[name] = path.parts[-3]
    assert declared == {name: entry.role for name, entry in spec.items()}


def test_inventory_with_an_override_that_matches_nothing_is_refused(tmp_path: Path):
    from sovstack.errors import SovstackError
    from sovstack.inventory import check_inventory

    (tmp_path / "topology.yml").write_text((REPO / "inventories" / "aio" / "topology.yml").read_text())
    write(tmp_path / "overrides" / "keystone" / "control" / "keystone.conf", "[token]\nexpiration = 60\n")
    check_inventory(tmp_path)  # a group of the topology, a file of keystone: fine
    write(tmp_path / "overrides" / "keystone" / "aio2" / "keystone.conf", "")
    write(tmp_path / "overrides" / "mariadb" / "my.conf", "")
    with pytest.raises(SovstackError) as err:
        check_inventory(tmp_path)
    assert str(err.value).splitlines()[1:] == [
        f"  {tmp_path}/overrides/keystone/aio2: no group or host 'aio2' in the inventory",
        f"  {tmp_path}/overrides/mariadb/my.conf: mariadb has no file 'my.conf'; its files: my.cnf",
    ]


def test_service_containers_mount_the_files_and_keep_the_engines_defaults(tmp_path: Path):
    """A definition as the module service_host takes it: the locked image, the files' directory
    mounted read-only and listed for the config hash, and the engine's defaults unless given."""
    from ansible_collections.sovstack.cloud.plugins.filter import catalog as filters

    lock = tmp_path / "images.lock.yml"
    lock.write_text(
        yaml.safe_dump({"registry": "r:4000", "images": {"keystone": {"digest": "sha256:" + "b" * 64}}})
    )
    here = [
        {
            "name": "keystone",
            "image": "keystone",
            "group": "control",
            "uid": 42401,
            "config_path": "/etc/keystone",
            "files": [
                {"src": "keystone.conf.j2", "dest": "keystone.conf"},
                {"src": "w.j2", "dest": "wsgi.conf"},
            ],
            "volumes": ["/var/lib/sovstack/keystone:/var/lib/keystone"],
            "healthcheck": {"test": "true"},
        },
        {"name": "job", "image": "keystone", "group": "control", "cap_drop": [], "network_mode": "none"},
    ]
    first, second = filters.service_containers(here, "/etc/sovstack", str(lock))
    assert first == {
        "name": "keystone",
        "image": f"r:4000/sovstack/keystone@sha256:{'b' * 64}",
        "network_mode": "host",
        "volumes": [
            "/etc/sovstack/keystone:/etc/keystone:ro",
            "/var/lib/sovstack/keystone:/var/lib/keystone",
        ],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "restart_policy": "unless-stopped",
        "config_files": ["/etc/sovstack/keystone/keystone.conf", "/etc/sovstack/keystone/wsgi.conf"],
        "healthcheck": {"test": "true"},
    }
    assert (second["volumes"], second["config_files"], second["cap_drop"]) == ([], [], [])
    assert second["network_mode"] == "none"


def test_service_files_and_their_overrides_in_one_pass(tmp_path: Path):
    """Every file of a host's containers, each merged with the overrides of its own name."""
    from ansible_collections.sovstack.cloud.plugins.filter import catalog as filters

    here = [
        {
            "name": "keystone",
            "uid": 42401,
            "files": [{"src": "k.j2", "dest": "keystone.conf", "format": "ini"}],
        },
        {"name": "cron", "files": [{"src": "c.j2", "dest": "crontab", "mode": "0600"}]},
    ]
    files = filters.service_files(here, "/etc/sovstack")
    assert [(f["path"], f["group"], f["mode"], f["format"]) for f in files] == [
        ("/etc/sovstack/keystone/keystone.conf", "42401", "0640", "ini"),
        ("/etc/sovstack/cron/crontab", "0", "0600", "text"),
    ]
    write(tmp_path / "keystone" / "keystone.conf", "[token]\nexpiration = 7200\n")
    write(tmp_path / "keystone" / "crontab", "* * * * * true\n")
    merged = config.config_merge_files(
        [CONF, "old\n"], files, str(tmp_path), "keystone", "node1", ["control"]
    )
    assert "expiration = 7200" in merged[0] and "provider = fernet" in merged[0]
    assert merged[1] == "* * * * * true\n"
    with pytest.raises(AnsibleFilterError, match="1 rendered files for 2 files"):
        config.config_merge_files([CONF], files, str(tmp_path), "keystone", "node1", [])
