"""Send events again to one destination, with their original ids: one event, or every event of
a time range that the destination's filter takes. A push already delivered or failed becomes
pending again; one never made (the destination was added later) is made now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from receiver.errors import ReceiverError
from receiver.jobs.outbox import wants
from storage import gateway
from storage.db import Connection, Database
from storage.records import DestinationRecord, EventRecord, NewPush
from storage.states import PushState
from storage.types import utcnow

__all__ = ["replay_event", "replay_range"]


async def replay_event(db: Database, event_id: str, destination_id: str) -> int:
    def replay(conn: Connection) -> int:
        destination = _destination(conn, destination_id)
        event = gateway.event_by_id(conn, event_id)
        if event is None:
            raise ReceiverError(404, "event_not_found", f"no event {event_id!r} is kept")
        return _replay(conn, destination, [event])

    return await db.write(replay)


async def replay_range(db: Database, destination_id: str, since: datetime, until: datetime) -> int:
    """Every event created in [since, until) that the destination wants."""

    def replay(conn: Connection) -> int:
        destination = _destination(conn, destination_id)
        events = gateway.events_between(conn, since, until)
        return _replay(conn, destination, [e for e in events if wants(destination, e.type, e.kind)])

    return await db.write(replay)


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
