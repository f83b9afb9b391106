"""Engines per dialect. SQLite gets WAL, FULL sync and BEGIN IMMEDIATE for writes, so a
write transaction takes the write lock up front instead of failing halfway on an upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")

__all__ = ["Database", "normalize_url"]

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def normalize_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    parsed = make_url(url)
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One engine and the ways to use it: `read()` and `write()` transactions, and
    `write_batch()` for the hot path's writes."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: AsyncEngine = _create_engine(self.url, echo=echo)
        self._sqlite_writer = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if not self.is_sqlite:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        # SQLite has one writer at a time. Writers of this process queue here, in order,
        # instead of meeting at the file lock, where a loser sleeps in SQLite's busy handler
        # (1 ms, 2 ms, 5 ms, ...) long after the lock is free. Other processes (the CLI)
        # still wait through busy_timeout.
        async with self._sqlite_writer, self.engine.connect() as conn:
            await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn

    async def write_batch(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` in one write transaction, for the hot path (webhook intake).

        On SQLite the whole transaction runs in one worker thread on a plain sqlite3
        connection: one thread hop per transaction instead of one per statement, each of
        which waits for a turn of the busy event loop. `work` is ordinary gateway code; it
        may await `conn.execute` and nothing else (each call completes at once).
        """
        if not self.is_sqlite:
            async with self.write() as conn:
                return await work(conn)
        async with self._sqlite_writer:
            return await asyncio.to_thread(self._write_in_thread, work)

    def _write_in_thread(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        with self._sqlite_sync_engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                immediate = cast(AsyncConnection, _ImmediateConnection(conn))
                return _run_without_suspending(work(immediate))

    @cached_property
    def _sqlite_sync_engine(self) -> Engine:
        url = make_url(self.url).set(drivername="sqlite+pysqlite")
        # Only one thread at a time uses a connection (the writer lock), never two at once.
        engine = create_engine(
            url, echo=self.engine.echo, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine

    async def dispose(self) -> None:
        await self.engine.dispose()
        if "_sqlite_sync_engine" in self.__dict__:
            self._sqlite_sync_engine.dispose()


class _ImmediateConnection:
    """Stands in for an AsyncConnection over a sync one: `execute` is done when awaited."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)


def _run_without_suspending(work: Awaitable[T]) -> T:
    coroutine = cast(Coroutine[Any, Any, T], work)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("write_batch work awaited something other than conn.execute")


def _create_engine(url: str, *, echo: bool) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(
            url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event, not the driver, decide when transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
