"""Every SQL statement the service runs. Callers pass an open connection; the caller owns the
transaction. Uniqueness, not check-then-insert, decides duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import (
    DELIVERY,
    JOB,
    JOB_EVENT,
    JOB_REQUEST,
    OUTPUT,
    REJECTION_COUNT,
    SYNC_STATE,
    WEBHOOK_SECRET,
)

__all__ = [
    "JobPage",
    "archived_blobs",
    "bump_rejection_counts",
    "claim_due_polls",
    "claim_outputs",
    "count_jobs_by_status",
    "extend_output_lease",
    "find_delivery_ids",
    "finish_output",
    "get_job",
    "get_job_request",
    "get_output",
    "get_state",
    "insert_deliveries",
    "insert_delivery_records",
    "insert_job",
    "insert_job_events",
    "insert_job_request",
    "insert_jobs",
    "insert_secret",
    "list_deliveries",
    "list_job_events",
    "list_jobs",
    "list_outputs",
    "list_secrets",
    "lock_jobs",
    "output_counts",
    "pending_output_ids",
    "prune_rejected",
    "record_secret_matches",
    "rejection_counts",
    "release_job_lease",
    "retire_secret",
    "secret_id_by_fingerprint",
    "set_secret_expiry",
    "set_state",
    "stale_job_requests",
    "update_job_request",
    "update_jobs",
    "upsert_outputs",
]

Values = Mapping[str, Any]


def _dialect_insert(dialect: str, table: Any) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return _dialect_insert(conn.dialect.name, table)


# --- webhook secrets -------------------------------------------------------------------------


async def insert_secret(conn: AsyncConnection, values: Values) -> int | None:
    """The new secret's id, or None when the same secret (by fingerprint) is already stored."""
    stmt = (
        _insert(conn, WEBHOOK_SECRET)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(WEBHOOK_SECRET.c.id)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def list_secrets(
    conn: AsyncConnection, *, include_retired: bool = True
) -> Sequence[Row[Any]]:
    stmt = select(WEBHOOK_SECRET).order_by(WEBHOOK_SECRET.c.id)
    if not include_retired:
        stmt = stmt.where(WEBHOOK_SECRET.c.retired_at.is_(None))
    return (await conn.execute(stmt)).all()


async def secret_id_by_fingerprint(conn: AsyncConnection, fingerprint: str) -> int | None:
    stmt = select(WEBHOOK_SECRET.c.id).where(WEBHOOK_SECRET.c.fingerprint == fingerprint)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def retire_secret(conn: AsyncConnection, secret_id: int, at: datetime) -> bool:
    stmt = (
        update(WEBHOOK_SECRET)
        .where(WEBHOOK_SECRET.c.id == secret_id, WEBHOOK_SECRET.c.retired_at.is_(None))
        .values(retired_at=at)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def set_secret_expiry(conn: AsyncConnection, secret_id: int, at: datetime | None) -> bool:
    stmt = update(WEBHOOK_SECRET).where(WEBHOOK_SECRET.c.id == secret_id).values(expires_at=at)
    return (await conn.execute(stmt)).rowcount == 1


async def record_secret_matches(
    conn: AsyncConnection, matches: Mapping[int, tuple[int, datetime]]
) -> None:
    for secret_id, (count, last_at) in matches.items():
        await conn.execute(
            update(WEBHOOK_SECRET)
            .where(WEBHOOK_SECRET.c.id == secret_id)
            .values(match_count=WEBHOOK_SECRET.c.match_count + count, last_matched_at=last_at)
        )


# --- deliveries ------------------------------------------------------------------------------


@cache
def _insert_events_stmt(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, DELIVERY)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(DELIVERY.c.event_id)
    )


async def insert_deliveries(conn: AsyncConnection, rows: Sequence[Values]) -> set[str]:
    """Store deliveries keyed by event id; returns the event ids that were new."""
    if not rows:
        return set()
    result = await conn.execute(_insert_events_stmt(conn.dialect.name), list(rows))
    return set(result.scalars().all())


async def insert_delivery_records(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    """Store rows that carry no event id of their own (rejections, duplicates)."""
    if rows:
        await conn.execute(DELIVERY.insert(), list(rows))


async def find_delivery_ids(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, int]:
    stmt = select(DELIVERY.c.event_id, DELIVERY.c.id).where(DELIVERY.c.event_id.in_(event_ids))
    return {event_id: row_id for event_id, row_id in (await conn.execute(stmt)).all()}


async def bump_rejection_counts(
    conn: AsyncConnection, counts: Mapping[str, tuple[int, datetime]]
) -> None:
    for reason, (count, last_at) in counts.items():
        stmt = _insert(conn, REJECTION_COUNT).values(reason=reason, count=count, last_at=last_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["reason"],
            set_={"count": REJECTION_COUNT.c.count + count, "last_at": last_at},
        )
        await conn.execute(stmt)


async def prune_rejected(conn: AsyncConnection, keep: int) -> int:
    """Delete rejected rows older than the newest `keep` of them."""
    cutoff = (
        select(DELIVERY.c.id)
        .where(DELIVERY.c.status == "rejected")
        .order_by(DELIVERY.c.id.desc())
        .offset(keep)
        .limit(1)
        .scalar_subquery()
    )
    stmt = delete(DELIVERY).where(DELIVERY.c.status == "rejected", DELIVERY.c.id <= cutoff)
    return (await conn.execute(stmt)).rowcount


async def rejection_counts(conn: AsyncConnection) -> Sequence[Row[Any]]:
    stmt = select(REJECTION_COUNT).order_by(REJECTION_COUNT.c.count.desc())
    return (await conn.execute(stmt)).all()


async def list_deliveries(
    conn: AsyncConnection, *, status: str | None, before_id: int | None, limit: int
) -> Sequence[Row[Any]]:
    columns = [c for c in DELIVERY.c if c.name != "body"]
    stmt = select(*columns).order_by(DELIVERY.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(DELIVERY.c.status == status)
    if before_id is not None:
        stmt = stmt.where(DELIVERY.c.id < before_id)
    return (await conn.execute(stmt)).all()


# --- jobs ------------------------------------------------------------------------------------


async def get_job(conn: AsyncConnection, job_id: str) -> Row[Any] | None:
    return (await conn.execute(select(JOB).where(JOB.c.id == job_id))).first()


async def lock_jobs(conn: AsyncConnection, job_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """The jobs that exist among `job_ids`, locked for this transaction in id order (so two
    transactions cannot deadlock on them); SQLite's BEGIN IMMEDIATE already serializes."""
    stmt = select(JOB).where(JOB.c.id.in_(sorted(job_ids))).order_by(JOB.c.id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {row.id: row for row in (await conn.execute(stmt)).all()}


@cache
def _insert_jobs_stmt(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, JOB)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(JOB.c.id)
    )


async def insert_jobs(conn: AsyncConnection, rows: Sequence[Values]) -> set[str]:
    """Insert new jobs; returns the ids inserted (a missing one was inserted concurrently)."""
    if not rows:
        return set()
    result = await conn.execute(_insert_jobs_stmt(conn.dialect.name), list(rows))
    return set(result.scalars().all())


async def insert_job(conn: AsyncConnection, values: Values) -> bool:
    return bool(await insert_jobs(conn, [values]))


@cache
def _update_jobs_stmt(columns: frozenset[str]) -> Any:
    return (
        update(JOB)
        .where(JOB.c.id == bindparam("job_id"))
        .values({name: bindparam(f"new_{name}") for name in sorted(columns)})
    )


async def update_jobs(conn: AsyncConnection, changes: Mapping[str, Values]) -> None:
    """Apply per-job changes, one executemany per distinct set of changed columns."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for job_id, values in changes.items():
        row = {f"new_{name}": value for name, value in values.items()}
        groups.setdefault(frozenset(values), []).append({**row, "job_id": job_id})
    for columns, rows in groups.items():
        await conn.execute(_update_jobs_stmt(columns), rows)


async def insert_job_events(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    if rows:
        await conn.execute(JOB_EVENT.insert(), list(rows))


@dataclass(frozen=True)
class JobPage:
    rows: Sequence[Row[Any]]
    has_more: bool


async def list_jobs(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    kind: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> JobPage:
    """Newest first by (first_seen_at, id); `after` is the last key of the previous page."""
    stmt = select(JOB).order_by(JOB.c.first_seen_at.desc(), JOB.c.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(JOB.c.status == status)
    if kind:
        stmt = stmt.where(JOB.c.kind == kind)
    if after is not None:
        stmt = stmt.where(tuple_(JOB.c.first_seen_at, JOB.c.id) < tuple_(*after))
    rows = (await conn.execute(stmt)).all()
    return JobPage(rows[:limit], len(rows) > limit)


async def list_job_events(conn: AsyncConnection, job_id: str) -> Sequence[Row[Any]]:
    stmt = select(JOB_EVENT).where(JOB_EVENT.c.job_id == job_id).order_by(JOB_EVENT.c.id)
    return (await conn.execute(stmt)).all()


async def count_jobs_by_status(conn: AsyncConnection) -> dict[str, int]:
    stmt = select(JOB.c.status, func.count()).group_by(JOB.c.status)
    return {status: count for status, count in (await conn.execute(stmt)).all()}


# --- outputs ---------------------------------------------------------------------------------


@cache
def _upsert_outputs_stmt(dialect: str) -> Any:
    stmt = _dialect_insert(dialect, OUTPUT)
    return stmt.on_conflict_do_update(
        index_elements=["job_id", "position"],
        set_={"source_url": stmt.excluded.source_url},
        where=and_(OUTPUT.c.state == "pending", OUTPUT.c.source_url != stmt.excluded.source_url),
    )


async def upsert_outputs(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    """One row per output URL; fresher URLs replace those of outputs not yet archived."""
    if rows:
        await conn.execute(_upsert_outputs_stmt(conn.dialect.name), list(rows))


async def list_outputs(conn: AsyncConnection, job_ids: Sequence[str]) -> Sequence[Row[Any]]:
    stmt = (
        select(OUTPUT)
        .where(OUTPUT.c.job_id.in_(job_ids))
        .order_by(OUTPUT.c.job_id, OUTPUT.c.position)
    )
    return (await conn.execute(stmt)).all()


def _claimable(now: datetime) -> Any:
    return and_(
        OUTPUT.c.state == "pending",
        or_(OUTPUT.c.next_attempt_at.is_(None), OUTPUT.c.next_attempt_at <= now),
        or_(OUTPUT.c.lease_expires_at.is_(None), OUTPUT.c.lease_expires_at < now),
    )


async def claim_outputs(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> Sequence[Row[Any]]:
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
        .returning(*OUTPUT.c)
    )
    rows = (await conn.execute(stmt)).all()
    return sorted(rows, key=lambda row: (row.deadline, row.id))


async def extend_output_lease(
    conn: AsyncConnection, output_id: int, owner: str, until: datetime
) -> bool:
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def finish_output(conn: AsyncConnection, output_id: int, owner: str, values: Values) -> bool:
    """Record the end of a lease's work; fenced: only the lease owner may finish it."""
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(**values, lease_owner=None, lease_expires_at=None)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_output(conn: AsyncConnection, job_id: str, index: int) -> Row[Any] | None:
    stmt = select(OUTPUT).where(OUTPUT.c.job_id == job_id, OUTPUT.c.position == index)
    return (await conn.execute(stmt)).first()


async def output_counts(conn: AsyncConnection, at_risk_before: datetime) -> dict[str, int]:
    """Outputs by state, plus `at_risk` (pending with a deadline before the given time) and
    `bytes` (archived bytes)."""
    rows = (
        await conn.execute(
            select(
                OUTPUT.c.state, func.count(), func.coalesce(func.sum(OUTPUT.c.size), 0)
            ).group_by(OUTPUT.c.state)
        )
    ).all()
    counts = {state: int(count) for state, count, _ in rows}
    counts["bytes"] = int(sum(size for state, _, size in rows if state == "archived"))
    at_risk = select(func.count()).where(
        OUTPUT.c.state == "pending", OUTPUT.c.deadline < at_risk_before
    )
    counts["at_risk"] = int((await conn.execute(at_risk)).scalar_one())
    return counts


async def archived_blobs(conn: AsyncConnection) -> Sequence[Any]:
    """Each archived sha256 once, with its size and one output that holds it."""
    stmt = (
        select(
            OUTPUT.c.sha256,
            func.max(OUTPUT.c.size).label("size"),
            func.min(OUTPUT.c.job_id).label("job_id"),
        )
        .where(OUTPUT.c.state == "archived")
        .group_by(OUTPUT.c.sha256)
        .order_by(OUTPUT.c.sha256)
    )
    return (await conn.execute(stmt)).all()


async def pending_output_ids(conn: AsyncConnection, output_ids: Sequence[int]) -> set[int]:
    stmt = select(OUTPUT.c.id).where(OUTPUT.c.id.in_(output_ids), OUTPUT.c.state == "pending")
    return set((await conn.execute(stmt)).scalars().all())


# --- reconciliation --------------------------------------------------------------------------


async def claim_due_polls(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> Sequence[Row[Any]]:
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
        .returning(JOB.c.id, JOB.c.kind, JOB.c.poll_attempts, JOB.c.next_poll_at)
    )
    return (await conn.execute(stmt)).all()


async def release_job_lease(
    conn: AsyncConnection, job_id: str, owner: str, values: Values | None = None
) -> bool:
    stmt = (
        update(JOB)
        .where(JOB.c.id == job_id, JOB.c.lease_owner == owner)
        .values(**(values or {}), lease_owner=None, lease_expires_at=None)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_state(conn: AsyncConnection, key: str) -> str | None:
    stmt = select(SYNC_STATE.c.value).where(SYNC_STATE.c.key == key)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def set_state(conn: AsyncConnection, key: str, value: str, at: datetime) -> None:
    stmt = _insert(conn, SYNC_STATE).values(key=key, value=value, updated_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": value, "updated_at": at}
    )
    await conn.execute(stmt)


# --- job requests ------------------------------------------------------------------------------


async def insert_job_request(conn: AsyncConnection, values: Values) -> bool:
    stmt = (
        _insert(conn, JOB_REQUEST)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return (await conn.execute(stmt)).rowcount == 1


async def get_job_request(conn: AsyncConnection, idempotency_key: str) -> Row[Any] | None:
    stmt = select(JOB_REQUEST).where(JOB_REQUEST.c.idempotency_key == idempotency_key)
    return (await conn.execute(stmt)).first()


async def update_job_request(conn: AsyncConnection, idempotency_key: str, values: Values) -> None:
    await conn.execute(
        update(JOB_REQUEST)
        .where(JOB_REQUEST.c.idempotency_key == idempotency_key)
        .values(**values, attempts=JOB_REQUEST.c.attempts + 1)
    )


async def stale_job_requests(
    conn: AsyncConnection, older_than: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Requests still `sending` long after they were sent: their outcome is unknown."""
    stmt = (
        select(JOB_REQUEST)
        .where(JOB_REQUEST.c.state == "sending", JOB_REQUEST.c.updated_at < older_than)
        .order_by(JOB_REQUEST.c.updated_at)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()
