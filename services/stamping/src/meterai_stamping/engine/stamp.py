"""``prepare`` and ``inspect``: the stamp engine's two entry points over a document.

``prepare`` appends one incremental update holding, in this order:

* the signature value dictionary (``/Type /Sig``) with placeholders,
* the seal appearance, a form XObject,
* the signature field merged with its widget annotation,
* a new revision of the page's ``/Annots`` (the array, or the page itself),
* a new revision of the AcroForm (or of the catalog, when it has none or
  holds it directly),

then the cross-reference section.  Nothing else of the document is parsed or
rewritten.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
)

from .appearance import FONT_RESOURCES, layout_seal, seal_content
from .bounds import MAX_NESTING, check_nesting
from .encryption import cipher_of
from .errors import (
    DocumentTooLarge,
    InvalidRequest,
    MalformedPdf,
    RectOutsidePage,
    RectTooSmall,
    StampError,
)
from .geometry import PageGeometry, place
from .incremental import NewObject, UpdateTrailer, build_update
from .model import MM_PER_PT, DocumentInfo, Limits, PreparedDocument, Rect, Seal
from .overlap import settle
from .pdf_syntax import pdf_number, pdf_text, serialize, stream_object
from .qr import QrSymbol, encode_qr
from .repair import repaired_stream_lengths
from .signature import fill_byte_range, signature_dictionary, update_digest
from .source import LocatedPage, SourceDocument, open_document, scan_objects
from .specimen import (
    Specimen,
    image_object,
    place_specimen,
    specimen_content,
    specimen_resources,
)

__all__ = ["DEFAULT_LIMITS", "MIN_MODULE_PT", "inspect", "prepare"]

DEFAULT_LIMITS = Limits()
"""Limits used when the caller passes none."""

MIN_MODULE_PT = 0.35 / MM_PER_PT
"""Smallest printed QR module (0.35 mm) that phone cameras decode reliably."""

_MAX_SIGNATURE_SIZE = 1024 * 1024
"""A CMS with a full chain, OCSP responses and a timestamp is well under this."""

_SIG_FLAGS = 3
"""SignaturesExist | AppendOnly: tells editors to save incrementally from now on."""

Writer = Callable[[PdfObject, int, int], bytes]
"""Writes a revised object of the document given its number and generation: pypdf's
syntax, encrypted for that number when the document is encrypted."""


def inspect(
    pdf: bytes, *, password: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> DocumentInfo:
    """Page count and displayed page sizes, without reading page content.

    Raises every document-level error :func:`prepare` would raise (not a PDF,
    malformed, encrypted, too large, certified by its author), so a caller
    can refuse a document before charging for a stamp.  Errors that depend on
    the request (page number, rectangle) are left to :func:`prepare`.
    """
    with _errors_as_stamp_errors():
        doc = open_document(pdf, password, limits)
        sizes = tuple(g.displayed_size for g in doc.iter_pages(2 * limits.max_pages + 64))
        if len(sizes) != doc.page_count:
            raise MalformedPdf(
                f"The PDF's page tree declares {doc.page_count} pages but holds {len(sizes)}; "
                "re-save it with a PDF editor and try again."
            )
        return DocumentInfo(page_count=doc.page_count, page_sizes=sizes)


def prepare(
    pdf: bytes,
    *,
    page: int,
    rect: Rect,
    seal: Seal,
    signature_size: int,
    signing_time: datetime,
    reason: str,
    password: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    move_if_overlapping: bool = False,
    specimen: Specimen | None = None,
) -> PreparedDocument:
    """Stamp the seal on *page* inside *rect* and reserve room for a PAdES signature.

    :param pdf: the document; it is not modified and is an exact prefix of the result.
    :param page: 1-based page number.
    :param rect: where the seal goes, in displayed-page points (see :class:`Rect`).
    :param seal: serial and verify URL shown by the seal.
    :param signature_size: largest DER size of the CMS that will be embedded.
    :param signing_time: written as ``/M``; naive values are taken as UTC.
    :param reason: written as ``/Reason``, shown by viewers in the signature panel.
    :param password: the user or owner password of an encrypted document;
        without one the empty user password is tried, which opens documents
        encrypted only to set permissions.  The update is encrypted with the
        document's key (see :mod:`~meterai_stamping.engine.encryption`).
    :param move_if_overlapping: when *rect* overlaps an e-meterai already on the
        page, use the nearest free rectangle of the same size instead of refusing
        (:class:`~meterai_stamping.engine.SealOverlaps`).
    :param specimen: the issuer's artwork to draw the seal on, with the QR code and
        serial where it says; None draws the platform's own card.
    :raises StampError: a subclass saying what is wrong; nothing else escapes.
    """
    with _errors_as_stamp_errors():
        _check_request(page, rect, seal, signature_size)
        if specimen is not None and not (
            isinstance(specimen, Specimen) and specimen.is_well_formed()
        ):
            raise InvalidRequest(
                "The specimen needs exactly one artwork (content stream or JPEG), a positive "
                "size, and QR and serial boxes inside it."
            )
        doc = open_document(pdf, password, limits)
        located = doc.locate_page(page)
        _check_revised_nesting(doc, located)
        if located.geometry.contains(rect):
            rect = settle(doc, located, page, rect, move=move_if_overlapping)
        qr = _check_fit(page, located.geometry, rect, seal, limits, specimen)
        return _stamp(doc, located, rect, seal, qr, signature_size, signing_time, reason, specimen)


class _errors_as_stamp_errors:
    """Turn anything raised while parsing into the error tree.

    pypdf reports malformed input with its own exceptions and with plain
    ``ValueError``/``KeyError``/``TypeError``/``RecursionError`` from deep
    inside the parser, so the boundary catches broadly: for input that is
    attacker-controlled, "this file is broken" is the only truthful answer.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if exc is None or isinstance(exc, StampError) or not isinstance(exc, Exception):
            return False
        if _caused_by(exc, RecursionError):
            raise MalformedPdf(
                f"The PDF nests arrays or dictionaries more than {MAX_NESTING} levels deep, "
                "which no document needs; re-save it with a PDF editor and try again."
            ) from exc
        if isinstance(exc, MemoryError):
            raise DocumentTooLarge(
                "The document is too complex to process within the memory limit; "
                "simplify or split it and try again."
            ) from exc
        raise MalformedPdf(
            "The PDF is damaged and cannot be read; re-save it with a PDF editor and try again."
        ) from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether *kind* is in the chain of causes: pypdf wraps what it trips on."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 16:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _check_revised_nesting(doc: SourceDocument, page: LocatedPage) -> None:
    """The objects the update copies must stay readable by recursive readers."""
    check_nesting(page.dictionary, f"page object {page.ref.idnum}")
    check_nesting(doc.catalog, "document catalog")
    for key, what in (("/AcroForm", "form dictionary"),):
        check_nesting(doc.resolve(doc.catalog.get(key)), what)
    check_nesting(doc.resolve(page.dictionary.get("/Annots")), "annotation list")


