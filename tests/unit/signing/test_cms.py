"""Specification of the PAdES B-B CMS containers built by ``meterai_signing.cms``.

Every container is decoded with asn1crypto and its signature checked with
``cryptography`` against the certificate embedded in it, so the tests judge
the output, not the code that built it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from meterai_signing.cms import (
    DIGEST_LENGTH,
    DigestLengthError,
    IdentityError,
    SigningError,
    SigningIdentity,
    UnsupportedKeyError,
    identity_from_pem,
    load_identity,
    sign_digest,
    signature_size,
)
from meterai_signing.pki import KeyType, TestPki

DIGEST = hashlib.sha256(b"the byte ranges of a prepared PDF").digest()


def _signed_data(der: bytes) -> cms.SignedData:
    content_info = cms.ContentInfo.load(der)
    assert content_info["content_type"].native == "signed_data"
    signed_data: cms.SignedData = content_info["content"]
    return signed_data


def _signer_info(der: bytes) -> cms.SignerInfo:
    signer_infos = _signed_data(der)["signer_infos"]
    assert len(signer_infos) == 1
    signer_info: cms.SignerInfo = signer_infos[0]
    return signer_info


def _attributes(der: bytes) -> dict[str, cms.CMSAttribute]:
    return {attr["type"].native: attr for attr in _signer_info(der)["signed_attrs"]}


def _verify(der: bytes) -> None:
    """Check the signature over the signed attributes with the certificate the CMS names."""
    signed_data = _signed_data(der)
    signer_info = _signer_info(der)
    sid = signer_info["sid"].chosen
    signer = next(
        c.chosen
        for c in signed_data["certificates"]
        if c.chosen.issuer == sid["issuer"]
        and c.chosen.serial_number == sid["serial_number"].native
    )
    public_key = cx509.load_der_x509_certificate(signer.dump()).public_key()
    # The signature covers the attributes encoded as a universal SET OF, not
    # as the [0] IMPLICIT field they are stored in (RFC 5652, 5.4).
    signed = signer_info["signed_attrs"].untag().dump()
    signature = signer_info["signature"].native
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))


def _embedded(der: bytes) -> list[bytes]:
    return [choice.chosen.dump() for choice in _signed_data(der)["certificates"]]


def _pem_certs(path: Path) -> list[cx509.Certificate]:
    return cx509.load_pem_x509_certificates(path.read_bytes())


def _der(cert: cx509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class TestSignature:
    def test_signature_over_signed_attributes_verifies_with_the_embedded_signer_certificate(
        self, identity: SigningIdentity
    ) -> None:
        _verify(sign_digest(identity, DIGEST))

    def test_every_signature_verifies_for_many_digests(self, identity: SigningIdentity) -> None:
        for i in range(20):
            _verify(sign_digest(identity, hashlib.sha256(i.to_bytes(2, "big")).digest()))

    def test_algorithms_are_sha256_with_the_key_type(
        self, identity: SigningIdentity, key_type: KeyType
    ) -> None:
        der = sign_digest(identity, DIGEST)
        signer_info = _signer_info(der)
        assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
        assert [a["algorithm"].native for a in _signed_data(der)["digest_algorithms"]] == ["sha256"]
        expected = "sha256_ecdsa" if key_type == "ecdsa-p256" else "sha256_rsa"
        assert signer_info["signature_algorithm"]["algorithm"].native == expected

    def test_rsa_signature_is_the_modulus_length(
        self, pki_for: Callable[[KeyType], TestPki]
    ) -> None:
        for key_type, length in (("rsa2048", 256), ("rsa3072", 384)):
            pki = pki_for(key_type)  # type: ignore[arg-type]
            der = sign_digest(load_identity(pki.signer_key, pki.chain), DIGEST)
            assert len(_signer_info(der)["signature"].native) == length


class TestContainer:
    def test_is_detached_signed_data_over_id_data(self, identity: SigningIdentity) -> None:
        encap = _signed_data(sign_digest(identity, DIGEST))["encap_content_info"]
        assert encap["content_type"].native == "data"
        assert encap["content"].native is None

    def test_output_is_canonical_der(self, identity: SigningIdentity) -> None:
        der = sign_digest(identity, DIGEST)
        assert cms.ContentInfo.load(der).dump(force=True) == der

    def test_signer_is_identified_by_issuer_and_serial_of_the_signer_certificate(
        self, identity: SigningIdentity, pki: TestPki
    ) -> None:
        signer_info = _signer_info(sign_digest(identity, DIGEST))
        signer = cx509.load_pem_x509_certificate(pki.signer_cert.read_bytes())
        sid = signer_info["sid"]
        assert sid.name == "issuer_and_serial_number"
        assert sid.chosen["serial_number"].native == signer.serial_number
        assert sid.chosen["issuer"].dump() == signer.issuer.public_bytes()

    def test_embeds_signer_and_intermediate(self, identity: SigningIdentity, pki: TestPki) -> None:
        # certificates is a SET OF: DER fixes the order by encoding, so only
        # membership carries meaning.
        embedded = _embedded(sign_digest(identity, DIGEST))
        signer, intermediate = _pem_certs(pki.signer_cert)[0], _pem_certs(pki.intermediate_cert)[0]
        assert sorted(embedded) == sorted([_der(signer), _der(intermediate)])

    def test_embeds_the_root_too_when_the_chain_file_holds_it(
        self, pki: TestPki, tmp_path: Path
    ) -> None:
        chain = tmp_path / "chain-with-root.pem"
        chain.write_bytes(pki.chain.read_bytes() + pki.root_cert.read_bytes())
        embedded = _embedded(sign_digest(load_identity(pki.signer_key, chain), DIGEST))
        assert _der(_pem_certs(pki.root_cert)[0]) in embedded
        assert len(embedded) == 3

    def test_finds_the_signer_wherever_it_sits_in_the_chain_file(
        self, pki: TestPki, tmp_path: Path
    ) -> None:
        chain = tmp_path / "root-first.pem"
        chain.write_bytes(
            pki.root_cert.read_bytes()
            + pki.intermediate_cert.read_bytes()
            + pki.signer_cert.read_bytes()
        )
        identity = load_identity(pki.signer_key, chain)
        assert identity.signer_certificate.dump() == _der(_pem_certs(pki.signer_cert)[0])
        der = sign_digest(identity, DIGEST)
        assert len(_embedded(der)) == 3
        _verify(der)


class TestSignedAttributes:
    def test_are_exactly_content_type_message_digest_and_signing_certificate_v2(
        self, identity: SigningIdentity
    ) -> None:
        assert set(_attributes(sign_digest(identity, DIGEST))) == {
            "content_type",
            "message_digest",
            "signing_certificate_v2",
        }

    def test_carry_no_signing_time_because_pades_puts_it_in_the_signature_dictionary(
        self, identity: SigningIdentity
    ) -> None:
        assert "signing_time" not in _attributes(sign_digest(identity, DIGEST))

    def test_content_type_is_id_data(self, identity: SigningIdentity) -> None:
        attr = _attributes(sign_digest(identity, DIGEST))["content_type"]
        assert attr["values"].native == ["data"]

    def test_message_digest_is_the_digest_given(self, identity: SigningIdentity) -> None:
        other = hashlib.sha256(b"another document").digest()
        attr = _attributes(sign_digest(identity, other))["message_digest"]
        assert attr["values"].native == [other]

    def test_signing_certificate_v2_binds_the_signer_certificate(
        self, identity: SigningIdentity, pki: TestPki
    ) -> None:
        signer = _pem_certs(pki.signer_cert)[0]
        attr = _attributes(sign_digest(identity, DIGEST))["signing_certificate_v2"]
        assert len(attr["values"]) == 1
        value: tsp.SigningCertificateV2 = attr["values"][0]
        (cert_id,) = value["certs"]
        assert cert_id["hash_algorithm"]["algorithm"].native == "sha256"
        assert cert_id["cert_hash"].native == hashlib.sha256(_der(signer)).digest()
        issuer_serial = cert_id["issuer_serial"]
        assert issuer_serial["serial_number"].native == signer.serial_number
        (general_name,) = issuer_serial["issuer"]
        assert general_name.name == "directory_name"
        assert general_name.chosen.untag().dump() == signer.issuer.public_bytes()

    def test_signing_certificate_v2_omits_the_default_hash_algorithm(
        self, identity: SigningIdentity
    ) -> None:
        # DER forbids encoding a DEFAULT value; ESSCertIDv2 defaults to SHA-256.
        attr = _attributes(sign_digest(identity, DIGEST))["signing_certificate_v2"]
        (cert_id,) = attr["values"][0]["certs"]
        first_element_tag = cert_id.contents[0]
        assert first_element_tag == 0x04  # the certHash OCTET STRING, no AlgorithmIdentifier

    def test_are_encoded_in_der_set_order(self, identity: SigningIdentity) -> None:
        encodings = [
            attr.dump() for attr in _signer_info(sign_digest(identity, DIGEST))["signed_attrs"]
        ]
        assert encodings == sorted(encodings)


class TestSignatureSize:
    def test_bounds_every_signature(self, identity: SigningIdentity) -> None:
        bound = signature_size(identity)
        for i in range(300):
            digest = hashlib.sha256(i.to_bytes(2, "big")).digest()
            assert len(sign_digest(identity, digest)) <= bound

    @pytest.mark.parametrize("rsa_type", ["rsa2048", "rsa3072"])
    def test_is_exact_for_rsa(
        self, pki_for: Callable[[KeyType], TestPki], rsa_type: KeyType
    ) -> None:
        pki = pki_for(rsa_type)
        identity = load_identity(pki.signer_key, pki.chain)
        lengths = {len(sign_digest(identity, bytes([i]) * DIGEST_LENGTH)) for i in range(10)}
        assert lengths == {signature_size(identity)}

    def test_is_tight_for_ecdsa(self, pki_for: Callable[[KeyType], TestPki]) -> None:
        pki = pki_for("ecdsa-p256")
        identity = load_identity(pki.signer_key, pki.chain)
        lengths = {
            len(sign_digest(identity, hashlib.sha256(i.to_bytes(2, "big")).digest()))
            for i in range(300)
        }
        # r and s each take their 33-byte form half the time, so 300 signatures
        # reach the maximum with overwhelming probability, and vary below it.
        assert len(lengths) > 1
        assert 0 <= signature_size(identity) - max(lengths) <= 2

    def test_does_not_depend_on_signing(self, identity: SigningIdentity) -> None:
        assert signature_size(identity) == signature_size(identity)


class TestRejections:
    @pytest.mark.parametrize("length", [0, 20, 31, 33, 48, 64])
    def test_digest_of_the_wrong_length_is_refused(
        self, identity: SigningIdentity, length: int
    ) -> None:
        with pytest.raises(DigestLengthError, match="32 bytes"):
            sign_digest(identity, bytes(length))

    def test_hex_digest_is_refused_rather_than_signed(self, identity: SigningIdentity) -> None:
        with pytest.raises(DigestLengthError):
            sign_digest(identity, DIGEST.hex())  # type: ignore[arg-type]

    def test_every_error_is_a_signing_error(self) -> None:
        assert issubclass(DigestLengthError, SigningError)
        assert issubclass(IdentityError, SigningError)
        assert issubclass(UnsupportedKeyError, IdentityError)


def _key_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestIdentity:
    @pytest.mark.parametrize(
        "make_key",
        [
            lambda: rsa.generate_private_key(65537, 1024),
            lambda: ec.generate_private_key(ec.SECP384R1()),
            ed25519.Ed25519PrivateKey.generate,
        ],
        ids=["rsa1024", "p384", "ed25519"],
    )
    def test_unsupported_keys_are_refused(
        self, make_key: Callable[[], rsa.RSAPrivateKey], pki: TestPki
    ) -> None:
        with pytest.raises(UnsupportedKeyError):
            identity_from_pem(_key_pem(make_key()), pki.chain.read_bytes())

    def test_a_chain_without_the_keys_certificate_is_refused(self, pki: TestPki) -> None:
        chain = pki.intermediate_cert.read_bytes() + pki.root_cert.read_bytes()
        with pytest.raises(IdentityError, match="matches the signing key"):
            identity_from_pem(pki.signer_key.read_bytes(), chain)

    def test_a_signer_certificate_of_another_key_is_refused(
        self, pki_for: Callable[[KeyType], TestPki]
    ) -> None:
        mine, other = pki_for("rsa2048"), pki_for("rsa3072")
        mine_identity = load_identity(mine.signer_key, mine.chain)
        other_identity = load_identity(other.signer_key, other.chain)
        with pytest.raises(IdentityError, match="does not belong"):
            SigningIdentity(key=mine_identity.key, certificates=other_identity.certificates)

    def test_missing_files_are_an_identity_error(self, tmp_path: Path) -> None:
        with pytest.raises(IdentityError, match="cannot read"):
            load_identity(tmp_path / "no-key.pem", tmp_path / "no-chain.pem")

    def test_garbage_is_an_identity_error(self, pki: TestPki) -> None:
        with pytest.raises(IdentityError):
            identity_from_pem(b"not a key", pki.chain.read_bytes())
        with pytest.raises(IdentityError):
            identity_from_pem(pki.signer_key.read_bytes(), b"not a certificate")

    def test_an_encrypted_key_loads_with_its_password_only(self, pki: TestPki) -> None:
        key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
        identity = identity_from_pem(encrypted, pki.chain.read_bytes(), password=b"s3cret")
        _verify(sign_digest(identity, DIGEST))
        with pytest.raises(IdentityError):
            identity_from_pem(encrypted, pki.chain.read_bytes(), password=b"wrong")
        with pytest.raises(IdentityError):
            identity_from_pem(encrypted, pki.chain.read_bytes())

    def test_repr_does_not_show_the_private_key(self, identity: SigningIdentity) -> None:
        assert "private_key" not in repr(identity)
