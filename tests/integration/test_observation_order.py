"""Property: whatever order and however often a job's observations arrive, by whichever path,
the job ends in the same state; a late non-terminal report never regresses a terminal one."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import TERMINAL, Observation
from receiver.jobs.tracker import JobTracker
from storage import gateway
from storage.db import Connection, Database
from tests.support.aurous import generation

_ids = itertools.count()
SOURCES = ["webhook:evt_a", "webhook:evt_b", "poll", "sweep", "api"]
AT = datetime(2026, 5, 4, 10, 0, 30, tzinfo=UTC)


def history(job_id: str, terminal: str, with_queued: bool) -> list[dict[str, Any]]:
    steps = ["pending", *(["queued"] if with_queued else []), "processing", terminal]
    return [generation(job_id, status) for status in steps]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[str, list[tuple[dict[str, Any], str]]]:
    terminal = draw(st.sampled_from(sorted(TERMINAL)))
    job_id = f"{draw(st.sampled_from(['img', 'vid']))}_{next(_ids):06d}"
    steps = history(job_id, terminal, draw(st.booleans()))
    seen = draw(st.lists(st.sampled_from(steps), min_size=0, max_size=8))
    observed = [*seen, steps[-1]]  # the terminal news arrives at least once
    order = draw(st.permutations(observed))
    return job_id, [(step, draw(st.sampled_from(SOURCES))) for step in order]


async def observe_all(db: Database, arrivals: list[tuple[dict[str, Any], str]]) -> None:
    tracker = JobTracker(db, output_ttl_s=86400)
    for data, source in arrivals:
        gen = msgspec.json.decode(msgspec.json.encode(data), type=GenerationResponse)
        await tracker.observe([Observation(gen, source, AT)])


async def final_state(db: Database, job_id: str) -> tuple[Any, ...]:
    def read(conn: Connection) -> tuple[Any, ...]:
        job = gateway.get_job(conn, job_id)
        return job, gateway.list_outputs(conn, [job_id]), gateway.list_job_events(conn, job_id)

    job, outputs, events = await db.read(read)
    assert job is not None
    return (
        job.status,
        job.terminal,
        job.completed_at,
        job.cost_micros,
        job.cost_state,
        job.error_message,
        [(o.position, o.source_url, o.deadline, o.state) for o in outputs],
        sum(1 for e in events if not e.applied),
    )


def test_any_order_and_duplication_ends_in_the_true_state(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(db_url)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(arrivals())
    def check(example: tuple[str, list[tuple[dict[str, Any], str]]]) -> None:
        job_id, shuffled = example
        truth_id = f"{job_id}_truth"
        terminal = next(data for data, _ in shuffled if data["status"] in TERMINAL)
        in_order = [
            (dict(d, id=truth_id), "poll")
            for d in history(truth_id, terminal["status"], with_queued=False)
        ]
        loop.run_until_complete(observe_all(db, shuffled))
        loop.run_until_complete(observe_all(db, in_order))
        got = loop.run_until_complete(final_state(db, job_id))
        want = loop.run_until_complete(final_state(db, truth_id))
        assert got[:-1] == tuple(
            [*want[:6], [(i, url.replace(truth_id, job_id), d, s) for i, url, d, s in want[6]]]
        )
        assert got[-1] == 0  # nothing contradicts a consistent history

    try:
        check()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()


async def test_failed_after_succeeded_is_kept_as_an_unapplied_event(db_url: str) -> None:
    db = Database(db_url)
    try:
        await observe_all(
            db,
            [
                (generation("img_c", "succeeded"), "webhook:evt_1"),
                (generation("img_c", "processing"), "poll"),
                (generation("img_c", "failed"), "sweep"),
            ],
        )
        job = await db.read(lambda conn: gateway.get_job(conn, "img_c"))
        events = await db.read(lambda conn: gateway.list_job_events(conn, "img_c"))
    finally:
        await db.dispose()
    assert job is not None
    assert job.status == "succeeded"
    assert [(e.source, e.to_status, e.applied, e.note) for e in events] == [
        ("webhook:evt_1", "succeeded", True, "first seen"),
        ("sweep", "failed", False, "contradiction: failed after succeeded"),
    ]
