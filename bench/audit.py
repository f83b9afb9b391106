"""Spend summary and findings over 100,000 jobs and 300,000 ledger rows on SQLite.

Generates the data straight through the gateway into a temporary SQLite file, then times the
summary for each grouping (whole history and a 7-day window), the per-job CSV, and one findings
pass; prints each statement's query plan and fails if a report scans a table without an index.
Target: each under 1 s.

    .venv/bin/python bench/audit.py [--jobs 100000] [--ledger 300000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event

from receiver.aurous import AurousError
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from receiver.spend import reports as spend
from receiver.spend.audit import Audit, AuditConfig
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import job_writes
from storage.migrate import upgrade
from storage.records import JobRequestUpdate, NewJob, NewJobEvent, NewJobRequest, NewLedgerEntry

START = datetime(2026, 5, 1, tzinfo=UTC)
HISTORY = timedelta(days=30)
MODELS = ["t2i", "t2v", "i2i", "lora_sunset", "lora_neon", None]
BATCH = 5000
TARGET_S = 1.0


class _NoAurous:
    """Adoption asks Aurous about unknown jobs; here none of them exists."""

    async def get_generation(self, job_id: str) -> Any:
        raise AurousError(404, "invalid_request", "resource_not_found", f"no {job_id}")


def _job(n: int, rng: random.Random, step_s: float) -> dict[str, Any]:
    created = START + timedelta(seconds=n * step_s)
    kind = "video" if n % 10 == 0 else "image"
    status = rng.choices(["succeeded", "failed", "cancelled"], [85, 10, 5])[0]
    cost = 2_000_000 if kind == "image" else 5_000_000
    return {
        "id": f"{'img' if kind == 'image' else 'vid'}_{n:08d}",
        "kind": kind,
        "status": status,
        "terminal": True,
        "first_seen_via": "webhook",
        "terminal_via": "webhook",
        "created_at": created,
        "completed_at": created + timedelta(seconds=20),
        "first_seen_at": created,
        "last_observed_at": created + timedelta(seconds=20),
        "next_poll_at": None,
        "poll_attempts": 0,
        "cost_micros": cost if status == "succeeded" else 0,
        "cost_state": "charged",
        "cost_currency": "credit",
        "model": MODELS[n % len(MODELS)],
        "error_message": None,
        "last_response": None,
    }


def _movement(kind: str, amount: int, job: dict[str, Any] | None, at: datetime) -> dict[str, Any]:
    return {
        "type": kind,
        "amount_micros": amount,
        "generation_id": job["id"] if job else None,
        "hold_id": f"hold_{job['id']}" if job else None,
        "created_at": at,
    }


def _movements(
    job: dict[str, Any], rng: random.Random, injected: Counter[str]
) -> list[dict[str, Any]]:
    """A hold, then a charge or a release, with a few anomalies sprinkled in (counted)."""
    cost = 2_000_000 if job["kind"] == "image" else 5_000_000
    rows = [_movement("hold", -cost, job, job["created_at"])]
    done = job["completed_at"]
    roll = rng.random()
    if job["status"] == "succeeded":
        overcharged = roll < 0.01
        injected["charge_mismatch"] += overcharged
        rows.append(_movement("charge", -(cost + 500_000 * overcharged), job, done))
    elif roll < 0.02:
        injected["charge_not_succeeded"] += 1
        rows.append(_movement("charge", -cost, job, done))
    elif roll > 0.03:
        rows.append(_movement("release", cost, job, done))
    else:
        injected["hold_not_released"] += 1
    return rows


def _extras(count: int, jobs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Top-ups and adjustments (no generation), and 1% movements for jobs nobody saw."""
    rows = []
    for n in range(count):
        job = rng.choice(jobs)
        at = job["completed_at"] + timedelta(seconds=30)
        roll = n % 100
        if roll < 95:
            rows.append(_movement("topup", 50_000_000, None, at))
        elif roll < 99:
            rows.append(_movement("adjustment", -1_000_000, None, at))
        else:
            ghost = dict(job, id=f"img_ghost{n:07d}")
            rows.append(_movement("charge", -1_000_000, ghost, at))
    return rows


