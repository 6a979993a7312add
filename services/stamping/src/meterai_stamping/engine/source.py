"""Reading the parts of an existing PDF that the stamp touches, and nothing more.

pypdf parses lazily: building a :class:`~pypdf.PdfReader` reads the trailer and
cross-reference sections, and objects are parsed only when asked for.  This
module asks for the catalog, the certification dictionary, the AcroForm, and
the pages on the path from the page-tree root to the target page, so the cost
of a stamp does not grow with the length of the document.

It also decides whether the file's own cross-reference data can be trusted as
the base of an incremental update (see :attr:`SourceDocument.damaged`).  That
check is done on the raw bytes before pypdf runs, so a sound file can be read
with ``strict=True``: pypdf's lenient mode otherwise re-reads the header of
every object the cross-reference data lists, a cost that grows with the
document.  Damaged files get the lenient reader and its repairs.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import repeat
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf._encryption import Encryption
from pypdf._utils import StreamType
from pypdf.errors import PdfReadError
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    PdfObject,
    TextStringObject,
    create_string_object,
    read_object,
)

from .bounds import check_declared_size
from .errors import (
    CertifiedNoChanges,
    CertifiedNoNewFields,
    DocumentTooLarge,
    EncryptedPdf,
    MalformedPdf,
    NotAPdf,
    PageOutOfRange,
)
from .file_keys import open_with_password
from .geometry import PageGeometry
from .model import Limits

__all__ = [
    "LocatedPage",
    "SharedBytesIO",
    "SourceDocument",
    "assess_cross_references",
    "open_document",
    "scan_objects",
]

_HEADER_WINDOW = 1024
_TAIL_WINDOW = 2048
_MAX_TREE_DEPTH = 64
"""Deeper page trees do not occur in practice (a balanced tree of fan-out 2
holds 2**64 pages); the bound keeps a crafted chain from burning time."""

_STARTXREF = re.compile(rb"startxref\s*(\d{1,12})")
_CLASSIC_XREF = re.compile(rb"\s*xref\b")
_OBJECT_HEADER = re.compile(rb"\s*(\d{1,10})\s+(\d{1,5})\s+obj\b")
_XREF_SUBSECTION = re.compile(rb"\s*(\d{1,10})\s+(\d{1,10})[ \t]*(?:\r\n|\r|\n)")
_ROW_DIGITS = (*range(0, 10), *range(11, 16))
"""Columns of a 20-byte classic-table row that hold the offset's and the generation's digits."""
_CR_ONLY = bytes.maketrans(b" \n\r", b"\x00\x00\x01")
"""End-of-row bytes (already checked to be these three) to 1 for CR, 0 otherwise."""
_PREV = re.compile(rb"/Prev\s+(\d{1,12})")
_XREF_STM = re.compile(rb"/XRefStm\s+(\d{1,12})")
_MAX_SECTIONS = 10_000
_LENGTH = re.compile(rb"/Length\s+(\d{1,12})(?!\s+\d+\s+R)")
_MAX_XREF_STREAM = 16 * 1024 * 1024
"""Bytes a cross-reference stream may inflate to while being checked (2M objects)."""
_KIDS = re.compile(rb"/Kids\s*\[((?:\s*\d{1,10}\s+\d{1,5}\s+R)*)\s*\]")
_MAX_NODE_BYTES = 4 * 1024 * 1024
"""Largest page-tree node read the quick way (about 300,000 kids)."""


@dataclass(frozen=True)
class Subsection:
    """The rows of one checked subsection of a classic table, column by column."""

    first: int
    """Object number of the first row."""
    offsets: list[int]
    generations: list[bytes]
    """As written: five digits."""
    kinds: list[bytes]
    """``n`` (in use) or ``f`` (free) per row."""
    plain_from: int
    """0 when every row is in use with generation 0, 1 when all but a free first row (the
    head of the free list) are, else the row count: where the bulk path may start."""


ClassicTables = dict[int, tuple[list[Subsection], int]]
"""Checked classic tables by offset of their ``xref`` keyword: their subsections and where
``trailer`` starts."""
_HEX_STRING = re.compile(rb"(?<!<)<([0-9A-Fa-f \t\r\n\f]*)>")
"""A hex string of digits and white space; the lookbehind keeps a dictionary's ``<<`` out."""
_PDF_WHITESPACE = re.compile(rb"[ \t\r\n\f]+")
_PLACEHOLDER_PREFIX = b"/MtrHexString"
_MAX_PLAIN_OBJECT = 64 * 1024
"""Largest object read the quick way; an ``/Encrypt`` dictionary is a few hundred bytes."""
_ANY_OBJECT = re.compile(rb"(?<![0-9])(\d{1,10})[ \t\r\n\f\0]+(\d{1,5})[ \t\r\n\f\0]+obj\b")


