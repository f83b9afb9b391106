"""Webhook deliveries, rejections and their counters. Uniqueness decides duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select, update

from storage.db import Connection
from storage.gateway._common import dialect_insert, insert, record_select, records
from storage.models import DELIVERY, REJECTION_COUNT
from storage.records import DeliveryRecord, NewDelivery, RejectionCountRecord, values_of
from storage.states import DeliveryStatus

__all__ = [
    "bump_rejection_counts",
    "count_duplicates",
    "insert_deliveries",
    "insert_delivery_records",
    "list_deliveries",
    "prune_rejected",
    "rejection_counts",
]


@cache
def _insert_events_stmt(dialect: str) -> Any:
    return (
        dialect_insert(dialect, DELIVERY)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(DELIVERY.c.event_id)
    )


def insert_deliveries(conn: Connection, deliveries: Sequence[NewDelivery]) -> set[str]:
    """Store deliveries keyed by event id; returns the event ids that were new."""
    if not deliveries:
        return set()
    stmt = _insert_events_stmt(conn.dialect_name)
    return {event_id for (event_id,) in conn.insert_rows(stmt, [values_of(d) for d in deliveries])}


def insert_delivery_records(conn: Connection, deliveries: Sequence[NewDelivery]) -> None:
    """Store rows that carry no event id of their own (rejections)."""
    if deliveries:
        conn.execute(DELIVERY.insert(), [values_of(d) for d in deliveries])


@cache
def _count_duplicates_stmt() -> Any:
    return (
        update(DELIVERY)
        .where(DELIVERY.c.event_id == bindparam("event"))
        .values(
            duplicates=DELIVERY.c.duplicates + bindparam("copies"),
            last_duplicate_at=bindparam("last_at"),
        )
    )


def count_duplicates(conn: Connection, arrivals: Mapping[str, tuple[int, datetime]]) -> None:
    """Add copies that came again to their event's delivery: (copies, last arrival) by event id."""
    if arrivals:
        conn.execute(
            _count_duplicates_stmt(),
            [
                {"event": event_id, "copies": copies, "last_at": last_at}
                for event_id, (copies, last_at) in arrivals.items()
            ],
        )


def bump_rejection_counts(conn: Connection, counts: Mapping[str, tuple[int, datetime]]) -> None:
    for reason, (count, last_at) in counts.items():
        stmt = insert(conn, REJECTION_COUNT).values(reason=reason, count=count, last_at=last_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["reason"],
            set_={"count": REJECTION_COUNT.c.count + count, "last_at": last_at},
        )
        conn.execute(stmt)


def prune_rejected(conn: Connection, keep: int) -> int:
    """Delete rejected rows older than the newest `keep` of them."""
    rejected = DELIVERY.c.status == DeliveryStatus.REJECTED
    cutoff = (
        select(DELIVERY.c.id)
        .where(rejected)
        .order_by(DELIVERY.c.id.desc())
        .offset(keep)
        .limit(1)
        .scalar_subquery()
    )
    return conn.execute(delete(DELIVERY).where(rejected, DELIVERY.c.id <= cutoff)).rowcount


def rejection_counts(conn: Connection) -> list[RejectionCountRecord]:
    stmt = record_select(RejectionCountRecord, REJECTION_COUNT).order_by(
        REJECTION_COUNT.c.count.desc()
    )
    return records(RejectionCountRecord, conn.execute(stmt))


def list_deliveries(
    conn: Connection, *, status: str | None, before_id: int | None, limit: int
) -> list[DeliveryRecord]:
    """Newest first, without bodies."""
    stmt = record_select(DeliveryRecord, DELIVERY).order_by(DELIVERY.c.id.desc()).limit(limit)
    if status == DeliveryStatus.DUPLICATE:  # the deliveries that came more than once
        stmt = stmt.where(DELIVERY.c.duplicates > 0)
    elif status:
        stmt = stmt.where(DELIVERY.c.status == status)
    if before_id is not None:
        stmt = stmt.where(DELIVERY.c.id < before_id)
    return records(DeliveryRecord, conn.execute(stmt))