async def generate(db: Database, job_count: int, ledger_count: int) -> Counter[str]:
    """Write the data; return the findings it should produce, by code."""
    rng = random.Random(7)
    injected: Counter[str] = Counter()
    step_s = HISTORY.total_seconds() / job_count  # the same 30 days whatever the job count
    jobs = [_job(n, rng, step_s) for n in range(job_count)]
    movements = [m for job in jobs for m in _movements(job, rng, injected)]
    movements += _extras(max(0, ledger_count - len(movements)), jobs, rng)
    injected["unknown_job"] = sum(1 for m in movements if "ghost" in (m["generation_id"] or ""))
    movements = sorted(movements[:ledger_count], key=lambda m: m["created_at"])
    entries = [
        NewLedgerEntry(
            uev_id=f"uev_{n:09d}",
            type=m["type"],
            amount_micros=m["amount_micros"],
            currency="credit",
            generation_id=m["generation_id"],
            hold_id=m["hold_id"],
            created_at=m["created_at"],
            description=None,
            contract="ledger",
            raw={},
        )
        for n, m in enumerate(movements)
    ]
    events = [_terminal_event(job) for job in jobs]
    requests = [
        _request(job, n, jobs[max(0, n - 1)]) for n, job in enumerate(jobs[: job_count // 5])
    ]
    injected["duplicate_request"] = sum(1 for n in range(1, len(requests)) if n % 50 == 0)
    new_jobs = [NewJob(**job) for job in jobs]
    for start in range(0, len(jobs), BATCH):
        chunk = slice(start, start + BATCH)
        await db.write(partial(job_writes.insert_jobs, jobs=new_jobs[chunk]))
        await db.write(partial(job_writes.insert_job_events, events=events[chunk]))
    for start in range(0, len(requests), BATCH):
        await db.write(partial(_insert_requests, rows=requests[start : start + BATCH]))
    synced = START + timedelta(days=60)
    for start in range(0, len(entries), BATCH):
        await db.write(partial(_insert_entries, entries[start : start + BATCH], start, synced))
    return injected


def _insert_entries(
    entries: list[NewLedgerEntry], first: int, synced: datetime, conn: Connection
) -> None:
    """Oldest first, each a position above the one before (the gateway takes newest first)."""
    newest = first + len(entries) - 1
    gateway.upsert_ledger_entries(conn, entries[::-1], first_position=newest, synced_at=synced)


def _terminal_event(job: dict[str, Any]) -> NewJobEvent:
    at = job["completed_at"]
    return NewJobEvent(job["id"], at, "webhook:evt_bench", None, job["status"], True, "first seen")


def _request(job: dict[str, Any], n: int, previous: dict[str, Any]) -> tuple[NewJobRequest, str]:
    repeat = n % 50 == 0 and n > 0
    at = previous["created_at"] + timedelta(seconds=26) if repeat else job["created_at"]
    request = NewJobRequest(
        idempotency_key=f"rcv-{n}",
        kind=job["kind"],
        # every 50th repeats the request before it, 26 s later: a duplicate
        fingerprint=f"fp{n - 1 if repeat else n}",
        body=b"{}",
        state="created",
        created_at=at,
        updated_at=at,
    )
    return request, job["id"]


def _insert_requests(conn: Connection, rows: list[tuple[NewJobRequest, str]]) -> None:
    for request, job_id in rows:
        gateway.insert_job_request(conn, request)
        gateway.update_job_request(conn, request.idempotency_key, JobRequestUpdate(job_id=job_id))


async def timed(label: str, work: Callable[[], Awaitable[Any]], plans: list[Any]) -> float:
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    print(f"  {label:<34} {took * 1000:8.1f} ms  {'ok' if took < TARGET_S else 'SLOW'}")
    return took


# Rollups are summaries made to be read whole by whole-history reports: scanning them is the plan.
ROLLUPS = {"generation_money", "spend_day"}


def explain(path: Path, statements: list[tuple[str, Any]]) -> list[str]:
    """Print each statement's plan; return the full-table scans that use no index."""
    bad: list[str] = []
    with sqlite3.connect(path) as conn:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params or ())]
            print("   ", " ".join(sql.split())[:110])
            subqueries = {
                d.split()[-1] for d in plan if d.startswith(("CO-ROUTINE", "MATERIALIZE"))
            }
            for detail in plan:
                print("      ", detail)
                scanned = detail.split()[1] if detail.startswith("SCAN ") else None
                if scanned and scanned not in subqueries | ROLLUPS and "INDEX" not in detail:
                    bad.append(detail)
    return bad


