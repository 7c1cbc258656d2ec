# Copyright: sovstack developers
# Apache License 2.0
"""Filters for TLS from the internal CA: the VIP's server certificate, and a host's
certificate for services that are server and client of each other (OVN's databases and
their clients); each reissued only when it is missing, not the CA's, for other names or
uses, or near its end."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible.errors import AnsibleFilterError

CERT_DAYS = 825
RENEW_DAYS = 30
BEGIN_KEY = "-----BEGIN PRIVATE KEY-----"


def _split(pem: str) -> tuple[str, str]:
    """The certificate and the key of a PEM text holding both."""
    if BEGIN_KEY not in pem or "-----BEGIN CERTIFICATE-----" not in pem:
        raise AnsibleFilterError(
            "not a certificate and key in PEM (sovstack_ca: run `sovstack secrets merge`)"
        )
    at = pem.index(BEGIN_KEY)
    key_end = pem.index("-----END PRIVATE KEY-----", at) + len("-----END PRIVATE KEY-----")
    cert_text = pem.replace(pem[at:key_end], "").strip() + "\n"
    return cert_text, pem[at:key_end] + "\n"


def ca_certificate(ca_pem: str) -> str:
    """The certificate of a CA given as certificate and key."""
    return _split(ca_pem)[0]


def _sans(names: list[str]) -> list[Any]:
    from cryptography import x509

    sans: list[Any] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    return sans


def _still_good(existing: str, ca_cert: Any, names: list[str], usages: list[Any]) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert_text, key_text = _split(existing)
        cert = x509.load_pem_x509_certificate(cert_text.encode())
        key = serialization.load_pem_private_key(key_text.encode(), None)
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # anything unreadable or foreign is replaced
        return False
    if cert.public_key() != key.public_key():
        return False
    if cert.not_valid_after_utc < datetime.now(UTC) + timedelta(days=RENEW_DAYS):
        return False
    found = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    try:
        used = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return False
    return set(found) == set(_sans(names)) and set(used) == set(usages)


def _certificate(existing: str, ca_pem: str, names: list[str], client: bool) -> str:
    """`existing` (certificate and key, PEM) when the CA signed it for exactly `names` and
    these uses and it has more than 30 days left; else a new one (ECDSA P-256, 825 days)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise AnsibleFilterError("a certificate needs at least one name")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    ca_cert_text, ca_key_text = _split(ca_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_text.encode())
    ca_key = serialization.load_pem_private_key(ca_key_text.encode(), None)
    if existing and _still_good(existing, ca_cert, names, usages):
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(_sans(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode() + ca_cert_text + key_pem


def vip_certificate(existing: str, ca_pem: str, names: list[str]) -> str:
    """The VIP's server certificate: `existing` while it is good for `names`, else a new one."""
    return _certificate(existing, ca_pem, names, client=False)


def host_certificate(existing: str, ca_pem: str, names: list[str]) -> str:
    """A host's certificate for server and client use (mutual TLS between the members of a
    service and with its clients): `existing` while it is good for `names`, else a new one."""
    return _certificate(existing, ca_pem, names, client=True)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "vip_certificate": vip_certificate,
            "host_certificate": host_certificate,
            "ca_certificate": ca_certificate,
        }
