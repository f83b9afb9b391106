"""Reconciliation: leased claims of due polls and small named watermarks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _insert
from storage.models import (
    JOB,
    SYNC_STATE,
)

__all__ = [
    "claim_due_polls",
    "get_state",
    "release_job_lease",
    "set_state",
]


async def claim_due_polls(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Lease running jobs whose next poll is due, most overdue first, in one statement."""
    due = (
        select(JOB.c.id)
        .where(
            JOB.c.terminal.is_(False),
            JOB.c.next_poll_at <= now,
            or_(JOB.c.lease_expires_at.is_(None), JOB.c.lease_expires_at < now),
        )
        .order_by(JOB.c.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(JOB)
        .where(JOB.c.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner, lease_expires_at=lease_until, poll_attempts=JOB.c.poll_attempts + 1
        )
        .returning(JOB.c.id, JOB.c.kind, JOB.c.poll_attempts, JOB.c.next_poll_at)
    )
    return (await conn.execute(stmt)).all()


async def release_job_lease(
    conn: AsyncConnection, job_id: str, owner: str, values: Values | None = None
) -> bool:
    stmt = (
        update(JOB)
        .where(JOB.c.id == job_id, JOB.c.lease_owner == owner)
        .values(**(values or {}), lease_owner=None, lease_expires_at=None)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_state(conn: AsyncConnection, key: str) -> str | None:
    stmt = select(SYNC_STATE.c.value).where(SYNC_STATE.c.key == key)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def set_state(conn: AsyncConnection, key: str, value: str, at: datetime) -> None:
    stmt = _insert(conn, SYNC_STATE).values(key=key, value=value, updated_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": value, "updated_at": at}
    )
    await conn.execute(stmt)
