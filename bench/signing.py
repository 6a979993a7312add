"""The cost of trusted time, long-term validation and a token-held key: B-T and B-LT beside
B-B, SoftHSM2 beside memory.

Two tables, measured in this one process (pinned to one CPU where the OS allows, as one
signing worker is):

* **engine, B-B vs B-T**: one whole stamp in process (the stamping engine's ``prepare``, the
  signing core's ``sign_digest``, ``embed_signature``) for a 1-page text PDF and the 100 KB
  scan, once as PAdES B-B and once as B-T with the platform's TSA
  (``meterai_signing.tsa_service``, its own process on loopback); also the placeholder each
  reserves (the B-T bound is the measured token plus margin). B-LT adds the finishing step's
  DSS (OCSP answers from the test PKI's responder, the same process as the TSA, on loopback)
  and B-LTA the document timestamp after it; also the bytes each level adds to the file.
* **signing throughput per worker**: signatures per second of :class:`Signer.sign` run back
  to back, with the in-memory key and with the key in a SoftHSM2 token (``Pkcs11Key``), each
  B-B and B-T.

Run: ``.venv/bin/python bench/signing.py`` (writes ``bench/results/signing.json``), or
``--quick`` for a few-second check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem

from meterai_signing.cms import SigningIdentity, identity_for_key, load_identity, sign_digest
from meterai_signing.cms import signature_size as cms_size
from meterai_signing.signer import Signer
from meterai_signing.timestamps import HttpTimeStamper, TimestampSource, TsaSettings
from meterai_stamping.domain.jobs import seal_reason
from meterai_stamping.engine import Rect, Seal, embed_signature, prepare
from meterai_stamping.ltv import LongTermSettings, add_long_term_data

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("METERAI_TEST_CORPUS", REPO.parent / "shared" / "pdf-corpus"))
RESULTS = REPO / "bench" / "results"
SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"
SEAL_RECT = (400.0, 50.0, 520.0, 170.0)


def _median_ms(function: Callable[[], object], runs: int, budget_s: float) -> tuple[float, int]:
    for _ in range(3):
        function()
    samples: list[int] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < runs or (time.perf_counter() < deadline and len(samples) < 10 * runs):
        start = time.perf_counter_ns()
        function()
        samples.append(time.perf_counter_ns() - start)
        if len(samples) >= runs and time.perf_counter() >= deadline:
            break
    return statistics.median(samples) / 1e6, len(samples)


def _stamp(
    identity: SigningIdentity,
    stamper: TimestampSource | None,
    long_term: LongTermSettings | None = None,
) -> Callable[[bytes], bytes]:
    bound = 0 if stamper is None else stamper.token_size_bound
    size = cms_size(identity, bound)
    seal = Seal(serial=SERIAL, verify_url=f"https://verify.example/v/{SERIAL}")

    def stamp_and_sign(pdf: bytes) -> bytes:
        prepared = prepare(
            pdf,
            page=1,
            rect=Rect(*SEAL_RECT),
            seal=seal,
            signature_size=size,
            signing_time=datetime.now(UTC),
            reason=seal_reason(SERIAL),
        )
        cms = sign_digest(identity, prepared.digest, stamper)
        signed = embed_signature(prepared.data, prepared.contents_start, prepared.contents_end, cms)
        return signed if long_term is None else add_long_term_data(signed, long_term)

    return stamp_and_sign


class _EveryJobCommitted:
    """The committed-jobs check answered from memory: the table prices the key and the TSA,
    not the database read a production signer makes per task."""

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        return True


def _throughput(signer: Signer, seconds: float) -> float:
    digest = hashlib.sha256(b"bench").digest()
    for _ in range(5):
        signer.sign("job", SERIAL, digest)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signer.sign("job", SERIAL, digest)
        count += 1
    return count / (time.perf_counter() - start)


def run(*, quick: bool) -> dict[str, Any]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the SoftHSM2 and TSA launchers of tests/support
    from meterai_common.config import Settings
    from meterai_signing.token_setup import init_token_pki
    from tests.support.softhsm import softhsm_token
    from tests.support.tsa import TsaProcess, revocation_pki, revocation_port

    work = Path(tempfile.mkdtemp(prefix="meterai-bench-signing-"))
    pki = revocation_pki(work / "pki")
    memory = load_identity(pki.signer_key, pki.chain)
    tsa = TsaProcess(pki.directory, work / "tsa.log", revocation_port(pki)).start()
    token = softhsm_token(work / "hsm")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    try:
        stamper = HttpTimeStamper(TsaSettings(url=tsa.url))
        settings = Settings.from_env({"METERAI_HOME": str(work), **token.env()})
        # init_token_pki generates the key in the token and certifies it with this test CA
        made = init_token_pki(settings, token.settings(), "rsa2048")
        from meterai_signing.pkcs11_key import Pkcs11Key

        hsm = identity_for_key(Pkcs11Key(token.settings()), Path(made.chain).read_bytes())

        documents = {"text-1p": _text_pdf()}
        scan = CORPUS / "jpeg.pdf"
        if scan.is_file():
            documents["scan-1p-100KB"] = scan.read_bytes()
        runs, budget = (3, 0.5) if quick else (30, 5.0)
        root = pki.root_cert.read_bytes()
        roots = (pem.unarmor(root)[2],)
        levels: list[tuple[str, TimestampSource | None, LongTermSettings | None]] = [
            ("B-B", None, None),
            ("B-T", stamper, None),
            ("B-LT", stamper, LongTermSettings(level="B-LT", trust_roots=roots)),
            (
                "B-LTA",
                stamper,
                LongTermSettings(level="B-LTA", trust_roots=roots, tsa_url=tsa.url),
            ),
        ]
        engine_rows = []
        for name, pdf in documents.items():
            row: dict[str, Any] = {"document": name}
            for level, source, long_term in levels:
                function = _stamp(memory, source, long_term)
                ms, n = _median_ms(lambda f=function, d=pdf: f(d), runs, budget)  # type: ignore[misc]
                row[level] = {
                    "median_ms": round(ms, 2),
                    "runs": n,
                    "bytes_added": len(function(pdf)) - len(pdf),
                }
            engine_rows.append(row)
        placeholder = {
            "B-B": cms_size(memory),
            "B-T": cms_size(memory, stamper.token_size_bound),
            "tsa_token_bound": stamper.token_size_bound,
        }
        seconds = 1.0 if quick else 5.0
        throughput = {}
        for key_name, identity in (("memory", memory), ("softhsm2", hsm)):
            for level, source in (("B-B", None), ("B-T", stamper)):
                signer = Signer(identity, _EveryJobCommitted(), timestamper=source)
                throughput[f"{key_name} {level}"] = round(_throughput(signer, seconds), 1)
    finally:
        tsa.stop()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "key": "RSA-2048",
        "engine_ms": engine_rows,
        "placeholder_bytes": placeholder,
        "signatures_per_s_per_worker": throughput,
    }


def _text_pdf() -> bytes:
    from io import BytesIO

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _one_cpu() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    _one_cpu()
    report = run(quick=args.quick)
    print("signing: one stamp in process (prepare + sign_digest + embed [+ DSS]), median ms")
    levels = ("B-B", "B-T", "B-LT", "B-LTA")
    print(f"  {'document':<16}" + "".join(f"{level:>10}" for level in levels))
    for row in report["engine_ms"]:
        cells = "".join(f"{row[level]['median_ms']:>10}" for level in levels)
        print(f"  {row['document']:<16}{cells}")
        added = "".join(f"{row[level]['bytes_added']:>10}" for level in levels)
        print(f"  {'  bytes added':<16}{added}")
    p = report["placeholder_bytes"]
    print(f"  placeholder: B-B {p['B-B']} B, B-T {p['B-T']} B (token bound {p['tsa_token_bound']})")
    print("signing throughput per worker (signatures/s, one process, back to back)")
    for name, rate in report["signatures_per_s_per_worker"].items():
        print(f"  {name:<14}{rate:>10}")
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "signing.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
