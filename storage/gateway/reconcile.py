"""Reconciliation: leased claims of due polls, and small named watermarks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from storage.db import Connection
from storage.gateway._common import columns_of, insert, records
from storage.models import JOB, SYNC_STATE
from storage.records import PollClaim

__all__ = [
    "claim_due_polls",
    "claim_state",
    "extend_job_lease",
    "get_state",
    "release_job_lease",
    "set_state",
]


def claim_due_polls(
    conn: Connection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[PollClaim]:
    """Lease running jobs whose next poll is due, most overdue first, in one statement."""
    due = (
        select(JOB.c.id)
        .where(
            JOB.c.terminal.is_(False),
            JOB.c.next_poll_at <= now,
            or_(JOB.c.lease_expires_at.is_(None), JOB.c.lease_expires_at < now),
        )
        .order_by(JOB.c.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(JOB)
        .where(JOB.c.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner, lease_expires_at=lease_until, poll_attempts=JOB.c.poll_attempts + 1
        )
        .returning(*columns_of(PollClaim, JOB))
    )
    return records(PollClaim, conn.execute(stmt))


def extend_job_lease(conn: Connection, job_id: str, owner: str, until: datetime) -> bool:
    stmt = update(JOB).where(JOB.c.id == job_id, JOB.c.lease_owner == owner)
    return conn.execute(stmt.values(lease_expires_at=until)).rowcount == 1


def release_job_lease(
    conn: Connection, job_id: str, owner: str, *, next_poll_at: datetime | None = None
) -> bool:
    """End a poll's lease (fenced on its owner); `next_poll_at` when the poll failed and
    should be tried again then."""
    values: dict[str, datetime | None] = {"lease_owner": None, "lease_expires_at": None}
    if next_poll_at is not None:
        values["next_poll_at"] = next_poll_at
    stmt = update(JOB).where(JOB.c.id == job_id, JOB.c.lease_owner == owner).values(values)
    return conn.execute(stmt).rowcount == 1


def get_state(conn: Connection, key: str) -> str | None:
    stmt = select(SYNC_STATE.c.value).where(SYNC_STATE.c.key == key)
    value: str | None = conn.execute(stmt).scalar_one_or_none()
    return value


def set_state(conn: Connection, key: str, value: str, at: datetime) -> None:
    stmt = insert(conn, SYNC_STATE).values(key=key, value=value, updated_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": value, "updated_at": at}
    )
    conn.execute(stmt)


def claim_state(conn: Connection, key: str, value: str, at: datetime) -> str:
    """The value stored under `key`: `value` if none was, else the one stored first."""
    stmt = insert(conn, SYNC_STATE).values(key=key, value=value, updated_at=at)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    stored = get_state(conn, key)
    assert stored is not None
    return stored
