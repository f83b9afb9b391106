"""Webhook deliveries, rejections and their counters. Uniqueness decides duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _dialect_insert, _insert
from storage.models import (
    DELIVERY,
    REJECTION_COUNT,
)

__all__ = [
    "bump_rejection_counts",
    "find_delivery_ids",
    "insert_deliveries",
    "insert_delivery_records",
    "list_deliveries",
    "prune_rejected",
    "rejection_counts",
]


@cache
def _insert_events_stmt(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, DELIVERY)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(DELIVERY.c.event_id)
    )


async def insert_deliveries(conn: AsyncConnection, rows: Sequence[Values]) -> set[str]:
    """Store deliveries keyed by event id; returns the event ids that were new."""
    if not rows:
        return set()
    result = await conn.execute(_insert_events_stmt(conn.dialect.name), list(rows))
    return set(result.scalars().all())


async def insert_delivery_records(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    """Store rows that carry no event id of their own (rejections, duplicates)."""
    if rows:
        await conn.execute(DELIVERY.insert(), list(rows))


async def find_delivery_ids(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, int]:
    stmt = select(DELIVERY.c.event_id, DELIVERY.c.id).where(DELIVERY.c.event_id.in_(event_ids))
    return {event_id: row_id for event_id, row_id in (await conn.execute(stmt)).all()}


async def bump_rejection_counts(
    conn: AsyncConnection, counts: Mapping[str, tuple[int, datetime]]
) -> None:
    for reason, (count, last_at) in counts.items():
        stmt = _insert(conn, REJECTION_COUNT).values(reason=reason, count=count, last_at=last_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["reason"],
            set_={"count": REJECTION_COUNT.c.count + count, "last_at": last_at},
        )
        await conn.execute(stmt)


async def prune_rejected(conn: AsyncConnection, keep: int) -> int:
    """Delete rejected rows older than the newest `keep` of them."""
    cutoff = (
        select(DELIVERY.c.id)
        .where(DELIVERY.c.status == "rejected")
        .order_by(DELIVERY.c.id.desc())
        .offset(keep)
        .limit(1)
        .scalar_subquery()
    )
    stmt = delete(DELIVERY).where(DELIVERY.c.status == "rejected", DELIVERY.c.id <= cutoff)
    return (await conn.execute(stmt)).rowcount


async def rejection_counts(conn: AsyncConnection) -> Sequence[Row[Any]]:
    stmt = select(REJECTION_COUNT).order_by(REJECTION_COUNT.c.count.desc())
    return (await conn.execute(stmt)).all()


async def list_deliveries(
    conn: AsyncConnection, *, status: str | None, before_id: int | None, limit: int
) -> Sequence[Row[Any]]:
    columns = [c for c in DELIVERY.c if c.name != "body"]
    stmt = select(*columns).order_by(DELIVERY.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(DELIVERY.c.status == status)
    if before_id is not None:
        stmt = stmt.where(DELIVERY.c.id < before_id)
    return (await conn.execute(stmt)).all()
