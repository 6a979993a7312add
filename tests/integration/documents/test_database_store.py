"""Documents kept in PostgreSQL, for stamping processes on hosts without a shared volume."""

from __future__ import annotations

import os
import threading

from meterai_common.db import create_engine
from meterai_common.documents import DatabaseStore, DocumentNotFound


def test_large_documents_round_trip_and_concurrent_writers_leave_one_copy(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    store = DatabaseStore(engine)
    big = os.urandom(5 * 1024 * 1024)
    store.put("stamped", "pg-big", big)
    assert store.size("stamped", "pg-big") == len(big)
    assert b"".join(store.chunks("stamped", "pg-big")) == big

    errors: list[BaseException] = []

    def write(marker: bytes) -> None:
        try:
            store.put("prepared", "pg-race", marker * 1000)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(bytes([i]),)) for i in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    survivors = store.get("prepared", "pg-race")
    assert len(set(survivors)) == 1 and len(survivors) == 1000
    assert errors == []

    store.delete("stamped", "pg-big")
    store.delete("prepared", "pg-race")
    try:
        store.get("stamped", "pg-big")
        raise AssertionError("deleted document still readable")
    except DocumentNotFound:
        pass
    engine.dispose()
