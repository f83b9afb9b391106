"""Webhook deliveries as users see them: every request, processed, duplicate, quarantined or
rejected with its reason, and the rejection counters."""

from __future__ import annotations

from datetime import datetime

import msgspec

from receiver.paging import Page, decode_number_cursor
from storage import gateway
from storage.db import Database
from storage.records import DeliveryRecord, RejectionCountRecord

__all__ = ["Delivery", "RejectionCount", "list_deliveries", "rejection_counts"]


class Delivery(msgspec.Struct, frozen=True):
    id: int
    event_id: str | None  # the evt_ id (sha256: of the body for per-request callbacks)
    event_type: str | None
    status: str  # processed | duplicate | quarantined | rejected
    duplicate_of: int | None  # the delivery that carried this event first
    reason: str | None  # why it was rejected or quarantined
    received_at: datetime
    signature_t: int | None
    secret_id: int | None  # the keyring secret that verified it
    job_id: str | None
    synthetic: bool
    body_size: int
    headers: dict[str, str]
    remote_addr: str | None
    request_id: str | None

    @classmethod
    def of(cls, d: DeliveryRecord) -> Delivery:
        return cls(
            d.id,
            d.event_id,
            d.event_type,
            d.status,
            d.duplicate_of,
            d.reject_reason,
            d.received_at,
            d.signature_t,
            d.secret_id,
            d.job_id,
            d.synthetic,
            d.body_size,
            d.headers,
            d.remote_addr,
            d.request_id,
        )


class RejectionCount(msgspec.Struct, frozen=True):
    reason: str
    count: int
    last_at: datetime

    @classmethod
    def of(cls, r: RejectionCountRecord) -> RejectionCount:
        return cls(r.reason, r.count, r.last_at)


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
    return Page([Delivery.of(r) for r in page], has_more, next_cursor)


async def rejection_counts(db: Database) -> list[RejectionCount]:
    return [RejectionCount.of(r) for r in await db.read(gateway.rejection_counts)]
