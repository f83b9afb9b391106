"""The safety net under webhooks: a sweep of the generation list (which also adopts jobs
created elsewhere) and targeted polls of running jobs whose news is overdue.

Both claim their work in the database, so several replicas share it without overlap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.aurous import AurousClient, AurousError
from receiver.generation import GenerationError, GenerationResponse, parse_timestamp
from receiver.jobs.lifecycle import Observation, poll_interval
from receiver.jobs.replica import Replica
from storage import gateway
from storage.db import Connection
from storage.records import PollClaim
from storage.states import Source
from storage.types import utcnow

__all__ = ["PollReport", "ReconcileConfig", "Reconciler", "SweepReport"]

log = logging.getLogger(__name__)

WATERMARK_KEY = "sweep.watermark"


@dataclass
class SweepReport:
    """One sweep of Aurous's job list: pages read, jobs seen, adopted (unknown here) and
    changed."""

    pages: int = 0
    seen: int = 0
    adopted: int = 0
    changed: int = 0


@dataclass
class PollReport:
    """One round of polls: the unfinished jobs whose next poll was due."""

    polled: int = 0
    changed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ReconcileConfig:
    page_size: int = 100  # jobs per list GET
    max_pages: int = 50  # per sweep
    lookback: timedelta = timedelta(hours=48)  # a sweep never walks further back
    poll_batch: int = 20  # due polls claimed at once
    poll_concurrency: int = 4


class Reconciler:
    def __init__(
        self, replica: Replica, aurous: AurousClient, config: ReconcileConfig | None = None
    ) -> None:
        self._replica = replica
        self._db = replica.db
        self._tracker = replica.tracker
        self._aurous = aurous
        self._config = config or ReconcileConfig()
        self._poll_slots = asyncio.Semaphore(self._config.poll_concurrency)

    async def sweep(self) -> SweepReport:
        """Walk the list newest first until a page older than the last sweep's newest job
        teaches nothing new (no unknown job, no status change). Jobs are listed by about two
        sweeps, so the list costs about one GET per 50 jobs; running jobs further back are
        the targeted polls' business."""
        report = SweepReport()
        now = utcnow()
        watermark = parse_timestamp(
            await self._db.read(lambda conn: gateway.get_state(conn, WATERMARK_KEY))
        )
        oldest_allowed = now - self._config.lookback
        newest: datetime | None = None
        cursor: str | None = None
        for _ in range(self._config.max_pages):
            page, has_more, next_cursor = await self._aurous.list_generations(
                starting_after=cursor, limit=self._config.page_size
            )
            report.pages += 1
            if not page:
                break
            newest = newest or parse_timestamp(page[0].created_at)
            learned = await self._observe(page, report)
            oldest = parse_timestamp(page[-1].created_at) or now
            past_watermark = watermark is None or oldest < watermark
            if not has_more or oldest < oldest_allowed or (past_watermark and not learned):
                break
            cursor = next_cursor or page[-1].id
        if newest is not None:
            await self._advance_watermark(newest)
        if report.adopted:
            log.info(
                "sweep adopted %d job%s created elsewhere (%d seen, %d changed, %d page%s)",
                report.adopted,
                "" if report.adopted == 1 else "s",
                report.seen,
                report.changed,
                report.pages,
                "" if report.pages == 1 else "s",
            )
        return report

    async def _advance_watermark(self, newest: datetime) -> None:
        now = utcnow()

        def advance(conn: Connection) -> None:
            current = parse_timestamp(gateway.get_state(conn, WATERMARK_KEY))
            if current is None or newest > current:
                gateway.set_state(conn, WATERMARK_KEY, newest.isoformat(), now)

        await self._db.write(advance)

    async def _observe(
        self, generations: Sequence[GenerationResponse], report: SweepReport
    ) -> bool:
        """Record a page; True if it taught us anything (a new job or a status change)."""
        now = utcnow()
        results = await self._tracker.observe(
            [Observation(g, Source.SWEEP, now) for g in generations]
        )
        report.seen += len(results)
        report.adopted += sum(1 for r in results if r.created)
        report.changed += sum(1 for r in results if r.applied)
        return any(r.created or r.applied for r in results)

    async def poll_due(self) -> PollReport:
        """Poll every running job whose next poll is due, batch after batch."""
        report = PollReport()
        while claimed := await self._db.write(self._claim_due_polls):
            await asyncio.gather(*(self._poll(claim, report) for claim in claimed))
        return report

    def _claim_due_polls(self, conn: Connection) -> list[PollClaim]:
        return self._replica.claim(gateway.claim_due_polls, conn, limit=self._config.poll_batch)

    async def _poll(self, claim: PollClaim, report: PollReport) -> None:
        # Kept from the claim on: a poll may wait for a slot, or for Aurous's rate budget.
        lease = asyncio.create_task(self._replica.keep_lease(gateway.extend_job_lease, claim.id))
        try:
            await self._poll_in_slot(claim, report)
        finally:
            lease.cancel()

    async def _poll_in_slot(self, claim: PollClaim, report: PollReport) -> None:
        async with self._poll_slots:
            retry_at = None
            try:
                _, results = await self._tracker.refresh(claim.id, Source.POLL)
            except (AurousError, GenerationError) as error:  # also an answer that is no job
                report.failed += 1
                log.info("poll of %s failed: %s", claim.id, error)
                retry_at = utcnow() + poll_interval(claim.kind, claim.poll_attempts)
            else:
                report.polled += 1
                report.changed += sum(1 for r in results if r.applied)
            await self._db.write(
                lambda conn: gateway.release_job_lease(
                    conn, claim.id, self._replica.owner, next_poll_at=retry_at
                )
            )
