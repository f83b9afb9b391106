"""This replica as its background work sees it: the database, the job tracker, and the name
it puts on the leases it takes (so a crashed replica's work is retaken by another)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from receiver.jobs.tracker import JobTracker
from storage.db import Connection, Database
from storage.types import utcnow

__all__ = ["ClaimStatement", "LeaseExtension", "Replica"]

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K", int, str)
# A gateway statement that moves the end of `owner`'s lease on one item (`extend_output_lease`,
# `extend_push_lease`, `extend_job_lease`); False when `owner` no longer holds it.
LeaseExtension = Callable[[Connection, K, str, datetime], bool]


class ClaimStatement(Protocol[T]):
    """A gateway statement that leases up to `limit` due items to `owner` until `lease_until`
    (`gateway.claim_outputs`, `claim_due_polls`, `claim_pushes`)."""

    def __call__(
        self, conn: Connection, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[T]: ...


@dataclass(frozen=True)
class Replica:
    db: Database
    tracker: JobTracker
    owner: str
    lease: timedelta = timedelta(seconds=60)  # how long a claimed item stays ours unrenewed

    def claim(self, statement: ClaimStatement[T], conn: Connection, *, limit: int) -> list[T]:
        """Up to `limit` due items, leased to this replica for `lease` from now."""
        now = utcnow()
        return statement(conn, owner=self.owner, now=now, lease_until=now + self.lease, limit=limit)

    async def keep_lease(self, extend: LeaseExtension[K], item_id: K) -> None:
        """Renew the lease on one claimed item every third of its length while the work on it
        goes on (cancel this then); return once the lease is lost. A renewal that fails (the
        database busy, say) is tried again at the next beat."""

        def renew(conn: Connection) -> bool:
            return extend(conn, item_id, self.owner, utcnow() + self.lease)

        kept = True
        while kept:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                kept = await self.db.write(renew)
            except Exception as exc:
                log.warning("could not renew the lease on item %s: %r", item_id, exc)
