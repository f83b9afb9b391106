"""Polls that Aurous answers badly: the job is asked again later, on its back-off schedule."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from receiver.aurous import AurousError
from receiver.generation import GenerationError, GenerationResponse, decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.reconcile import ReconcileConfig, Reconciler
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from storage import gateway
from storage.db import Database
from storage.states import Source
from storage.types import utcnow
from tests.support.aurous import generation


class _AnswersNoGeneration:
    """An Aurous whose answer to GET /images/{id} is not a generation."""

    calls = 0

    async def get_generation(self, job_id: str) -> GenerationResponse:
        self.calls += 1
        raise GenerationError("not a GenerationResponse: Object missing required field `id`")


async def _running_for_an_hour(db: Database, aurous: Any, job_id: str) -> JobTracker:
    """A tracker asking `aurous`, and a job created here an hour ago that is due a poll."""
    tracker = JobTracker(db, output_ttl_s=86_400, aurous=aurous)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    running = generation(job_id, "processing", created_at=an_hour_ago.isoformat())
    generated = decode_generation(json.dumps(running).encode())
    await tracker.observe([Observation(generated, Source.API, an_hour_ago)])
    return tracker


async def test_a_poll_answered_with_no_generation_is_tried_again_later(db_url: str) -> None:
    db = Database(db_url)
    aurous: Any = _AnswersNoGeneration()
    try:
        tracker = await _running_for_an_hour(db, aurous, "img_badly_answered")
        polls = Reconciler(Replica(db, tracker, "replica-a"), aurous)

        first = await polls.poll_due()
        again = await polls.poll_due()
        job = await db.read(lambda conn: gateway.get_job(conn, "img_badly_answered"))
    finally:
        await db.dispose()

    assert (first.failed, again.failed, aurous.calls) == (1, 0, 1)
    assert job is not None and job.next_poll_at is not None and job.next_poll_at > utcnow()


class _SlowAurous:
    """An Aurous that takes its time to say the job is still running."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls = 0

    async def get_generation(self, job_id: str) -> GenerationResponse:
        self.calls += 1
        await asyncio.sleep(1.5)
        return decode_generation(json.dumps(self.answer).encode())


async def test_a_slow_poll_keeps_its_lease_so_no_other_replica_polls_the_job(db_url: str) -> None:
    db = Database(db_url)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    running = generation("img_slow_poll", "processing", created_at=an_hour_ago.isoformat())
    aurous: Any = _SlowAurous(running)
    tracker = JobTracker(db, output_ttl_s=86_400, aurous=aurous)
    lease = timedelta(seconds=0.6)
    try:
        await tracker.observe(
            [Observation(decode_generation(json.dumps(running).encode()), Source.API, an_hour_ago)]
        )
        first = Reconciler(Replica(db, tracker, "replica-a", lease), aurous)
        other = Reconciler(Replica(db, tracker, "replica-b", lease), aurous)
        polling = asyncio.create_task(first.poll_due())
        await asyncio.sleep(1.0)  # past the lease, while the first poll waits for its answer
        meanwhile = await other.poll_due()
        report = await polling
    finally:
        await db.dispose()

    assert (report.polled, meanwhile.polled, aurous.calls) == (1, 0, 1)


class _AnswersAboutAnotherJob:
    calls = 0

    async def get_generation(self, job_id: str) -> GenerationResponse:
        self.calls += 1
        return decode_generation(json.dumps(generation("img_someone_else", "processing")).encode())


async def test_a_poll_answered_about_another_job_backs_off_and_adopts_nothing(
    db_url: str,
) -> None:
    """The job asked about stayed due and was claimed again at once: one poll round spent the
    whole GET budget on it."""
    db = Database(db_url)
    aurous: Any = _AnswersAboutAnotherJob()
    try:
        tracker = await _running_for_an_hour(db, aurous, "img_asked")
        report = await asyncio.wait_for(
            Reconciler(Replica(db, tracker, "replica-a"), aurous).poll_due(), timeout=10
        )
        stray = await db.read(lambda conn: gateway.get_job(conn, "img_someone_else"))
    finally:
        await db.dispose()

    assert (report.failed, aurous.calls, stray) == (1, 1, None)


