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
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pypdf import PdfReader
from pypdf._encryption import Encryption
from pypdf.generic import IndirectObject, read_object

from .incremental import NewObject
from .pdf_syntax import serialize

__all__ = ["DocumentCipher", "cipher_of"]


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

    def string(self, syntax: bytes, number: int, generation: int = 0) -> bytes:
        """A string literal (``(...)`` or ``<...>``) encrypted as part of object *number*."""
        value = read_object(BytesIO(syntax), self.reader)
        return serialize(self.encryption.encrypt_object(value, number, generation))


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