def _check_request(page: int, rect: Rect, seal: Seal, signature_size: int) -> None:
    if not isinstance(page, int) or isinstance(page, bool):
        raise InvalidRequest("page must be an integer page number starting at 1.")
    if not isinstance(rect, Rect) or not rect.is_well_formed():
        raise InvalidRequest(
            f"The seal rectangle {rect!r} is not a rectangle: it needs finite coordinates "
            "with x1 > x0 and y1 > y0."
        )
    if not isinstance(seal, Seal) or not seal.serial or not seal.verify_url:
        raise InvalidRequest("The seal needs a serial number and a verify URL.")
    if not isinstance(signature_size, int) or not 0 < signature_size <= _MAX_SIGNATURE_SIZE:
        raise InvalidRequest(
            f"signature_size must be between 1 and {_MAX_SIGNATURE_SIZE} bytes, "
            f"got {signature_size!r}."
        )


def _check_fit(
    number: int,
    geometry: PageGeometry,
    rect: Rect,
    seal: Seal,
    limits: Limits,
    specimen: Specimen | None = None,
) -> QrSymbol:
    minimum = limits.min_seal_side_pt
    size = geometry.displayed_size
    if min(size.width, size.height) < minimum:
        raise RectTooSmall(
            f"Page {number} is {size.width:.1f} x {size.height:.1f} pt, too small for the seal, "
            f"which needs at least {minimum:.1f} x {minimum:.1f} pt "
            f"({minimum * MM_PER_PT:.1f} mm square). Choose another page."
        )
    if not geometry.contains(rect):
        raise RectOutsidePage(
            f"The seal rectangle ({rect.x0:g}, {rect.y0:g})-({rect.x1:g}, {rect.y1:g}) is not "
            f"inside page {number}, which is {size.width:.1f} x {size.height:.1f} pt as displayed "
            "(origin at its bottom-left corner). Move the seal onto the page."
        )
    if min(rect.width, rect.height) < minimum:
        raise RectTooSmall(
            f"The seal rectangle is {rect.width:.1f} x {rect.height:.1f} pt; each side must be "
            f"at least {minimum:.1f} pt ({minimum * MM_PER_PT:.1f} mm) so the QR code stays "
            "scannable. Enlarge the rectangle."
        )
    try:
        qr = encode_qr(seal.verify_url)
    except Exception as exc:
        raise InvalidRequest(f"The verify URL cannot be encoded as a QR code: {exc}") from exc
    if specimen is not None:
        module = place_specimen(specimen, rect.width, rect.height, qr).module
        if module < MIN_MODULE_PT:
            raise RectTooSmall(
                f"The seal rectangle is {rect.width:.1f} x {rect.height:.1f} pt; the specimen's "
                f"QR box would get {module * MM_PER_PT:.2f} mm modules, below the 0.35 mm "
                f"phones scan reliably. Enlarge the rectangle by "
                f"{MIN_MODULE_PT / module:.2f} times or more."
            )
        return qr
    layout = layout_seal(rect.width, rect.height, qr)
    if layout.module < MIN_MODULE_PT:
        needed = layout.qr_side * MIN_MODULE_PT / layout.module
        raise RectTooSmall(
            f"The seal rectangle is {rect.width:.1f} x {rect.height:.1f} pt; its QR code would "
            f"have {layout.module * MM_PER_PT:.2f} mm modules, below the 0.35 mm phones scan "
            f"reliably. Make the QR part at least {needed:.1f} pt square (a wider or taller "
            "rectangle gives the QR code its full short side)."
        )
    return qr


