"""PDFs signed through pyHanko's interrupted flow with our CMS, one PKI per key type.

The PDF is built here with pypdf and signed without the project's stamping
engine, so the CMS is judged inside a document whose structure pyHanko,
not our stamper, produced.
"""

from __future__ import annotations

import asyncio
from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_cms import ExternalSigner
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTBSDocument
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pypdf import PdfWriter

from meterai_signing.cms import SigningIdentity, load_identity, sign_digest, signature_size
from meterai_signing.pki import TestPki, generate_test_pki

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"


def _blank_pdf(title: str = "meterai verify test") -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _sign_pdf(pdf: bytes, identity: SigningIdentity, *, field_name: str, reason: str) -> bytes:
    """Sign ``pdf`` as the stamping service will: pyHanko prepares, our CMS fills."""
    external = ExternalSigner(
        signing_cert=identity.signer_certificate,
        cert_registry=SimpleCertificateStore.from_certs(list(identity.certificates[1:])),
    )
    signer = PdfSigner(
        PdfSignatureMetadata(
            field_name=field_name,
            reason=reason,
            subfilter=SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        ),
        signer=external,
    )
    output = BytesIO()
    prepared, _tbs, _ = asyncio.run(
        signer.async_digest_doc_for_signing(
            IncrementalPdfFileWriter(BytesIO(pdf)),
            bytes_reserved=2 * signature_size(identity),  # hex-encoded in /Contents
            output=output,
        )
    )
    cms = sign_digest(identity, prepared.document_digest)
    PdfTBSDocument.finish_signing(output, prepared, cms)
    return output.getvalue()


@pytest.fixture(scope="session", params=["rsa2048", "rsa3072", "ecdsa-p256"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"), key_type=request.param)


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> SigningIdentity:
    return load_identity(pki.signer_key, pki.chain)


@pytest.fixture(scope="session")
def signed_pdf(identity: SigningIdentity) -> bytes:
    return _sign_pdf(
        _blank_pdf(),
        identity,
        field_name=f"e-meterai-{SERIAL}",
        reason=f"e-Meterai {SERIAL}",
    )
