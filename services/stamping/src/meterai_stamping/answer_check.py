"""Finishing trusts no signing answer it has not checked.

A ``DigestSigned`` event arrives over the broker; whoever can publish there could otherwise
make the platform issue a serial and charge a unit for a garbage signature, or for a genuine
signature over some other document. Before anything is committed, the returned CMS must:

* parse as a CMS ``SignedData`` with exactly one signer;
* carry a ``message-digest`` signed attribute equal to the digest of the job's prepared byte
  ranges (and ``content-type`` id-data, as PAdES requires);
* bind, through ``signing-certificate-v2`` when present, the platform signer's certificate;
* verify: the signature over the DER of the signed attributes, with the public key of the
  platform signer's certificate (not one the CMS itself brings).

This costs one public-key verification per stamp (tens of microseconds for RSA-2048), far
below the price of issuing a serial for a forgery.

A B-T answer also carries a signature timestamp token (an unsigned attribute, made after the
signature). :func:`signature_timestamp_time` reads the time the authority certified in it, for
the ledger; the token must be over this answer's signature value (its message imprint), so a
token lifted from another answer is refused as forged. The authority's own signature on the
token is judged where trust in authorities is configured: by document verification
(:mod:`meterai_verify.pdf_check`) and by the long-term step (:mod:`meterai_stamping.ltv`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import cms, tsp
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = ["ForgedAnswer", "check_answer", "signature_timestamp_time"]


class ForgedAnswer(Exception):
    """The signing answer is not the platform signer's signature over this job's digest."""

    code = "INTERNAL"


def _attribute(signed_attrs: cms.CMSAttributes, name: str) -> object | None:
    for attribute in signed_attrs:
        if attribute["type"].native == name:
            values = attribute["values"]
            if len(values) != 1:
                raise ForgedAnswer(f"the {name} attribute must have exactly one value")
            return values[0]
    return None


def check_answer(cms_der: bytes, digest: bytes, signer_certificate_der: bytes) -> None:
    """Raise :class:`ForgedAnswer` unless ``cms_der`` is the platform signer's signature over
    ``digest``.

    :param digest: SHA-256 of the job's prepared byte ranges.
    :param signer_certificate_der: the platform signer's certificate, from the signing service.
    """
    try:
        info = cms.ContentInfo.load(cms_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ForgedAnswer("the answer is not a CMS SignedData")
        signed_data = info["content"]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise ForgedAnswer(f"the answer has {len(signer_infos)} signers, not one")
        signer = signer_infos[0]
        signed_attrs = signer["signed_attrs"]
        if not signed_attrs:
            raise ForgedAnswer("the answer has no signed attributes")
        message_digest = _attribute(signed_attrs, "message_digest")
        content_type = _attribute(signed_attrs, "content_type")
        signing_certificate = _attribute(signed_attrs, "signing_certificate_v2")
        signature = signer["signature"].native
        algorithm = signer["signature_algorithm"].signature_algo
        digest_algorithm = signer["digest_algorithm"]["algorithm"].native
        # The signature covers the attributes as a universal SET OF, not as the [0] field
        # they are encoded in.
        signed_bytes = b"\x31" + signed_attrs.dump()[1:]
    except ForgedAnswer:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise ForgedAnswer(f"the answer is not a well-formed CMS: {error}") from None
    if digest_algorithm != "sha256":
        raise ForgedAnswer(f"the answer uses digest {digest_algorithm}, not sha256")
    if content_type is None or content_type.native != "data":  # type: ignore[attr-defined]
        raise ForgedAnswer("the answer's content-type attribute is not id-data")
    if message_digest is None or message_digest.native != digest:  # type: ignore[attr-defined]
        raise ForgedAnswer("the answer signs another digest than this job's document")
    if signing_certificate is not None:
        expected = hashlib.sha256(signer_certificate_der).digest()
        bound = [c["cert_hash"].native for c in signing_certificate["certs"]]  # type: ignore[index]
        if expected not in bound:
            raise ForgedAnswer("the answer names another signer certificate than the platform's")
    _verify(signer_certificate_der, algorithm, signature, signed_bytes)


def _verify(certificate_der: bytes, algorithm: str, signature: bytes, data: bytes) -> None:
    public_key = cx509.load_der_x509_certificate(certificate_der).public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm == "rsassa_pkcs1v15":
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm == "ecdsa":
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise ForgedAnswer(f"the answer's signature algorithm {algorithm} is not the signer's")
    except InvalidSignature:
        raise ForgedAnswer(
            "the answer's signature does not verify with the platform signer's key"
        ) from None


def signature_timestamp_time(cms_der: bytes) -> datetime | None:
    """The ``genTime`` of the answer's signature timestamp token, in UTC; ``None`` when the
    answer carries no token (a B-B seal).

    Call it on an answer :func:`check_answer` accepted: it trusts the CMS's structure.

    :raises ForgedAnswer: the token is unreadable, or timestamps another signature value.
    """
    try:
        signer = cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
        unsigned = signer["unsigned_attrs"]
        tokens = [
            value
            for attribute in (unsigned if isinstance(unsigned, cms.CMSAttributes) else ())
            if attribute["type"].native == "signature_time_stamp_token"
            for value in attribute["values"]
        ]
        if not tokens:
            return None
        if len(tokens) != 1:
            raise ForgedAnswer(f"the answer carries {len(tokens)} signature timestamps, not one")
        content = tokens[0]["content"]["encap_content_info"]
        if content["content_type"].native != "tst_info":
            raise ForgedAnswer("the answer's signature timestamp holds no TSTInfo")
        info = content["content"].parsed
        if not isinstance(info, tsp.TSTInfo):
            raise ForgedAnswer("the answer's signature timestamp cannot be read")
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        stamped = imprint["hashed_message"].native
        gen_time = info["gen_time"].native
        signature = signer["signature"].native
    except ForgedAnswer:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise ForgedAnswer(f"the answer's signature timestamp is malformed: {error}") from None
    if algorithm != "sha256" or stamped != hashlib.sha256(signature).digest():
        raise ForgedAnswer("the answer's signature timestamp is over another signature")
    if not isinstance(gen_time, datetime):
        raise ForgedAnswer("the answer's signature timestamp has no readable genTime")
    # GeneralizedTime is UTC by RFC 3161; a zone-less value is read as UTC, not local time.
    if gen_time.tzinfo is None:
        return gen_time.replace(tzinfo=UTC)
    return gen_time.astimezone(UTC)
