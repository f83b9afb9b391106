"""Query times at scale: 1,000,000 jobs and 3,000,000 job events on SQLite (100,000 jobs on
PostgreSQL with --postgres URL|auto), generated directly through the gateway. Times the lease
claim (outputs and polls), a jobs list page (first and deep) and a job detail, and prints each
query plan's use of indexes. The spend summary at this scale: bench/audit.py --jobs 1000000.

    .venv/bin/python bench/scale.py [--jobs 1000000] [--postgres postgresql://…/db]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import database

from receiver.jobs import views as job_views
from receiver.shapes import encode_key_cursor
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import job_writes
from storage.migrate import upgrade
from storage.records import NewJob, NewJobEvent, NewOutput

TARGETS_MS = {
    "claim outputs": 5,
    "claim polls": 5,
    "jobs page (first)": 50,
    "jobs page (deep)": 50,
    "job detail": 10,
}
STATUSES = ["succeeded"] * 8 + ["failed", "processing"]
BATCH = 5000


def job_row(n: int, base: datetime) -> NewJob:
    status = STATUSES[n % len(STATUSES)]
    at = base + timedelta(seconds=n)
    terminal = status != "processing"
    return NewJob(
        id=f"img_{n:012d}",
        kind="image" if n % 5 else "video",
        status=status,
        terminal=terminal,
        first_seen_via="webhook",
        terminal_via="webhook" if terminal else None,
        created_at=at,
        completed_at=at + timedelta(seconds=20) if terminal else None,
        first_seen_at=at,
        last_observed_at=at,
        next_poll_at=None if terminal else at + timedelta(minutes=1),
        cost_micros=2_000_000,
        cost_state="charged" if terminal else "held",
        model=f"lora_{n % 7}",
    )


async def generate(db: Database, count: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        rows = [job_row(n, base) for n in range(first, min(count, first + BATCH))]
        events = [
            NewJobEvent(r.id, r.first_seen_at, source, None, to, True, None)
            for r in rows
            for source, to in (
                ("api", "pending"),
                ("poll", "processing"),
                ("webhook:evt", r.status),
            )
        ]
        outputs = [
            NewOutput(
                r.id,
                0,
                "https://x/" + r.id,
                (r.completed_at or base) + timedelta(days=1),
                "archived" if r.id[-1] != "7" else "pending",
            )
            for r in rows
            if r.status == "succeeded"
        ]

        await db.write(partial(_store, jobs=rows, events=events, outputs=outputs))
        if first % 100_000 == 0:
            print(f"  generated {first + len(rows):,} jobs ({time.perf_counter() - started:.0f}s)")
    await db.write(lambda conn: conn.execute(text("ANALYZE")))


def _store(
    conn: Connection, *, jobs: list[NewJob], events: list[NewJobEvent], outputs: list[NewOutput]
) -> None:
    job_writes.insert_jobs(conn, jobs)
    job_writes.insert_job_events(conn, events)
    job_writes.upsert_outputs(conn, outputs)


class _RolledBack(Exception):
    """Thrown out of a measured transaction so that it leaves nothing behind."""


async def rolled_back(db: Database, work: Callable[[Connection], object]) -> None:
    def run_then_undo(conn: Connection) -> None:
        work(conn)
        raise _RolledBack

    with contextlib.suppress(_RolledBack):
        await db.write(run_then_undo)


async def timed(label: str, work: Callable[[], Awaitable[Any]], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    target = TARGETS_MS.get(label)
    verdict = "" if target is None else ("ok" if median <= target else f"OVER {target} ms")
    print(f"  {label:<22}{median:>10.2f} ms  {verdict}")
    return median


async def measure(db: Database, count: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=count + 3600)
    some_job = f"img_{count // 2:012d}"
    deep = encode_key_cursor(
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=count // 3), f"img_{count // 3:012d}"
    )

    async def claim_outputs() -> None:
        owner = f"bench{random.random()}"
        await rolled_back(
            db,
            lambda conn: gateway.claim_outputs(
                conn, owner=owner, now=now, lease_until=now, limit=8
            ),
        )

    async def claim_polls() -> None:
        await rolled_back(
            db,
            lambda conn: gateway.claim_due_polls(
                conn, owner="bench", now=now, lease_until=now, limit=20
            ),
        )

    async def detail() -> None:
        await job_views.get_job(db, some_job)
        await job_views.job_events(db, some_job)

    await timed("claim outputs", claim_outputs)
    await timed("claim polls", claim_polls)
    await timed(
        "jobs page (first)",
        lambda: job_views.list_jobs(db, status=None, kind=None, cursor=None, limit=50),
    )
    await timed(
        "jobs page (deep)",
        lambda: job_views.list_jobs(db, status="failed", kind=None, cursor=deep, limit=50),
    )
    await timed("job detail", detail)


async def plans(db: Database) -> None:
    """Print how each hot query is answered: SQLite's QUERY PLAN, PostgreSQL's scan nodes."""
    false = "0" if db.is_sqlite else "false"
    queries = {
        "claim outputs": "SELECT id FROM output WHERE state='pending' AND (next_attempt_at IS NULL"
        " OR next_attempt_at <= '2030-01-01') ORDER BY deadline, id LIMIT 8",
        "claim polls": f"SELECT id FROM job WHERE terminal = {false}"
        " AND next_poll_at <= '2030-01-01' ORDER BY next_poll_at LIMIT 20",
        "jobs page": "SELECT * FROM job ORDER BY first_seen_at DESC, id DESC LIMIT 51",
        "jobs by status": "SELECT * FROM job WHERE status='failed' ORDER BY first_seen_at DESC,"
        " id DESC LIMIT 51",
        "job events": "SELECT * FROM job_event WHERE job_id='img_1' ORDER BY id",
    }
    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "

    def read(conn: Connection) -> dict[str, list[str]]:
        return {
            label: [str(row[-1]) for row in conn.execute(text(explain + sql)).all()]
            for label, sql in queries.items()
        }

    for label, rows in (await db.read(read)).items():
        if not db.is_sqlite:
            rows = [row.strip(" ->").split("  (")[0] for row in rows if "Scan" in row]
        print(f"  plan {label:<15} {'; '.join(rows)}")


async def run(url: str, count: int) -> None:
    db = Database(url)
    await upgrade(db)
    print(f"generating {count:,} jobs, {3 * count:,} events on {url.split(':')[0]}")
    await generate(db, count)
    print("median of repeated runs:")
    await measure(db, count)
    await plans(db)
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL, or auto")
    args = parser.parse_args()
    if args.postgres:
        with database(args.postgres) as url:
            asyncio.run(run(url, min(args.jobs, 100_000)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(tmp)}/scale.db", args.jobs))


if __name__ == "__main__":
    main()
