"""Webhook deliveries as users see them: every request, processed, duplicate, quarantined or
rejected with its reason, and the rejection counters."""

from __future__ import annotations

from receiver.shapes import Page, decode_number_cursor, view_of
from storage import gateway
from storage.db import Database
from storage.records import DeliveryRecord, RejectionCountRecord

__all__ = ["Delivery", "RejectionCount", "list_deliveries", "rejection_counts"]


class Delivery(DeliveryRecord, frozen=True):
    """A webhook request as stored (its body aside): processed, duplicate, quarantined, or
    rejected with its reason."""


class RejectionCount(RejectionCountRecord, frozen=True):
    """Requests rejected for one reason since the start, and the last one's time."""


async def list_deliveries(
    db: Database, *, status: str | None, cursor: str | None, limit: int
) -> Page[Delivery]:
    """Newest first."""
    before = decode_number_cursor(cursor)
    rows = await db.read(
        lambda conn: gateway.list_deliveries(conn, status=status, before_id=before, limit=limit + 1)
    )
    page, has_more = rows[:limit], len(rows) > limit
    next_cursor = str(page[-1].id) if has_more else None
    return Page([view_of(Delivery, r) for r in page], has_more, next_cursor)


async def rejection_counts(db: Database) -> list[RejectionCount]:
    return [view_of(RejectionCount, r) for r in await db.read(gateway.rejection_counts)]
