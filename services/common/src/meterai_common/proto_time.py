"""Datetimes to protobuf ``Timestamp`` for the servicers, with ``None`` left unset."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["timestamp"]


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
