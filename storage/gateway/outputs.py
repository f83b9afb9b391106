"""Outputs: paged reads, one-statement leased claims, and what the archive holds. Their
archive state is written through `job_writes`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from storage.db import Connection
from storage.gateway._common import chunks, columns_of, record_select, records
from storage.models import OUTPUT
from storage.records import ArchivedBlob, OutputCounts, OutputRecord
from storage.states import OutputState

__all__ = [
    "archived_blobs",
    "claim_outputs",
    "extend_output_lease",
    "get_output",
    "list_outputs",
    "output_counts",
    "pending_output_ids",
]


def list_outputs(conn: Connection, job_ids: Sequence[str]) -> list[OutputRecord]:
    """The outputs of these jobs, by job id and position."""
    found: list[OutputRecord] = []
    for chunk in chunks(sorted(set(job_ids))):
        found += records(OutputRecord, conn.execute(_outputs_stmt(), {"ids": chunk}))
    return found


@cache
def _outputs_stmt() -> Any:
    return (
        record_select(OutputRecord, OUTPUT)
        .where(OUTPUT.c.job_id.in_(bindparam("ids", expanding=True)))
        .order_by(OUTPUT.c.job_id, OUTPUT.c.position)
    )


def _claimable(now: datetime) -> Any:
    return and_(
        OUTPUT.c.state == OutputState.PENDING,
        or_(OUTPUT.c.next_attempt_at.is_(None), OUTPUT.c.next_attempt_at <= now),
        or_(OUTPUT.c.lease_expires_at.is_(None), OUTPUT.c.lease_expires_at < now),
    )


def claim_outputs(
    conn: Connection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[OutputRecord]:
    """Lease up to `limit` due outputs, earliest deadline first, in one statement."""
    due = (
        select(OUTPUT.c.id)
        .where(_claimable(now))
        .order_by(OUTPUT.c.deadline, OUTPUT.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=lease_until, attempts=OUTPUT.c.attempts + 1)
        .returning(*columns_of(OutputRecord, OUTPUT))
    )
    claimed = records(OutputRecord, conn.execute(stmt))
    return sorted(claimed, key=lambda output: (output.deadline, output.id))


def extend_output_lease(conn: Connection, output_id: int, owner: str, until: datetime) -> bool:
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return conn.execute(stmt).rowcount == 1


def get_output(conn: Connection, job_id: str, index: int) -> OutputRecord | None:
    stmt = record_select(OutputRecord, OUTPUT).where(
        OUTPUT.c.job_id == job_id, OUTPUT.c.position == index
    )
    found = records(OutputRecord, conn.execute(stmt))
    return found[0] if found else None


def output_counts(conn: Connection, at_risk_before: datetime) -> OutputCounts:
    """Outputs by state, those pending with a deadline before the given time, and the bytes
    archived."""
    by_state = select(
        OUTPUT.c.state, func.count(), func.coalesce(func.sum(OUTPUT.c.size), 0)
    ).group_by(OUTPUT.c.state)
    counts: dict[str, int] = {}
    archived_bytes = 0
    for state, count, size in conn.execute(by_state):
        counts[state] = int(count)
        archived_bytes += int(size) if state == OutputState.ARCHIVED else 0
    at_risk = select(func.count()).where(
        OUTPUT.c.state == OutputState.PENDING, OUTPUT.c.deadline < at_risk_before
    )
    return OutputCounts(
        pending=counts.get(OutputState.PENDING, 0),
        archived=counts.get(OutputState.ARCHIVED, 0),
        lost=counts.get(OutputState.LOST, 0),
        none=counts.get(OutputState.NONE, 0),
        at_risk=int(conn.execute(at_risk).scalar_one()),
        bytes=archived_bytes,
    )


def archived_blobs(conn: Connection) -> list[ArchivedBlob]:
    """Each archived sha256 once, with its size and one output that holds it."""
    stmt = (
        select(OUTPUT.c.sha256, func.max(OUTPUT.c.size), func.min(OUTPUT.c.job_id))
        .where(OUTPUT.c.state == OutputState.ARCHIVED)
        .group_by(OUTPUT.c.sha256)
        .order_by(OUTPUT.c.sha256)
    )
    return records(ArchivedBlob, conn.execute(stmt))


def pending_output_ids(conn: Connection, output_ids: Sequence[int]) -> set[int]:
    stmt = select(OUTPUT.c.id).where(
        OUTPUT.c.id.in_(output_ids), OUTPUT.c.state == OutputState.PENDING
    )
    return set(conn.execute(stmt).scalars().all())
