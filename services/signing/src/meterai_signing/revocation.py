"""The test PKI's revocation data: a CRL and an OCSP responder for each of its two CAs.

PAdES B-LT needs revocation data for every certificate of the signer's and the timestamp
authority's chains, fetched while the certificates are valid and kept in the document. A real
CA publishes it; the test PKI publishes it here, so that the platform's long-term validation is
exercised against real CRLs and OCSP answers, not against a validator told to skip revocation.

The protocol work is certomancer's (``certomancer.services.CRLBuilder`` and
``SimpleOCSPResponder``, the services pyHanko's own test suite fetches revocation data from);
this module only feeds them the keys of :mod:`meterai_signing.pki` and says "good" for every
certificate the CA issued (the test PKI revokes nothing). Each CA signs its own CRL and OCSP
answers (no delegated responder certificate), which is what RFC 6960 §4.2.2.2 calls the CA
answering for itself. :mod:`meterai_signing.tsa_service` serves them over HTTP at
``/crl/{root,intermediate}.crl`` and ``/ocsp/{root,intermediate}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import keys, ocsp, pem, x509
from certomancer.services import (
    CRLBuilder,
    RevocationInfoInterface,
    SimpleOCSPResponder,
    choose_signed_digest,
)

from meterai_signing.pki import TestPki

__all__ = ["CA_NAMES", "RevocationAuthority", "UnknownIssuer"]

CA_NAMES = ("root", "intermediate")
"""The issuers whose revocation data is published, as they appear in the URLs."""

_VALIDITY = timedelta(days=1)
"""How long each CRL and OCSP answer is fresh (``nextUpdate``)."""


class UnknownIssuer(LookupError):
    """No revocation data is published for this name (or the CA's key is not at hand)."""


def _der(data: bytes) -> bytes:
    if pem.detect(data):
        _, _, der = pem.unarmor(data)
        return bytes(der)
    return data


def _whole_seconds(now: datetime | None) -> datetime:
    # RFC 5280 §4.1.2.5.2: GeneralizedTime without fractional seconds; NSS (pdfsig) rejects
    # an answer whose times carry them ("improperly formatted time string").
    return (now or datetime.now(UTC)).replace(microsecond=0)


@dataclass(frozen=True)
class _Issuer:
    certificate: x509.Certificate
    key: keys.PrivateKeyInfo


class _AllGood(RevocationInfoInterface):
    """Every certificate of this issuer is good: the test PKI revokes nothing."""

    def __init__(self, issuer: x509.Certificate) -> None:
        self._issuer = issuer

    def get_issuer_cert(self) -> x509.Certificate:
        return self._issuer

    def check_revocation_status(
        self, cid: ocsp.CertId, at_time: datetime
    ) -> tuple[ocsp.CertStatus, list[ocsp.SingleResponseExtension]]:
        return ocsp.CertStatus(name="good", value=None), []


class RevocationAuthority:
    """CRLs and OCSP answers of the test PKI's CAs, made fresh for each request."""

    def __init__(self, pki: TestPki) -> None:
        self._issuers: dict[str, _Issuer] = {}
        pairs = (
            ("root", pki.root_cert, pki.root_key),
            ("intermediate", pki.intermediate_cert, pki.intermediate_key),
        )
        for name, cert_path, key_path in pairs:
            if key_path.is_file():
                self._issuers[name] = _Issuer(
                    x509.Certificate.load(_der(cert_path.read_bytes())),
                    keys.PrivateKeyInfo.load(_der(key_path.read_bytes())),
                )

    def _issuer(self, name: str) -> _Issuer:
        issuer = self._issuers.get(name)
        if issuer is None:
            raise UnknownIssuer(f"no revocation data is published for {name!r}")
        return issuer

    def crl(self, name: str, now: datetime | None = None) -> bytes:
        """The DER CRL of issuer ``name``: empty, valid from ``now`` for a day."""
        issuer = self._issuer(name)
        now = _whole_seconds(now)
        builder = CRLBuilder(
            issuer_name=issuer.certificate.subject,
            issuer_key=issuer.key,
            signature_algo=choose_signed_digest("sha256", issuer.certificate.public_key),
            authority_key_identifier=issuer.certificate.key_identifier_value,
        )
        # The CRL number only has to grow: seconds since the epoch do.
        crl = builder.build_crl(
            crl_number=int(now.timestamp()),
            this_update=now,
            next_update=now + _VALIDITY,
            revoked_certs=[],
        )
        return bytes(crl.dump())

    def ocsp(self, name: str, request_der: bytes, now: datetime | None = None) -> bytes:
        """The DER OCSP response of issuer ``name`` to ``request_der``.

        :raises ValueError: ``request_der`` is not an OCSP request.
        """
        issuer = self._issuer(name)
        request = ocsp.OCSPRequest.load(request_der)
        request.native  # noqa: B018 - parse it all now, not half-way through answering
        responder = SimpleOCSPResponder(
            responder_cert=issuer.certificate,
            responder_key=issuer.key,
            signature_algo=choose_signed_digest("sha256", issuer.certificate.public_key),
            at_time=_whole_seconds(now),
            revinfo_interface=_AllGood(issuer.certificate),
            validity=_VALIDITY,
        )
        return bytes(responder.build_ocsp_response(request).dump())
