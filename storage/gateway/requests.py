"""Create requests, stored with their idempotency key before Aurous is called."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from storage.db import Connection
from storage.gateway._common import insert, record_select, records
from storage.models import JOB_REQUEST
from storage.records import (
    JobRequestRecord,
    JobRequestUpdate,
    NewJobRequest,
    changed_fields,
    values_of,
)
from storage.states import RequestState

__all__ = [
    "get_job_request",
    "insert_job_request",
    "stale_job_requests",
    "update_job_request",
]


def insert_job_request(conn: Connection, request: NewJobRequest) -> bool:
    """False when a request with the same idempotency key is already stored."""
    stmt = (
        insert(conn, JOB_REQUEST)
        .values(**values_of(request))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return conn.execute(stmt).rowcount == 1


def get_job_request(conn: Connection, idempotency_key: str) -> JobRequestRecord | None:
    stmt = record_select(JobRequestRecord, JOB_REQUEST).where(
        JOB_REQUEST.c.idempotency_key == idempotency_key
    )
    found = records(JobRequestRecord, conn.execute(stmt))
    return found[0] if found else None


def update_job_request(conn: Connection, idempotency_key: str, change: JobRequestUpdate) -> None:
    """Record an attempt's outcome (each call counts one more attempt)."""
    conn.execute(
        update(JOB_REQUEST)
        .where(JOB_REQUEST.c.idempotency_key == idempotency_key)
        .values(**changed_fields(change), attempts=JOB_REQUEST.c.attempts + 1)
    )


def stale_job_requests(
    conn: Connection, older_than: datetime, limit: int
) -> list[JobRequestRecord]:
    """Requests still `sending` long after they were sent: their outcome is unknown."""
    stmt = (
        record_select(JobRequestRecord, JOB_REQUEST)
        .where(
            JOB_REQUEST.c.state == RequestState.SENDING,
            JOB_REQUEST.c.updated_at < older_than,
        )
        .order_by(JOB_REQUEST.c.updated_at)
        .limit(limit)
    )
    return records(JobRequestRecord, conn.execute(stmt))
