"""Outputs: upserts from observations, one-statement leased claims, fenced finishes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _dialect_insert
from storage.models import (
    OUTPUT,
)

__all__ = [
    "archived_blobs",
    "claim_outputs",
    "extend_output_lease",
    "finish_output",
    "get_output",
    "list_outputs",
    "output_counts",
    "pending_output_ids",
    "upsert_outputs",
]


@cache
def _upsert_outputs_stmt(dialect: str) -> Any:
    stmt = _dialect_insert(dialect, OUTPUT)
    return stmt.on_conflict_do_update(
        index_elements=["job_id", "position"],
        set_={"source_url": stmt.excluded.source_url},
        where=and_(OUTPUT.c.state == "pending", OUTPUT.c.source_url != stmt.excluded.source_url),
    )


async def upsert_outputs(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    """One row per output URL; fresher URLs replace those of outputs not yet archived."""
    if rows:
        await conn.execute(_upsert_outputs_stmt(conn.dialect.name), list(rows))


async def list_outputs(conn: AsyncConnection, job_ids: Sequence[str]) -> Sequence[Row[Any]]:
    stmt = (
        select(OUTPUT)
        .where(OUTPUT.c.job_id.in_(job_ids))
        .order_by(OUTPUT.c.job_id, OUTPUT.c.position)
    )
    return (await conn.execute(stmt)).all()


def _claimable(now: datetime) -> Any:
    return and_(
        OUTPUT.c.state == "pending",
        or_(OUTPUT.c.next_attempt_at.is_(None), OUTPUT.c.next_attempt_at <= now),
        or_(OUTPUT.c.lease_expires_at.is_(None), OUTPUT.c.lease_expires_at < now),
    )


async def claim_outputs(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Lease up to `limit` due outputs, earliest deadline first, in one statement."""
    due = (
        select(OUTPUT.c.id)
        .where(_claimable(now))
        .order_by(OUTPUT.c.deadline, OUTPUT.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=lease_until, attempts=OUTPUT.c.attempts + 1)
        .returning(*OUTPUT.c)
    )
    rows = (await conn.execute(stmt)).all()
    return sorted(rows, key=lambda row: (row.deadline, row.id))


async def extend_output_lease(
    conn: AsyncConnection, output_id: int, owner: str, until: datetime
) -> bool:
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def finish_output(conn: AsyncConnection, output_id: int, owner: str, values: Values) -> bool:
    """Record the end of a lease's work; fenced: only the lease owner may finish it."""
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(**values, lease_owner=None, lease_expires_at=None)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_output(conn: AsyncConnection, job_id: str, index: int) -> Row[Any] | None:
    stmt = select(OUTPUT).where(OUTPUT.c.job_id == job_id, OUTPUT.c.position == index)
    return (await conn.execute(stmt)).first()


async def output_counts(conn: AsyncConnection, at_risk_before: datetime) -> dict[str, int]:
    """Outputs by state, plus `at_risk` (pending with a deadline before the given time) and
    `bytes` (archived bytes)."""
    rows = (
        await conn.execute(
            select(
                OUTPUT.c.state, func.count(), func.coalesce(func.sum(OUTPUT.c.size), 0)
            ).group_by(OUTPUT.c.state)
        )
    ).all()
    counts = {state: int(count) for state, count, _ in rows}
    counts["bytes"] = int(sum(size for state, _, size in rows if state == "archived"))
    at_risk = select(func.count()).where(
        OUTPUT.c.state == "pending", OUTPUT.c.deadline < at_risk_before
    )
    counts["at_risk"] = int((await conn.execute(at_risk)).scalar_one())
    return counts


async def archived_blobs(conn: AsyncConnection) -> Sequence[Any]:
    """Each archived sha256 once, with its size and one output that holds it."""
    stmt = (
        select(
            OUTPUT.c.sha256,
            func.max(OUTPUT.c.size).label("size"),
            func.min(OUTPUT.c.job_id).label("job_id"),
        )
        .where(OUTPUT.c.state == "archived")
        .group_by(OUTPUT.c.sha256)
        .order_by(OUTPUT.c.sha256)
    )
    return (await conn.execute(stmt)).all()


async def pending_output_ids(conn: AsyncConnection, output_ids: Sequence[int]) -> set[int]:
    stmt = select(OUTPUT.c.id).where(OUTPUT.c.id.in_(output_ids), OUTPUT.c.state == "pending")
    return set((await conn.execute(stmt)).scalars().all())
