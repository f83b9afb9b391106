"""Archive every output before its URL expires: claim due outputs (earliest deadline first,
leased), stream each into the blob store, and record the outcome fenced on the lease.

410 output_expired: re-GET the job once for fresh URLs, else the output is lost (if Aurous cannot
be asked just then, try again later). 422 output_not_available: nothing to archive. Anything
else: retry with backoff and jitter. Each failed attempt and each output lost is one log line
naming the job and the output.

A claimed output's lease is renewed from the claim on, also while it waits for a download slot;
if the lease is lost all the same, its download stops and the replica that holds it now finishes
it. Rounds of one archiver take turns (the ticker's and a kick's), so that one process never
claims an output twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from receiver.archive.fetch import Downloaded, DownloadError, HostPolicy, discard_spool, download
from receiver.aurous import AurousError, RateBudget
from receiver.errors import ReceiverError
from receiver.jobs.lifecycle import ObservationResult
from receiver.jobs.replica import Replica
from storage import gateway
from storage.blobs import BlobStore
from storage.db import Connection
from storage.records import OutputFinish, OutputRecord
from storage.states import OutputState
from storage.types import utcnow

__all__ = ["ArchiveConfig", "ArchiveOutcome", "Archiver", "retry_delay"]

log = logging.getLogger(__name__)

GIVE_UP_AFTER_DEADLINE = timedelta(days=7)  # the 24 h deadline is an assumption, 410 is a fact
_BASE_DELAY_S = 1.0
_MAX_DELAY_S = 900.0


def retry_delay(attempts: int, *, past_deadline: bool = False) -> float:
    """Exponential from 1 s, capped at 15 min (1 h once past the deadline), jittered ±50%."""
    cap = 3600.0 if past_deadline else _MAX_DELAY_S
    delay: float = min(cap, _BASE_DELAY_S * 2.0 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.5)


@dataclass
class ArchiveOutcome:
    """What one archive pass did to the outputs it claimed, for its log line and the CLI."""

    archived: int = 0
    lost: int = 0
    none: int = 0
    retry: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.archived + self.lost + self.none + self.retry


@dataclass(frozen=True)
class ArchiveConfig:
    policy: HostPolicy  # where outputs may be downloaded from
    spool_dir: Path  # partial downloads, resumed after a crash
    concurrency: int = 4
    max_bytes: int = 8 << 30


class Archiver:
    def __init__(
        self,
        replica: Replica,
        blobs: BlobStore,
        http: httpx.AsyncClient,
        config: ArchiveConfig,
        *,
        budget: RateBudget | None = None,
    ) -> None:
        self._replica = replica
        self._db = replica.db
        self._blobs = blobs
        self._http = http
        self._config = config
        self._budget = budget  # Aurous's 429 pause applies to downloads from it too
        self._slots = asyncio.Semaphore(config.concurrency)
        self._round = asyncio.Lock()
        self._wanted = asyncio.Event()
        self._running: asyncio.Task[ArchiveOutcome] | None = None
        self._listeners: list[Callable[[ArchiveOutcome], object]] = []

    def subscribe(self, listener: Callable[[ArchiveOutcome], object]) -> None:
        """`listener` hears each round's outcome, whoever started it (a tick, a kick, a CLI)."""
        self._listeners.append(listener)

    def on_news(self, results: Sequence[ObservationResult]) -> None:
        """A subscriber to job news: outputs to archive arrived, archive them now."""
        if any(r.has_pending_outputs for r in results):
            self.kick()

    def kick(self) -> None:
        """Archive now (e.g. right after a webhook committed a succeeded job)."""
        self._wanted.set()
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self.run_until_idle(), name="archiver-kick")

    async def run_until_idle(
        self, progress: Callable[[ArchiveOutcome], object] | None = None
    ) -> ArchiveOutcome:
        """Claim and archive due outputs until none are due."""
        total = ArchiveOutcome()
        while True:
            self._wanted.clear()
            round_ = await self.run_due()
            _merge(total, round_)
            if progress is not None and round_.handled:
                progress(total)
            if round_.handled == 0 and not self._wanted.is_set():
                return total

    async def run_due(self) -> ArchiveOutcome:
        outcome = ArchiveOutcome()
        async with self._round:
            claimed = await self._db.write(self._claim)
            await asyncio.gather(*(self._archive(row, outcome) for row in claimed))
        if outcome.handled:
            for listener in self._listeners:
                listener(outcome)
        return outcome

    def _claim(self, conn: Connection) -> list[OutputRecord]:
        return self._replica.claim(gateway.claim_outputs, conn, limit=self._config.concurrency * 2)

    async def _archive(self, row: OutputRecord, outcome: ArchiveOutcome) -> None:
        work = asyncio.create_task(self._archive_in_slot(row, outcome))
        lease = asyncio.create_task(self._replica.keep_lease(gateway.extend_output_lease, row.id))
        try:
            await asyncio.wait((work, lease), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, lease):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not work.cancelled():
            return
        log.warning(
            "lost the lease on output %d of job %s while archiving it; its new holder finishes it",
            row.position,
            row.job_id,
        )

    async def _archive_in_slot(self, row: OutputRecord, outcome: ArchiveOutcome) -> None:
        async with self._slots:
            try:
                await self._archive_leased(row, outcome)
            except Exception as exc:  # a bug must not stop the other outputs
                log.exception("archiving output %s of %s failed", row.position, row.job_id)
                await self._retry(row, f"internal error: {exc!r}"[:300], outcome)

    async def _archive_leased(self, row: OutputRecord, outcome: ArchiveOutcome) -> None:
        try:
            result = await self._download(row.source_url, row.id)
        except DownloadError as error:
            if error.code == "output_expired" or error.status == 410:
                try:
                    fresh = await self._fresh_url(row)
                except AurousError as unanswered:  # the 410 stands until Aurous is asked
                    reason = f"{error}; could not ask Aurous for a fresh URL: {unanswered}"
                    retry_after = unanswered.retry_after or 0.0
                    return await self._retry(row, reason, outcome, at_least=retry_after)
                if fresh is None:
                    return await self._finish(row, OutputState.LOST, str(error), outcome)
                try:
                    result = await self._download(fresh, row.id)
                except DownloadError as again:
                    return await self._failed(row, again, outcome)
            else:
                return await self._failed(row, error, outcome)
        await self._store(row, result, outcome)

    async def _download(self, url: str, output_id: int) -> Downloaded:
        spool = self._config.spool_dir / f"output-{output_id}.part"
        return await self._fetch(url, spool)

    async def _fetch(self, url: str, spool: Path) -> Downloaded:
        return await download(
            self._http,
            url,
            spool,
            policy=self._config.policy,
            max_bytes=self._config.max_bytes,
            ready=self._budget.wait_unpaused if self._budget is not None else None,
        )

    async def _store(self, row: OutputRecord, result: Downloaded, outcome: ArchiveOutcome) -> None:
        await self._blobs.adopt_file(result.path, result.sha256, result.content_type)
        archived = OutputFinish(
            state=OutputState.ARCHIVED,
            sha256=result.sha256,
            size=result.size,
            content_type=result.content_type,
            archived_at=utcnow(),
            last_error=None,
            next_attempt_at=None,
        )
        finished = await self._record(row, archived)
        discard_spool(result.path)
        if finished:
            outcome.archived += 1
            outcome.bytes += result.size

    async def _failed(
        self, row: OutputRecord, error: DownloadError, outcome: ArchiveOutcome
    ) -> None:
        if error.code == "output_not_available" or error.status == 422:
            return await self._finish(row, OutputState.NONE, str(error), outcome)
        if error.permanent or error.status == 410:
            return await self._finish(row, OutputState.LOST, str(error), outcome)
        await self._retry(row, str(error), outcome, at_least=error.retry_after or 0.0)

    async def _retry(
        self, row: OutputRecord, error: str, outcome: ArchiveOutcome, at_least: float = 0.0
    ) -> None:
        now = utcnow()
        if now > row.deadline + GIVE_UP_AFTER_DEADLINE:
            reason = f"gave up after the deadline: {error}"
            return await self._finish(row, OutputState.LOST, reason, outcome)
        delay = max(at_least, retry_delay(row.attempts, past_deadline=now > row.deadline))
        later = OutputFinish(last_error=error[:500], next_attempt_at=now + timedelta(seconds=delay))
        await self._record(row, later)
        outcome.retry += 1
        outcome.errors.append(error)
        log.warning(
            "archiving output %d of job %s failed (attempt %d): %s; will retry in %.0f s",
            row.position,
            row.job_id,
            row.attempts,
            error[:500],
            delay,
        )

    async def _record(self, row: OutputRecord, finish: OutputFinish) -> bool:
        """Write an attempt's outcome, fenced on our lease; False if the lease was lost."""
        return await self._replica.tracker.finish_output(row, self._replica.owner, finish)

    async def _finish(
        self, row: OutputRecord, state: OutputState, error: str, outcome: ArchiveOutcome
    ) -> None:
        await self._record(
            row, OutputFinish(state=state, last_error=error[:500], next_attempt_at=None)
        )
        discard_spool(self._config.spool_dir / f"output-{row.id}.part")
        setattr(outcome, state, getattr(outcome, state) + 1)
        where = (row.position, row.job_id)
        if state == OutputState.LOST:
            log.warning(
                "output %d of job %s is lost (attempt %d), will not retry: %s",
                *where,
                row.attempts,
                error,
            )
        elif state == OutputState.NONE:
            log.info("output %d of job %s has nothing to archive: %s", *where, error)

    async def _fresh_url(self, row: OutputRecord) -> str | None:
        """Re-GET the job once; the new URL if Aurous minted a different one. Raises a
        retryable `AurousError` when Aurous could not answer just now."""
        try:
            generation, _ = await self._replica.tracker.refresh(row.job_id)
        except ReceiverError as error:  # Aurous's answer, or no Aurous to ask (no API key)
            if isinstance(error, AurousError) and error.retryable:
                raise
            log.info("could not refresh %s after 410: %s", row.job_id, error)
            return None
        urls = generation.output_sources()
        fresh = urls[row.position] if row.position < len(urls) else None
        return fresh if fresh and fresh != row.source_url else None

    async def clean_spool(self) -> None:
        """Remove spool files of outputs that are no longer pending (at start-up). A pending
        output's partial spool stays: the next attempt resumes from it."""
        found = (_spool_id(path) for path in self._config.spool_dir.glob("output-*.part*"))
        ids = sorted({output_id for output_id in found if output_id is not None})
        if not ids:
            return
        pending = await self._db.read(lambda conn: gateway.pending_output_ids(conn, ids))
        for output_id in set(ids) - set(pending):
            discard_spool(self._config.spool_dir / f"output-{output_id}.part")

    async def stop(self) -> None:
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running


def _spool_id(path: Path) -> int | None:
    """The output of `output-N.part` and of what is kept beside it (`output-N.part.meta`)."""
    try:
        return int(path.name.removeprefix("output-").split(".", 1)[0])
    except ValueError:
        return None


def _merge(total: ArchiveOutcome, part: ArchiveOutcome) -> None:
    total.archived += part.archived
    total.lost += part.lost
    total.none += part.none
    total.retry += part.retry
    total.bytes += part.bytes
    total.errors += part.errors