@dataclass(frozen=True)
class LocatedPage:
    """A page found in the page tree, with its inherited attributes resolved."""

    ref: IndirectObject
    dictionary: DictionaryObject
    geometry: PageGeometry


@dataclass
class SourceDocument:
    """An opened, unencrypted, modifiable PDF."""

    data: bytes
    reader: PdfReader
    root_ref: IndirectObject
    catalog: DictionaryObject
    page_count: int
    startxref: int
    """Offset of the last cross-reference section, the ``/Prev`` of the update."""
    xref_is_stream: bool
    """Whether that last section is a cross-reference stream (PDF 1.5+)."""
    hybrid: bool
    """Whether a classic section of the chain points with ``/XRefStm`` to a
    stream listing objects that pre-1.5 readers must not see (Word writes
    such hybrid-reference files).  Updates then carry a stream of their own
    (see :func:`~meterai_stamping.engine.incremental.build_update`)."""
    damaged: bool
    """True when the file's cross-reference data is wrong (bad offsets, bad
    ``startxref``).  Viewers silently repair such files; an update chained to
    the broken table with ``/Prev`` would inherit the damage, so the update
    then carries a complete cross-reference table instead."""
    next_number: int
    """First object number free for new objects."""

    def resolve(self, value: PdfObject | None) -> PdfObject | None:
        """Follow indirect references (a chain of them, at most a few)."""
        for _ in range(8):
            if not isinstance(value, IndirectObject):
                return value
            value = self.reader.get_object(value)
        raise MalformedPdf("The PDF has a loop of indirect references; re-save it and try again.")

    def locate_page(self, number: int) -> LocatedPage:
        """Find page *number* (1-based) by descending the tree using ``/Count``.

        Only the nodes on the path and their direct kids are parsed.
        """
        if not 1 <= number <= self.page_count:
            raise PageOutOfRange(
                f"page {number} requested; the document has {self.page_count} "
                f"page{'s' if self.page_count != 1 else ''}"
            )
        remaining = number - 1
        node_ref = self._pages_ref()
        inherited: dict[str, PdfObject] = {}
        visited: set[tuple[int, int]] = set()
        for _ in range(_MAX_TREE_DEPTH):
            node = self._tree_node(node_ref, visited)
            _inherit(node, inherited)
            kids = self.resolve(node.get("/Kids"))
            if not isinstance(kids, ArrayObject) or _is_leaf(node):
                if remaining != 0:
                    raise _broken_tree()
                return LocatedPage(node_ref, node, self._geometry(node, inherited))
            for kid_ref in kids:
                kid = self.resolve(kid_ref)
                if not isinstance(kid_ref, IndirectObject) or not isinstance(kid, DictionaryObject):
                    raise _broken_tree()
                count = 1 if _is_leaf(kid) else _count(self.resolve(kid.get("/Count")))
                if remaining < count:
                    node_ref = kid_ref
                    break
                remaining -= count
            else:
                raise _broken_tree()
        raise _broken_tree()

    def iter_pages(self, budget: int) -> Iterator[PageGeometry]:
        """Geometry of every page in order; stops with an error after *budget* tree nodes."""
        visited: set[tuple[int, int]] = set()
        stack: list[tuple[IndirectObject, dict[str, PdfObject], int]] = [(self._pages_ref(), {}, 0)]
        while stack:
            ref, parent_attrs, depth = stack.pop()
            if depth > _MAX_TREE_DEPTH or len(visited) > budget:
                raise _broken_tree()
            node = self._tree_node(ref, visited)
            attrs = dict(parent_attrs)
            _inherit(node, attrs)
            kids = self.resolve(node.get("/Kids"))
            if not isinstance(kids, ArrayObject) or _is_leaf(node):
                yield self._geometry(node, attrs)
                continue
            for kid in reversed(kids):
                if not isinstance(kid, IndirectObject):
                    raise _broken_tree()
                stack.append((kid, attrs, depth + 1))

    def _pages_ref(self) -> IndirectObject:
        ref = self.catalog.get("/Pages")
        if not isinstance(ref, IndirectObject):
            raise _broken_tree()
        return ref

    def _tree_node(self, ref: IndirectObject, visited: set[tuple[int, int]]) -> DictionaryObject:
        key = (ref.idnum, ref.generation)
        if key in visited:
            raise MalformedPdf(
                "The PDF's page tree loops back on itself; "
                "re-save it with a PDF editor and try again."
            )
        visited.add(key)
        node = self._tree_node_object(ref)
        if not isinstance(node, DictionaryObject):
            raise _broken_tree()
        return node

    def _tree_node_object(self, ref: IndirectObject) -> PdfObject | None:
        """The page-tree node *ref*, its ``/Kids`` read by one regular expression.

        pypdf reads an array item by item in Python, a few microseconds per
        reference, so the root of a flat tree with hundreds of pages would
        cost more than the rest of a stamp.  For a node written as a plain
        dictionary in the file (not in an object stream, not encrypted, no
        strings), the ``/Kids`` array of references is taken out, the rest
        parsed by pypdf, and the array built from the references found; the
        node goes into pypdf's cache as if pypdf had read it.  Anything else,
        or any doubt, is pypdf's reading.
        """
        reader = self.reader
        cached = reader.cache_get_indirect_object(ref.generation, ref.idnum)
        if cached is not None or self.damaged or reader.is_encrypted:
            return cached if cached is not None else self.resolve(ref)
        offset = reader.xref.get(ref.generation, {}).get(ref.idnum)
        header = _OBJECT_HEADER.match(self.data, offset) if isinstance(offset, int) else None
        if header is None or tuple(map(int, header.group(1, 2))) != (ref.idnum, ref.generation):
            return self.resolve(ref)
        end = self.data.find(b"endobj", header.end(), header.end() + _MAX_NODE_BYTES)
        body = self.data[header.end() : end].lstrip() if end > 0 else b""
        kids = list(_KIDS.finditer(body))
        if len(kids) != 1 or len(kids[0].group(1)) < 64 or b"(" in body or b"stream" in body:
            return self.resolve(ref)
        found = kids[0]
        tokens = found.group(1).split()
        count = len(tokens) // 3
        if tokens[2::3] != [b"R"] * count or len(tokens) != 3 * count:
            return self.resolve(ref)  # references written without spaces between them
        rest = body[: found.start()] + b"/Kids []" + body[found.end() :]
        node = read_object(BytesIO(rest), reader)
        if not isinstance(node, DictionaryObject) or node.get("/Kids") != ArrayObject():
            return self.resolve(ref)
        numbers, generations = map(int, tokens[0::3]), map(int, tokens[1::3])
        node[NameObject("/Kids")] = ArrayObject(
            map(IndirectObject, numbers, generations, repeat(reader, count))
        )
        reader.cache_indirect_object(ref.generation, ref.idnum, node)
        return node

    def _geometry(self, page: DictionaryObject, inherited: dict[str, PdfObject]) -> PageGeometry:
        rotate = self.resolve(inherited.get("/Rotate"))
        unit = self.resolve(page.get("/UserUnit"))
        return PageGeometry.from_boxes(
            self._box(inherited.get("/MediaBox")),
            self._box(inherited.get("/CropBox")),
            int(rotate) if isinstance(rotate, int) and not isinstance(rotate, bool) else 0,
            float(unit) if isinstance(unit, (int, float)) and not isinstance(unit, bool) else 1.0,
        )

    def _box(self, value: PdfObject | None) -> tuple[float, float, float, float] | None:
        array = self.resolve(value)
        if not isinstance(array, ArrayObject) or len(array) != 4:
            return None
        numbers = [self.resolve(v) for v in array]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            return None
        a, b, c, d = (float(n) for n in numbers)  # type: ignore[arg-type]
        return (a, b, c, d)


