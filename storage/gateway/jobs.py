"""Reading jobs and their events. Their state is written only through `job_writes`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_

from storage.db import Connection
from storage.gateway._common import chunks, record_select, records
from storage.models import JOB, JOB_EVENT
from storage.records import JobEventRecord, JobRecord, Slice

__all__ = ["count_jobs_by_status", "get_job", "list_job_events", "list_jobs", "lock_jobs"]


def get_job(conn: Connection, job_id: str) -> JobRecord | None:
    found = records(JobRecord, conn.execute(_job_stmt(), {"id": job_id}))
    return found[0] if found else None


@cache
def _job_stmt() -> Any:
    return record_select(JobRecord, JOB).where(JOB.c.id == bindparam("id"))


def lock_jobs(conn: Connection, job_ids: Sequence[str]) -> dict[str, JobRecord]:
    """The jobs that exist among `job_ids`, locked for this transaction in id order (so two
    transactions cannot deadlock on them); SQLite's BEGIN IMMEDIATE already serializes."""
    stmt = _lock_jobs_stmt(conn.dialect_name == "postgresql")
    found: dict[str, JobRecord] = {}
    for chunk in chunks(sorted(set(job_ids))):
        locked = records(JobRecord, conn.execute(stmt, {"ids": chunk}))
        found.update((job.id, job) for job in locked)
    return found


@cache
def _lock_jobs_stmt(for_update: bool) -> Any:
    stmt = (
        record_select(JobRecord, JOB)
        .where(JOB.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(JOB.c.id)
    )
    return stmt.with_for_update() if for_update else stmt


def list_jobs(
    conn: Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Slice[JobRecord]:
    """Newest first by (first_seen_at, id); `after` is the last key of the previous page."""
    stmt = (
        record_select(JobRecord, JOB)
        .order_by(JOB.c.first_seen_at.desc(), JOB.c.id.desc())
        .limit(limit + 1)
    )
    if status:
        stmt = stmt.where(JOB.c.status == status)
    if kind:
        stmt = stmt.where(JOB.c.kind == kind)
    if after is not None:
        stmt = stmt.where(tuple_(JOB.c.first_seen_at, JOB.c.id) < tuple_(*after))
    found = records(JobRecord, conn.execute(stmt))
    return Slice(found[:limit], len(found) > limit)


def list_job_events(conn: Connection, job_id: str) -> list[JobEventRecord]:
    stmt = (
        record_select(JobEventRecord, JOB_EVENT)
        .where(JOB_EVENT.c.job_id == job_id)
        .order_by(JOB_EVENT.c.id)
    )
    return records(JobEventRecord, conn.execute(stmt))


def count_jobs_by_status(conn: Connection) -> dict[str, int]:
    stmt = select(JOB.c.status, func.count()).group_by(JOB.c.status)
    return {status: int(count) for status, count in conn.execute(stmt)}
