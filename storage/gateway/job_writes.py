"""The writers of job state: jobs, their events, their outputs and the outputs' archive
state. Only the job tracker (`receiver.jobs.tracker`) imports this module, so the one path
that changes job state is the only one that can (a test checks the imports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import and_, update

from storage.db import ConcurrentInsert, Connection
from storage.gateway._common import dialect_insert, update_rows
from storage.models import JOB, JOB_EVENT, OUTPUT
from storage.records import (
    JobUpdate,
    NewJob,
    NewJobEvent,
    NewOutput,
    OutputFinish,
    changed_fields,
    values_of,
)
from storage.states import OutputState

__all__ = ["finish_output", "insert_job_events", "insert_jobs", "update_jobs", "upsert_outputs"]


def insert_jobs(conn: Connection, jobs: Sequence[NewJob]) -> None:
    """Insert new jobs; `ConcurrentInsert` if another transaction created one of them first
    (the caller's transaction then runs again and sees it)."""
    if not jobs:
        return
    rows = [values_of(j) for j in jobs]
    inserted = {
        job_id for (job_id,) in conn.insert_rows(_insert_jobs_stmt(conn.dialect_name), rows)
    }
    if len(inserted) != len(jobs):
        missing = {job.id for job in jobs} - inserted
        raise ConcurrentInsert(f"jobs created concurrently: {sorted(missing)}")


@cache
def _insert_jobs_stmt(dialect: str) -> Any:
    return (
        dialect_insert(dialect, JOB)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(JOB.c.id)
    )


def update_jobs(conn: Connection, changes: Mapping[str, JobUpdate]) -> None:
    """Apply per-job changes, one executemany per distinct set of changed columns."""
    update_rows(conn, JOB, changes)


def insert_job_events(conn: Connection, events: Sequence[NewJobEvent]) -> None:
    if events:
        conn.insert_rows(_insert_job_events_stmt(), [values_of(e) for e in events])


def upsert_outputs(conn: Connection, outputs: Sequence[NewOutput]) -> None:
    """One row per output URL; fresher URLs replace those of outputs not yet archived."""
    if outputs:
        conn.insert_rows(_upsert_outputs_stmt(conn.dialect_name), [values_of(o) for o in outputs])


@cache
def _insert_job_events_stmt() -> Any:
    return JOB_EVENT.insert()


@cache
def _upsert_outputs_stmt(dialect: str) -> Any:
    stmt = dialect_insert(dialect, OUTPUT)
    return stmt.on_conflict_do_update(
        index_elements=["job_id", "position"],
        set_={"source_url": stmt.excluded.source_url},
        where=and_(
            OUTPUT.c.state == OutputState.PENDING,
            OUTPUT.c.source_url != stmt.excluded.source_url,
        ),
    )


def finish_output(conn: Connection, output_id: int, owner: str, finish: OutputFinish) -> bool:
    """Record the end of a lease's work; fenced: only the lease owner may finish it."""
    stmt = (
        update(OUTPUT)
        .where(OUTPUT.c.id == output_id, OUTPUT.c.lease_owner == owner)
        .values(**changed_fields(finish), lease_owner=None, lease_expires_at=None)
    )
    return conn.execute(stmt).rowcount == 1
