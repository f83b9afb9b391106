"""This replica as its background work sees it: the database, the job tracker, and the name
it puts on the leases it takes (so a crashed replica's work is retaken by another)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from receiver.jobs.tracker import JobTracker
from storage.db import Database

__all__ = ["Replica"]


@dataclass(frozen=True)
class Replica:
    db: Database
    tracker: JobTracker
    owner: str
    lease: timedelta = timedelta(seconds=60)  # how long a claimed item stays ours unrenewed