async def main() -> None:
    logging.getLogger("receiver.spend.audit").setLevel(logging.ERROR)  # one line per finding: quiet
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--ledger", type=int, default=300_000)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    if args.keep:
        (args.keep / "audit.db").unlink(missing_ok=True)
        await run(args, args.keep / "audit.db")
        return
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        await run(args, Path(folder) / "audit.db")


async def run(args: argparse.Namespace, path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    started = time.perf_counter()
    injected = await generate(db, args.jobs, args.ledger)
    print(
        f"generated {args.jobs} jobs, {args.ledger} ledger rows in {path} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    statements: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        statements.append((sql, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    aurous: Any = _NoAurous()  # Aurous is a stub here
    tracker = JobTracker(db, output_ttl_s=86400, aurous=aurous)
    audit = Audit(Replica(db, tracker, "bench"), aurous, AuditConfig(grace=timedelta(0)))
    synced = (START + timedelta(days=61)).isoformat()  # as if a complete sync had just run
    await db.write(lambda conn: gateway.set_state(conn, "ledger.synced_at", synced, START))
    week = (START + timedelta(days=20), START + timedelta(days=27))
    times = {}
    print("\ntimings (SQLite, warm):")
    for by in spend.GROUPINGS:
        await spend.summary(db, by)  # warm the page cache once
        times[f"summary by={by}"] = await timed(
            f"summary by={by}", lambda b=by: spend.summary(db, b), statements
        )
        times[f"summary by={by} (7 days)"] = await timed(
            f"summary by={by} (7 days)", lambda b=by: spend.summary(db, b, *week), statements
        )
    times["export.csv"] = await timed(
        "export.csv (one row per job)", lambda: spend.export_csv(db), statements
    )
    first = await timed("findings pass (first: reports all)", audit.evaluate, statements)
    again = await timed("findings pass (again: nothing new)", audit.evaluate, statements)
    times["findings"] = max(first, again)
    report = await spend.findings(db)
    codes = Counter(finding.code for finding in report.data)
    print(f"  findings: {dict(sorted(codes.items()))}")
    if codes != injected:
        raise SystemExit(f"findings differ from the anomalies generated: {dict(injected)}")
    print("  = exactly the anomalies generated")
    event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    await db.dispose()
    print("\nquery plans:")
    unique = list({sql: (sql, params) for sql, params in statements}.values())
    bad = explain(path, unique)
    slow = [label for label, took in times.items() if took >= TARGET_S]
    print(
        f"\n{len(times)} timings, slowest {max(times.values()) * 1000:.0f} ms; "
        f"target < {TARGET_S * 1000:.0f} ms: {'met' if not slow else 'MISSED: ' + ', '.join(slow)}"
    )
    if bad:
        raise SystemExit(f"table scans without an index: {bad}")
    print("every report reads through an index (no bare table scans)")


if __name__ == "__main__":
    asyncio.run(main())
