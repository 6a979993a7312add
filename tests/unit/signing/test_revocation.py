"""The test PKI's revocation data: certificates that name where it is, and CRLs and OCSP answers
that a validator accepts (signed by the issuing CA, whole-second times, every certificate good).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from meterai_signing.pki import TestPki, crl_url, generate_test_pki, ocsp_url
from meterai_signing.revocation import RevocationAuthority, UnknownIssuer

BASE = "http://revocation.example:8318"


@pytest.fixture(scope="module", params=["rsa2048", "ecdsa-p256"])
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(
        tmp_path_factory.mktemp("revocation"), key_type=request.param, revocation_url=BASE
    )


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _verify(
    issuer: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, data, ec.ECDSA(algorithm))


def _points(certificate: x509.Certificate) -> tuple[str, str]:
    crl = certificate.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    aia = certificate.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    (point,) = crl.value
    (access,) = [a for a in aia.value if a.access_method == AuthorityInformationAccessOID.OCSP]
    return point.full_name[0].value, access.access_location.value


def test_every_certificate_below_the_root_names_its_issuers_crl_and_ocsp(
    published: TestPki,
) -> None:
    assert published.revocation_url == BASE
    assert _points(_load(published.intermediate_cert)) == (
        crl_url(BASE, "root"),
        ocsp_url(BASE, "root"),
    )
    for path in (published.signer_cert, published.tsa_cert):
        assert _points(_load(path)) == (
            crl_url(BASE, "intermediate"),
            ocsp_url(BASE, "intermediate"),
        )
    root = _load(published.root_cert)
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS)


def test_a_pki_made_without_a_url_names_no_revocation_data(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path, key_type="ecdsa-p256")
    assert pki.revocation_url is None
    with pytest.raises(x509.ExtensionNotFound):
        _load(pki.signer_cert).extensions.get_extension_for_oid(
            ExtensionOID.CRL_DISTRIBUTION_POINTS
        )


def test_the_tsa_certificate_outlives_the_signer_certificate(published: TestPki) -> None:
    signer, tsa = _load(published.signer_cert), _load(published.tsa_cert)
    assert tsa.not_valid_after_utc > signer.not_valid_after_utc + timedelta(days=365)


@pytest.mark.parametrize("issuer", ["root", "intermediate"])
def test_each_ca_publishes_an_empty_crl_it_signed_fresh_for_a_day(
    published: TestPki, issuer: str
) -> None:
    now = datetime(2026, 12, 2, 14, 1, 38, 386106, tzinfo=UTC)
    crl = x509.load_der_x509_crl(RevocationAuthority(published).crl(issuer, now))
    ca = _load(published.root_cert if issuer == "root" else published.intermediate_cert)
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.subject
    assert len(crl) == 0
    assert crl.last_update_utc == now.replace(microsecond=0)
    assert crl.next_update_utc == now.replace(microsecond=0) + timedelta(days=1)


def _request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )


def test_the_intermediate_answers_good_for_the_signer_in_a_signed_whole_second_answer(
    published: TestPki,
) -> None:
    signer, intermediate = _load(published.signer_cert), _load(published.intermediate_cert)
    answer = ocsp.load_der_ocsp_response(
        RevocationAuthority(published).ocsp("intermediate", _request(signer, intermediate))
    )
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == signer.serial_number
    assert answer.this_update_utc.microsecond == 0 and answer.produced_at_utc.microsecond == 0
    assert answer.signature_hash_algorithm is not None
    _verify(
        intermediate, answer.signature, answer.tbs_response_bytes, answer.signature_hash_algorithm
    )


def test_a_ca_refuses_to_answer_for_another_issuers_certificate(published: TestPki) -> None:
    signer, intermediate = _load(published.signer_cert), _load(published.intermediate_cert)
    answer = ocsp.load_der_ocsp_response(
        RevocationAuthority(published).ocsp("root", _request(signer, intermediate))
    )
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_an_unknown_issuer_or_a_missing_ca_key_publishes_nothing(published: TestPki) -> None:
    with pytest.raises(UnknownIssuer):
        RevocationAuthority(published).crl("signer")


def test_a_token_keys_certificate_names_the_same_revocation_data(published: TestPki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from meterai_signing.pki import issue_signer_certificate

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    chain = issue_signer_certificate(
        published, public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    token_certificate = x509.load_pem_x509_certificates(chain)[0]
    assert _points(token_certificate) == (
        crl_url(BASE, "intermediate"),
        ocsp_url(BASE, "intermediate"),
    )
