"""A reseller name names one reseller: the database refuses a second one, even a concurrent one,
and the refusal is ALREADY_EXISTS with the name in its ``ErrorInfo``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import Engine

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction
from meterai_common.grpc_errors import details_of, rich_status


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=12, max_overflow=4)
    yield engine
    engine.dispose()


def _create(engine: Engine, name: str) -> str:
    return run_in_transaction(engine, lambda conn: quota.create_reseller(conn, name).id)


def test_a_name_differing_only_in_case_and_spaces_is_refused_by_the_database(
    engine: Engine,
) -> None:
    name = f"Toko Contoh {uuid.uuid4().hex[:8]}"
    _create(engine, name)
    with pytest.raises(quota.ResellerNameTaken) as refused:
        _create(engine, f"  {name.upper()} ")
    assert refused.value.code == "ALREADY_EXISTS"
    assert refused.value.error_metadata == {"name": name.upper()}


def test_concurrent_creations_of_one_name_give_one_reseller(engine: Engine) -> None:
    name = f"Toko Serentak {uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(8)
    outcomes: list[str | BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            outcomes.append(_create(engine, name))
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [outcome for outcome in outcomes if isinstance(outcome, str)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, quota.ResellerNameTaken)]
    assert len(created) == 1, outcomes
    assert len(refused) == 7, outcomes


def test_the_refusal_is_already_exists_with_the_name_in_its_error_info(engine: Engine) -> None:
    name = f"Toko Rinci {uuid.uuid4().hex[:8]}"
    _create(engine, name)
    with pytest.raises(quota.ResellerNameTaken) as refused:
        _create(engine, name)
    status = rich_status("ALREADY_EXISTS", str(refused.value), details_of(refused.value))
    trailer = dict(status.trailing_metadata)
    details = status_pb2.Status.FromString(trailer["grpc-status-details-bin"])
    assert details.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    info = error_details_pb2.ErrorInfo()
    assert details.details[0].Unpack(info)
    assert info.reason == "RESELLER_NAME_TAKEN"
    assert dict(info.metadata) == {"name": name}
    assert "choose another name" in details.message
