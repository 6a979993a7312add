"""PDFs signed through pyHanko's interrupted-signing flow with the project's own CMS.

Built with pypdf and signed without the project's stamping engine, so the CMS signer and the
PDF checker are judged inside documents whose structure pyHanko, not our stamper, produced.
"""

from __future__ import annotations

import asyncio
from io import BytesIO

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_cms import ExternalSigner
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTBSDocument
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pypdf import PdfWriter

from meterai_signing.cms import SigningIdentity, sign_digest, signature_size
from meterai_signing.timestamps import TimestampSource

__all__ = ["blank_pdf", "sign_pdf"]


def blank_pdf(title: str = "meterai verify test") -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def sign_pdf(
    pdf: bytes,
    identity: SigningIdentity,
    *,
    field_name: str,
    reason: str,
    timestamper: TimestampSource | None = None,
) -> bytes:
    """Sign ``pdf`` as the stamping service will: pyHanko prepares, our CMS fills (timestamped
    by ``timestamper`` when given: PAdES B-T)."""
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
    bound = 0 if timestamper is None else timestamper.token_size_bound
    output = BytesIO()
    prepared, _tbs, _ = asyncio.run(
        signer.async_digest_doc_for_signing(
            IncrementalPdfFileWriter(BytesIO(pdf)),
            bytes_reserved=2 * signature_size(identity, bound),  # hex-encoded in /Contents
            output=output,
        )
    )
    cms = sign_digest(identity, prepared.document_digest, timestamper)
    PdfTBSDocument.finish_signing(output, prepared, cms)
    return output.getvalue()
