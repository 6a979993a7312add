"""Sample documents, the corpus expectations and a throwaway signer for the stamp-engine tests.

Everything is generated in memory: hand-assembled PDFs exercise one structure
each (rotation, CropBox, cross-reference streams, hybrid files, broken trees),
and a self-signed RSA key stands in for the signing service.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from io import BytesIO

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from meterai_stamping.engine import (
    EncryptedPdf,
    PreparedDocument,
    Rect,
    RectOutsidePage,
    RectTooSmall,
    Seal,
    StampError,
    embed_signature,
    prepare,
)
from tests.support.corpus import CORPUS

__all__ = [
    "CORPUS",
    "CORPUS_EXPECTATIONS",
    "CORPUS_PASSWORDS",
    "SEAL",
    "SIGNATURE_SIZE",
    "SIGNING_TIME",
    "STAMPABLE",
    "PageSpec",
    "TestSigner",
    "assemble_pdf",
    "build_pdf",
    "certify",
    "prepare_seal",
    "session_signer",
    "stamp_and_sign",
]

SERIAL = "MTRAI00000000000012345"
SEAL = Seal(serial=SERIAL, verify_url=f"https://verify.example/v/{SERIAL}")
SIGNATURE_SIZE = 8192
SIGNING_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DEFAULT_RECT = Rect(40, 40, 220, 112)

CORPUS_EXPECTATIONS: dict[str, type[StampError] | None] = {
    "minimal-document.pdf": None,
    "002-trivial-libre-office-writer.pdf": None,
    "pdflatex-image.pdf": None,
    "pdflatex-4-pages.pdf": None,
    "imagemagick-images.pdf": RectTooSmall,
    "inline-image.pdf": None,
    "pdflatex-forms.pdf": None,
    "google-doc-document.pdf": None,
    "reportlab-overlay.pdf": None,
    "habibi.pdf": None,
    "libre-office-link.pdf": None,
    "crazyones-pdfa.pdf": None,
    "pdfkit.pdf": None,
    "cmyk-image.pdf": None,
    "annotated_pdf.pdf": None,
    "with-attachment.pdf": None,
    "multicolumn.pdf": None,
    "jpeg.pdf": None,
    "form.pdf": None,
    "outlines-with-invalid-destinations.pdf": None,
    "two-different-pages.pdf": None,
    "box.pdf": RectOutsidePage,
    "toy.pdf": None,
    "issue-297.pdf": None,
    "libreoffice-writer-password.pdf": EncryptedPdf,
    "r2-user-password.pdf": EncryptedPdf,
    "r6-user-password.pdf": None,
    "crazyones-encrypted-256.pdf": EncryptedPdf,
}
"""Expected outcome of stamping page 1 at :data:`DEFAULT_RECT` without a password: None =
stamps.  ``r6-user-password.pdf`` opens with an empty password, as viewers open it."""

CORPUS_PASSWORDS = {
    "libreoffice-writer-password.pdf": "openpassword",
    "r2-user-password.pdf": "asdfzxcv",
    "crazyones-encrypted-256.pdf": "password",
}
"""User passwords of the corpus documents that need one (see the corpus MANIFEST.md)."""

STAMPABLE = sorted(name for name, error in CORPUS_EXPECTATIONS.items() if error is None)


def prepare_seal(
    pdf: bytes,
    *,
    page: int = 1,
    rect: Rect = DEFAULT_RECT,
    seal: Seal = SEAL,
    password: str | None = None,
) -> PreparedDocument:
    """``prepare`` with the defaults every test shares."""
    return prepare(
        pdf,
        page=page,
        rect=rect,
        seal=seal,
        signature_size=SIGNATURE_SIZE,
        signing_time=SIGNING_TIME,
        reason=f"e-meterai {seal.serial}",
        password=password,
    )


@dataclass(frozen=True)
class TestSigner:
    """A self-signed RSA identity; its certificate is also the trust root."""

    __test__ = False
    signer: SimpleSigner
    certificate: asn1_x509.Certificate

    def sign_digest(self, digest: bytes) -> bytes:
        """A PAdES CMS over *digest*, as the signing service would return it."""
        cms = asyncio.run(self.signer.async_sign(digest, "sha256", use_pades=True))
        return bytes(cms.dump())


@cache
def session_signer() -> TestSigner:
    """One key per test session: RSA key generation dominates otherwise."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meterai test signer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, True, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    certificate = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    private = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = SimpleSigner(
        signing_cert=certificate, signing_key=private, cert_registry=SimpleCertificateStore()
    )
    return TestSigner(signer=signer, certificate=certificate)


def stamp_and_sign(
    pdf: bytes,
    *,
    page: int = 1,
    rect: Rect = DEFAULT_RECT,
    seal: Seal = SEAL,
    password: str | None = None,
) -> bytes:
    """The whole flow: prepare, sign the digest elsewhere, embed."""
    prepared = prepare_seal(pdf, page=page, rect=rect, seal=seal, password=password)
    cms = session_signer().sign_digest(prepared.digest)
    return embed_signature(prepared.data, prepared.contents_start, prepared.contents_end, cms)


