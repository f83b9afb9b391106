"""Every SQL statement the service runs. Callers pass an open connection; the caller owns the
transaction. Uniqueness, not check-then-insert, decides duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import DELIVERY, JOB, JOB_EVENT, OUTPUT, REJECTION_COUNT, WEBHOOK_SECRET

__all__ = [
    "JobPage",
    "bump_rejection_count",
    "find_delivery_id",
    "get_job",
    "insert_delivery",
    "insert_job",
    "insert_job_event",
    "insert_secret",
    "list_deliveries",
    "list_job_events",
    "list_jobs",
    "list_outputs",
    "list_secrets",
    "lock_job",
    "prune_rejected",
    "record_secret_matches",
    "rejection_counts",
    "retire_secret",
    "set_secret_expiry",
    "update_job",
    "upsert_outputs",
]

Values = Mapping[str, Any]


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


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


async def insert_delivery(conn: AsyncConnection, values: Values) -> int | None:
    """The row id, or None when a delivery with the same event id is already stored."""
    stmt = _insert(conn, DELIVERY).values(**values).returning(DELIVERY.c.id)
    if values.get("event_id") is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["event_id"])
    return (await conn.execute(stmt)).scalar_one_or_none()


async def find_delivery_id(conn: AsyncConnection, event_id: str) -> int | None:
    stmt = select(DELIVERY.c.id).where(DELIVERY.c.event_id == event_id)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def bump_rejection_count(conn: AsyncConnection, reason: str, at: datetime) -> None:
    stmt = _insert(conn, REJECTION_COUNT).values(reason=reason, count=1, last_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["reason"],
        set_={"count": REJECTION_COUNT.c.count + 1, "last_at": at},
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


async def lock_job(conn: AsyncConnection, job_id: str) -> Row[Any] | None:
    """The job row, locked for this transaction (SQLite's BEGIN IMMEDIATE already is)."""
    stmt = select(JOB).where(JOB.c.id == job_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def insert_job(conn: AsyncConnection, values: Values) -> bool:
    stmt = _insert(conn, JOB).values(**values).on_conflict_do_nothing(index_elements=["id"])
    return (await conn.execute(stmt)).rowcount == 1


async def update_job(conn: AsyncConnection, job_id: str, values: Values) -> None:
    await conn.execute(update(JOB).where(JOB.c.id == job_id).values(**values))


async def insert_job_event(conn: AsyncConnection, values: Values) -> None:
    await conn.execute(JOB_EVENT.insert().values(**values))


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


async def upsert_outputs(
    conn: AsyncConnection, job_id: str, urls: Sequence[str], deadline: datetime
) -> None:
    """One row per output URL; fresher URLs replace those of outputs not yet archived."""
    if not urls:
        return
    rows = [
        {"job_id": job_id, "index": i, "source_url": url, "deadline": deadline, "state": "pending"}
        for i, url in enumerate(urls)
    ]
    stmt = _insert(conn, OUTPUT).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id", "index"],
        set_={"source_url": stmt.excluded.source_url},
        where=and_(OUTPUT.c.state == "pending", OUTPUT.c.source_url != stmt.excluded.source_url),
    )
    await conn.execute(stmt)


async def list_outputs(conn: AsyncConnection, job_ids: Sequence[str]) -> Sequence[Row[Any]]:
    stmt = (
        select(OUTPUT).where(OUTPUT.c.job_id.in_(job_ids)).order_by(OUTPUT.c.job_id, OUTPUT.c.index)
    )
    return (await conn.execute(stmt)).all()