def _stamp(
    doc: SourceDocument,
    page: LocatedPage,
    rect: Rect,
    seal: Seal,
    qr: QrSymbol,
    signature_size: int,
    signing_time: datetime,
    reason: str,
    specimen: Specimen | None = None,
) -> PreparedDocument:
    existing = scan_objects(doc.data) if doc.damaged else None
    first = doc.next_number
    if existing:
        first = max(first, max(existing) + 1)
    sig_n, ap_n, field_n = first, first + 1, first + 2
    next_free = first + 3
    reader = doc.reader
    field_ref = IndirectObject(field_n, 0, reader)

    placement = place(page.geometry, rect)
    cipher = cipher_of(reader)
    write: Writer = (lambda value, _n, _g: serialize(value)) if cipher is None else cipher.value
    extra: list[NewObject] = []
    if specimen is None:
        layout = layout_seal(rect.width, rect.height, qr)
        content = zlib.compress(seal_content(layout, qr, seal.serial), 6)
        resources = FONT_RESOURCES
    else:
        fitted = place_specimen(specimen, rect.width, rect.height, qr)
        content = zlib.compress(specimen_content(specimen, fitted, qr, seal.serial), 6)
        image = None
        if specimen.jpeg:
            image = IndirectObject(next_free, 0, reader)
            image_body = image_object(specimen)
            extra.append(
                NewObject(next_free, 0, image_body)
                if cipher is None
                else cipher.object(NewObject(next_free, 0, image_body))
            )
            next_free += 1
        resources = specimen_resources(specimen, image)
    entries = b"".join(
        (
            b"/Type /XObject /Subtype /Form /BBox [0 0 ",
            pdf_number(rect.width),
            b" ",
            pdf_number(rect.height),
            b"] /Matrix [",
            b" ".join(pdf_number(v) for v in placement.matrix),
            b"] /Resources ",
            resources,
            b" /Filter /FlateDecode",
        )
    )
    appearance = (
        stream_object(entries, content) if cipher is None else cipher.stream(entries, content, ap_n)
    )
    name = _field_name(doc, seal.serial)
    widget = b"".join(
        (
            b"<< /Type /Annot /Subtype /Widget /FT /Sig /F 4 /T ",
            pdf_text(name) if cipher is None else cipher.text(name, field_n),
            b" /V %d 0 R /P %d %d R /Rect [" % (sig_n, page.ref.idnum, page.ref.generation),
            b" ".join(pdf_number(v) for v in placement.annotation_rect),
            b"] /AP << /N %d 0 R >> >>" % ap_n,
        )
    )
    signature = (
        signature_dictionary(signature_size, signing_time, reason)
        if cipher is None
        else signature_dictionary(
            signature_size, signing_time, reason, lambda text: cipher.string(text, sig_n)
        )
    )
    objects = [
        NewObject(sig_n, 0, signature),
        NewObject(ap_n, 0, appearance),
        NewObject(field_n, 0, widget),
        *extra,
    ]
    annots_objects, next_free = _annots_revision(doc, page, [field_ref], next_free, write)
    objects.extend(annots_objects)
    form_objects, next_free = _acroform_revision(doc, field_ref, next_free, write)
    objects.extend(form_objects)
    if cipher is None and existing:
        revised = {item.number for item in objects}
        objects.extend(
            item
            for item in repaired_stream_lengths(doc.data, existing)
            if item.number not in revised
        )

    as_stream = doc.xref_is_stream and not doc.damaged
    hybrid = doc.hybrid and not as_stream and not doc.damaged
    trailer = UpdateTrailer(
        size=next_free + (1 if as_stream or hybrid else 0),
        root=b"%d %d R" % (doc.root_ref.idnum, doc.root_ref.generation),
        info=_trailer_ref(doc, "/Info"),
        ids=_trailer_ids(doc, seal, signing_time),
        prev=None if doc.damaged else doc.startxref,
        encrypt=None if cipher is None else cipher.encrypt_ref,
    )
    update, offsets = build_update(
        doc.data, objects, trailer, as_stream=as_stream, existing=existing, hybrid=hybrid
    )
    base = len(doc.data)
    contents_start, contents_end, byte_range = fill_byte_range(
        update, base, offsets[sig_n], signature_size
    )
    return PreparedDocument(
        original=doc.data,
        update=bytes(update),
        contents_start=contents_start,
        contents_end=contents_end,
        byte_range=byte_range,
        digest=update_digest(doc.data, update, byte_range),
        page_count=doc.page_count,
    )


