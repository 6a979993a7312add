"""Recognising a dependency that is briefly away, as opposed to a request that is wrong.

A lost or refused database connection says nothing about the message or request being handled:
the right answer is "try again shortly" (UNAVAILABLE to a gRPC client, an in-place retry to a
queue consumer), never a failure charged to the request.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

__all__ = ["is_database_outage"]


def is_database_outage(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError)
