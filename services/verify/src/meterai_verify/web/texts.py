"""The site's words, Indonesian first and English second (``?lang=en``)."""

from __future__ import annotations

__all__ = ["LANGUAGES", "texts"]

LANGUAGES = ("id", "en")

_ID = {
    "title": "Verifikasi e-Meterai",
    "switch": "English",
    "serial": "Nomor seri",
    "check_serial": "Periksa nomor seri",
    "issued": "Nomor seri ini DITERBITKAN oleh platform e-meterai.",
    "unknown": "Nomor seri ini TIDAK DIKENAL atau tidak berlaku.",
    "stamped_at": "Waktu pembubuhan",
    "stamped_at_note": "menurut jam platform e-meterai",
    "trusted_time": "Waktu tepercaya (cap waktu)",
    "trusted_time_note": "disahkan oleh otoritas cap waktu (TSA), bukan jam platform",
    "no_trusted_time": "tidak ada: meterai ini dibubuhkan tanpa cap waktu dari otoritas cap waktu",
    "value": "Nilai",
    "document_type": "Jenis dokumen",
    "document_number": "Nomor dokumen",
    "document_date": "Tanggal dokumen",
    "reseller": "Distributor",
    "status": "Status",
    "not_recorded": "tidak dicatat",
    "invite": "Unggah dokumen untuk memastikan isinya sama dengan yang dibubuhi meterai.",
    "upload": "Unggah PDF",
    "password": "Kata sandi dokumen (hanya jika PDF dilindungi kata sandi)",
    "verify": "Periksa dokumen",
    "result": "Hasil pemeriksaan dokumen",
    "genuine": "ASLI: meterai sah dan dokumen tidak diubah sejak dibubuhi.",
    "modified": "DIUBAH: meterai sah, tetapi dokumen diubah setelah dibubuhi meterai.",
    "not-genuine": "TIDAK ASLI: meterai tidak sah untuk dokumen ini.",
    "seal": "Meterai",
    "changes": "Perubahan setelah meterai",
    "nothing": "tidak ada",
    "form_filling": "isian formulir",
    "annotations": "anotasi (termasuk tanda tangan yang menutupi meterai atau halaman)",
    "signatures": "tanda tangan lain",
    "content": "isi dokumen",
    "validation_data": "data validasi jangka panjang",
    "why": "Alasan",
    "download": "Unduh revisi persis yang dibubuhi meterai",
    "other_signatures": "Tanda tangan pihak lain",
    "signature_broken": "tanda tangan tidak cocok dengan dokumen (diubah atau rusak)",
    "untrusted_signer": "penanda tangan bukan penerbit e-meterai",
    "partial_coverage": "tanda tangan tidak mencakup seluruh revisinya",
    "serial_not_issued": "nomor seri tidak diterbitkan",
    "digest_mismatch": "nomor seri diterbitkan untuk dokumen lain",
    "changed_after_stamping": "dokumen diubah setelah dibubuhi meterai melebihi kebijakan",
    "no_seal": "tidak ada e-meterai di dokumen ini",
    "refused": "Dokumen ditolak",
    "policy": (
        "Kebijakan: tanda tangan pihak lain setelah meterai diperbolehkan dan dilaporkan; "
        "perubahan isi, isian formulir atau anotasi membuat hasil DIUBAH."
    ),
}

_EN = {
    "title": "e-Meterai verification",
    "switch": "Bahasa Indonesia",
    "serial": "Serial number",
    "check_serial": "Check a serial",
    "issued": "This serial was ISSUED by the e-meterai platform.",
    "unknown": "This serial is UNKNOWN or not valid.",
    "stamped_at": "Stamped at",
    "stamped_at_note": "by the e-meterai platform's clock",
    "trusted_time": "Trusted time (timestamp)",
    "trusted_time_note": "certified by the timestamp authority (TSA), not the platform's clock",
    "no_trusted_time": "none: this seal was made without a timestamp from a timestamp authority",
    "value": "Value",
    "document_type": "Document type",
    "document_number": "Document number",
    "document_date": "Document date",
    "reseller": "Reseller",
    "status": "Status",
    "not_recorded": "not recorded",
    "invite": "Upload the document to make sure it is the one that was stamped.",
    "upload": "Upload PDF",
    "password": "Document password (only if the PDF is password-protected)",
    "verify": "Verify document",
    "result": "Document verification result",
    "genuine": "GENUINE: the seal holds and the document is unchanged since stamping.",
    "modified": "MODIFIED: the seal holds, but the document was changed after stamping.",
    "not-genuine": "NOT GENUINE: the seal does not hold for this document.",
    "seal": "Seal",
    "changes": "Changes after the seal",
    "nothing": "nothing",
    "form_filling": "form filling",
    "annotations": "annotations (including a signature covering the seal or the page)",
    "signatures": "other signatures",
    "content": "content",
    "validation_data": "long-term validation data",
    "why": "Why",
    "download": "Download the exact revision that was stamped",
    "other_signatures": "Signatures by other parties",
    "signature_broken": "the signature does not match the document (altered or corrupt)",
    "untrusted_signer": "the signer is not the e-meterai issuer",
    "partial_coverage": "the signature does not cover its whole revision",
    "serial_not_issued": "the serial is not issued",
    "digest_mismatch": "the serial was issued for a different document",
    "changed_after_stamping": "the document was changed after stamping beyond the policy",
    "no_seal": "no e-meterai seal found in this document",
    "refused": "Document refused",
    "policy": (
        "Policy: signatures by other parties after the seal are allowed and reported; a change "
        "to content, form values or annotations makes the result MODIFIED."
    ),
}


def texts(lang: str) -> dict[str, str]:
    """The words of ``lang`` (``id`` unless ``en`` is asked for)."""
    return _EN if lang == "en" else _ID
