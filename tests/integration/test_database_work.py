"""`Database.write`, every write transaction (one thread hop on SQLite): it commits what the
work wrote, keeps nothing of work that failed, and refuses work that waits on anything but the
database, on both backends."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text

from storage import gateway
from storage.db import Connection, Database
from storage.models import DELIVERY, SYNC_STATE
from storage.records import NewDelivery
from storage.states import DeliveryStatus
from storage.types import utcnow


async def _keys(db: Database) -> set[str]:
    return await db.read(lambda conn: set(conn.execute(select(SYNC_STATE.c.key)).scalars()))


def _put(conn: Connection, key: str) -> int:
    conn.execute(SYNC_STATE.insert().values(key=key, value="v", updated_at=utcnow()))
    count = conn.execute(select(func.count()).select_from(SYNC_STATE)).scalar_one()
    return int(count)


async def test_commits_work_and_returns_its_result(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await db.write(lambda conn: _put(conn, "a")) == 1
        results = await asyncio.gather(*(db.write(lambda c, k=k: _put(c, k)) for k in "bcd"))
        if db.is_sqlite:  # one writer at a time: each saw the ones before it
            assert sorted(results) == [2, 3, 4]
        assert await _keys(db) == {"a", "b", "c", "d"}
    finally:
        await db.dispose()


async def test_failed_work_leaves_nothing_behind(db_url: str) -> None:
    db = Database(db_url)

    def half_then_fail(conn: Connection) -> None:
        _put(conn, "kept-only-if-committed")
        conn.execute(text("SELECT * FROM no_such_table"))

    try:
        with pytest.raises(Exception, match="no_such_table"):
            await db.write(half_then_fail)
        assert await _keys(db) == set()
        assert await db.write(lambda conn: _put(conn, "after")) == 1
    finally:
        await db.dispose()


async def test_a_write_cancelled_midway_neither_breaks_nor_overlaps_the_next(db_url: str) -> None:
    """Work cancelled while it runs (a lease renewal whose item is done, say) finishes its
    transaction alone; the next write waits for it instead of sharing its connection."""
    db = Database(db_url)

    def slow_put(conn: Connection) -> int:
        time.sleep(0.3)
        return _put(conn, "slow")

    try:
        slow = asyncio.create_task(db.write(slow_put))
        await asyncio.sleep(0.1)
        slow.cancel()
        await db.write(lambda conn: _put(conn, "next"))
        keys = await _keys(db)
        if db.is_sqlite:  # the thread committed what it had begun
            assert keys == {"slow", "next"}
        else:  # PostgreSQL rolls a cancelled transaction back, or had committed it
            assert "next" in keys and keys <= {"slow", "next"}
    finally:
        await db.dispose()


async def test_work_that_waits_on_something_else_is_refused_and_rolled_back(
    db_url: str,
) -> None:
    db = Database(db_url)

    async def wanders_off(conn: Connection) -> Any:
        _put(conn, "x")
        await asyncio.sleep(0)

    try:
        with pytest.raises(TypeError, match="may not await"):
            await db.write(wanders_off)
        assert await _keys(db) == set()
    finally:
        await db.dispose()


def _delivery(event_id: str, received_at: datetime) -> NewDelivery:
    return NewDelivery(
        status=DeliveryStatus.PROCESSED,
        received_at=received_at,
        body=b'{"id": "%s"}' % event_id.encode(),
        body_size=14,
        headers={"content-type": "application/json"},
        remote_addr="127.0.0.1",
        request_id=None,
        event_id=event_id,
        event_type="image.completed",
        signature_t=1_700_000_000,
        synthetic=True,
    )


async def test_batched_inserts_store_every_column_as_written(db_url: str) -> None:
    """The intake's inserts bind rows as plain tuples on SQLite: what comes back must be what
    was written (an offset time in UTC, JSON, booleans, column defaults), each event once."""
    db = Database(db_url)
    at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    batch = [_delivery("evt_a", at), _delivery("evt_b", at), _delivery("evt_a", at)]
    large = [_delivery(f"evt_{n % 20:02}", at) for n in range(45)]  # past a multi-row insert
    try:
        new = await db.write(lambda conn: gateway.insert_deliveries(conn, batch))
        again = await db.write(lambda conn: gateway.insert_deliveries(conn, batch[:1]))
        many = await db.write(lambda conn: gateway.insert_deliveries(conn, large))
        stored = await db.read(
            lambda conn: gateway.list_deliveries(conn, status=None, before_id=None, limit=50)
        )
    finally:
        await db.dispose()
    assert new == {"evt_a", "evt_b"}
    assert again == set()
    assert many == {f"evt_{n:02}" for n in range(20)}
    assert len(stored) == 22 and len({row.event_id for row in stored}) == 22
    for row in stored:
        assert row.received_at == at and row.received_at.tzinfo == UTC
        assert (row.headers, row.synthetic, row.duplicates) == (batch[0].headers, True, 0)
        assert (row.signature_t, row.status, row.body_size) == (1_700_000_000, "processed", 14)


async def test_a_batched_insert_keeps_the_values_written_into_its_statement(db_url: str) -> None:
    """Values given with `.values()` win over the columns' defaults, as in SQLAlchemy's own
    inserts, for rows in one statement, in groups of sixteen and one at a time."""
    statement = (
        DELIVERY.insert()
        .values(duplicates=5, reject_reason="written", status="quarantined")
        .returning(DELIVERY.c.event_id)
    )
    at = utcnow()
    rows = [
        {"event_id": f"evt_{n:02}", "received_at": at, "body": b"{}", "headers": {}}
        for n in range(19)
    ]
    db = Database(db_url)
    try:
        returned = await db.write(lambda conn: conn.insert_rows(statement, rows))
        stored = await db.read(
            lambda conn: conn.execute(
                select(DELIVERY.c.duplicates, DELIVERY.c.reject_reason, DELIVERY.c.status)
            ).all()
        )
    finally:
        await db.dispose()
    assert sorted(event_id for (event_id,) in returned) == [f"evt_{n:02}" for n in range(19)]
    assert {tuple(row) for row in stored} == {(5, "written", "quarantined")}
    assert len(stored) == 19