def open_document(pdf: bytes, password: str | None, limits: Limits) -> SourceDocument:
    """Parse trailer and cross-references and check the document may be stamped.

    Raises the document-level errors: not a PDF, too large, encrypted,
    certified by its author, broken structure.
    """
    if not isinstance(pdf, (bytes, bytearray, memoryview)):
        raise NotAPdf("The upload is not a PDF file (expected raw bytes).")
    pdf = bytes(pdf)
    if len(pdf) > limits.max_bytes:
        raise DocumentTooLarge(
            f"The document is {len(pdf):,} bytes; the limit is {limits.max_bytes:,} bytes. "
            "Compress or split it and try again."
        )
    if not pdf.startswith(b"%PDF-"):
        raise NotAPdf(
            "The upload is not a PDF file (it does not start with %PDF-); "
            "upload the document as PDF."
        )
    tables: ClassicTables = {}
    startxref, xref_is_stream, sound, hybrid = assess_cross_references(pdf, tables)
    reader = _read_trusting_cross_references(pdf, tables) if sound else None
    if reader is None:
        reader = _KeyDeferringReader(SharedBytesIO(pdf), strict=False)
    damaged = not sound
    check_declared_size(reader.trailer.get("/Size"), len(pdf))
    if reader.is_encrypted:
        _decrypt(reader, password)
    root_ref = reader.trailer.raw_get("/Root") if "/Root" in reader.trailer else None
    catalog = reader.get_object(root_ref) if isinstance(root_ref, IndirectObject) else None
    if not isinstance(root_ref, IndirectObject) or not isinstance(catalog, DictionaryObject):
        raise MalformedPdf(
            "The PDF has no document catalog, so it cannot be stamped; "
            "re-save it with a PDF editor and try again."
        )
    doc = SourceDocument(
        data=pdf,
        reader=reader,
        root_ref=root_ref,
        catalog=catalog,
        page_count=0,
        startxref=startxref,
        xref_is_stream=xref_is_stream,
        hybrid=hybrid,
        damaged=damaged,
        next_number=0,
    )
    doc.next_number = _next_free_number(doc)
    pages_ref = catalog.raw_get("/Pages") if "/Pages" in catalog else None
    pages = (
        doc._tree_node_object(pages_ref)
        if isinstance(pages_ref, IndirectObject)
        else doc.resolve(pages_ref)
    )
    if not isinstance(pages, DictionaryObject):
        raise _broken_tree()
    doc.page_count = _count(doc.resolve(pages.get("/Count")))
    if doc.page_count > limits.max_pages:
        raise DocumentTooLarge(
            f"The document has {doc.page_count:,} pages; the limit is {limits.max_pages:,}. "
            "Split it and stamp the part that needs the seal."
        )
    if doc.page_count == 0:
        raise _broken_tree()
    _refuse_certified(doc)
    if doc.damaged and reader.xref_objStm:
        raise MalformedPdf(
            "The PDF's cross-reference data is damaged; re-save it with a PDF editor and try again."
        )
    return doc


