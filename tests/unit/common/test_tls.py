"""The platform's TLS material: private files, identities in the certificates, kept on rerun."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from meterai_common.config import Settings
from meterai_common.tls import (
    RESELLER_URI_PREFIX,
    SERVICE_IDENTITIES,
    SERVICE_URI_PREFIX,
    ensure_platform_tls,
    issue_reseller_certificate,
)


def _uris(path: Path) -> list[str]:
    return _uris_of(x509.load_pem_x509_certificate(path.read_bytes()))


def test_every_identity_gets_a_certificate_naming_it(tmp_path: Path) -> None:
    files = ensure_platform_tls(tmp_path / "tls", ["meterai-stamping.prod.svc"])
    for identity in SERVICE_IDENTITIES:
        assert _uris(files.certificate(identity)) == [SERVICE_URI_PREFIX + identity]
    certificate = x509.load_pem_x509_certificate(files.certificate("stamping").read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "meterai-stamping.prod.svc" in san.get_values_for_type(x509.DNSName)


def test_keys_and_folder_are_private_to_their_owner(tmp_path: Path) -> None:
    files = ensure_platform_tls(tmp_path / "tls")
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    for path in [files.ca_key, *(files.key(i) for i in SERVICE_IDENTITIES)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_running_again_keeps_the_ca_clients_already_trust(tmp_path: Path) -> None:
    first = ensure_platform_tls(tmp_path / "tls").ca_certificate.read_bytes()
    assert ensure_platform_tls(tmp_path / "tls").ca_certificate.read_bytes() == first


def test_a_reseller_certificate_names_the_reseller_and_serves_no_server(tmp_path: Path) -> None:
    files = ensure_platform_tls(tmp_path / "tls")
    pem, _key, _der = issue_reseller_certificate(files, "reseller-42")
    certificate = x509.load_pem_x509_certificate(pem)
    assert _uris_of(certificate) == [RESELLER_URI_PREFIX + "reseller-42"]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [u.dotted_string for u in usages] == ["1.3.6.1.5.5.7.3.2"]  # clientAuth only


def _uris_of(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def test_insecure_mode_is_only_what_is_asked_for_by_name(tmp_path: Path) -> None:
    assert not Settings.from_env({}, home=tmp_path).insecure
    assert Settings.from_env({"METERAI_INSECURE": "1"}, home=tmp_path).insecure
    secure = Settings.from_env({}, home=tmp_path)
    ensure_platform_tls(secure.tls_dir)
    assert secure.server_tls("quota") is not None
    assert Settings.from_env({"METERAI_INSECURE": "1"}, home=tmp_path).server_tls("quota") is None
