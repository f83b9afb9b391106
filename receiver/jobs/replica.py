"""This replica as its background work sees it: the database, the job tracker, and the name
it puts on the leases it takes (so a crashed replica's work is retaken by another)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from receiver.jobs.tracker import JobTracker
from storage.db import Connection, Database
from storage.types import utcnow

__all__ = ["ClaimStatement", "Replica"]

T = TypeVar("T")


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
