"""gRPC VerifyDocument through a real TLS channel: the same verdict as the site, the change
report and the stamped revision's length, and hostile documents refused from inside the box."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import meterai_quota as quota
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_common.db import create_engine, migrate
from meterai_common.tls import TlsFiles
from meterai_signing.pki import TestPki
from meterai_verify.bootstrap import start_verify
from tests.integration.stamping.test_restamp import FIRST, SECOND
from tests.integration.verify import hostile_pdfs
from tests.integration.verify.conftest import SERIAL, USER_PASSWORD, platform_settings
from tests.integration.verify.test_sandbox import rss_mb
from tests.support import altered_pdfs
from tests.support.channels import platform_channel


@pytest.fixture
def verify(
    tmp_path: Path, tls_files: TlsFiles, pki: TestPki
) -> Iterator[verify_pb2_grpc.VerificationServiceStub]:
    settings = platform_settings(tmp_path, tls_files, pki)
    db = create_engine(settings.database_url)
    migrate(db)
    running = start_verify(settings, db)
    channel = platform_channel(
        tls_files, running.port, options=[("grpc.max_send_message_length", 64 * 2**20)]
    )
    yield verify_pb2_grpc.VerificationServiceStub(channel)
    channel.close()
    running.server.stop(1).wait()
    db.dispose()


def test_reports_what_changed_after_the_seal_and_the_stamped_revision(
    verify: verify_pb2_grpc.VerificationServiceStub, stamped: bytes
) -> None:
    changed = altered_pdfs.fill_form_field(stamped)
    answer = verify.VerifyDocument(verify_pb2.VerifyDocumentRequest(pdf=changed), timeout=60)
    (seal,) = answer.seals
    assert seal.serial == SERIAL
    assert list(seal.changes_after) == [verify_pb2.CHANGE_FORM_FILLING]
    assert seal.stamped_revision_length == len(stamped)
    assert seal.signature_valid and seal.trusted
    # This ledger never issued SERIAL: the verdict says so, for the seal and the document.
    assert seal.verdict == verify_pb2.VERDICT_NOT_GENUINE
    assert "serial_not_issued" in seal.reasons
    assert answer.verdict == verify_pb2.VERDICT_NOT_GENUINE
    assert not answer.genuine


def test_a_hostile_document_is_refused_and_the_server_stays_small(
    verify: verify_pb2_grpc.VerificationServiceStub, stamped: bytes
) -> None:
    verify.VerifyDocument(verify_pb2.VerifyDocumentRequest(pdf=stamped), timeout=60)
    hostile = hostile_pdfs.million_objects()
    before = rss_mb()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        verify.VerifyDocument(verify_pb2.VerifyDocumentRequest(pdf=hostile), timeout=60)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert time.monotonic() - started < 20
    assert rss_mb() - before < 64 + 2 * len(hostile) / 2**20
    again = verify.VerifyDocument(verify_pb2.VerifyDocumentRequest(pdf=stamped), timeout=60)
    assert again.seals[0].signature_valid


def test_while_every_slot_is_taken_a_call_is_refused_before_its_upload_is_read(
    verify: verify_pb2_grpc.VerificationServiceStub, stamped: bytes
) -> None:
    hostile = verify_pb2.VerifyDocumentRequest(pdf=hostile_pdfs.million_objects())
    outcomes: list[grpc.StatusCode] = []

    def occupy() -> None:
        try:
            verify.VerifyDocument(hostile, timeout=60)
        except grpc.RpcError as error:
            outcomes.append(error.code())

    # Two workers, and one call waiting per worker: four calls fill the service.
    occupants = [threading.Thread(target=occupy) for _ in range(4)]
    for thread in occupants:
        thread.start()
    time.sleep(1.0)  # two are being checked, two wait up to 2 s for a worker
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        verify.VerifyDocument(verify_pb2.VerifyDocumentRequest(pdf=stamped), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("grpc-retry-pushback-ms", "1000") in tuple(refused.value.trailing_metadata())
    assert time.monotonic() - started < 1.0
    for thread in occupants:
        thread.join(60)


def test_a_mistyped_serial_is_a_typo_and_an_unknown_one_has_no_trusted_time(
    verify: verify_pb2_grpc.VerificationServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as typo:
        verify.VerifySerial(verify_pb2.VerifySerialRequest(serial="0A1B-2C3D"), timeout=10)
    assert typo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    never_issued = quota.generate_serial()
    unknown = verify.VerifySerial(verify_pb2.VerifySerialRequest(serial=never_issued), timeout=10)
    assert unknown.status == verify_pb2.SERIAL_STATUS_UNKNOWN
    assert not unknown.HasField("trusted_time") and not unknown.HasField("stamped_at")


def test_serial_lookups_are_rate_limited_per_client_with_pushback(
    verify: verify_pb2_grpc.VerificationServiceStub,
) -> None:
    codes = []
    for _ in range(120):
        try:
            verify.VerifySerial(verify_pb2.VerifySerialRequest(serial=SERIAL), timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                pushback = dict(error.trailing_metadata())["grpc-retry-pushback-ms"]
                assert int(pushback) >= 1
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes[:60]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[60:]


def test_an_encrypted_document_is_verified_with_the_password_the_request_gives(
    verify: verify_pb2_grpc.VerificationServiceStub, encrypted_stamped: bytes
) -> None:
    answer = verify.VerifyDocument(
        verify_pb2.VerifyDocumentRequest(pdf=encrypted_stamped, password=USER_PASSWORD),
        timeout=60,
    )
    assert [seal.serial for seal in answer.seals] == [FIRST.seal.serial, SECOND.seal.serial]
    assert all(seal.signature_valid for seal in answer.seals), answer
    # pyHanko names the second seal's revision of an encrypted file LTA_UPDATES, not
    # FORM_FILLING: validation data, which the policy allows like the signature itself.
    assert verify_pb2.CHANGE_SIGNATURES in answer.seals[0].changes_after
    assert set(answer.seals[0].changes_after) <= {
        verify_pb2.CHANGE_SIGNATURES,
        verify_pb2.CHANGE_VALIDATION_DATA,
    }


@pytest.mark.parametrize("password", ["", "salah"], ids=["no password", "wrong password"])
def test_an_encrypted_document_without_its_password_is_a_failed_precondition(
    verify: verify_pb2_grpc.VerificationServiceStub, encrypted_stamped: bytes, password: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        verify.VerifyDocument(
            verify_pb2.VerifyDocumentRequest(pdf=encrypted_stamped, password=password), timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "password" in (caught.value.details() or "")