class SharedBytesIO(BytesIO):
    """A read-only stream over the caller's bytes that never copies them.

    ``BytesIO`` shares an initial ``bytes`` value until it is written to or
    asked for :meth:`getbuffer`; pypdf asks for the buffer just to learn the
    stream's size (``pypdf._utils.get_stream_size``), which would copy the
    whole file.  Returning a view of the original bytes keeps that free.
    Reads stay those of ``BytesIO`` itself, in C.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = data
        """The bytes read, for callers that match on them directly."""
        self._view = memoryview(data)

    def getbuffer(self) -> memoryview:
        """A fresh view of the original bytes; callers may release it."""
        return self._view[:]


class _KeyDeferringReader(PdfReader):
    """A pypdf reader that derives no key yet and reuses the checked classic tables.

    pypdf's reader tries the empty password while it opens; :func:`_decrypt`
    does that itself, the cheaper way round and remembering the key
    (:mod:`~meterai_stamping.engine.file_keys`), so the costly AES-256 check
    is never run twice for one document.

    Classic cross-reference tables that :func:`assess_cross_references` has
    already parsed and checked row by row (*tables*) are entered from its
    rows, with pypdf's own rules (the first revision of a number read wins,
    free rows recorded), instead of pypdf reading each row again.
    """

    def __init__(
        self, stream: SharedBytesIO, *, strict: bool, tables: ClassicTables | None = None
    ) -> None:
        self._checked_tables = tables or {}
        super().__init__(stream, strict=strict)

    def _read_standard_xref_table(self, stream: StreamType) -> None:
        table = self._checked_tables.get(stream.tell() - 1)
        if table is None:
            super()._read_standard_xref_table(stream)
            return
        subsections, trailer_at = table
        for sub in subsections:
            plain = sub.plain_from
            self._enter_rows(sub, 0, plain)  # the free head of the list, or every row
            if plain < len(sub.offsets):
                self._enter_plain_rows(sub.first + plain, sub.offsets[plain:])
        stream.seek(trailer_at + len(b"trailer"))

    def _enter_plain_rows(self, first: int, offsets: list[int]) -> None:
        """Enter a run of in-use generation-0 rows with dictionary operations in C."""
        xref, free = self.xref, self.xref_free_entry
        entries = xref.setdefault(0, {})
        free.setdefault(0, {})
        numbers = range(first, first + len(offsets))
        fresh: Iterable[int] = numbers
        if entries:
            fresh = set(numbers).difference(entries)
            xref[0] = {**dict(zip(numbers, offsets, strict=True)), **entries}
        else:
            xref[0] = dict(zip(numbers, offsets, strict=True))
        in_use = dict.fromkeys(fresh, False)
        free[0].update(in_use)
        if 65535 in free:
            free[65535].update(in_use)

    def _enter_rows(self, sub: Subsection, start: int, stop: int) -> None:
        """Enter rows *start* to *stop* of *sub* one by one, as pypdf's own table reader does."""
        xref, free = self.xref, self.xref_free_entry
        columns = (sub.offsets[start:stop], sub.generations[start:stop], sub.kinds[start:stop])
        rows = zip(*columns, strict=True)
        for number, (at, generation_text, kind) in enumerate(rows, sub.first + start):
            generation = int(generation_text)
            entries = xref.get(generation)
            if entries is None:
                entries = xref[generation] = {}
                free[generation] = {}
            if number in entries:
                continue
            is_free = kind == b"f"
            if not is_free:
                entries[number] = at
            free[generation][number] = is_free
            if 65535 in free:
                free[65535][number] = is_free

    def _handle_encryption(self, password: str | bytes | None) -> None:
        self._override_encryption = True
        ids = self.trailer.get("/ID", NullObject()).get_object()
        first = ids[0].get_object() if isinstance(ids, ArrayObject) and ids else None
        id1 = (
            first.original_bytes if isinstance(first, (ByteStringObject, TextStringObject)) else b""
        )
        entry = self._encrypt_dictionary()
        if not isinstance(entry, DictionaryObject):
            raise PdfReadError("/Encrypt entry of the trailer is not a dictionary")
        self._encryption = Encryption.read(entry, id1)
        self._override_encryption = False

    def _encrypt_dictionary(self) -> PdfObject | None:
        """The trailer's ``/Encrypt`` dictionary, its hex strings decoded in C.

        pypdf reads a hex string a character at a time; the five of an AES-256
        dictionary (``/O``, ``/U``, ``/OE``, ``/UE``, ``/Perms``: 352 digits)
        made up much of opening such a document.  A dictionary written plainly
        in the file (not in an object stream; no literal string, comment or
        stream) has its hex strings swapped for placeholder names, the rest
        parsed by pypdf, and the strings put back as pypdf would have made
        them.  Anything else, or any doubt, is pypdf's reading.
        """
        ref = self.trailer.raw_get("/Encrypt")
        stream = self.stream
        if not isinstance(ref, IndirectObject) or not isinstance(stream, SharedBytesIO):
            return self.trailer["/Encrypt"]
        cached = self.cache_get_indirect_object(ref.generation, ref.idnum)
        quick = None if cached is not None else _hex_strings_decoded(self, stream.data, ref)
        if quick is None:
            return self.trailer["/Encrypt"]
        self.cache_indirect_object(ref.generation, ref.idnum, quick)
        return quick


