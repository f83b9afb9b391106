"""Every SQL statement the service runs. Callers pass an open connection; the caller owns the
transaction. Uniqueness, not check-then-insert, decides duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import DELIVERY, JOB, JOB_EVENT, OUTPUT, REJECTION_COUNT, WEBHOOK_SECRET

__all__ = [
    "JobPage",
    "bump_rejection_counts",
    "count_jobs_by_status",
    "find_delivery_ids",
    "get_job",
    "insert_deliveries",
    "insert_delivery_records",
    "insert_job",
    "insert_job_events",
    "insert_jobs",
    "insert_secret",
    "list_deliveries",
    "list_job_events",
    "list_jobs",
    "list_outputs",
    "list_secrets",
    "lock_jobs",
    "prune_rejected",
    "record_secret_matches",
    "rejection_counts",
    "retire_secret",
    "secret_id_by_fingerprint",
    "set_secret_expiry",
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
        index_elements=["job_id", "index"],
        set_={"source_url": stmt.excluded.source_url},
        where=and_(OUTPUT.c.state == "pending", OUTPUT.c.source_url != stmt.excluded.source_url),
    )


async def upsert_outputs(conn: AsyncConnection, rows: Sequence[Values]) -> None:
    """One row per output URL; fresher URLs replace those of outputs not yet archived."""
    if rows:
        await conn.execute(_upsert_outputs_stmt(conn.dialect.name), list(rows))


async def list_outputs(conn: AsyncConnection, job_ids: Sequence[str]) -> Sequence[Row[Any]]:
    stmt = (
        select(OUTPUT).where(OUTPUT.c.job_id.in_(job_ids)).order_by(OUTPUT.c.job_id, OUTPUT.c.index)
    )
    return (await conn.execute(stmt)).all()