class _ListsJobs:
    """GET /v1/images over `jobs` (newest first), `limit` at a time; with `empty_page`, the
    first page after the first comes back empty once, though more are said to follow."""

    def __init__(self, jobs: list[dict[str, Any]], empty_page: bool = False) -> None:
        self.jobs, self.empty_page, self.lists = jobs, empty_page, 0

    async def list_generations(
        self, *, starting_after: str | None = None, limit: int = 100
    ) -> tuple[list[GenerationResponse], bool, str | None]:
        self.lists += 1
        start = 0 if starting_after is None else int(starting_after)
        if self.empty_page and start > 0:
            self.empty_page = False
            return [], True, starting_after
        page = self.jobs[start : start + limit]
        more = start + limit < len(self.jobs)
        decoded = [decode_generation(json.dumps(job).encode()) for job in page]
        return decoded, more, str(start + limit) if more else None


def _a_minute_apart(prefix: str, count: int) -> list[dict[str, Any]]:
    """Succeeded jobs, newest first, created a minute apart up to now."""
    now = datetime.now(UTC)
    return [
        generation(
            f"{prefix}{n:02d}", "succeeded", created_at=(now - timedelta(minutes=n)).isoformat()
        )
        for n in range(count)
    ]


def _sweeper(
    db: Database, aurous: Any, config: ReconcileConfig, owner: str = "replica-a"
) -> Reconciler:
    tracker = JobTracker(db, output_ttl_s=86_400, aurous=aurous)
    return Reconciler(Replica(db, tracker, owner), aurous, config)


@pytest.mark.parametrize("empty_page", [False, True])
async def test_a_sweep_cut_short_leaves_no_job_behind(db_url: str, empty_page: bool) -> None:
    """A sweep stopped by its page limit (or by an empty page that says more follow) did not
    read the older jobs: the next sweeps still reach them."""
    db = Database(db_url)
    aurous: Any = _ListsJobs(_a_minute_apart("img_swept", 30), empty_page)
    sweeps = _sweeper(db, aurous, ReconcileConfig(page_size=5, max_pages=3))
    try:
        for _ in range(12):
            await sweeps.sweep()
        known = await db.read(lambda conn: gateway.count_jobs_by_status(conn))
    finally:
        await db.dispose()

    assert known == {"succeeded": 30}


async def test_one_sweep_an_interval_among_replicas_and_a_manual_one_regardless(
    db_url: str,
) -> None:
    db = Database(db_url)
    aurous: Any = _ListsJobs(_a_minute_apart("img_once", 3))
    every = ReconcileConfig(sweep_every=timedelta(minutes=1))
    first, second = (_sweeper(db, aurous, every, owner) for owner in ("replica-a", "replica-b"))
    try:
        swept = await first.sweep()
        skipped = await second.sweep()
        manual = await second.sweep(force=True)
    finally:
        await db.dispose()

    assert (swept.pages, skipped.pages, manual.pages) == (1, 0, 1)


async def test_a_resume_cursor_aurous_no_longer_knows_starts_the_sweep_over(
    db_url: str,
) -> None:
    """A walk cut short keeps where it stopped; when Aurous then refuses that cursor (the job
    was pruned), the next sweep starts from the top instead of failing on it forever."""
    db = Database(db_url)
    aurous: Any = _ListsJobs(_a_minute_apart("img_gone", 12))
    sweeps = _sweeper(db, aurous, ReconcileConfig(page_size=5, max_pages=1))
    list_generations = aurous.list_generations

    async def refusing_the_cursor(**kwargs: Any) -> Any:
        if kwargs.get("starting_after") == "5":
            raise AurousError(404, "invalid_request", "resource_not_found", "No such job.")
        return await list_generations(**kwargs)

    try:
        await sweeps.sweep()  # cut after one page: it would go on after job 5
        aurous.list_generations = refusing_the_cursor
        refused = await sweeps.sweep()
        again = await sweeps.sweep()
        resume = await db.read(lambda conn: gateway.get_state(conn, "sweep.resume"))
    finally:
        await db.dispose()

    assert (refused.pages, again.pages) == (0, 1)  # the next one read the top again
    assert resume in ("", None) or "img_gone" not in resume
