"""Jobs as users see them, in the API, the CLI and the dashboard: the job with its cost and
outputs, its event history, and paged lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from receiver.errors import ReceiverError
from receiver.shapes import Page, decode_key_cursor, encode_key_cursor, view_of
from storage import gateway
from storage.db import Connection, Database
from storage.records import JobEventRecord, JobRecord, NewOutput, OutputRecord
from storage.states import JobStatus, OutputState

__all__ = ["Cost", "Job", "JobEvent", "Output", "get_job", "job_events", "list_jobs"]

DOCUMENTED_STATUSES = tuple(JobStatus)


class Output(msgspec.Struct, frozen=True):
    index: int
    state: str  # pending | archived | lost | none
    sha256: str | None
    size: int | None
    content_type: str | None
    deadline: datetime
    archived_at: datetime | None
    attempts: int
    last_error: str | None
    url: str | None  # the archived bytes, once archived

    @classmethod
    def of(cls, output: OutputRecord) -> Output:
        archived = output.state == OutputState.ARCHIVED
        url = f"/jobs/{output.job_id}/outputs/{output.position}" if archived else None
        return view_of(cls, output, index=output.position, url=url)

    @classmethod
    def new(cls, output: NewOutput) -> Output:
        """An output just found, before any archive attempt."""
        return cls(
            index=output.position,
            state=output.state,
            sha256=None,
            size=None,
            content_type=None,
            deadline=output.deadline,
            archived_at=None,
            attempts=0,
            last_error=None,
            url=None,
        )


class Cost(msgspec.Struct, frozen=True):
    amount: float | None  # credits
    state: str | None  # held | charged
    currency: str


class Job(msgspec.Struct, frozen=True):
    id: str
    kind: str  # image | video | unknown
    status: str
    terminal: bool
    first_seen_via: str  # webhook | poll | sweep | api
    terminal_via: str | None
    created_at: datetime | None
    completed_at: datetime | None
    first_seen_at: datetime
    last_observed_at: datetime
    error_message: str | None
    model: str | None
    cost: Cost
    outputs: list[Output]

    @classmethod
    def of(cls, job: JobRecord, outputs: Sequence[OutputRecord]) -> Job:
        """`outputs`: this job's, or those of several jobs (the others are left out)."""
        return cls.with_outputs(job, [Output.of(o) for o in outputs if o.job_id == job.id])

    @classmethod
    def with_outputs(cls, job: JobRecord, outputs: list[Output]) -> Job:
        amount = None if job.cost_micros is None else job.cost_micros / 1_000_000
        cost = Cost(amount, job.cost_state, job.cost_currency)
        return view_of(cls, job, cost=cost, outputs=outputs)


class JobEvent(JobEventRecord, frozen=True):
    """One observation that changed the job, or that was kept without being applied."""

    @classmethod
    def of(cls, event: JobEventRecord) -> JobEvent:
        return view_of(cls, event)


async def get_job(db: Database, job_id: str) -> Job | None:
    return await db.read(lambda conn: _job(conn, job_id))


def _job(conn: Connection, job_id: str) -> Job | None:
    job = gateway.get_job(conn, job_id)
    return Job.of(job, gateway.list_outputs(conn, [job_id])) if job else None


async def job_events(db: Database, job_id: str) -> list[JobEvent] | None:
    """The job's history, oldest first; None if no such job is tracked."""

    def read(conn: Connection) -> list[JobEvent] | None:
        if gateway.get_job(conn, job_id) is None:
            return None
        return [JobEvent.of(e) for e in gateway.list_job_events(conn, job_id)]

    return await db.read(read)


async def list_jobs(
    db: Database, *, status: str | None, kind: str | None, cursor: str | None, limit: int
) -> Page[Job]:
    """Newest first; raises `CursorError` for a cursor this service did not hand out."""
    after = decode_key_cursor(cursor) if cursor else None

    def read(conn: Connection) -> Page[Job]:
        page = gateway.list_jobs(conn, status=status, kind=kind, after=after, limit=limit)
        outputs = gateway.list_outputs(conn, [job.id for job in page.items])
        last = page.items[-1] if page.items and page.has_more else None
        next_cursor = encode_key_cursor(last.first_seen_at, last.id) if last else None
        return Page([Job.of(job, outputs) for job in page.items], page.has_more, next_cursor)

    found = await db.read(read)
    if status and status not in DOCUMENTED_STATUSES and not found.data and cursor is None:
        # an undocumented status that jobs have is listed; one that none has is likelier a typo
        raise ReceiverError(
            400,
            "invalid_parameter",
            f"no job has status {status!r}; the statuses Aurous documents: "
            + ", ".join(DOCUMENTED_STATUSES),
            param="status",
        )
    return found
