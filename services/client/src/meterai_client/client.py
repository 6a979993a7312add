"""The client: channels to each service with TLS and the key, retries, and ``stamp``.

The key travels as ``authorization: Bearer`` call credentials on every call of a TLS
channel. Calls the platform asks to come back to later (``RetryInfo``: overload, an outage)
are retried after the delay it gives, with the **same** idempotency key, so a retry never
makes a second job or order; anything else is raised as :class:`MeteraiError` at once.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai.webhooks.v1 import webhooks_pb2_grpc
from meterai_client.errors import MeteraiError, StampFailed, error_of

__all__ = ["Client", "Stamped"]

T = TypeVar("T")
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_DOCUMENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""The largest document one submission can carry: the call's size limit less room for the
request's other fields. The platform's own limit is lower (20 MiB unless its operator
changed it) and says so itself; past this one, gRPC would refuse the call with only its own
"message larger than max" and no word on what to do."""


def too_large(size: int, name: str) -> MeteraiError | None:
    """The refusal a document of ``size`` bytes meets before anything is sent, or None."""
    if size <= MAX_DOCUMENT_BYTES:
        return None
    return MeteraiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"{name} is {size / 2**20:.1f} MiB; a submission carries at most "
        f"{MAX_DOCUMENT_BYTES / 2**20:.1f} MiB (the platform's own limit is 20 MiB unless "
        "its operator set another). Compress or split it and try again; nothing was sent "
        "and nothing was charged.",
        reason="DOCUMENT_TOO_LARGE",
    )


_TERMINAL = {
    stamping_pb2.JOB_STATE_DONE,
    stamping_pb2.JOB_STATE_FAILED,
    stamping_pb2.JOB_STATE_DEAD_LETTERED,
}


class _Bearer(grpc.AuthMetadataPlugin):  # type: ignore[misc]
    def __init__(self, key: str) -> None:
        self._metadata = (("authorization", f"Bearer {key}"),)

    def __call__(self, context: Any, callback: Any) -> None:
        callback(self._metadata, None)


@dataclass(frozen=True)
class Stamped:
    """A stamped document and what identifies its stamp."""

    pdf: bytes
    serial: str
    job_id: str
    verify_url: str
    replayed: bool
    """This document had been stamped before with the same request: nothing was charged."""


