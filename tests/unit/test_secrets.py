"""`sovstack secrets generate` and `merge`: every secret of meta/secrets.yml, strong random, in a
file only its owner reads, optionally vault-encrypted, merged without changing a value; no
secret's value ever printed."""

from __future__ import annotations

import base64
import stat
import struct
import time
import uuid
from pathlib import Path

import pytest
import yaml

from sovstack import secrets
from sovstack.errors import SovstackError
from sovstack.inventory import check_inventory
from tests.conftest import REPO, sovstack

SPEC = secrets.load_spec()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A directory inventory: the aio topology."""
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "topology.yml").write_text((REPO / "inventories" / "aio" / "topology.yml").read_text())
    return directory


@pytest.fixture
def password(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text("correct horse battery staple\n")
    return path


def values_of(path: Path, password: Path | None = None) -> dict[str, str]:
    return secrets.read(path, password).values


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def drop_key(path: Path, name: str) -> None:
    """Remove one secret's line from a plaintext secrets file, as if an older sovstack wrote it."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(f"{name}:")))


def test_the_spec_is_valid_and_names_its_roles():
    assert set(SPEC) >= {"database_root_password", "keepalived_password", "rabbitmq_erlang_cookie"}
    assert SPEC["keepalived_password"].length == 8
    assert SPEC["rabbitmq_erlang_cookie"].alphabet == "upper"
    assert all(spec.role and spec.description for spec in SPEC.values())


def test_the_documentation_lists_every_secret():
    text = (REPO / "docs" / "secrets.md").read_text()
    for name in SPEC:
        assert f"| `{name}` |" in text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{description: d}", "secrets.a_secret.length: missing: give the number of characters"),
        ("{length: 0}", "secrets.a_secret.length: 0 is not a positive number of characters"),
        ("{length: 8, alphabet: hex}", "secrets.a_secret.alphabet: 'hex' is unknown: use alnum or upper"),
        ("{length: 8, kind: key}", "secrets.a_secret.kind: 'key' is unknown: use password, ca, uuid, cephx"),
        ("{length: 8, size: 3}", "secrets.a_secret: give description, length, alphabet, kind"),
    ],
)
def test_a_broken_spec_names_file_and_key(tmp_path, entry, message):
    """The secrets are in the service catalog: a broken one is named by its entry's file and key."""
    path = tmp_path / "demo" / "meta" / "service.yml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "name: demo\nlayer: infrastructure\ncontainers: {demo: {image: demo, group: control}}\n"
        f"secrets:\n  a_secret: {entry}\n"
    )
    with pytest.raises(SovstackError) as err:
        secrets.load_spec(tmp_path)
    assert str(err.value).startswith(f"{path}: {message}")


