"""The safety net under webhooks: a sweep of the generation list (which also adopts jobs
created elsewhere) and targeted polls of running jobs whose news is overdue.

Both claim their work in the database, so several replicas share it without overlap."""

from __future__ import annotations

import asyncio
import json
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
RESUME_KEY = "sweep.resume"  # where a walk cut short by its page limit goes on
SWEEP_LEASE_KEY = "sweep.lease"


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
    sweep_every: timedelta = timedelta(seconds=60)  # one sweep in this long, whoever makes it


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

    async def sweep(self, *, force: bool = False) -> SweepReport:
        """Walk the list newest first until a page older than the last sweep's newest job
        teaches nothing new (no unknown job, no status change). Jobs are listed by about two
        sweeps, so the list costs about one GET per 50 jobs; running jobs further back are
        the targeted polls' business. A walk its page limit cuts short is taken up where it
        stopped by the next sweep; the watermark moves only when a walk has ended. One sweep
        an interval among replicas (a lease); `force` (a manual sync) sweeps regardless."""
        report = SweepReport()
        if not force and not await self._hold_sweep():
            return report  # another replica (or worker) swept within the interval
        watermark, resume = await self._db.read(_sweep_state)
        walk = await self._walk(report, watermark, resume, force=force)
        if walk is not None:
            await self._db.write(lambda conn: _record_walk(conn, walk))
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

    async def release(self) -> None:
        """Give up the sweep lease (at shutdown): another replica need not wait it out."""
        owner = self._replica.owner
        await self._db.write(lambda conn: gateway.release_lease(conn, SWEEP_LEASE_KEY, owner))

    async def _hold_sweep(self) -> bool:
        """Take or extend the sweep lease for an interval; False if another replica has it."""
        now, owner = utcnow(), self._replica.owner
        until = now + self._config.sweep_every
        return await self._db.write(
            lambda conn: gateway.take_lease(conn, SWEEP_LEASE_KEY, owner, now, until)
        )

    async def _walk(
        self, report: SweepReport, watermark: datetime | None, resume: _Walk | None, *, force: bool
    ) -> _Walk | None:
        now = utcnow()
        oldest_allowed = now - self._config.lookback
        walk = resume or _Walk()
        followed: set[str] = set()
        for _ in range(self._config.max_pages):
            listed = await self._page_after(walk.cursor)
            if listed is None:
                return walk.ending(False)  # a cursor Aurous no longer knows
            page, has_more, next_cursor = listed
            report.pages += 1
            if not page:
                if not has_more:
                    return walk.ending(True)
                # more to come, yet none now: asked again where it stopped, once
                return walk.ending(False) if resume is not None and not followed else walk
            times = _creation_times(page, now)
            if times:
                walk.newest = max(walk.newest, times[0]) if walk.newest else times[0]
            learned = await self._observe(page, report)
            last = min(times, default=now)
            past_watermark = watermark is None or last < watermark
            if not has_more or last < oldest_allowed or (past_watermark and not learned):
                return walk.ending(True)
            walk.cursor = next_cursor or page[-1].id
            if walk.cursor in followed:
                return walk.ending(False)  # Aurous led back to a page already read
            followed.add(walk.cursor)
            if not force and not await self._hold_sweep():
                return None  # a long walk whose lease another replica took: it sweeps now
        return walk  # cut by the page limit: the next sweep goes on from here

    async def _page_after(
        self, cursor: str | None
    ) -> tuple[list[GenerationResponse], bool, str | None] | None:
        """The list's page after `cursor`; None if Aurous refuses the cursor for good."""
        try:
            return await self._aurous.list_generations(
                starting_after=cursor, limit=self._config.page_size
            )
        except AurousError as error:
            if cursor is None or error.retryable:
                raise
            log.warning("sweep: no page after %s (%s); from the top next", cursor, error)
            return None

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
            polls = (self._poll(claim, report) for claim in claimed)
            ends = await asyncio.gather(*polls, return_exceptions=True)
            for claim, end in zip(claimed, ends, strict=True):
                if isinstance(end, Exception):  # a bug: the others still end their polls
                    log.error("polling %s failed", claim.id, exc_info=end)
                elif isinstance(end, BaseException):
                    raise end
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


def _creation_times(page: Sequence[GenerationResponse], now: datetime) -> list[datetime]:
    """The page's creation times, newest first whatever order it lists them in; none later
    than now (a clock far ahead must not pin the watermark in the future)."""
    times = (parse_timestamp(g.created_at) for g in page)
    return sorted((min(t, now) for t in times if t is not None), reverse=True)


@dataclass
class _Walk:
    """Where a sweep's walk is: the page to read next, the newest job it saw, how it ended."""

    cursor: str | None = None
    newest: datetime | None = None
    ended: bool | None = None  # True: to its end; False: stuck (led back to a page read)

    def ending(self, complete: bool) -> _Walk:
        self.ended = complete
        return self

    def text(self) -> str:
        newest = self.newest.isoformat() if self.newest else None
        return json.dumps({"cursor": self.cursor, "newest": newest})

    @classmethod
    def parse(cls, text: str | None) -> _Walk | None:
        try:
            data = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("cursor"), str):
            return None
        return cls(data["cursor"], parse_timestamp(data.get("newest")))


def _sweep_state(conn: Connection) -> tuple[datetime | None, _Walk | None]:
    watermark = parse_timestamp(gateway.get_state(conn, WATERMARK_KEY))
    return watermark, _Walk.parse(gateway.get_state(conn, RESUME_KEY))


def _record_walk(conn: Connection, walk: _Walk) -> None:
    """An ended walk moves the watermark to its newest job; a cut one is taken up where it
    stopped; a stuck one starts again from the top next time, the watermark unmoved."""
    now = utcnow()
    if walk.ended is None:
        gateway.set_state(conn, RESUME_KEY, walk.text(), now)
        return
    gateway.set_state(conn, RESUME_KEY, "", now)
    if not walk.ended:
        return
    current = parse_timestamp(gateway.get_state(conn, WATERMARK_KEY))
    if walk.newest is not None and (current is None or walk.newest > current):
        gateway.set_state(conn, WATERMARK_KEY, walk.newest.isoformat(), now)