class Client:
    """A reseller's (or the public's) connection to the platform.

    :param host: where the services are.
    :param ports: ``{"quota": ..., "stamping": ..., "verify": ...}``.
    :param api_key: the reseller's key; None for verification only.
    :param ca: the platform CA (PEM bytes) the services' certificates chain to.
    :param timeout_s: deadline of each call.
    :param retry_for_s: how long a call keeps retrying what the platform asks to retry.
    """

    def __init__(
        self,
        host: str,
        ports: dict[str, int],
        *,
        api_key: str | None,
        ca: bytes,
        timeout_s: float = 60.0,
        retry_for_s: float = 120.0,
    ) -> None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
        if api_key:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.metadata_call_credentials(_Bearer(api_key))
            )
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channels = {
            name: grpc.secure_channel(f"{host}:{port}", credentials, options)
            for name, port in ports.items()
        }
        self.timeout_s = timeout_s
        self.retry_for_s = retry_for_s
        self.quota = quota_pb2_grpc.QuotaServiceStub(self._channels["quota"])
        self.stamping = stamping_pb2_grpc.StampingServiceStub(self._channels["stamping"])
        self.verification = verify_pb2_grpc.VerificationServiceStub(self._channels["verify"])
        self.webhooks = webhooks_pb2_grpc.WebhookServiceStub(self._channels["quota"])
        """Endpoints, delivery log and replay (served on the quota port)."""

    @classmethod
    def from_home(cls, home: Path, **kwargs: Any) -> Client:
        """The platform ``meterai up`` runs with this ``METERAI_HOME``, with its demo key."""
        platform = json.loads((home / "platform.json").read_text())
        credentials_file = home / "credentials.json"
        api_key = kwargs.pop("api_key", None)
        if api_key is None and credentials_file.exists():
            api_key = json.loads(credentials_file.read_text()).get("api_key")
        return cls(
            platform.get("host", "127.0.0.1"),
            {name: int(platform["ports"][name]) for name in ("quota", "stamping", "verify")},
            api_key=api_key,
            ca=(home / "tls" / "ca.crt").read_bytes(),
            **kwargs,
        )

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------
    def call(self, method: Callable[..., T], request: Any) -> T:
        """One unary call with this client's deadline, retried as the platform advises."""
        deadline = time.monotonic() + self.retry_for_s
        while True:
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as failure:
                error = error_of(failure)
                if error.retry_after_s is None or time.monotonic() + error.retry_after_s > deadline:
                    raise error from None
                time.sleep(error.retry_after_s)

    def balance(self) -> quota_pb2.Balance:
        return self.call(self.quota.GetBalance, quota_pb2.GetBalanceRequest())

    def buy(self, quantity: int, idempotency_key: str | None = None) -> quota_pb2.Order:
        """Order quota; retried with the same key, so one order however often it is sent."""
        return self.call(
            self.quota.PurchaseQuota,
            quota_pb2.PurchaseQuotaRequest(
                quantity=quantity, idempotency_key=idempotency_key or str(uuid.uuid4())
            ),
        )

    def submit(
        self,
        pdf: bytes,
        *,
        page: int,
        rect: tuple[float, float, float, float],
        document_type: str,
        idempotency_key: str | None = None,
        filename: str = "document.pdf",
        document_number: str = "",
        document_date: str = "",
        document_value_idr: int = 0,
        password: str = "",
    ) -> stamping_pb2.Job:
        """Submit a document; the key defaults to one derived from the document and the
        request, so submitting the same document the same way again is a replay.

        :raises MeteraiError: ``DOCUMENT_TOO_LARGE`` before anything is sent, for a document
            no submission can carry (:data:`MAX_DOCUMENT_BYTES`)."""
        refused = too_large(len(pdf), filename)
        if refused is not None:
            raise refused
        x0, y0, x1, y1 = rect
        request = stamping_pb2.SubmitDocumentRequest(
            pdf=pdf,
            placement=stamping_pb2.Placement(
                page=page, rect=stamping_pb2.Rect(x0=x0, y0=y0, x1=x1, y1=y1)
            ),
            metadata=stamping_pb2.DocumentMetadata(
                document_type=document_type,
                document_number=document_number,
                document_date=document_date,
                document_value_idr=document_value_idr,
            ),
            filename=filename,
            password=password,
        )
        request.idempotency_key = idempotency_key or _derived_key(request)
        return self.call(self.stamping.SubmitDocument, request)

    def wait(self, job_id: str, timeout_s: float = 600.0) -> stamping_pb2.Job:
        """Follow the job until it ends (watches again if a watch is cut)."""
        deadline = time.monotonic() + timeout_s
        job = self.call(self.stamping.GetJob, stamping_pb2.GetJobRequest(job_id=job_id))
        while job.state not in _TERMINAL and time.monotonic() < deadline:
            try:
                for job in self._watch(job_id, min(self.timeout_s, deadline - time.monotonic())):
                    if job.state in _TERMINAL:
                        break
            except grpc.RpcError as failure:
                if failure.code() not in (  # type: ignore[attr-defined]
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                ):
                    raise error_of(failure) from None
        return job

    def _watch(self, job_id: str, timeout_s: float) -> Iterator[stamping_pb2.Job]:
        stream: Iterator[stamping_pb2.Job] = self.stamping.WatchJob(
            stamping_pb2.WatchJobRequest(job_id=job_id), timeout=max(timeout_s, 0.1)
        )
        return stream

    def download(self, job_id: str) -> bytes:
        try:
            return b"".join(
                chunk.data
                for chunk in self.stamping.GetStampedDocument(
                    stamping_pb2.GetStampedDocumentRequest(job_id=job_id), timeout=self.timeout_s
                )
            )
        except grpc.RpcError as failure:
            raise error_of(failure) from None

    def stamp(
        self,
        path: Path | str,
        *,
        rect: tuple[float, float, float, float],
        page: int = 1,
        document_type: str = "Dokumen",
        wait_s: float = 600.0,
        **fields: Any,
    ) -> Stamped:
        """Stamp a PDF file and return the stamped bytes: submit (safely retried), wait for
        the signature, download. Stamping the same file the same way again returns the same
        stamp and charges nothing.

        :raises MeteraiError: the platform refused the document.
        :raises StampFailed: the job ended without a stamp (refunded).
        :raises TimeoutError: not done within ``wait_s`` (it goes on: call again).
        """
        source = Path(path)
        job = self.submit(
            source.read_bytes(),
            page=page,
            rect=rect,
            document_type=document_type,
            filename=source.name,
            **fields,
        )
        replayed = job.replayed
        job = self.wait(job.job_id, wait_s)
        if job.state == stamping_pb2.JOB_STATE_DONE:
            return Stamped(
                self.download(job.job_id), job.serial, job.job_id, job.verify_url, replayed
            )
        if job.state in _TERMINAL:
            raise StampFailed(job.job_id, job.failure_code, job.failure_reason)
        raise TimeoutError(f"job {job.job_id} not done after {wait_s:g} s; call again")

    def verify(self, pdf: bytes) -> verify_pb2.DocumentVerification:
        return self.call(
            self.verification.VerifyDocument, verify_pb2.VerifyDocumentRequest(pdf=pdf)
        )


def _derived_key(request: stamping_pb2.SubmitDocumentRequest) -> str:
    digest = hashlib.sha256(request.pdf)
    shape = stamping_pb2.SubmitDocumentRequest()
    shape.CopyFrom(request)
    shape.ClearField("pdf")
    shape.ClearField("password")
    digest.update(shape.SerializeToString(deterministic=True))
    return "py-" + digest.hexdigest()[:40]
