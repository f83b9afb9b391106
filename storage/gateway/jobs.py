"""Jobs and their events: batched writes for record_observations, paged reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _dialect_insert
from storage.models import (
    JOB,
    JOB_EVENT,
)

__all__ = [
    "JobPage",
    "count_jobs_by_status",
    "get_job",
    "insert_job",
    "insert_job_events",
    "insert_jobs",
    "list_job_events",
    "list_jobs",
    "lock_jobs",
    "update_jobs",
]


async def get_job(conn: AsyncConnection, job_id: str) -> Row[Any] | None:
    return (await conn.execute(select(JOB).where(JOB.c.id == job_id))).first()


async def lock_jobs(conn: AsyncConnection, job_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """The jobs that exist among `job_ids`, locked for this transaction in id order (so two
    transactions cannot deadlock on them); SQLite's BEGIN IMMEDIATE already serializes."""
    stmt = _lock_jobs_stmt(conn.dialect.name == "postgresql")
    rows = (await conn.execute(stmt, {"ids": sorted(job_ids)})).all()
    return {row.id: row for row in rows}


@cache
def _lock_jobs_stmt(for_update: bool) -> Any:
    stmt = select(JOB).where(JOB.c.id.in_(bindparam("ids", expanding=True))).order_by(JOB.c.id)
    return stmt.with_for_update() if for_update else stmt


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