def _annots_revision(
    doc: SourceDocument,
    page: LocatedPage,
    added: list[IndirectObject],
    next_free: int,
    write: Writer,
) -> tuple[list[NewObject], int]:
    """Add the widget to the page: rewrite the ``/Annots`` array object if it is
    indirect (the page stays untouched), else write a new page revision.

    Annotations written directly inside the array are moved into objects of
    their own.  pyHanko's change analysis refuses an ``/Annots`` array holding
    direct dictionaries as a suspicious modification, so without the move the
    first seal on such a page would be reported as altered by the second.
    """
    raw = page.dictionary.get("/Annots")
    array = doc.resolve(raw)
    items = list(array) if isinstance(array, ArrayObject) else []
    objects: list[NewObject] = []
    for index, item in enumerate(items):
        if isinstance(item, DictionaryObject):
            objects.append(NewObject(next_free, 0, write(item, next_free, 0)))
            items[index] = IndirectObject(next_free, 0, doc.reader)
            next_free += 1
    revised_array = ArrayObject([*items, *added])
    if isinstance(raw, IndirectObject) and isinstance(array, ArrayObject):
        objects.append(
            NewObject(raw.idnum, raw.generation, write(revised_array, raw.idnum, raw.generation))
        )
        return objects, next_free
    revised = DictionaryObject(page.dictionary)
    revised[NameObject("/Annots")] = revised_array
    ref = page.ref
    objects.append(NewObject(ref.idnum, ref.generation, write(revised, ref.idnum, ref.generation)))
    return objects, next_free


