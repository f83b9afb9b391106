"""The audit against a real database (SQLite and PostgreSQL), with Aurous faked in memory:
incremental ledger sync that survives a walk cut short, findings reported once and resolved
when their cause goes away, adoption of unknown jobs, balance drift, one auditor at a time."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from receiver.aurous import AurousError
from receiver.generation import decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from receiver.spend.audit import Audit, AuditConfig
from storage import gateway
from storage.db import Database
from storage.types import utcnow
from tests.support.aurous import generation


class FakeAurous:
    """The two billing endpoints and GET /v1/images/{id}, from an in-memory ledger."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []  # oldest first
        self.credits = 1000.0
        self.held = 0.0
        self.generations: dict[str, dict[str, Any]] = {}
        self.fail_on_page: int | None = None
        self.pages = 0

    def add(self, kind: str, amount: float, generation_id: str | None = None) -> str:
        row_id = f"uev_{len(self.rows):05d}"
        self.rows.append(
            {
                "id": row_id,
                "object": "usage_event",
                "type": kind,
                "amount": amount,
                "currency": "credit",
                "created_at": "2026-05-04T10:00:00Z",
                "generation_id": generation_id,
                "hold_id": f"hold_{generation_id}" if generation_id else None,
            }
        )
        self.credits += {"charge": -amount, "topup": amount, "refund": amount}.get(kind, 0.0)
        return row_id

    async def usage_events(
        self, *, starting_after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        self.pages += 1
        if self.fail_on_page is not None and self.pages == self.fail_on_page:
            raise AurousError(0, "network", "network_error", "connection reset")
        newest_first = self.rows[::-1]
        start = 0
        if starting_after is not None:
            start = next(i for i, r in enumerate(newest_first) if r["id"] == starting_after) + 1
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        return {
            "object": "list",
            "data": page,
            "has_more": more,
            "next_cursor": page[-1]["id"] if more else None,
        }

    async def balance(self) -> dict[str, Any]:
        return {
            "credits": self.credits,
            "held_credits": self.held,
            "available_credits": self.credits - self.held,
            "currency": "credit",
        }

    async def get_generation(self, job_id: str) -> Any:
        if job_id not in self.generations:
            raise AurousError(404, "invalid_request", "resource_not_found", "No such generation.")
        return decode_generation(json.dumps(self.generations[job_id]).encode())


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


def make_audit(db: Database, aurous: FakeAurous, owner: str = "own_test", **config: Any) -> Audit:
    settings = {"grace": timedelta(0), "snapshot_every": timedelta(0), "page_size": 100} | config
    tracker = JobTracker(db, output_ttl_s=86400, aurous=aurous)  # type: ignore[arg-type]
    replica = Replica(db, tracker, owner)
    return Audit(replica, aurous, AuditConfig(**settings))  # type: ignore[arg-type]


async def local_ledger(db: Database) -> list[str]:
    page = await db.read(lambda conn: gateway.list_ledger(conn, limit=100_000))
    return [r.uev_id for r in page.items]


async def test_sync_is_incremental_and_keeps_aurous_order(db: Database) -> None:
    aurous = FakeAurous()
    for n in range(250):
        aurous.add("topup", 1 + n)
    audit = make_audit(db, aurous)
    first = await audit.sync_ledger()
    assert (first.pages, first.new, first.complete) == (3, 250, True)
    assert await local_ledger(db) == [r["id"] for r in aurous.rows[::-1]]

    again = await audit.sync_ledger()
    assert (again.pages, again.new) == (1, 0)  # stops at the last walk's newest row
    for n in range(30):
        aurous.add("charge", 0.5, f"img_{n}")
    more = await audit.sync_ledger()
    assert (more.pages, more.new) == (1, 30)
    assert await local_ledger(db) == [r["id"] for r in aurous.rows[::-1]]
    page = await db.read(lambda conn: gateway.list_ledger(conn, generation_id="img_7"))
    [charge] = page.items
    assert charge.amount_micros == -500_000  # debits are negative, whatever the sign sent


async def test_a_walk_cut_short_neither_duplicates_nor_skips(db: Database) -> None:
    aurous = FakeAurous()
    for n in range(450):
        aurous.add("hold", 2, f"img_{n}")
    audit = make_audit(db, aurous)
    await audit.sync_ledger()  # a complete walk: the watermark
    for n in range(450, 800):
        aurous.add("charge", 2, f"img_{n}")
    aurous.fail_on_page = aurous.pages + 3  # the next walk dies on its third page
    with pytest.raises(AurousError):
        await audit.sync_ledger()
    assert 450 < len(await local_ledger(db)) < 800
    for n in range(800, 820):  # more arrive before the restart
        aurous.add("release", 2, f"img_{n}")
    aurous.fail_on_page = None
    report = await audit.sync_ledger()
    assert report.complete
    ids = await local_ledger(db)
    assert ids == [r["id"] for r in aurous.rows[::-1]]  # every row once, in Aurous's order
    assert len(set(ids)) == len(ids) == 820


class FakeUsageStream(FakeAurous):
    """GET /v1/usage/events as the usage event stream (§8.2 contract (b)): one row per billed
    request, `start_time` required (or, `lenient`, taken as "all"), newest first by
    created_at, paged by an opaque cursor."""

    lenient = False

    def bill(
        self,
        job_id: str,
        credits: float,
        created: datetime,
        done: datetime,
        status: str = "completed",
    ) -> None:
        self.rows = [r for r in self.rows if r["id"] != job_id]  # a request's row, as it is now
        self.rows.append(
            {
                "id": job_id,
                "type": "image",
                "status": status,
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "completed_at": done.isoformat().replace("+00:00", "Z"),
                "credits_charged": credits,
                "request_id": f"req_{job_id}",
            }
        )

    async def usage_events(  # type: ignore[override]
        self,
        *,
        starting_after: str | None = None,
        limit: int = 100,
        start_time: datetime | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        self.pages += 1
        if start_time is None and self.lenient:
            start_time = datetime(2000, 1, 1, tzinfo=UTC)
        if start_time is None:
            raise AurousError(
                400,
                "invalid_request",
                "parameter_missing",
                "start_time is required",
                param="start_time",
            )
        since = start_time.isoformat().replace("+00:00", "Z")[:19]
        listed = sorted(
            (r for r in self.rows if r["created_at"][:19] >= since),
            key=lambda r: (r["created_at"], r["id"]),
            reverse=True,
        )
        start = int(base64.b64decode(cursor)) if cursor else 0
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        following = base64.b64encode(str(start + limit).encode()).decode() if more else None
        return {"object": "list", "data": page, "has_more": more, "next_cursor": following}


@pytest.mark.parametrize("lenient", [False, True])
async def test_the_usage_event_stream_is_paged_by_start_time_and_cursor(
    db: Database, lenient: bool
) -> None:
    """Aurous may serve the usage event stream on this path instead of the credit ledger: the
    walk learns it from the 400 asking for start_time (or from the rows of a first page), and
    from then on starts at its watermark's time and pages by the stream's cursor."""
    aurous = FakeUsageStream()
    aurous.lenient = lenient
    start = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
    for n in range(250):
        at = start + timedelta(minutes=n)
        aurous.bill(f"img_{n:03d}", 0.5, at, at + timedelta(seconds=30))
    audit = make_audit(db, aurous)

    newest = start + timedelta(minutes=249)
    running = newest - timedelta(minutes=30)  # made before the newest row, billed after it
    aurous.bill("vid_long", 2, running, running, status="processing")
    first = await audit.sync_ledger()
    assert (first.pages, first.new, first.complete) == (3, 250, True)  # not vid_long yet
    aurous.bill("vid_long", 2, running, newest + timedelta(minutes=5))
    aurous.bill("img_late", 3, newest + timedelta(minutes=1), newest + timedelta(minutes=2))
    aurous.bill("img_quick", 1, newest + timedelta(minutes=2), newest + timedelta(minutes=2))
    aurous.pages = 0
    again = await audit.sync_ledger()
    assert (again.pages, again.new, again.complete) == (3, 3, True)  # no 400 again
    ids = await local_ledger(db)
    assert ids[:3] == ["img_quick", "img_late", "img_249"] and len(ids) == 253
    assert "vid_long" in ids
    page = await db.read(lambda conn: gateway.list_ledger(conn, generation_id="img_late"))
    assert [(e.type, e.amount_micros, e.contract) for e in page.items] == [
        ("charge", -3_000_000, "usage")
    ]


async def record(db: Database, job_id: str, status: str, cost: float) -> None:
    body = generation(job_id, status, cost={"amount": cost, "currency": "credit"})
    await JobTracker(db, output_ttl_s=86400).observe(
        [Observation(decode_generation(json.dumps(body).encode()), "api", utcnow())]
    )


async def open_findings(db: Database) -> dict[tuple[str, str], Any]:
    rows = await db.read(gateway.list_findings)
    return {(r.code, r.subject): r for r in rows}


async def test_each_anomaly_is_one_finding_and_goes_away_with_its_cause(db: Database) -> None:
    aurous = FakeAurous()
    jobs = {  # id: (status, cost.amount, ledger movements after the hold)
        "img_clean": ("succeeded", 2, [("charge", 2)]),
        "img_failed": ("failed", 0, [("release", 2)]),
        "img_billed": ("failed", 0, [("charge", 2)]),
        "img_over": ("succeeded", 2, [("charge", 3.5)]),
        "img_kept": ("failed", 0, []),
        "img_cheaper": ("succeeded", 1.5, [("charge", 1.5)]),  # a hold is an upper bound
    }
    for job_id, (status, cost, moves) in jobs.items():
        await record(db, job_id, status, cost)
        aurous.add("hold", 2, job_id)
        for kind, amount in moves:
            aurous.add(kind, amount, job_id)
    aurous.add("charge", 3, "img_ghost")  # nobody knows this one
    aurous.add("hold", 2, "vid_elsewhere")  # created by another system: Aurous knows it
    aurous.generations["vid_elsewhere"] = generation("vid_elsewhere", "processing")
    audit = make_audit(db, aurous)

    report = await audit.run()
    assert report.ran and report.consistent and report.adopted == 1
    expected = {
        ("charge_not_succeeded", "img_billed"),
        ("charge_mismatch", "img_over"),
        ("hold_not_released", "img_kept"),
        ("unknown_job", "img_ghost"),
        ("unknown_job", "vid_elsewhere"),
    }
    assert {(d.code, d.subject) for d in report.new_findings} == expected
    found = await open_findings(db)
    assert set(found) == expected
    assert found[("unknown_job", "img_ghost")].action == "not_found"
    assert found[("unknown_job", "vid_elsewhere")].action == "adopted"
    assert found[("charge_mismatch", "img_over")].actual_micros == 3_500_000
    adopted = await db.read(lambda conn: gateway.get_job(conn, "vid_elsewhere"))
    assert adopted is not None and adopted.first_seen_via == "sweep"

    assert (await audit.run()).new_findings == []  # never reported twice
    aurous.add("release", 2, "img_kept")
    aurous.add("refund", 2, "img_billed")
    report = await audit.run()
    assert report.new_findings == [] and report.resolved == 2
    assert set(await open_findings(db)) == expected - {
        ("hold_not_released", "img_kept"),
        ("charge_not_succeeded", "img_billed"),
    }


async def test_a_hold_gets_its_grace_period(db: Database) -> None:
    aurous = FakeAurous()
    await record(db, "img_kept", "failed", 0)
    aurous.add("hold", 2, "img_kept")
    audit = make_audit(db, aurous, grace=timedelta(hours=1))
    assert (await audit.run()).new_findings == []


async def test_balance_drift_is_found_between_snapshots(db: Database) -> None:
    aurous = FakeAurous()
    aurous.add("topup", 100)
    audit = make_audit(db, aurous)
    assert (await audit.run()).consistent
    aurous.add("charge", 2, "img_x")  # explained by the ledger
    assert [d.code for d in (await audit.run()).new_findings] == ["unknown_job"]
    aurous.credits -= 7.25  # money gone without a ledger row
    report = await audit.run()
    [drift] = report.new_findings
    assert drift.code == "balance_drift"
    assert (drift.expected_micros, drift.actual_micros) == (0, -7_250_000)
    assert (await audit.run()).new_findings == []


async def test_one_replica_audits_at_a_time(db: Database) -> None:
    aurous = FakeAurous()
    now = utcnow()
    assert await db.write(
        lambda conn: gateway.take_lease(
            conn, "audit.lease", "own_a", now, now + timedelta(minutes=1)
        )
    )
    assert not (await make_audit(db, aurous, owner="own_b").run()).ran
    assert (await make_audit(db, aurous, owner="own_a").run()).ran
    assert (await make_audit(db, aurous, owner="own_b").run()).ran  # released after the pass


async def test_with_aurous_down_the_rules_still_run_on_what_is_stored(db: Database) -> None:
    aurous = FakeAurous()
    await record(db, "img_billed", "failed", 0)
    aurous.add("hold", 2, "img_billed")
    aurous.add("charge", 2, "img_billed")
    audit = make_audit(db, aurous)
    await audit.sync_ledger()
    aurous.fail_on_page = aurous.pages + 1
    report = await audit.run()
    assert report.ran and report.error and not report.sync.complete
    assert [d.code for d in report.new_findings] == ["charge_not_succeeded"]