def _hex_strings_decoded(
    reader: PdfReader, data: bytes, ref: IndirectObject
) -> DictionaryObject | None:
    """Object *ref* read with its hex strings decoded by :data:`_HEX_STRING`, or None."""
    offset = reader.xref.get(ref.generation, {}).get(ref.idnum)
    header = _OBJECT_HEADER.match(data, offset) if isinstance(offset, int) else None
    if header is None or tuple(map(int, header.group(1, 2))) != (ref.idnum, ref.generation):
        return None
    end = data.find(b"endobj", header.end(), header.end() + _MAX_PLAIN_OBJECT)
    body = data[header.end() : end].lstrip() if end > 0 else b"("
    if b"(" in body or b"%" in body or b"stream" in body or _PLACEHOLDER_PREFIX in body:
        return None
    strings: list[bytes] = []

    def placeholder(found: re.Match[bytes]) -> bytes:
        digits = _PDF_WHITESPACE.sub(b"", found.group(1))
        strings.append(bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode("ascii")))
        return b"%s%d " % (_PLACEHOLDER_PREFIX, len(strings) - 1)

    try:
        value = read_object(BytesIO(_HEX_STRING.sub(placeholder, body)), reader)
    except Exception:
        return None  # pypdf's own reading decides, and reports
    return _with_strings(value, strings) if isinstance(value, DictionaryObject) else None


def _with_strings(value: PdfObject, strings: list[bytes]) -> Any:
    """*value* with every placeholder name replaced by its string, as pypdf makes strings."""
    if isinstance(value, NameObject) and value.startswith(_PLACEHOLDER_PREFIX.decode()):
        return create_string_object(strings[int(value[len(_PLACEHOLDER_PREFIX) :])])
    if isinstance(value, DictionaryObject):
        for key in list(value):
            value[key] = _with_strings(value[key], strings)
    elif isinstance(value, ArrayObject):
        for index, item in enumerate(value):
            value[index] = _with_strings(item, strings)
    return value


def _read_trusting_cross_references(data: bytes, tables: ClassicTables) -> PdfReader | None:
    """A pypdf reader that takes the cross-reference data as it is, or None.

    Called only once :func:`assess_cross_references` has found the data
    sound.  Strict reading skips pypdf's lenient pass over every listed
    object; the reader is switched back to lenient afterwards, so objects are
    still parsed as forgivingly as viewers do.  Whatever the strict reader
    rejects is left to the lenient reader: this is a shortcut, not a verdict
    on the file.

    pypdf flags a classic table whose first subsection does not start at
    object 0 (``xref_index``) as possibly misnumbered.  Every incremental
    update without a row for object 0 looks like that, the platform's own
    outputs included, and taking the flag as damage is what made a second
    seal on a hybrid-xref file impossible (damaged files with object streams
    are refused).  The chain check has already matched every such row with
    the object header it points to, so the numbering is known to be right.
    """
    try:
        reader = _KeyDeferringReader(SharedBytesIO(data), strict=True, tables=tables)
    except Exception:
        return None
    reader.xref_index = 0
    reader.strict = False
    return reader


