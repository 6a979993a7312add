"""The platform's own RFC 3161 timestamp authority, for the embedded platform and for tests.

The protocol work (reading the ``TimeStampReq``, building and signing the ``TSTInfo`` with
``signing-certificate`` and the TSA certificate embedded) is certomancer's
``certomancer.services.TimeStamper``: the responder pyHanko's own test suite runs against,
kept by pyHanko's author and exercised by every pyHanko release. This module only gives it a
certificate from the test PKI (:attr:`~meterai_signing.pki.TestPki.tsa_cert`, extended key
usage timeStamping, issued by the test intermediate) and an HTTP front:
``POST application/timestamp-query`` in, ``application/timestamp-reply`` out.

Run it as its own process: ``python -m meterai_signing.tsa_service --pki DIR --port 8318``,
then point the signing service at it with ``METERAI_TSA_URL=http://127.0.0.1:8318/``.
A production platform uses a qualified TSA instead (the same variable).

The same process publishes the test PKI's revocation data
(:mod:`meterai_signing.revocation`): ``GET /crl/<ca>.crl`` and OCSP at ``/ocsp/<ca>`` (POST, or
GET with the request in the path) for ``root`` and ``intermediate``. Certificates point there
when the PKI was made with a revocation URL (``meterai admin init-pki --revocation-url``),
which is what PAdES B-LT fetches.
"""

from __future__ import annotations

import argparse
import base64
import logging
import signal
import sys
import threading
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from asn1crypto import algos, keys, pem, tsp, x509
from certomancer import crypto_utils
from certomancer.services import TimeStamper
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from meterai_signing.pki import ensure_test_pki
from meterai_signing.revocation import RevocationAuthority, UnknownIssuer

__all__ = ["TsaServer", "load_time_stamper", "main"]

log = logging.getLogger(__name__)

_MAX_REQUEST = 64 * 1024


def _pem_der(path: Path) -> bytes:
    data = path.read_bytes()
    if pem.detect(data):
        _, _, der = pem.unarmor(data)
        return der
    return data


class _ParsedKeyBackend(crypto_utils.PycaCryptographyBackend):
    """certomancer's own signing backend, with the TSA key parsed once instead of per token.

    Stock certomancer re-reads the private key for every signature, and ``cryptography``
    checks an RSA key on every load: 75 ms of a 77 ms answer with RSA-2048. The two
    algorithms the test PKI uses sign with the key parsed at start; anything else goes to
    certomancer unchanged.
    """

    def __init__(self) -> None:
        self._parsed: dict[bytes, Any] = {}

    def generic_sign(
        self,
        private_key: keys.PrivateKeyInfo,
        tbs_bytes: bytes,
        sd_algo: algos.SignedDigestAlgorithm,
    ) -> bytes:
        der = private_key.dump()
        key = self._parsed.get(der)
        if key is None:
            key = self._parsed[der] = serialization.load_der_private_key(der, password=None)
        algorithm = sd_algo.signature_algo
        if algorithm == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            hash_algorithm = getattr(hashes, sd_algo.hash_algo.upper())()
            return key.sign(tbs_bytes, padding.PKCS1v15(), hash_algorithm)
        if algorithm == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            hash_algorithm = getattr(hashes, sd_algo.hash_algo.upper())()
            return key.sign(tbs_bytes, ec.ECDSA(hash_algorithm))
        signature: bytes = super().generic_sign(private_key, tbs_bytes, sd_algo)
        return signature


