"""The job tracker: the one path by which job state changes, and the customer's app is told.

Every change to a job, its events and its outputs is written here, in one transaction with
whatever the caller stores alongside it (a webhook delivery, a create request), together with
the outbox events that tell the customer's app about it (`receiver.jobs.outbox`). Once that
transaction has committed, the tracker tells its subscribers (metrics, the archiver, the
relay) what changed. Callers cannot forget to tell, and no other module can write job state:
the writers in `storage.gateway.job_writes` are imported here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from receiver.aurous import AurousClient, AurousError
from receiver.errors import ReceiverError
from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import JobChanges, Observation, ObservationResult, plan, tracked_job
from receiver.jobs.outbox import Outbox, OutboxNews
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import job_writes
from storage.group_commit import GroupCommit
from storage.records import JobUpdate, OutputFinish, OutputRecord
from storage.states import JobStatus, Source
from storage.types import utcnow

__all__ = ["EventNews", "JobNews", "JobTracker", "JobWriter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

JobNews = Callable[[Sequence[ObservationResult]], None]
"""A subscriber: told, after each commit, the results of the observations it wrote."""
EventNews = Callable[[OutboxNews], None]
"""A subscriber: told, after each commit that wrote outbox events, how many events and pushes."""


@dataclass
class JobWriter:
    """Job changes inside one open transaction; the tracker commits them and tells."""

    conn: Connection
    output_ttl_s: int
    outbox: Outbox
    results: list[ObservationResult] = field(default_factory=list)

    def observe(self, observations: Sequence[Observation]) -> list[ObservationResult]:
        """Apply observations in order. On PostgreSQL the jobs are locked first, so two
        replicas observing the same job take turns."""
        if not observations:
            return []
        ids = list({o.generation.id for o in observations})
        existing = gateway.lock_jobs(self.conn, ids)
        results, changes = plan(existing, observations, self.output_ttl_s)
        job_writes.insert_jobs(self.conn, list(changes.new_jobs.values()))
        job_writes.update_jobs(self.conn, changes.updates)
        job_writes.insert_job_events(self.conn, changes.events)
        job_writes.upsert_outputs(self.conn, changes.outputs)
        self.results += results
        self.outbox.jobs_changed(results, changes.jobs_after(existing), changes.outputs)
        return results

    def track(self, job_id: str) -> bool:
        """Start tracking a job known only by its id; False if it is tracked already."""
        if gateway.lock_jobs(self.conn, [job_id]):
            return False
        job, event = tracked_job(job_id, utcnow())
        job_writes.insert_jobs(self.conn, [job])
        job_writes.insert_job_events(self.conn, [event])
        result = ObservationResult(job_id, JobStatus.PENDING, True, True, False)
        self.outbox.jobs_changed([result], JobChanges(new_jobs={job_id: job}).jobs_after({}))
        return True

    def link_request(self, job_id: str, idempotency_key: str) -> None:
        """Remember which create request made the job."""
        job_writes.update_jobs(self.conn, {job_id: JobUpdate(idempotency_key=idempotency_key)})

    def tell(self, event_type: str, data: bytes, job_id: str | None = None) -> None:
        """Tell the customer's app something besides job changes (a finding, a low balance)."""
        self.outbox.tell(event_type, data, job_id)

    def finish_output(self, output: OutputRecord, owner: str, finish: OutputFinish) -> bool:
        """Record the end of an archive attempt, fenced on the lease; False if it was lost."""
        jobs = gateway.lock_jobs(self.conn, [output.job_id])  # one job's events in turn
        self.outbox.jobs_changed([], jobs)
        if not job_writes.finish_output(self.conn, output.id, owner, finish):
            return False
        finished = gateway.get_output(self.conn, output.job_id, output.position)
        if finished is not None:
            self.outbox.output_finished(finished)
        return True


class _JobWork(NamedTuple, Generic[T]):
    """What `_job_work` did: the work's own result, and the news to announce after commit."""

    result: T
    results: list[ObservationResult]
    news: OutboxNews


def _job_work(
    conn: Connection, output_ttl_s: int, work: Callable[[Connection, JobWriter], T]
) -> _JobWork[T]:
    """`work` with a `JobWriter` in the caller's open transaction, the outbox written last."""
    writer = JobWriter(conn, output_ttl_s, Outbox(conn, utcnow()))
    result = work(conn, writer)
    return _JobWork(result, writer.results, writer.outbox.flush())


@dataclass(frozen=True)
class _OutputFinish:
    output: OutputRecord
    owner: str
    finish: OutputFinish


class JobTracker:
    def __init__(
        self, db: Database, *, output_ttl_s: int, aurous: AurousClient | None = None
    ) -> None:
        self._db = db
        self._output_ttl_s = output_ttl_s
        self._aurous = aurous
        self._subscribers: list[JobNews] = []
        self._event_subscribers: list[EventNews] = []
        self._output_finishes = GroupCommit(self._finish_outputs)

    def subscribe(self, subscriber: JobNews) -> None:
        self._subscribers.append(subscriber)

    def subscribe_to_events(self, subscriber: EventNews) -> None:
        self._event_subscribers.append(subscriber)

    async def write(self, work: Callable[[Connection, JobWriter], T]) -> T:
        """`work` in one write transaction with a `JobWriter`, its news written to the outbox
        in the same transaction, run again if another replica created one of its jobs at the
        same moment; subscribers hear of it after the commit."""
        ttl = self._output_ttl_s
        done = await self._db.write_retrying_races(lambda conn: _job_work(conn, ttl, work))
        self._tell(done.results, done.news)
        return done.result

    async def observe(self, observations: Sequence[Observation]) -> list[ObservationResult]:
        return await self.write(lambda _, jobs: jobs.observe(observations))

    async def track(self, job_id: str) -> bool:
        return await self.write(lambda _, jobs: jobs.track(job_id))

    async def refresh(
        self, job_id: str, source: Source = Source.POLL
    ) -> tuple[GenerationResponse, list[ObservationResult]]:
        """Ask Aurous about one job now and record the answer (raises `AurousError`)."""
        if self._aurous is None:
            raise ReceiverError(503, "not_configured", "AUROUS_API_KEY is not set")
        generation = await self._aurous.get_generation(job_id)
        if generation.id != job_id:  # recording it would leave the job asked about due
            message = f"asked about {job_id}, Aurous answered about {generation.id[:200]}"
            raise AurousError(502, "server_error", "invalid_response", message)
        results = await self.observe([Observation(generation, source, utcnow())])
        return generation, results

    async def finish_output(self, output: OutputRecord, owner: str, finish: OutputFinish) -> bool:
        """Record the end of an archive attempt, fenced on the lease; False if it was lost.
        Attempts that end together are written in one transaction."""
        return await self._output_finishes.add(_OutputFinish(output, owner, finish))

    async def _finish_outputs(self, finishes: Sequence[_OutputFinish]) -> list[bool]:
        return await self.write(
            lambda _, jobs: [jobs.finish_output(f.output, f.owner, f.finish) for f in finishes]
        )

    def _tell(self, results: Sequence[ObservationResult], events: OutboxNews) -> None:
        for subscriber in self._subscribers if results else ():
            try:
                subscriber(results)
            except Exception:
                log.exception("a subscriber to job news failed")
        for event_subscriber in self._event_subscribers if events.events else ():
            try:
                event_subscriber(events)
            except Exception:
                log.exception("a subscriber to outbox news failed")