def _next_free_number(doc: SourceDocument) -> int:
    """One past the highest object number in use or declared by ``/Size``.

    The highest of each table is taken, not of their union: a set of every
    object number cost as much as the rest of finding the page.
    """
    highest = max(doc.reader.xref_objStm, default=0)
    for generation, entries in doc.reader.xref.items():
        if generation != 65535:
            highest = max(highest, max(entries, default=0))
    size = doc.resolve(doc.reader.trailer.get("/Size"))
    declared = int(size) if isinstance(size, int) and 0 < size < 10_000_000 else 0
    return max(declared, highest + 1)


def _decrypt(reader: PdfReader, password: str | None) -> None:
    """Open an encrypted document with *password*, or the empty user password without one.

    The reader has derived no key yet (:class:`_KeyDeferringReader`); the key
    is derived once, the empty user password first, and remembered for the
    same document and password (:mod:`~meterai_stamping.engine.file_keys`).

    Many documents are encrypted only to set permissions, with an empty user
    password that every viewer opens silently; those need no password here
    either.  pypdf's security handler supports RC4 (40 and 128 bit), AES-128
    and AES-256, revisions 2 to 6.
    """
    how = (
        "Send the document's password with the request (the password field; "
        "meterai stamp --password), or upload a copy saved without password protection."
    )
    encryption = getattr(reader, "_encryption", None)
    if encryption is None:
        raise EncryptedPdf(
            "The document's encryption cannot be read. Upload a copy saved without "
            "password protection."
        )
    if encryption.is_decrypted():
        return _refuse_withdrawn_revision(reader)
    try:
        opened = open_with_password(encryption, password or "")
    except Exception as exc:  # an unsupported or broken security handler
        raise EncryptedPdf(
            f"The document's encryption cannot be read ({exc}). Upload a copy saved without "
            "password protection."
        ) from exc
    if opened != PasswordType.NOT_DECRYPTED:
        _refuse_withdrawn_revision(reader)
        return
    if not password:
        raise EncryptedPdf(f"The document is protected by a password. {how}")
    raise EncryptedPdf(
        "The password is wrong for this document: it is neither its user (open) password "
        f"nor its owner password. {how}"
    )


def _refuse_withdrawn_revision(reader: PdfReader) -> None:
    """Refuse AES-256 revision 5, the pre-standard variant Adobe withdrew for revision 6.

    The engine could stamp it, but pyHanko, the platform's verifier, cannot
    open such files at all, so a seal on one could never be shown genuine.
    """
    encryption = getattr(reader, "_encryption", None)
    if encryption is not None and getattr(encryption, "R", 0) == 5:
        raise EncryptedPdf(
            "The document uses AES-256 encryption revision 5, a pre-standard variant that "
            "was withdrawn and that the e-meterai verifier cannot read. Save it again with "
            "current AES-256 encryption (any recent PDF editor does) and upload that copy."
        )


def _refuse_certified(doc: SourceDocument) -> None:
    """Refuse documents certified by their author (a DocMDP signature), whatever the level.

    The seal needs a new, visible signature field.  ``/P 1`` forbids every
    change.  ``/P 2`` allows filling in and signing the fields the author
    created, not adding one, and pyHanko's validator reports the
    certification as broken when a field is added; ``/P 3`` (annotations
    too) is judged the same way.  Earlier signatures must stay valid, so
    none of the levels can take an e-meterai.  A missing ``/P`` means 2, as
    ISO 32000 specifies for the DocMDP transform parameters.
    """
    perms = doc.resolve(doc.catalog.get("/Perms"))
    if not isinstance(perms, DictionaryObject):
        return
    signature = doc.resolve(perms.get("/DocMDP"))
    if not isinstance(signature, DictionaryObject):
        return
    level = 2
    references = doc.resolve(signature.get("/Reference"))
    for item in references if isinstance(references, ArrayObject) else []:
        reference = doc.resolve(item)
        if not isinstance(reference, DictionaryObject):
            continue
        if doc.resolve(reference.get("/TransformMethod")) != "/DocMDP":
            continue
        params = doc.resolve(reference.get("/TransformParams"))
        value = doc.resolve(params.get("/P")) if isinstance(params, DictionaryObject) else None
        if isinstance(value, int) and value in (1, 2, 3):
            level = int(value)
    advice = (
        "Ask the author for a copy that is not certified, or have the e-meterai added "
        "before the document is certified."
    )
    if level == 1:
        raise CertifiedNoChanges(
            "The document is certified by its author with 'no changes allowed' (DocMDP P=1); "
            f"adding the e-meterai would invalidate that certification. {advice}"
        )
    allowed = "filling in its existing fields" + (" and adding comments" if level == 3 else "")
    raise CertifiedNoNewFields(
        f"The document is certified by its author and only allows {allowed} (DocMDP P={level}); "
        "the e-meterai needs a new signature field, so it cannot be added without invalidating "
        f"that certification. {advice}"
    )