def _acroform_revision(
    doc: SourceDocument, field: IndirectObject, next_free: int, write: Writer
) -> tuple[list[NewObject], int]:
    """Register the field in the AcroForm and set ``/SigFlags 3``.

    An indirect AcroForm is revised in place so the catalog stays untouched
    (certification policies look hard at catalog changes); a direct or
    missing one means a new catalog revision.
    """
    raw = doc.catalog.get("/AcroForm")
    form = doc.resolve(raw)
    if isinstance(raw, IndirectObject) and isinstance(form, DictionaryObject):
        out: list[NewObject] = []
        fields_raw = form.get("/Fields")
        fields = doc.resolve(fields_raw)
        revised = DictionaryObject(form)
        if isinstance(fields_raw, IndirectObject) and isinstance(fields, ArrayObject):
            number, generation = fields_raw.idnum, fields_raw.generation
            revised_fields = ArrayObject([*fields, field])
            out.append(NewObject(number, generation, write(revised_fields, number, generation)))
        else:
            items = list(fields) if isinstance(fields, ArrayObject) else []
            revised[NameObject("/Fields")] = ArrayObject([*items, field])
        flags = doc.resolve(form.get("/SigFlags"))
        current = int(flags) if isinstance(flags, int) and not isinstance(flags, bool) else 0
        redrawn = _drop_need_appearances(revised)
        if not out or current & _SIG_FLAGS != _SIG_FLAGS or redrawn:
            revised[NameObject("/SigFlags")] = NumberObject(current | _SIG_FLAGS)
            out.append(
                NewObject(raw.idnum, raw.generation, write(revised, raw.idnum, raw.generation))
            )
        return out, next_free
    catalog = DictionaryObject(doc.catalog)
    objects: list[NewObject] = []
    if isinstance(form, DictionaryObject):
        revised = DictionaryObject(form)
        fields = doc.resolve(form.get("/Fields"))
        items = list(fields) if isinstance(fields, ArrayObject) else []
        revised[NameObject("/Fields")] = ArrayObject([*items, field])
        flags = doc.resolve(form.get("/SigFlags"))
        current = int(flags) if isinstance(flags, int) and not isinstance(flags, bool) else 0
        revised[NameObject("/SigFlags")] = NumberObject(current | _SIG_FLAGS)
        _drop_need_appearances(revised)
        catalog[NameObject("/AcroForm")] = revised
    else:
        form_n = next_free
        next_free += 1
        objects.append(
            NewObject(form_n, 0, b"<< /Fields [%d 0 R] /SigFlags %d >>" % (field.idnum, _SIG_FLAGS))
        )
        catalog[NameObject("/AcroForm")] = IndirectObject(form_n, 0, doc.reader)
    root = doc.root_ref
    objects.append(
        NewObject(root.idnum, root.generation, write(catalog, root.idnum, root.generation))
    )
    return objects, next_free


def _drop_need_appearances(form: DictionaryObject) -> bool:
    """Remove ``/NeedAppearances`` from a revised AcroForm; True if it was there.

    The flag asks viewers to rebuild every field's appearance, and poppler
    (22.12 here) rebuilds signature widgets too, as an empty box: the seal
    and its QR code vanish.  Signing software clears it for that reason
    (pyHanko's ``ensure_sig_flags``; pyHanko's change analysis exempts the
    key, so earlier signatures stay valid).  Fields without an appearance
    stream are still drawn from their value by every viewer, flag or not;
    the rendering tests check that the page looks the same outside the seal.
    """
    if NameObject("/NeedAppearances") not in form:
        return False
    del form[NameObject("/NeedAppearances")]
    return True


def _field_name(doc: SourceDocument, serial: str) -> str:
    """``e-meterai <serial>``, made unique among the form's top-level fields.

    Fields sharing a name are one field in PDF, so a clash would merge two seals.
    """
    base = f"e-meterai {serial}"
    form = doc.resolve(doc.catalog.get("/AcroForm"))
    fields = doc.resolve(form.get("/Fields")) if isinstance(form, DictionaryObject) else None
    if not isinstance(fields, ArrayObject):
        return base
    taken: set[str] = set()
    for item in fields:
        field = doc.resolve(item)
        if isinstance(field, DictionaryObject):
            name = doc.resolve(field.get("/T"))
            if isinstance(name, str):
                taken.add(str(name))
    candidate, counter = base, 1
    while candidate in taken:
        counter += 1
        candidate = f"{base} ({counter})"
    return candidate


def _trailer_ref(doc: SourceDocument, key: str) -> bytes | None:
    value: PdfObject | None = doc.reader.trailer.get(key)
    if isinstance(value, IndirectObject):
        return b"%d %d R" % (value.idnum, value.generation)
    return None


def _trailer_ids(doc: SourceDocument, seal: Seal, signing_time: datetime) -> bytes:
    """The original ``/ID`` pair, or a fresh one: PDF 2.0 and PAdES expect an ID."""
    ids = doc.resolve(doc.reader.trailer.get("/ID"))
    if isinstance(ids, ArrayObject) and len(ids) == 2:
        return serialize(ids)
    token = (
        hashlib.md5(f"{seal.serial}|{signing_time.isoformat()}".encode(), usedforsecurity=False)
        .hexdigest()
        .upper()
    )
    return b"[<%s> <%s>]" % (token.encode(), token.encode())