class _WholeSecondStamper(TimeStamper):
    """certomancer's responder with ``genTime`` in whole seconds.

    The test PKI's OCSP answers and CRLs are dated in whole seconds (RFC 5280 wants no
    fractions there); a token dated 14:01:38.39 would make an answer fetched a moment later
    but dated 14:01:38 look older than the signature, and B-LT validators rightly refuse
    revocation data older than what it vouches for. RFC 3161 lets a TSA round ``genTime``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()

    def request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        with self._lock:
            self.fixed_dt = datetime.now(UTC).replace(microsecond=0)
            response: tsp.TimeStampResp = super().request_tsa_response(req)
            return response


def load_time_stamper(pki_dir: Path) -> TimeStamper:
    """certomancer's responder over the test PKI's TSA certificate and key (made if missing)."""
    crypto_utils.CRYPTO_BACKEND = _ParsedKeyBackend()
    pki = ensure_test_pki(pki_dir)
    tsa_cert = x509.Certificate.load(_pem_der(pki.tsa_cert))
    tsa_key = keys.PrivateKeyInfo.load(_pem_der(pki.tsa_key))
    intermediate = x509.Certificate.load(_pem_der(pki.intermediate_cert))
    return _WholeSecondStamper(
        tsa_cert=tsa_cert,
        tsa_key=tsa_key,
        certs_to_embed=[tsa_cert, intermediate],
        policy=tsp.ObjectIdentifier("1.3.6.1.4.1.4146.2.3"),
    )


class _Handler(BaseHTTPRequestHandler):
    server: TsaServer
    protocol_version = "HTTP/1.1"
    # Headers and token leave in one segment: written apart, Nagle's algorithm meets the
    # client's delayed ACK and every answer waits 40 ms.
    disable_nagle_algorithm = True
    wbufsize = -1

    def do_GET(self) -> None:
        if self.path.startswith("/ocsp/") and self.server.revocation is not None:
            # RFC 6960 appendix A.1: GET {url}/{url-encoded base64 of the DER request}, the
            # form NSS (pdfsig) uses for small requests.
            name, _, encoded = self.path.removeprefix("/ocsp/").partition("/")
            try:
                body = base64.b64decode(urllib.parse.unquote(encoded), validate=True)
            except ValueError as exc:
                self._answer(400, f"not a base64 OCSPRequest: {exc}".encode(), "text/plain")
                return
            self._ocsp(name, body)
            return
        name = self.path.removeprefix("/crl/").removesuffix(".crl")
        if not self.path.startswith("/crl/") or self.server.revocation is None:
            self._answer(404, b"CRLs are at /crl/<ca>.crl", "text/plain")
            return
        try:
            crl = self.server.revocation.crl(name)
        except UnknownIssuer as exc:
            self._answer(404, str(exc).encode(), "text/plain")
            return
        self._answer(200, crl, "application/pkix-crl")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_REQUEST:
            self._answer(400, b"a request of at most 64 KiB is expected", "text/plain")
            return
        body = self.rfile.read(length)
        if self.path.startswith("/ocsp/") and self.server.revocation is not None:
            self._ocsp(self.path.removeprefix("/ocsp/"), body)
            return
        try:
            request = tsp.TimeStampReq.load(body)
            request.native  # noqa: B018 - parse it all now, not half-way through answering
            response = self.server.stamper.request_tsa_response(request)
        except (ValueError, TypeError, KeyError) as exc:
            self._answer(400, f"not a TimeStampReq: {exc}".encode(), "text/plain")
            return
        self._answer(200, response.dump(), "application/timestamp-reply")

    def _ocsp(self, name: str, body: bytes) -> None:
        assert self.server.revocation is not None
        try:
            response = self.server.revocation.ocsp(name, body)
        except UnknownIssuer as exc:
            self._answer(404, str(exc).encode(), "text/plain")
            return
        except (ValueError, TypeError, KeyError) as exc:
            self._answer(400, f"not an OCSPRequest: {exc}".encode(), "text/plain")
            return
        self._answer(200, response, "application/ocsp-response")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("tsa: " + format, *args)


class TsaServer(ThreadingHTTPServer):
    """An HTTP server answering RFC 3161 requests with :attr:`stamper`, and CRL and OCSP
    requests with :attr:`revocation` when it has one."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        stamper: TimeStamper,
        revocation: RevocationAuthority | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.stamper = stamper
        self.revocation = revocation

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="meterai RFC 3161 timestamp authority (test)")
    parser.add_argument("--pki", type=Path, required=True, help="test PKI directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8318, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tsa %(message)s")
    server = TsaServer(
        (args.host, args.port),
        load_time_stamper(args.pki),
        RevocationAuthority(ensure_test_pki(args.pki)),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"tsa serving on {server.url}", flush=True)
    server.serve_forever()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