def assess_cross_references(
    data: bytes, tables: ClassicTables | None = None
) -> tuple[int, bool, bool, bool]:
    """Find ``startxref`` and decide whether the xref data is trustworthy.

    Returns the ``startxref`` offset, whether it points at a cross-reference
    stream, whether the data is sound, and whether a section is hybrid.
    pypdf silently repairs wrong offsets; other readers repair too, but not always the same way, and
    validators flag the file as damaged.  Checking walks the ``/Prev`` chain
    and matches each classic-table entry against the object header it points
    to: linear in the number of objects, not in file size.  Cross-reference
    streams are binary and checked by pypdf as it reads.
    """
    tail_start = max(0, len(data) - _TAIL_WINDOW)
    matches = list(_STARTXREF.finditer(data, tail_start))
    startxref = int(matches[-1].group(1)) if matches else -1
    is_stream = bool(
        0 < startxref < len(data)
        and not _CLASSIC_XREF.match(data, startxref)
        and _OBJECT_HEADER.match(data, startxref)
    )
    sound, hybrid = _chain_is_sound(data, startxref, tables)
    return startxref, is_stream, sound, hybrid


def _chain_is_sound(
    data: bytes, offset: int, tables: ClassicTables | None = None
) -> tuple[bool, bool]:
    """Follow ``startxref`` and every ``/Prev``; each section must be where it is said to be.

    Returns (sound, some classic section has an ``/XRefStm``).  A ``/Prev``
    that leads back to a section already seen is refused: which revision is
    the last cannot be known, so no reader agrees on the document.
    """
    seen: set[int] = set()
    hybrid = False
    while len(seen) < _MAX_SECTIONS:
        if offset in seen:
            raise MalformedPdf(
                "The PDF's cross-reference sections point back to each other (a /Prev loop), "
                "so its revisions cannot be told apart; re-save it with a PDF editor and "
                "try again."
            )
        seen.add(offset)
        if not 0 < offset < len(data):
            return False, hybrid
        if _CLASSIC_XREF.match(data, offset):
            trailer_at = _classic_table_end(data, offset, tables)
            if trailer_at < 0:
                return False, hybrid
            dictionary = data[trailer_at : data.find(b"startxref", trailer_at)]
            extra = _XREF_STM.search(dictionary)
            if extra is not None:
                hybrid = True
                at = int(extra.group(1))
                if not _OBJECT_HEADER.match(data, at) or not _stream_inflates(data, at):
                    return False, hybrid
        elif _OBJECT_HEADER.match(data, offset):
            stream_at = data.find(b"stream", offset)
            dictionary = data[offset : stream_at if stream_at > 0 else offset]
            if not _stream_inflates(data, offset):
                return False, hybrid
        else:
            return False, hybrid
        prev = _PREV.search(dictionary)
        if prev is None:
            return True, hybrid
        offset = int(prev.group(1))
    return False, hybrid


def _stream_inflates(data: bytes, offset: int) -> bool:
    """Whether the cross-reference stream at *offset* inflates without a zlib error.

    pypdf quietly recovers what it can from corrupt Flate data; pyHanko, the
    platform's verifier, refuses the whole file.  Cross-reference streams are
    a few bytes per object, and inflating stops at :data:`_MAX_XREF_STREAM`,
    so a decompression bomb costs no more than a large honest table.
    """
    stream_at = data.find(b"stream", offset, offset + 4096)
    if stream_at < 0:
        return False
    dictionary = data[offset:stream_at]
    length = _LENGTH.search(dictionary)
    if b"/FlateDecode" not in dictionary or length is None:
        return True  # unfiltered or indirect /Length: pypdf's own reading decides
    start = stream_at + 6
    start += 2 if data.startswith(b"\r\n", start) else 1
    try:
        inflater = zlib.decompressobj()
        inflater.decompress(data[start : start + int(length.group(1))], _MAX_XREF_STREAM)
    except zlib.error:
        return False
    return True


