"""Send events again to one destination, with their original ids: one event, or every event of
a time range that the destination's filter takes. A push already delivered or failed becomes
pending again; one never made (the destination was added later) is made now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from receiver.errors import ReceiverError
from receiver.jobs.outbox import wants
from storage import gateway
from storage.db import Connection, Database
from storage.records import DestinationRecord, EventRecord, NewPush
from storage.states import PushState
from storage.types import as_utc, utcnow

__all__ = ["replay_event", "replay_range"]

_PAGE = 1000  # events a transaction replays


async def replay_event(db: Database, event_id: str, destination_id: str) -> int:
    def replay(conn: Connection) -> int:
        destination = _destination(conn, destination_id)
        event = gateway.event_by_id(conn, event_id)
        if event is None:
            raise ReceiverError(404, "event_not_found", f"no event {event_id!r} is kept")
        return _replay(conn, destination, [event])

    return await db.write(replay)


async def replay_range(db: Database, destination_id: str, since: datetime, until: datetime) -> int:
    """Every event created in [since, until) that the destination wants (naive times are UTC),
    a page to a transaction, so that a long range neither fills the memory nor holds the
    database's write lock for long."""
    try:
        start, end = as_utc(since), as_utc(until)
    except OverflowError:
        message = "since and until must lie within years 1-9999"
        raise ReceiverError(400, "invalid_window", message) from None

    def replay_page(conn: Connection, after: int) -> tuple[int, int | None]:
        destination = _destination(conn, destination_id)
        events = gateway.events_between(conn, start, end, after=after, limit=_PAGE)
        replayed = _replay(
            conn, destination, [e for e in events if wants(destination, e.type, e.kind)]
        )
        return replayed, events[-1].position if len(events) == _PAGE else None

    total, after = 0, 0
    while True:
        replayed, next_after = await db.write(partial(replay_page, after=after))
        total += replayed
        if next_after is None:
            return total
        after = next_after


def _destination(conn: Connection, destination_id: str) -> DestinationRecord:
    destination = gateway.get_destination(conn, destination_id)
    if destination is None:
        raise ReceiverError(404, "destination_not_found", f"no destination {destination_id!r}")
    return destination


def _replay(conn: Connection, destination: DestinationRecord, events: Sequence[EventRecord]) -> int:
    now = utcnow()
    pushes = [
        NewPush(destination.id, e.id, e.position, e.job_id, e.sequence, PushState.PENDING, now, now)
        for e in events
    ]
    return gateway.replay_pushes(conn, pushes)
