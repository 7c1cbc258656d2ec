"""The cloud's secrets: generated once into the inventory's group_vars/all/secrets.yml, merged
when a newer sovstack needs more, optionally encrypted as a whole with ansible-vault.

Nothing here ever prints, logs or puts a secret's value into an error message: only names,
counts and paths.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets as _random
import string
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovstack.errors import SovstackError
from sovstack.paths import collection_module, collection_root, inventory_dir

ALPHABETS = {"alnum": string.ascii_letters + string.digits, "upper": string.ascii_uppercase}
DEFAULT_ALPHABET = "alnum"
SPEC_FIELDS = ("role", "description", "length", "alphabet", "kind")
# password: `length` characters of `alphabet`; ca: a certificate authority of its own, its
# certificate and key in one PEM text (the internal CA that signs the VIP's certificate);
# uuid: a random UUID (Ceph's fsid, a libvirt secret's name); cephx: a Ceph key (base64 of
# its type, creation time and 16 random bytes, as `ceph-authtool --gen-print-key` makes it).
KINDS = ("password", "ca", "uuid", "cephx")
# The kinds whose form is fixed: no length, no alphabet.
FIXED_KINDS = ("ca", "uuid", "cephx")
CA_DAYS = 3650
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
VAULT_HEADER = "$ANSIBLE_VAULT;"
VAULT_FILE_OPTION = "--vault-password-file"
VAULT_FILE_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"
FILE_MODE = 0o600
DIR_MODE = 0o700
HEADER = """\
# The cloud's secrets, written by `sovstack secrets generate` (docs/secrets.md).
# Do not share this file, and never commit it unencrypted: it holds the cloud's passwords.
# Encrypt it as a whole with `ansible-vault encrypt --vault-password-file FILE PATH`, then
# give sovstack the same file: --vault-password-file FILE, or ANSIBLE_VAULT_PASSWORD_FILE.
# `sovstack secrets merge` adds the secrets a newer sovstack needs; it never changes a value.
"""
MERGE_MARK = "# added by `sovstack secrets merge`\n"


@dataclass(frozen=True)
class SecretSpec:
    """One secret of the service catalog (roles/NAME/meta/service.yml, `secrets`)."""

    name: str
    role: str
    description: str
    length: int
    alphabet: str = DEFAULT_ALPHABET
    kind: str = "password"


@dataclass(frozen=True)
class PasswordFile:
    """The vault password file, and where it was named (for error messages)."""

    path: Path
    origin: str


@dataclass(frozen=True)
class SecretsFile:
    """A secrets file as read: its plaintext YAML, its values, and its vault id when encrypted."""

    path: Path
    text: str
    values: dict[Any, Any]
    vault_id: str | None = None  # None: plaintext; "": encrypted, no vault id label; else the label

    @property
    def encrypted(self) -> bool:
        return self.vault_id is not None


# --- the spec ---------------------------------------------------------------------------


def roles_path() -> Path:
    return collection_root() / "roles"


def _spec_entry(path: Path, name: Any, entry: Any) -> SecretSpec:
    key = f"secrets.{name}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SovstackError(f"{path}: {key}: not a variable name: use lowercase letters, digits and '_'")
    if not isinstance(entry, dict):
        raise SovstackError(f"{path}: {key}: not a mapping: give role, description and length")
    unknown = sorted(set(entry) - set(SPEC_FIELDS), key=str)
    if unknown:
        raise SovstackError(f"{path}: {key}.{unknown[0]}: unknown field: use {', '.join(SPEC_FIELDS)}")
    kind = entry.get("kind", "password")
    if kind not in KINDS:
        raise SovstackError(f"{path}: {key}.kind: {kind!r} is unknown: use {', '.join(KINDS)}")
    length = entry.get("length", 0 if kind in FIXED_KINDS else None)
    if kind in FIXED_KINDS:
        pass
    elif length is None:
        raise SovstackError(f"{path}: {key}.length: missing: give the number of characters")
    elif not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise SovstackError(f"{path}: {key}.length: {length!r} is not a positive number of characters")
    alphabet = entry.get("alphabet", DEFAULT_ALPHABET)
    if alphabet not in ALPHABETS:
        raise SovstackError(f"{path}: {key}.alphabet: {alphabet!r} is unknown: use {' or '.join(ALPHABETS)}")
    role = entry.get("role")
    if not isinstance(role, str) or not role:
        raise SovstackError(f"{path}: {key}.role: missing: name the role whose option it is")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise SovstackError(f"{path}: {key}.description: not a string")
    return SecretSpec(name, role, description, length, alphabet, kind)


def load_spec(roles: Path | None = None) -> dict[str, SecretSpec]:
    """Every secret of the service catalog (each service's roles/NAME/meta/service.yml, or those
    under roles), checked, in the catalog's order; the role of each is its service."""
    catalog = collection_module("catalog")
    directory = roles or roles_path()
    try:
        entries = catalog.load(directory)
    except catalog.CatalogError as exc:
        raise SovstackError(f"{exc}: reinstall sovstack") from None
    spec = {}
    for service, entry in entries.items():
        path = directory / service / catalog.ENTRY
        for name, secret in entry["secrets"].items():
            spec[name] = _spec_entry(path, name, {**secret, "role": service})
    return spec


