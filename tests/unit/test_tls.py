"""The TLS filters: certificates of the internal CA, kept while good, reissued otherwise."""

from __future__ import annotations

from ansible_collections.sovstack.cloud.plugins.filter import tls
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from sovstack.secrets import make_ca

NAMES = ["node1", "10.77.10.11"]


def usages(pem: str) -> set:
    cert = x509.load_pem_x509_certificate(tls.ca_certificate(pem).encode())
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_a_host_certificate_serves_and_authenticates_as_a_client_and_is_kept():
    ca = make_ca()
    pem = tls.host_certificate("", ca, NAMES)
    assert usages(pem) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ca_cert = x509.load_pem_x509_certificate(tls.ca_certificate(ca).encode())
    x509.load_pem_x509_certificate(tls.ca_certificate(pem).encode()).verify_directly_issued_by(ca_cert)
    assert tls.host_certificate(pem, ca, NAMES) == pem  # kept
    assert tls.host_certificate(pem, ca, [*NAMES, "10.30.0.11"]) != pem  # other names
    assert tls.host_certificate(pem, make_ca(), NAMES) != pem  # another CA


def test_a_vip_certificate_is_not_kept_as_a_host_certificate_nor_the_other_way():
    ca = make_ca()
    vip = tls.vip_certificate("", ca, NAMES)
    assert usages(vip) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert tls.vip_certificate(vip, ca, NAMES) == vip
    host = tls.host_certificate(vip, ca, NAMES)
    assert host != vip and usages(host) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert tls.vip_certificate(host, ca, NAMES) != host
