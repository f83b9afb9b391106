"""`Database.write`, every write transaction (one thread hop on SQLite): it commits what the
work wrote, keeps nothing of work that failed, and refuses work that waits on anything but the
database, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, text

from storage.db import Connection, Database
from storage.models import SYNC_STATE
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