def make_ca(common_name: str = "sovstack internal CA") -> str:
    """A new certificate authority: its self-signed certificate and its key, PEM."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (cert.public_bytes(serialization.Encoding.PEM) + key_pem).decode()


def make_cephx_key() -> str:
    """A new Ceph key: 16 random bytes, made now (plugins/module_utils/cephx.py)."""
    cephx = collection_module("cephx")
    return cephx.encode(os.urandom(cephx.SECRET_BYTES), time.time_ns())


def generate_value(spec: SecretSpec) -> str:
    """A new value for the secret: spec.length characters of its alphabet, from the OS's CSPRNG
    (or, for a ca, a new certificate authority)."""
    if spec.kind == "ca":
        return make_ca()
    if spec.kind == "uuid":
        return str(uuid.uuid4())
    if spec.kind == "cephx":
        return make_cephx_key()
    alphabet = ALPHABETS[spec.alphabet]
    return "".join(_random.choice(alphabet) for _ in range(spec.length))


# --- where the file is --------------------------------------------------------------------


def secrets_path(inventory: Path) -> Path:
    """INVENTORY/group_vars/all/secrets.yml for a directory inventory; for an inventory file,
    group_vars/all/secrets.yml beside it (Ansible loads group_vars next to an inventory file)."""
    return inventory_dir(inventory) / "group_vars" / "all" / "secrets.yml"


def _existing_inventory(inventory: Path) -> Path:
    if not inventory.exists():
        raise SovstackError(f"inventory {inventory} does not exist: pass -i, or run `sovstack rig up`")
    return secrets_path(inventory)


# --- YAML that keeps Ansible's tags -------------------------------------------------------


class VaultedValue(str):
    """A value encrypted on its own (`!vault |`): kept as it is."""


class UnsafeValue(str):
    """A value marked `!unsafe` (no templating): kept as it is."""


class SecretsLoader(yaml.SafeLoader):
    """The YAML of a secrets file, with Ansible's !vault and !unsafe values."""


class SecretsDumper(yaml.SafeDumper):
    """Writes secrets, and Ansible's !vault and !unsafe values back with their tags."""


SecretsLoader.add_constructor("!vault", lambda loader, node: VaultedValue(loader.construct_scalar(node)))
SecretsLoader.add_constructor("!unsafe", lambda loader, node: UnsafeValue(loader.construct_scalar(node)))
SecretsDumper.add_representer(
    VaultedValue, lambda dumper, data: dumper.represent_scalar("!vault", str(data), style="|")
)
SecretsDumper.add_representer(UnsafeValue, lambda dumper, data: dumper.represent_scalar("!unsafe", str(data)))