def certify(pdf: bytes, permission: MDPPerm) -> bytes:
    """Certify *pdf* with pyHanko (a DocMDP signature) at *permission*."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name="Author", certify=True, docmdp_permissions=permission
    )
    out = signers.sign_pdf(writer, meta, signer=session_signer().signer)
    return out.getvalue()


@dataclass(frozen=True)
class PageSpec:
    """One page of a generated document."""

    media: tuple[float, float, float, float] = (0, 0, 595, 842)
    crop: tuple[float, float, float, float] | None = None
    rotate: int | None = None
    user_unit: float | None = None
    text: str = "Perjanjian"


def build_pdf(pages: list[PageSpec] | None = None, *, xref: str = "table") -> bytes:
    """Assemble a small PDF with grey text on each page.

    :param xref: ``"table"`` (classic), ``"stream"`` (object stream plus
        cross-reference stream) or ``"hybrid"`` (classic table whose trailer
        points with ``/XRefStm`` to a stream listing the compressed objects).
    """
    pages = pages or [PageSpec()]
    n_pages = len(pages)
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n_pages)), n_pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for i, spec in enumerate(pages):
        page_n, content_n = 4 + 2 * i, 5 + 2 * i
        entries = [b"/Type /Page /Parent 2 0 R /MediaBox [%s]" % _nums(spec.media)]
        if spec.crop is not None:
            entries.append(b"/CropBox [%s]" % _nums(spec.crop))
        if spec.rotate is not None:
            entries.append(b"/Rotate %d" % spec.rotate)
        if spec.user_unit is not None:
            entries.append(b"/UserUnit %s" % _nums((spec.user_unit,)))
        entries.append(b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R" % content_n)
        objects[page_n] = b"<< " + b" ".join(entries) + b" >>"
        x, y = spec.media[0] + 30, spec.media[3] - 60
        stream = b"0.5 g BT /F1 24 Tf %s Td (%s) Tj ET" % (_nums((x, y)), spec.text.encode())
        objects[content_n] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    size = max(objects) + 1
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    if xref == "table":
        for n, body in objects.items():
            offsets[n] = len(out)
            out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
        start = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
        out += b"trailer\n<< /Size %d /Root 1 0 R /ID [<00ff> <00ff>] >>\n" % size
        out += b"startxref\n%d\n%%%%EOF\n" % start
        return bytes(out)
    # Streams stay top-level objects; every dictionary goes into one object stream.
    packed = [n for n, body in objects.items() if b"stream" not in body]
    direct = [n for n in objects if n not in packed]
    for n in direct:
        offsets[n] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (n, objects[n])
    objstm_n, xref_n = size, size + 1
    header = bytearray()
    payload = bytearray()
    for n in packed:
        header += b"%d %d " % (n, len(payload))
        payload += objects[n] + b"\n"
    data = zlib.compress(bytes(header) + bytes(payload))
    offsets[objstm_n] = len(out)
    out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\n" % (
        objstm_n, len(packed), len(header), len(data)
    )  # fmt: skip
    out += b"stream\n" + data + b"\nendstream\nendobj\n"
    rows = bytearray()
    for n in range(xref_n + 1):
        if n == 0:
            rows += b"\x00" + (0).to_bytes(4, "big") + b"\xff\xff"
        elif n in packed:
            rows += b"\x02" + objstm_n.to_bytes(4, "big") + packed.index(n).to_bytes(2, "big")
        elif n == xref_n:
            rows += b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00"
        else:
            rows += b"\x01" + offsets[n].to_bytes(4, "big") + b"\x00\x00"
    xref_at = len(out)
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % (
        xref_n, xref_n + 1, len(rows)
    )  # fmt: skip
    out += rows + b"\nendstream\nendobj\n"
    if xref == "stream":
        out += b"startxref\n%d\n%%%%EOF\n" % xref_at
        return bytes(out)
    # Hybrid: the classic table lists only uncompressed objects, in subsections that skip
    # the compressed ones (poppler takes a row listed free as final, hiding the stream's).
    offsets[xref_n] = xref_at
    start = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    listed = sorted(offsets)
    runs: list[list[int]] = []
    for n in listed:
        if runs and runs[-1][-1] + 1 == n:
            runs[-1].append(n)
        else:
            runs.append([n])
    for run in runs:
        out += b"%d %d\n" % (run[0], len(run))
        out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in run)
    out += b"trailer\n<< /Size %d /Root 1 0 R /XRefStm %d >>\n" % (xref_n + 1, xref_at)
    out += b"startxref\n%d\n%%%%EOF\n" % start
    return bytes(out)


def _nums(values: tuple[float, ...]) -> bytes:
    return b" ".join(f"{v:g}".encode() for v in values)


def assemble_pdf(objects: dict[int, bytes], *, trailer: bytes = b"/Root 1 0 R") -> bytes:
    """A classic-xref PDF from literal object bodies, for structures no producer would write."""
    out = bytearray(b"%PDF-1.7\n")
    offsets: dict[int, int] = {}
    for n, body in objects.items():
        offsets[n] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    size = max(objects) + 1
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 00001 f \n"
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, start)
    return bytes(out)
