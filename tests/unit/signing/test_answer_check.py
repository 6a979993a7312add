"""Finishing accepts a signing answer only if it is the platform signer's signature over the
job's own digest (``meterai_stamping.answer_check``), for every key type the signer may use."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from meterai_signing.cms import SigningIdentity, load_identity, sign_digest
from meterai_signing.pki import KeyType, TestPki, generate_test_pki
from meterai_stamping.answer_check import ForgedAnswer, check_answer

DIGEST = hashlib.sha256(b"Surat Lamaran CPNS 2024").digest()


def _certificate(identity: SigningIdentity) -> bytes:
    der: bytes = identity.certificates[0].dump()
    return der


def test_accepts_the_platform_signature_over_the_jobs_digest(identity: SigningIdentity) -> None:
    check_answer(sign_digest(identity, DIGEST), DIGEST, _certificate(identity))


def test_refuses_a_signature_over_another_digest(identity: SigningIdentity) -> None:
    other = sign_digest(identity, hashlib.sha256(b"SURAT HUTANG").digest())
    with pytest.raises(ForgedAnswer, match="another digest"):
        check_answer(other, DIGEST, _certificate(identity))


def test_refuses_a_signature_by_another_key(
    identity: SigningIdentity, key_type: KeyType, tmp_path: Path
) -> None:
    stranger_pki: TestPki = generate_test_pki(tmp_path / "stranger", key_type=key_type)
    stranger = load_identity(stranger_pki.signer_key, stranger_pki.chain)
    with pytest.raises(ForgedAnswer, match=r"another signer certificate|does not verify"):
        check_answer(sign_digest(stranger, DIGEST), DIGEST, _certificate(identity))


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30\x03\x02\x01\x00", b"not DER at all", bytes(300)],
    ids=["empty", "tiny-sequence", "text", "zeros"],
)
def test_refuses_garbage(identity: SigningIdentity, garbage: bytes) -> None:
    with pytest.raises(ForgedAnswer):
        check_answer(garbage, DIGEST, _certificate(identity))


def test_refuses_a_signature_whose_value_was_altered(identity: SigningIdentity) -> None:
    cms = bytearray(sign_digest(identity, DIGEST))
    cms[-5] ^= 0x01  # inside the signature value, the container's last field
    with pytest.raises(ForgedAnswer):
        check_answer(bytes(cms), DIGEST, _certificate(identity))


def test_refuses_an_answer_checked_against_another_certificate(
    pki_for: Callable[[KeyType], TestPki], identity: SigningIdentity
) -> None:
    other = load_identity(pki_for("rsa3072").signer_key, pki_for("rsa3072").chain)
    if _certificate(other) == _certificate(identity):
        other = load_identity(pki_for("rsa2048").signer_key, pki_for("rsa2048").chain)
    with pytest.raises(ForgedAnswer):
        check_answer(sign_digest(identity, DIGEST), DIGEST, _certificate(other))
