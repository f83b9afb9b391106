"""The pull side: `GET /events` (a page from a cursor, oldest first, optionally waiting up to
30 s for the next event) and `GET /events/stream` (Server-Sent Events, resumable with
`Last-Event-ID`). Both read the outbox, as the pushes do.

A wait ends early when this replica commits events (it is told), and looks again every
second for the events other replicas commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from receiver.errors import ReceiverError
from receiver.jobs.outbox import OutboxNews
from receiver.relay.events import render
from receiver.relay.links import Links
from storage import gateway
from storage.db import Database
from storage.records import EventRecord
from storage.types import utcnow

__all__ = ["MAX_WAIT_S", "Feed"]

MAX_WAIT_S = 30.0
_LOOK_AGAIN_S = 1.0
_KEEPALIVE_S = 15.0
_STREAM_BATCH = 200


class Feed:
    def __init__(self, db: Database, links: Links) -> None:
        self._db = db
        self._links = links
        self._changed = asyncio.Event()

    def on_events(self, news: OutboxNews) -> None:
        """A subscriber to the outbox: wake everyone waiting for events."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def page(
        self,
        *,
        after: int,
        types: Sequence[str],
        job_id: str | None,
        limit: int,
        wait_s: float = 0.0,
    ) -> bytes:
        """A page of events as JSON: `data` oldest first, `has_more`, and `next_cursor` (the
        cursor to continue from; present even when there is nothing more yet)."""
        deadline = time.monotonic() + min(wait_s, MAX_WAIT_S)
        while True:
            changed = self._changed
            events = await self._read(after, types, job_id, limit + 1)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, _LOOK_AGAIN_S))
        shown = events[:limit]
        cursor = str(shown[-1].position if shown else after)
        body = b",".join([await render(e, self._links) for e in shown])
        more = b"true" if len(events) > limit else b"false"
        return b'{"data":[%s],"has_more":%s,"next_cursor":"%s"}' % (body, more, cursor.encode())

    async def prune(self, keep: timedelta) -> int:
        """Forget events (with their pushes and attempts) older than `keep`."""
        before = utcnow() - keep
        return await self._db.write(lambda conn: gateway.prune_events(conn, before))

    async def position_of(self, event_id: str) -> int:
        """Where the event with this id stands (for `Last-Event-ID`)."""
        event = await self._db.read(lambda conn: gateway.event_by_id(conn, event_id))
        if event is None:
            raise ReceiverError(
                400, "unknown_event", f"no event {event_id[:80]!r} is kept", param="Last-Event-ID"
            )
        return event.position

    async def stream(self, after: int) -> AsyncIterator[bytes]:
        """Server-Sent Events from after `after`, as they are committed, until the client goes
        (a comment every 15 s keeps idle connections open)."""
        last_sent = time.monotonic()
        while True:
            changed = self._changed
            events = await self._read(after, (), None, _STREAM_BATCH)
            for event in events:
                yield _frame(event, await render(event, self._links))
                after = event.position
            if events:
                last_sent = time.monotonic()
                continue
            if time.monotonic() - last_sent >= _KEEPALIVE_S:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), _LOOK_AGAIN_S)

    async def _read(
        self, after: int, types: Sequence[str], job_id: str | None, limit: int
    ) -> list[EventRecord]:
        return await self._db.read(
            lambda conn: gateway.list_events(
                conn, after=after, types=types, job_id=job_id, limit=limit
            )
        )


def _frame(event: EventRecord, body: bytes) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.id.encode(), event.type.encode(), body)