def check_ca(value: str) -> None:
    """A CA of its own: its certificate (a CA's, self-signed) and its key, PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(value.encode())
    key = serialization.load_pem_private_key(value[value.index("-----BEGIN PRIVATE KEY") :].encode(), None)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.issuer == cert.subject
    assert cert.public_key() == key.public_key()


def check_fixed(kind: str, value: str) -> None:
    """A secret of a fixed form: a CA, a UUID, or a Ceph key as Ceph encodes it."""
    if kind == "ca":
        check_ca(value)
    elif kind == "uuid":
        assert str(uuid.UUID(value)) == value
    else:
        assert kind == "cephx"
        raw = base64.b64decode(value, validate=True)
        key_type, seconds, _, length = struct.unpack("<HIIH", raw[:12])
        assert (key_type, length, len(raw)) == (1, 16, 28)
        assert abs(seconds - time.time()) < 60


def test_the_catalog_has_secrets_of_every_kind():
    assert {spec.kind for spec in SPEC.values()} == set(secrets.KINDS)


def test_values_have_their_length_and_alphabet():
    for spec in SPEC.values():
        value = secrets.generate_value(spec)
        if spec.kind != "password":
            check_fixed(spec.kind, value)
            continue
        assert len(value) == spec.length
        assert set(value) <= set(secrets.ALPHABETS[spec.alphabet])
    cookie = secrets.generate_value(SPEC["rabbitmq_erlang_cookie"])
    assert cookie.isupper() and cookie.isalpha()


def test_the_file_sits_in_group_vars_all(tmp_path, inventory):
    assert secrets.secrets_path(inventory) == inventory / "group_vars" / "all" / "secrets.yml"
    topology = inventory / "topology.yml"
    assert secrets.secrets_path(topology) == inventory / "group_vars" / "all" / "secrets.yml"


def test_generate_writes_every_secret_private(inventory):
    names = secrets.generate(inventory)
    path = secrets.secrets_path(inventory)
    assert names == sorted(SPEC)
    values = values_of(path)
    assert list(values) == sorted(SPEC)
    for name, spec in SPEC.items():
        if spec.kind != "password":
            check_fixed(spec.kind, values[name])
            continue
        assert len(values[name]) == spec.length
        assert set(values[name]) <= set(secrets.ALPHABETS[spec.alphabet])
    assert len(set(values.values())) == len(values)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700
    assert path.read_text().startswith("# The cloud's secrets, written by `sovstack secrets generate`")
    assert [p.name for p in path.parent.iterdir()] == ["secrets.yml"]  # no temporary file left


def test_a_second_generate_is_refused(inventory):
    secrets.generate(inventory)
    path = secrets.secrets_path(inventory)
    before = path.read_bytes()
    with pytest.raises(SovstackError) as err:
        secrets.generate(inventory)
    assert str(err.value) == (
        f"{path} exists: run `sovstack secrets merge -i {inventory}` to add new keys; "
        "it never changes existing ones"
    )
    assert path.read_bytes() == before


def test_generate_needs_the_inventory(tmp_path):
    with pytest.raises(SovstackError, match=r"inventory .*/nowhere does not exist: pass -i"):
        secrets.generate(tmp_path / "nowhere")


def test_merge_adds_a_missing_key_and_keeps_the_rest(inventory):
    secrets.generate(inventory)
    path = secrets.secrets_path(inventory)
    with path.open("a") as out:
        out.write("# the operator's own\nmy_ldap_password: 'kept: as is'\n")
    drop_key(path, "keystone_admin_password")
    before = values_of(path)
    text_before = path.read_text()
    path.chmod(0o644)

    assert secrets.merge(inventory) == ["keystone_admin_password"]

    after = values_of(path)
    assert {k: v for k, v in after.items() if k != "keystone_admin_password"} == before
    assert after["my_ldap_password"] == "kept: as is"
    assert len(after["keystone_admin_password"]) == 32
    assert after["keystone_admin_password"] not in before.values()
    assert path.read_text().startswith(text_before)  # every existing line kept as it is
    assert mode(path) == 0o600


def test_merge_with_nothing_to_add_leaves_the_file_alone(inventory):
    secrets.generate(inventory)
    path = secrets.secrets_path(inventory)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert secrets.merge(inventory) == []
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_merge_keeps_vault_values_and_rewrites_a_flow_mapping(inventory):
    path = secrets.secrets_path(inventory)
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"database_root_password": "x"}, default_flow_style=True))
    added = secrets.merge(inventory)  # a flow mapping takes no appended block: written anew
    assert "database_root_password" not in added
    assert values_of(path)["database_root_password"] == "x"
    assert set(values_of(path)) == set(SPEC)

    path.write_text("keepalived_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6136\n")
    secrets.merge(inventory)
    kept = values_of(path)["keepalived_password"]
    assert isinstance(kept, secrets.VaultedValue)
    assert kept == "$ANSIBLE_VAULT;1.1;AES256\n6136\n"
    assert path.read_text().startswith("keepalived_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")


def test_merge_without_a_file_says_to_generate(inventory):
    with pytest.raises(SovstackError) as err:
        secrets.merge(inventory)
    assert str(err.value) == (
        f"{secrets.secrets_path(inventory)}: no secrets file: run `sovstack secrets generate -i {inventory}`"
    )


def test_vault_generate_and_merge(inventory, password):
    secrets.generate(inventory, password)
    path = secrets.secrets_path(inventory)
    raw = path.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;")
    values = values_of(path, password)
    assert set(values) == set(SPEC)
    for value in values.values():
        assert value not in raw
    assert "keystone" not in raw and "sovstack" not in raw

    plain = secrets.read(path, password).text
    path.write_bytes(secrets.encrypt(plain.replace("rabbitmq_password:", "x_removed:"), password))
    assert secrets.merge(inventory, password) == ["rabbitmq_password"]
    assert path.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    after = values_of(path, password)
    assert after["x_removed"] == values["rabbitmq_password"]
    assert {k: after[k] for k in values if k != "rabbitmq_password"} == {
        k: v for k, v in values.items() if k != "rabbitmq_password"
    }
    assert mode(path) == 0o600


def test_vault_password_from_the_environment_and_a_vault_id(inventory, password, monkeypatch):
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    path = secrets.secrets_path(inventory)
    path.parent.mkdir(parents=True)
    path.write_bytes(secrets.encrypt("database_root_password: x\n", None, vault_id="prod"))
    assert "database_root_password" not in secrets.merge(inventory)
    assert path.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    assert values_of(path)["database_root_password"] == "x"


def test_vault_wrong_password_shows_no_value(inventory, password, tmp_path):
    secrets.generate(inventory, password)
    path = secrets.secrets_path(inventory)
    values = values_of(path, password)
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    with pytest.raises(SovstackError) as err:
        secrets.merge(inventory, wrong)
    message = str(err.value)
    assert message == (
        f"{path}: the vault password from --vault-password-file {wrong} does not decrypt it: "
        "give the password file it was encrypted with"
    )
    assert not any(value in message for value in values.values())


def test_vault_file_without_a_password_names_the_option(inventory, password, monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    secrets.generate(inventory, password)
    path = secrets.secrets_path(inventory)
    with pytest.raises(SovstackError) as err:
        secrets.merge(inventory)
    assert str(err.value) == (
        f"{path} is encrypted with ansible-vault: give its password file with "
        "--vault-password-file FILE, or set ANSIBLE_VAULT_PASSWORD_FILE"
    )
    with pytest.raises(SovstackError, match=r"--vault-password-file .*/none: no such file"):
        secrets.merge(inventory, password.parent / "none")
    path.write_text("$ANSIBLE_VAULT;1.1\nxyz\n")
    with pytest.raises(SovstackError, match=r"secrets.yml: not a valid ansible-vault file"):
        secrets.merge(inventory, password)


def test_the_cli_prints_no_secret(inventory, password):
    proc = sovstack("secrets", "generate", "-i", str(inventory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    path = secrets.secrets_path(inventory)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"secrets: wrote {len(SPEC)} secrets to {path} (mode 0600)\n"
    drop_key(path, "keepalived_password")
    drop_key(path, "rabbitmq_password")
    merged = sovstack("secrets", "merge", "-i", str(inventory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == (
        f"secrets: added 2 (keepalived_password, rabbitmq_password) to {path}; "
        f"{len(SPEC) - 2} kept unchanged\n"
    )
    again = sovstack("secrets", "merge", "-i", str(inventory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    assert again.stdout == f"secrets: nothing to add; {path} has all {len(SPEC)}\n"
    refused = sovstack("secrets", "generate", "-i", str(inventory))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"sovstack: error: {path} exists: run `sovstack secrets merge")
    given = sovstack("secrets", "merge", "-i", str(inventory), "--vault-password-file", str(password))
    assert given.returncode == 0, given.stderr  # a plaintext file stays plaintext
    assert not path.read_text().startswith("$ANSIBLE_VAULT;")
    output = "".join(p.stdout + p.stderr for p in (proc, merged, again, refused, given))
    for value in values_of(path).values():
        assert value not in output


def test_the_cli_writes_a_vaulted_file(inventory, password):
    proc = sovstack("secrets", "generate", "-i", str(inventory), "--vault-password-file", str(password))
    assert proc.returncode == 0, proc.stderr
    path = secrets.secrets_path(inventory)
    assert path.read_text().startswith("$ANSIBLE_VAULT;")
    refused = sovstack("secrets", "merge", "-i", str(inventory), env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    assert refused.returncode == 1
    assert refused.stderr == (
        f"sovstack: error: {path} is encrypted with ansible-vault: give its password file with "
        "--vault-password-file FILE, or set ANSIBLE_VAULT_PASSWORD_FILE\n"
    )
    output = proc.stdout + proc.stderr + refused.stdout + refused.stderr
    for value in values_of(path, password).values():
        assert value not in output


def test_check_inventory_requires_the_secrets(inventory, monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    path = secrets.secrets_path(inventory)
    check_inventory(inventory)  # not required: no complaint
    with pytest.raises(SovstackError) as err:
        check_inventory(inventory, require_secrets=True)
    assert str(err.value).splitlines()[1:] == [
        f"  {path}: no secrets file: run `sovstack secrets generate -i {inventory}`"
    ]
    secrets.generate(inventory)
    check_inventory(inventory, require_secrets=True)
    for name in ("keystone_database_password", "database_root_password", "rabbitmq_password"):
        drop_key(path, name)
    drop_key(path, "keepalived_password")
    with path.open("a") as out:
        out.write("keepalived_password: ''\n")
    with pytest.raises(SovstackError) as err:
        check_inventory(inventory, require_secrets=True)
    merge = f"`sovstack secrets merge -i {inventory}`"
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{path}: keepalived_password: secret is empty: set it, or delete the key and run {merge}",
        f"{path}: database_root_password: secret missing: run {merge}",
        f"{path}: rabbitmq_password: secret missing: run {merge}",
        f"{path}: keystone_database_password: secret missing: run {merge}",
    ]


def test_check_inventory_knows_the_secrets_and_hides_their_values(inventory):
    secrets.generate(inventory)
    check_inventory(inventory)  # the secrets are known settings, though no role declares them yet
    path = secrets.secrets_path(inventory)
    drop_key(path, "database_root_password")
    with path.open("a") as out:
        out.write("database_root_password: 12345678\n")
    with pytest.raises(SovstackError) as err:
        check_inventory(inventory)
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{path}: database_root_password: <int value, not shown> is not a str"
    ]
    assert "12345678" not in str(err.value)


def test_check_inventory_with_a_vaulted_vars_file(inventory, password, monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    secrets.generate(inventory, password)
    (inventory / "group_vars" / "all" / "more.yml").write_bytes(
        secrets.encrypt("host_sysctl_extar: {}\n", password)
    )
    with pytest.raises(SovstackError) as err:  # no password: Ansible could not read them either
        check_inventory(inventory)
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{inventory}/group_vars/all/{name} is encrypted with ansible-vault: give its password file "
        "with --vault-password-file FILE, or set ANSIBLE_VAULT_PASSWORD_FILE"
        for name in ("more.yml", "secrets.yml")
    ]
    with pytest.raises(SovstackError) as err:
        check_inventory(inventory, vault_password_file=password)
    assert [line.strip() for line in str(err.value).splitlines()[1:]] == [
        f"{inventory}/group_vars/all/more.yml: host_sysctl_extar: unknown setting "
        "(did you mean 'host_sysctl_extra'?): remove it or fix its name"
    ]
    (inventory / "group_vars" / "all" / "more.yml").unlink()
    check_inventory(inventory, require_secrets=True, vault_password_file=password)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    check_inventory(inventory, require_secrets=True)
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE")
    with pytest.raises(SovstackError) as err:
        check_inventory(inventory, require_secrets=True)
    assert "is encrypted with ansible-vault: give its password file with --vault-password-file" in str(
        err.value
    )


def test_the_cli_refuses_a_missing_password_file(inventory, tmp_path):
    proc = sovstack("secrets", "generate", "-i", str(inventory), "--vault-password-file", str(tmp_path / "x"))
    assert proc.returncode == 1
    assert proc.stderr == f"sovstack: error: --vault-password-file {tmp_path / 'x'}: no such file\n"
    assert not secrets.secrets_path(inventory).exists()


def test_playbooks_get_the_vault_password_file_from_the_environment(inventory, password, sovstack_home):
    """$ANSIBLE_VAULT_PASSWORD_FILE decrypts for the checks and for Ansible: the run starts and
    reaches the host (a closed port here: unreachable), with no vault error."""
    topology = inventory / "topology.yml"
    topology.write_text(
        "plugin: sovstack.cloud.topology\nnetworks:\n  management: {cidr: 127.0.0.0/24}\n"
        "hosts:\n  node1: {address: 127.0.0.2, roles: [control, compute]}\nvars:\n  ansible_port: 1\n"
    )
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password)}
    refused = sovstack("prechecks", "-i", str(inventory), env=env)
    assert refused.returncode == 1
    assert "no secrets file" in refused.stderr
    secrets.generate(inventory, password)
    proc = sovstack("prechecks", "-i", str(inventory), env=env)
    assert proc.returncode == 1
    assert "invalid inventory" not in proc.stderr
    assert "node1: ok=0 changed=0 unreachable=1" in proc.stdout, proc.stdout
    assert "port 1: Connection refused" in proc.stdout
    assert "decrypt" not in proc.stdout + proc.stderr
