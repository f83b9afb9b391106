"""A throwaway PostgreSQL database for a benchmark: `auto` creates one on the test server
(RECEIVER_TEST_DATABASE_URL, else 127.0.0.1:5432) and drops it afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.postgres import find_postgres


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def database(url: str) -> Iterator[str]:
    """`url` itself, or for `auto` a fresh database that is dropped on exit."""
    if url != "auto":
        yield url
        return
    server, reason = find_postgres()
    if server is None:
        raise SystemExit(f"no PostgreSQL for this benchmark: {reason}")
    name = f"bench_{os.getpid()}"
    asyncio.run(_admin(server.admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield server.url_for(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        asyncio.run(_admin(server.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.stop()
