"""The Alembic chain builds the whole schema on an empty database and matches the models
(`alembic upgrade head` then `alembic check`), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _admin
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def alembic(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def check_chain(url: str) -> None:
    alembic(url, "upgrade", "head")
    assert "No new upgrade operations detected" in alembic(url, "check")
    alembic(url, "downgrade", "base")
    alembic(url, "upgrade", "head")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema at all) on each backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/empty.db"
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = f"receiver_mig_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(postgres, f'CREATE DATABASE "{name}"'))
    try:
        yield postgres.url_for(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_chain_builds_the_schema_from_empty(empty_url: str) -> None:
    check_chain(empty_url)


async def _seed_ledger_then_compare(url: str) -> None:
    """Movements stored before the rollups existed; after the upgrade whole-history reports
    (rollups) equal a window over everything (the ledger itself)."""
    from datetime import UTC, datetime, timedelta

    from receiver.spend import reports as spend
    from storage.db import Database
    from storage.models import LEDGER_ENTRY

    start = datetime(2026, 5, 1, tzinfo=UTC)
    moves = [("hold", -2), ("charge", -2), ("release", 2), ("refund", 1)]
    rows = [
        {
            "uev_id": f"uev_{n:04d}",
            "type": moves[n % 4][0],
            "amount_micros": moves[n % 4][1] * 1_000_000,
            "currency": "credit",
            "generation_id": f"img_{n // 3:03d}" if n % 7 else None,
            "created_at": start + timedelta(hours=5 * n),
            "contract": "ledger",
            "position": n,
            "synced_at": start,
            "raw": {},
        }
        for n in range(200)
    ]
    db = Database(url)
    try:
        await db.write(lambda conn: conn.execute(LEDGER_ENTRY.insert(), rows))
    finally:
        await db.dispose()
    alembic(url, "upgrade", "head")
    db = Database(url)
    try:
        for by in ("day", "kind", "status"):
            whole = await spend.summary(db, by)
            window = await spend.summary(db, by, start - timedelta(days=1), start.replace(2030))
            assert (whole.total, whole.groups) == (window.total, window.groups)
        assert whole.total.jobs == len({r["generation_id"] for r in rows} - {None})
    finally:
        await db.dispose()


def test_upgrade_fills_the_spend_rollups(empty_url: str) -> None:
    alembic(empty_url, "upgrade", "0003")
    asyncio.run(_seed_ledger_then_compare(empty_url))


async def _seed_duplicates_then_check(url: str) -> None:
    """Duplicate rows stored before the counters existed are folded into their first delivery:
    no count is lost, no copy is kept."""
    from datetime import UTC, datetime

    from sqlalchemy import bindparam, text

    from receiver.webhooks import views
    from storage.db import Database
    from storage.types import UTCDateTime

    insert = text(
        "INSERT INTO delivery (id, event_id, status, duplicate_of, received_at, synthetic, body,"
        " body_size, headers) VALUES (:id, :event, :status, :of, :at, false, :body, 0, '{}')"
    ).bindparams(bindparam("at", type_=UTCDateTime()))

    def at(hour: int, minute: int) -> datetime:
        return datetime(2026, 5, 1, hour, minute, tzinfo=UTC)

    rows = [
        {"id": 1, "event": "evt_1", "status": "processed", "of": None, "at": at(10, 0)},
        *[
            {"id": n, "event": None, "status": "duplicate", "of": 1, "at": at(10, n)}
            for n in (2, 3, 4)
        ],
        {"id": 5, "event": "evt_5", "status": "processed", "of": None, "at": at(11, 0)},
    ]
    db = Database(url)
    try:
        await db.write(lambda conn: conn.execute(insert, [{**r, "body": b""} for r in rows]))
    finally:
        await db.dispose()
    alembic(url, "upgrade", "head")
    db = Database(url)
    try:
        page = await views.list_deliveries(db, status=None, cursor=None, limit=10)
    finally:
        await db.dispose()
    by_event = {d.event_id: d for d in page.data}
    assert set(by_event) == {"evt_1", "evt_5"}
    assert by_event["evt_1"].duplicates == 3 and by_event["evt_5"].duplicates == 0
    last = by_event["evt_1"].last_duplicate_at
    assert last is not None and (last.hour, last.minute) == (10, 4)


def test_upgrade_counts_stored_duplicates(empty_url: str) -> None:
    alembic(empty_url, "upgrade", "0006")
    asyncio.run(_seed_duplicates_then_check(empty_url))