def parse(path: Path, text: str) -> dict[Any, Any]:
    """The mapping of a secrets file; a YAML error names the line, never shows its text."""
    try:
        data = yaml.load(text, Loader=SecretsLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SovstackError(f"{path}: {where}YAML: {problem}: fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SovstackError(f"{path}: not a mapping of names to values: fix the file")
    return data


def _render(values: dict[Any, Any], sort: bool = True) -> str:
    return yaml.dump(
        values, Dumper=SecretsDumper, sort_keys=sort, default_flow_style=False, width=1000, allow_unicode=True
    )


# --- ansible-vault ----------------------------------------------------------------------


def password_file(explicit: Path | None = None) -> PasswordFile | None:
    """The vault password file: --vault-password-file, else $ANSIBLE_VAULT_PASSWORD_FILE."""
    if explicit is not None:
        return PasswordFile(Path(explicit), VAULT_FILE_OPTION)
    from_env = os.environ.get(VAULT_FILE_ENV)
    return PasswordFile(Path(from_env), VAULT_FILE_ENV) if from_env else None


def is_vaulted(data: str | bytes) -> bool:
    """A whole file encrypted by ansible-vault."""
    if isinstance(data, bytes):
        return data.startswith(VAULT_HEADER.encode())
    return data.startswith(VAULT_HEADER)


def _vault_secret(password: PasswordFile) -> Any:
    """The vault secret of the password file (a plain file, or a script Ansible would run)."""
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import get_file_vault_secret

    if not password.path.is_file():
        raise SovstackError(
            f"{password.origin} {password.path}: no such file: name the file that holds the vault password"
        )
    try:
        secret = get_file_vault_secret(filename=str(password.path), vault_id="default", loader=DataLoader())
        secret.load()
    except AnsibleError as exc:
        raise SovstackError(f"{password.origin} {password.path}: {exc.message}") from None
    return secret


def no_password(path: Path) -> SovstackError:
    return SovstackError(
        f"{path} is encrypted with ansible-vault: give its password file with "
        f"{VAULT_FILE_OPTION} FILE, or set {VAULT_FILE_ENV}"
    )


def decrypt(path: Path, data: bytes, vault_password_file: Path | None = None) -> tuple[str, str]:
    """The plaintext of a vault-encrypted file, and the vault id label of its envelope."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, parse_vaulttext_envelope

    password = password_file(vault_password_file)
    if password is None:
        raise no_password(path)
    secret = _vault_secret(password)
    try:
        _, version, _, label = parse_vaulttext_envelope(data.strip())
    except AnsibleError:
        raise SovstackError(f"{path}: not a valid ansible-vault file: restore it from a backup") from None
    try:
        plain = VaultLib([("default", secret)]).decrypt(data)
    except AnsibleError:
        raise SovstackError(
            f"{path}: the vault password from {password.origin} {password.path} does not decrypt it: "
            "give the password file it was encrypted with"
        ) from None
    vault_id = label if version == b"1.2" else ""  # 1.1 has no label
    try:
        return plain.decode(), vault_id
    except UnicodeDecodeError:
        raise SovstackError(f"{path}: its decrypted text is not UTF-8: fix the file") from None


def encrypt(text: str, vault_password_file: Path | None, vault_id: str = "") -> bytes:
    """text encrypted with the vault password (labelled with vault_id when there is one)."""
    from ansible.parsing.vault import VaultLib

    password = password_file(vault_password_file)
    if password is None:
        raise SovstackError(f"encrypting needs a vault password file: give {VAULT_FILE_OPTION} FILE")
    secret = _vault_secret(password)
    data = VaultLib([(vault_id or "default", secret)]).encrypt(text, secret, vault_id=vault_id or None)
    return data if data.endswith(b"\n") else data + b"\n"


# --- reading and writing ------------------------------------------------------------------


def read(path: Path, vault_password_file: Path | None = None) -> SecretsFile:
    """The secrets file, decrypted when it is vault-encrypted."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SovstackError(f"{path}: cannot read it: {exc.strerror}") from None
    vault_id: str | None = None
    if is_vaulted(data):
        text, vault_id = decrypt(path, data, vault_password_file)
    else:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise SovstackError(f"{path}: not UTF-8 text: fix the file") from None
    return SecretsFile(path, text, parse(path, text), vault_id)


def _make_private_dirs(directory: Path) -> None:
    """Make the missing directories down to directory, each 0700."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for new in reversed(missing):
        new.mkdir(mode=DIR_MODE)
        new.chmod(DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write path atomically, mode 0600 from the first byte: a temporary file in the same
    directory, then renamed over path."""
    _make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _save(path: Path, text: str, vault_password_file: Path | None, vault_id: str | None) -> None:
    data = text.encode() if vault_id is None else encrypt(text, vault_password_file, vault_id)
    write_private(path, data)


# --- the commands ----------------------------------------------------------------------


def generate(inventory: Path, vault_password_file: Path | None = None) -> list[str]:
    """Write every secret of the spec to the inventory's secrets file, which must not exist yet
    (encrypted when a vault password file is known). The names written, sorted."""
    path = _existing_inventory(inventory)
    if path.exists():
        raise SovstackError(
            f"{path} exists: run `sovstack secrets merge -i {inventory}` to add new keys; "
            "it never changes existing ones"
        )
    values = {name: generate_value(spec) for name, spec in sorted(load_spec().items())}
    vault_id = "" if password_file(vault_password_file) is not None else None
    _save(path, HEADER + _render(values), vault_password_file, vault_id)
    return sorted(values)


def _merged_text(current: SecretsFile, added: dict[str, str]) -> str:
    """The file's text with the added secrets appended, every existing line kept as it is; a
    file that does not take an appended block (a flow mapping, say) is written anew."""
    text = current.text
    if text and not text.endswith("\n"):
        text += "\n"
    appended = text + MERGE_MARK + _render(added)
    expected = {**current.values, **added}
    with contextlib.suppress(SovstackError):
        if parse(current.path, appended) == expected:
            return appended
    return HEADER + _render(expected, sort=False)


def merge(inventory: Path, vault_password_file: Path | None = None) -> list[str]:
    """Add the spec's secrets that the inventory's secrets file lacks; keep every existing key
    and value (the operator's own keys too) and the file's encryption. The names added."""
    path = _existing_inventory(inventory)
    if not path.exists():
        raise SovstackError(f"{path}: no secrets file: run `sovstack secrets generate -i {inventory}`")
    current = read(path, vault_password_file)
    spec = load_spec()
    added = {name: generate_value(spec[name]) for name in sorted(spec) if name not in current.values}
    if added:
        _save(path, _merged_text(current, added), vault_password_file, current.vault_id)
    elif path.stat().st_mode & 0o777 != FILE_MODE:
        path.chmod(FILE_MODE)
    return sorted(added)


def count(inventory: Path, vault_password_file: Path | None = None) -> int:
    """How many keys the inventory's secrets file holds."""
    return len(read(secrets_path(inventory), vault_password_file).values)


def _unset(value: Any) -> bool:
    return value is None or value == ""


def problems(inventory: Path, current: SecretsFile | None) -> list[str]:
    """The settings check's lines for the spec's secrets the inventory's secrets file (as read,
    or None when there is none) lacks."""
    path = secrets_path(inventory)
    if current is None:
        return [f"{path}: no secrets file: run `sovstack secrets generate -i {inventory}`"]
    lines = []
    for name in load_spec():
        if name not in current.values:
            lines.append(f"{path}: {name}: secret missing: run `sovstack secrets merge -i {inventory}`")
        elif _unset(current.values[name]):
            lines.append(
                f"{path}: {name}: secret is empty: set it, or delete the key and run "
                f"`sovstack secrets merge -i {inventory}`"
            )
    return lines
