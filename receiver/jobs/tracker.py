"""The job tracker: the one path by which job state changes.

Every change to a job, its events and its outputs is written here, in one transaction with
whatever the caller stores alongside it (a webhook delivery, a create request), and once that
transaction has committed, the tracker tells its subscribers (metrics, the archiver) what
changed. Callers cannot forget to tell, and no other module can write job state: the writers
in `storage.gateway.job_writes` are imported here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from receiver.aurous import AurousClient
from receiver.errors import ReceiverError
from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import Observation, ObservationResult, plan, tracked_job
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import job_writes
from storage.records import JobRecord, JobUpdate, OutputFinish
from storage.states import Source
from storage.types import utcnow

__all__ = ["JobNews", "JobTracker", "JobWriter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

JobNews = Callable[[Sequence[ObservationResult]], None]
"""A subscriber: told, after each commit, the results of the observations it wrote."""


@dataclass
class JobWriter:
    """Job changes inside one open transaction; the tracker commits them and tells."""

    conn: Connection
    output_ttl_s: int
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
        return results

    def track(self, job_id: str) -> bool:
        """Start tracking a job known only by its id; False if it is tracked already."""
        if gateway.lock_jobs(self.conn, [job_id]):
            return False
        job, event = tracked_job(job_id, utcnow())
        job_writes.insert_jobs(self.conn, [job])
        job_writes.insert_job_events(self.conn, [event])
        return True

    def link_request(self, job_id: str, idempotency_key: str) -> None:
        """Remember which create request made the job."""
        job_writes.update_jobs(self.conn, {job_id: JobUpdate(idempotency_key=idempotency_key)})


class JobTracker:
    def __init__(
        self, db: Database, *, output_ttl_s: int, aurous: AurousClient | None = None
    ) -> None:
        self._db = db
        self._output_ttl_s = output_ttl_s
        self._aurous = aurous
        self._subscribers: list[JobNews] = []

    def subscribe(self, subscriber: JobNews) -> None:
        self._subscribers.append(subscriber)

    async def write(self, work: Callable[[Connection, JobWriter], T]) -> T:
        """`work` in one write transaction with a `JobWriter`, run again if another replica
        created one of its jobs at the same moment; subscribers hear of it after the commit."""
        writers: list[JobWriter] = []

        def attempt(conn: Connection) -> T:
            writer = JobWriter(conn, self._output_ttl_s)
            writers.append(writer)
            return work(conn, writer)

        result = await self._db.write_retrying_races(attempt)
        self._tell(writers[-1].results)
        return result

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
        results = await self.observe([Observation(generation, source, utcnow())])
        return generation, results

    async def finish_output(self, output_id: int, owner: str, finish: OutputFinish) -> bool:
        """Record the end of an archive attempt, fenced on the lease; False if it was lost."""
        return await self._db.write(
            lambda conn: job_writes.finish_output(conn, output_id, owner, finish)
        )

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._db.read(lambda conn: gateway.get_job(conn, job_id))

    def _tell(self, results: Sequence[ObservationResult]) -> None:
        if not results:
            return
        for subscriber in self._subscribers:
            try:
                subscriber(results)
            except Exception:
                log.exception("a subscriber to job news failed")