def _classic_table_end(data: bytes, offset: int, tables: ClassicTables | None = None) -> int:
    """Check every in-use entry of the table at *offset*; return where ``trailer`` starts, or -1.

    Each subsection's rows are checked in one regular-expression match, then
    each in-use row's offset must hold that object's header.  Producers write
    the header as ``N G obj``, so a plain comparison settles nearly every row;
    for the usual run of in-use generation-0 rows the comparisons are made in
    bulk (:func:`_plain_rows_hold_headers`), because a Python loop over rows
    made this check the largest cost of opening a long document.
    """
    pos = data.index(b"xref", offset) + 4
    keyword_at = pos - 4
    subsections: list[Subsection] = []
    while True:
        sub = _XREF_SUBSECTION.match(data, pos)
        if sub is None:
            at = _skip_space(data, pos)
            if not data.startswith(b"trailer", at):
                return -1
            if tables is not None:
                tables[keyword_at] = (subsections, at)
            return at
        first, count = int(sub.group(1)), int(sub.group(2))
        pos = sub.end()
        end = pos + 20 * count
        if end > len(data) or not _rows_well_formed(data[pos:end], count):
            return -1
        section = _subsection(first, data[pos:end].split())
        subsections.append(section)
        checked = section.plain_from if _plain_rows_hold_headers(data, section) else count
        rows = zip(section.offsets[:checked], section.generations, section.kinds, strict=False)
        for number, (at, generation, kind) in enumerate(rows, first):
            if kind != b"n" or data.startswith(b"%d %d obj" % (number, int(generation)), at):
                continue
            header = _OBJECT_HEADER.match(data, at)
            if header is None or tuple(map(int, header.group(1, 2))) != (number, int(generation)):
                return -1
        pos = end


def _rows_well_formed(block: bytes, count: int) -> bool:
    """Whether *block* is *count* rows of a classic table, 20 bytes each, as ISO 32000 (7.5.4)
    requires: ``oooooooooo ggggg k`` with ``k`` ``n`` or ``f``, then ``SP CR``, ``SP LF`` or
    ``CR LF``.

    Checked column by column (every 20th byte) in C: a regular expression over the rows cost
    a tenth of opening a 600-object file.
    """
    if len(block) != 20 * count:
        return False
    if count == 0:
        return True
    spaces = b" " * count
    first_eol, second_eol = block[18::20], block[19::20]
    return (
        all(block[column::20].isdigit() for column in _ROW_DIGITS)
        and block[10::20] == spaces
        and block[16::20] == spaces
        and not block[17::20].translate(None, b"nf")
        and not first_eol.translate(None, b" \r")
        and not second_eol.translate(None, b"\r\n")
        # CR CR is the one pair of those characters that is no end of row.
        and not int.from_bytes(first_eol.translate(_CR_ONLY))
        & int.from_bytes(second_eol.translate(_CR_ONLY))
    )


def _subsection(first: int, tokens: list[bytes]) -> Subsection:
    """A subsection from the whitespace-split tokens of its rows (already checked by
    :func:`_rows_well_formed`: three tokens per row)."""
    offsets = list(map(int, tokens[0::3]))
    generations, kinds = tokens[1::3], tokens[2::3]
    count = len(offsets)
    start = 1 if kinds[:1] == [b"f"] else 0
    rest = count - start
    plain = kinds.count(b"n") == rest and generations[start:].count(b"00000") == rest
    return Subsection(first, offsets, generations, kinds, start if plain else count)


def _plain_rows_hold_headers(data: bytes, sub: Subsection) -> bool:
    """Whether every row from ``plain_from`` on points at its ``N 0 obj`` header, compared in C.

    False sends the rows to the row-by-row check, which also accepts other
    spellings of the header (more spaces, line breaks).
    """
    start = sub.plain_from
    heads = map(b"%d 0 obj".__mod__, range(sub.first + start, sub.first + len(sub.offsets)))
    return all(map(data.startswith, heads, sub.offsets[start:]))


def scan_objects(data: bytes) -> dict[int, tuple[int, int]]:
    """Locate every ``N G obj`` header in the file: ``{number: (offset, generation)}``.

    Used only for damaged files; later definitions win, as in incremental updates.
    """
    found: dict[int, tuple[int, int]] = {}
    for match in _ANY_OBJECT.finditer(data):
        found[int(match.group(1))] = (match.start(), int(match.group(2)))
    return found


def _skip_space(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in b" \t\r\n\f\0":
        pos += 1
    return pos


def _inherit(node: DictionaryObject, attrs: dict[str, PdfObject]) -> None:
    for key in ("/MediaBox", "/CropBox", "/Rotate"):
        if key in node:
            attrs[key] = node.raw_get(key)


def _is_leaf(node: DictionaryObject) -> bool:
    kind = node.get("/Type")
    return kind == "/Page" or (kind != "/Pages" and "/Kids" not in node)


def _count(value: PdfObject | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _broken_tree()
    return int(value)


def _broken_tree() -> MalformedPdf:
    return MalformedPdf(
        "The PDF's page tree is broken (pages cannot be located reliably); "
        "re-save it with a PDF editor and try again."
    )
