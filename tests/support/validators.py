"""External validators the tests trust because we did not write them: poppler's ``pdfsig``,
``qpdf --check`` and pyHanko's signature validator."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

__all__ = ["PdfsigReport", "nss_db_trusting", "pdfsig", "pyhanko_validate", "qpdf_check"]


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install {package} (make setup does)"
    return path


@dataclass(frozen=True)
class PdfsigReport:
    output: str

    @property
    def signatures(self) -> int:
        return self.output.count("Signature #")

    @property
    def all_valid(self) -> bool:
        return (
            self.signatures > 0
            and self.output.count("Signature Validation: Signature is Valid.") == self.signatures
        )

    @property
    def last_covers_whole_document(self) -> bool:
        blocks = self.output.split("Signature #")
        return "Total document signed" in blocks[-1]

    @property
    def all_trusted(self) -> bool:
        return (
            self.output.count("Certificate Validation: Certificate is Trusted.") == self.signatures
        )


def nss_db_trusting(root_pem: Path, directory: Path) -> Path:
    """An NSS database that trusts ``root_pem``, for ``pdfsig -nssdir``."""
    certutil = _tool("certutil", "libnss3-tools")
    directory.mkdir(parents=True, exist_ok=True)
    db = f"sql:{directory}"
    if not (directory / "cert9.db").exists():
        subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True, timeout=60)
        subprocess.run(
            [certutil, "-A", "-d", db, "-n", "meterai root", "-t", "CT,C,C", "-i", str(root_pem)],
            check=True,
            timeout=60,
        )
    return directory


def pdfsig(pdf: Path, nssdir: Path | None = None) -> PdfsigReport:
    """Run ``pdfsig``; without ``nssdir`` certificates are not checked (``-nocert``).

    No ``-no-ocsp``: poppler 22.12 then reports "Unknown issue with Certificate" for a good
    chain. Nothing is fetched anyway: the test PKI has no AIA/OCSP addresses.
    """
    args = [_tool("pdfsig", "poppler-utils")]
    args += ["-nssdir", f"sql:{nssdir}"] if nssdir else ["-nocert"]
    result = subprocess.run(
        [*args, str(pdf)], capture_output=True, text=True, timeout=60, check=False
    )
    return PdfsigReport(result.stdout + result.stderr)


def qpdf_check(pdf: Path) -> tuple[bool, str]:
    """(no errors, output). Exit 0 is clean, 3 means warnings only, 2 means errors."""
    result = subprocess.run(
        [_tool("qpdf", "qpdf"), "--check", str(pdf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode in (0, 3), result.stdout + result.stderr


def pyhanko_validate(pdf: bytes, root_pem: Path) -> list[dict[str, object]]:
    """Every signature's verdict from pyHanko's validator, trusting only ``root_pem``."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(
        trust_roots=[load_cert_from_pemder(str(root_pem))], allow_fetching=False
    )
    reader = PdfFileReader(BytesIO(pdf))
    verdicts = []
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, context)
        verdicts.append(
            {
                "field": embedded.field_name,
                "intact": status.intact,
                "valid": status.valid,
                "trusted": status.trusted,
                "coverage": status.coverage.name,
                "modification_level": status.modification_level.name
                if status.modification_level
                else None,
            }
        )
    return verdicts
