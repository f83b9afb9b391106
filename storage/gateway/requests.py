"""Create requests, stored with their idempotency key before Aurous is called."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _insert
from storage.models import (
    JOB_REQUEST,
)

__all__ = [
    "get_job_request",
    "insert_job_request",
    "stale_job_requests",
    "update_job_request",
]


async def insert_job_request(conn: AsyncConnection, values: Values) -> bool:
    stmt = (
        _insert(conn, JOB_REQUEST)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_job_request(conn: AsyncConnection, idempotency_key: str) -> Row[Any] | None:
    stmt = select(JOB_REQUEST).where(JOB_REQUEST.c.idempotency_key == idempotency_key)
    return (await conn.execute(stmt)).first()


async def update_job_request(conn: AsyncConnection, idempotency_key: str, values: Values) -> None:
    await conn.execute(
        update(JOB_REQUEST)
        .where(JOB_REQUEST.c.idempotency_key == idempotency_key)
        .values(**values, attempts=JOB_REQUEST.c.attempts + 1)
    )


async def stale_job_requests(
    conn: AsyncConnection, older_than: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Requests still `sending` long after they were sent: their outcome is unknown."""
    stmt = (
        select(JOB_REQUEST)
        .where(JOB_REQUEST.c.state == "sending", JOB_REQUEST.c.updated_at < older_than)
        .order_by(JOB_REQUEST.c.updated_at)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()
