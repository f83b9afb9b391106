"""`Database.write_batch`, the hot path's transaction (one thread hop on SQLite): it commits
what the work wrote, keeps nothing of work that failed, and refuses work that waits on anything
but the database, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.models import SYNC_STATE
from storage.types import utcnow


async def _keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(SYNC_STATE.c.key))).scalars())


async def _put(conn: AsyncConnection, key: str) -> int:
    await conn.execute(SYNC_STATE.insert().values(key=key, value="v", updated_at=utcnow()))
    count = (await conn.execute(select(func.count()).select_from(SYNC_STATE))).scalar_one()
    return int(count)


async def test_commits_work_and_returns_its_result(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await db.write_batch(lambda conn: _put(conn, "a")) == 1
        results = await asyncio.gather(*(db.write_batch(lambda c, k=k: _put(c, k)) for k in "bcd"))
        if db.is_sqlite:  # one writer at a time: each saw the ones before it
            assert sorted(results) == [2, 3, 4]
        assert await _keys(db) == {"a", "b", "c", "d"}
    finally:
        await db.dispose()


async def test_failed_work_leaves_nothing_behind(db_url: str) -> None:
    db = Database(db_url)

    async def half_then_fail(conn: AsyncConnection) -> None:
        await _put(conn, "kept-only-if-committed")
        await conn.execute(text("SELECT * FROM no_such_table"))

    try:
        with pytest.raises(Exception, match="no_such_table"):
            await db.write_batch(half_then_fail)
        assert await _keys(db) == set()
        assert await db.write_batch(lambda conn: _put(conn, "after")) == 1
    finally:
        await db.dispose()


async def test_work_that_waits_on_something_else_is_refused_and_rolled_back(
    sqlite_url: str,
) -> None:
    db = Database(sqlite_url)

    async def wanders_off(conn: AsyncConnection) -> Any:
        await _put(conn, "x")
        await asyncio.sleep(0)

    try:
        with pytest.raises(RuntimeError, match=r"other than conn\.execute"):
            await db.write_batch(wanders_off)
        assert await _keys(db) == set()
    finally:
        await db.dispose()
