"""Specification of the throw-away PKI that development and tests sign with."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from meterai_signing.cms import UnsupportedKeyError, load_identity
from meterai_signing.pki import KeyType, TestPki, ensure_test_pki, generate_test_pki

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class TestFiles:
    def test_writes_root_intermediate_signer_chain_and_key(self, pki: TestPki) -> None:
        for path in (
            pki.root_cert,
            pki.intermediate_cert,
            pki.signer_cert,
            pki.chain,
            pki.signer_key,
        ):
            assert path.parent == pki.directory
            assert path.read_bytes().startswith(b"-----BEGIN ")

    def test_key_file_is_readable_by_its_owner_only(self, pki: TestPki) -> None:
        assert stat.S_IMODE(pki.signer_key.stat().st_mode) == 0o600

    def test_chain_is_signer_then_intermediate_without_the_root(self, pki: TestPki) -> None:
        chain = x509.load_pem_x509_certificates(pki.chain.read_bytes())
        assert chain == [_cert(pki.signer_cert), _cert(pki.intermediate_cert)]

    def test_creates_the_directory(self, tmp_path: Path) -> None:
        pki = generate_test_pki(tmp_path / "a" / "b", key_type="ecdsa-p256")
        assert pki.signer_key.is_file()

    def test_files_load_as_a_signing_identity(self, pki: TestPki) -> None:
        identity = load_identity(pki.signer_key, pki.chain)
        assert identity.signer_certificate.dump() == _cert(pki.signer_cert).public_bytes(
            serialization.Encoding.DER
        )


class TestHierarchy:
    def test_each_certificate_is_issued_by_the_next(self, pki: TestPki) -> None:
        root, intermediate, signer = (
            _cert(pki.root_cert),
            _cert(pki.intermediate_cert),
            _cert(pki.signer_cert),
        )
        signer.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(root)
        root.verify_directly_issued_by(root)

    def test_only_the_cas_are_cas(self, pki: TestPki) -> None:
        def constraints(path: Path) -> x509.BasicConstraints:
            return _cert(path).extensions.get_extension_for_class(x509.BasicConstraints).value

        assert constraints(pki.root_cert).ca
        assert constraints(pki.intermediate_cert).ca
        assert constraints(pki.intermediate_cert).path_length == 0
        assert not constraints(pki.signer_cert).ca

    def test_signer_may_sign_documents_with_non_repudiation(self, pki: TestPki) -> None:
        signer = _cert(pki.signer_cert)
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        assert usage.content_commitment
        assert not usage.key_cert_sign
        purposes = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert DOCUMENT_SIGNING in purposes
        assert ExtendedKeyUsageOID.EMAIL_PROTECTION in purposes

    def test_certificates_are_valid_now_and_for_years(self, pki: TestPki) -> None:
        now = dt.datetime.now(dt.UTC)
        for path in (pki.root_cert, pki.intermediate_cert, pki.signer_cert):
            cert = _cert(path)
            assert cert.not_valid_before_utc <= now
            assert cert.not_valid_after_utc - now > dt.timedelta(days=4 * 365)

    def test_key_belongs_to_the_signer_certificate(self, pki: TestPki) -> None:
        key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
        assert _public_der(key.public_key()) == _public_der(_cert(pki.signer_cert).public_key())


class TestKeyTypes:
    @pytest.mark.parametrize(
        ("key_type", "expected"),
        [("rsa2048", ("RSA", 2048)), ("rsa3072", ("RSA", 3072)), ("ecdsa-p256", ("EC", 256))],
    )
    def test_every_key_in_the_hierarchy_has_the_requested_type(
        self,
        pki_for: Callable[[KeyType], TestPki],
        key_type: KeyType,
        expected: tuple[str, int],
    ) -> None:
        pki = pki_for(key_type)
        for path in (pki.root_cert, pki.intermediate_cert, pki.signer_cert):
            public_key = _cert(path).public_key()
            if expected[0] == "RSA":
                assert isinstance(public_key, rsa.RSAPublicKey)
            else:
                assert isinstance(public_key, ec.EllipticCurvePublicKey)
                assert public_key.curve.name == "secp256r1"
            assert public_key.key_size == expected[1]

    def test_unknown_key_type_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(UnsupportedKeyError, match="rsa2048"):
            generate_test_pki(tmp_path, key_type="dsa1024")  # type: ignore[arg-type]

    def test_common_name_names_the_signer(self, tmp_path: Path) -> None:
        pki = generate_test_pki(tmp_path, key_type="ecdsa-p256", common_name="Peruri e-Meterai")
        names = _cert(pki.signer_cert).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert [n.value for n in names] == ["Peruri e-Meterai"]


class TestEnsure:
    def test_creates_a_pki_on_first_start(self, tmp_path: Path) -> None:
        pki = ensure_test_pki(tmp_path / "pki", key_type="ecdsa-p256")
        assert load_identity(pki.signer_key, pki.chain)

    def test_keeps_an_existing_pki_so_old_documents_stay_verifiable(self, tmp_path: Path) -> None:
        first = ensure_test_pki(tmp_path, key_type="ecdsa-p256")
        before = {p: p.read_bytes() for p in tmp_path.iterdir()}
        second = ensure_test_pki(tmp_path, key_type="ecdsa-p256")
        assert second == first
        assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before

    def test_regenerates_when_a_file_is_missing(self, tmp_path: Path) -> None:
        first = ensure_test_pki(tmp_path, key_type="ecdsa-p256")
        old_root = first.root_cert.read_bytes()
        first.signer_key.unlink()
        second = ensure_test_pki(tmp_path, key_type="ecdsa-p256")
        assert second.signer_key.is_file()
        assert second.root_cert.read_bytes() != old_root
        assert load_identity(second.signer_key, second.chain)
