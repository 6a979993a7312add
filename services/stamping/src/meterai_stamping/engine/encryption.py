"""Writing the update of an encrypted document with the document's own key.

An encrypted PDF keeps its protection through an incremental update only if
every string and stream the update adds is encrypted as the originals are:
with the file key, per object number and generation (ISO 32000-1, 7.6).  The
key derivation and the ciphers (RC4 40/128, AES-128, AES-256; security
handler revisions 2 to 6) are pypdf's, the implementation its reader uses to
decrypt; nothing here is new cryptography.  The ``/Encrypt`` dictionary and
``/ID`` are carried over unchanged, so the same passwords open the result
with the same permissions.

Three things stay in clear, as the standard requires: cross-reference
streams, the ``/Encrypt`` dictionary itself, and the signature's
``/Contents``, whose hex is the CMS that validators read byte for byte.

Objects are encrypted where they are built, before they are serialized:
revised objects of the document as the pypdf values they were read as, the
engine's own objects by their parts (a text string, a stream's data).
Encrypting serialized bodies instead meant parsing every one of them again
with pypdf, which cost more than building them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO

from pypdf import PdfReader
from pypdf._encryption import Encryption
from pypdf.generic import IndirectObject, PdfObject, read_object

from .incremental import NewObject
from .pdf_syntax import serialize, stream_object, text_bytes

__all__ = ["DocumentCipher", "cipher_of"]

_STRING_START = re.compile(rb"\(|(?<!<)<(?!<)")
"""A literal string, or a hex string's ``<`` (not one of a dictionary's ``<<``)."""


@dataclass(frozen=True)
class DocumentCipher:
    """The decrypted document's security handler, used the other way round."""

    encryption: Encryption
    reader: PdfReader
    encrypt_ref: bytes
    """Serialized ``/Encrypt`` reference for the update's trailer."""

    def object(self, new: NewObject) -> NewObject:
        """*new* with its strings and stream data encrypted for its own number."""
        value = read_object(BytesIO(new.body), self.reader)
        sealed = self.encryption.encrypt_object(value, new.number, new.generation)
        return NewObject(new.number, new.generation, serialize(sealed))

    def value(self, value: PdfObject, number: int, generation: int) -> bytes:
        """The syntax of *value*, a revision of object *number*, with its strings encrypted."""
        return serialize(self.encryption.encrypt_object(value, number, generation))

    def string(self, syntax: bytes, number: int, generation: int = 0) -> bytes:
        """A string literal (``(...)`` or ``<...>``) encrypted as part of object *number*."""
        value = read_object(BytesIO(syntax), self.reader)
        return serialize(self.encryption.encrypt_object(value, number, generation))

    def text(self, text: str, number: int, generation: int = 0) -> bytes:
        """The text string :func:`~.pdf_syntax.pdf_text` writes, encrypted, as a hex string."""
        crypt = self.encryption._make_crypt_filter(number, generation).str_crypt
        return b"<%s>" % crypt.encrypt(text_bytes(text)).hex().upper().encode()

    def stream(self, entries: bytes, data: bytes, number: int, generation: int = 0) -> bytes:
        """A stream object (see :func:`~.pdf_syntax.stream_object`) with *data* encrypted.

        Entries holding a string are the rare case (a specimen's own
        resources): those go through pypdf's reading and encryption whole.
        """
        body = stream_object(entries, data)
        if _STRING_START.search(entries):
            return self.object(NewObject(number, generation, body)).body
        crypt = self.encryption._make_crypt_filter(number, generation).stm_crypt
        return stream_object(entries, crypt.encrypt(data))


def cipher_of(reader: PdfReader) -> DocumentCipher | None:
    """The cipher of a decrypted reader, or None for an unencrypted document."""
    encryption = getattr(reader, "_encryption", None)
    if not reader.is_encrypted or encryption is None:
        return None
    ref = reader.trailer.raw_get("/Encrypt")
    if not isinstance(ref, IndirectObject):
        # A direct /Encrypt dictionary is copied as written: it is never encrypted.
        return DocumentCipher(encryption, reader, serialize(reader.trailer["/Encrypt"]))
    return DocumentCipher(encryption, reader, b"%d %d R" % (ref.idnum, ref.generation))
