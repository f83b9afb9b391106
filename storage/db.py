"""The database: one engine per dialect, and the two ways to use it, `read(work)` and
`write(work)`, each one transaction.

Work is a plain function of a `Connection`: it runs statements through the gateway and cannot
await anything, so no transaction is ever held open across an HTTP call or a sleep. That rule
is the type of `work`, not a convention.

SQLite gets WAL, FULL sync and BEGIN IMMEDIATE for writes (a write transaction takes the write
lock up front instead of failing halfway on an upgrade). Its writes run in a worker thread on
a plain sqlite3 connection, one thread hop per transaction; on PostgreSQL the work runs on the
event loop through SQLAlchemy's greenlet bridge. `Connection.insert_rows` is the batch insert
of the hot path: on SQLite its statements are compiled once and their rows bound as tuples.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeAlias, TypeVar

import msgspec
from sqlalchemy import Connection as SAConnection
from sqlalchemy import Engine, Insert, create_engine, event
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from storage.sqlite_inserts import sqlite_plan

T = TypeVar("T")

__all__ = [
    "ConcurrentInsert",
    "Connection",
    "Database",
    "Parameters",
    "Rows",
    "normalize_url",
]

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]]
Rows: TypeAlias = "CursorResult[*tuple[Any, ...]]"

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)
_RACE_ATTEMPTS = 5


class Connection(Protocol):
    """All the gateway asks of a connection: the dialect's name, and running one statement
    inside the transaction the caller opened."""

    @property
    def dialect_name(self) -> str: ...

    def execute(self, statement: Executable, parameters: Parameters | None = None) -> Rows: ...

    def insert_rows(
        self, statement: Insert, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """Run an INSERT once per row (all rows with the same keys); what it returns, if
        anything (in no promised order)."""
        ...


class ConcurrentInsert(RuntimeError):
    """Another transaction inserted a row this one meant to create; run it again (it will
    then see that row)."""


class _Transaction:
    """A SQLAlchemy connection seen through `Connection`."""

    __slots__ = ("_connection", "dialect_name")

    def __init__(self, connection: SAConnection) -> None:
        self._connection = connection
        self.dialect_name = connection.dialect.name

    def execute(self, statement: Executable, parameters: Parameters | None = None) -> Rows:
        return self._connection.execute(statement, parameters)

    def insert_rows(
        self, statement: Insert, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        if self.dialect_name != "sqlite":
            result = self._connection.execute(statement, rows)
            return [tuple(row) for row in result] if result.returns_rows else []
        plan = sqlite_plan(statement, tuple(rows[0]), self._connection.dialect)
        cursor = self._connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            parameters = [plan.parameters(row) for row in rows]
            if not plan.returns_rows:
                cursor.executemany(plan.sql, parameters)
                return []
            return plan.returning(cursor, parameters)
        finally:
            cursor.close()


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
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: AsyncEngine = _create_engine(self.url, echo=echo)
        self._sqlite_writer = asyncio.Lock()
        self._writer_connection: SAConnection | None = None

    async def read(self, work: Callable[[Connection], T]) -> T:
        """`work` in one read transaction."""
        async with self.engine.connect() as conn, conn.begin():
            return await conn.run_sync(_run, work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """`work` in one write transaction, committed when it returns, rolled back if it
        raises."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn, conn.begin():
                return await conn.run_sync(_run, work)
        # SQLite has one writer at a time. Writers of this process queue here, in order,
        # instead of meeting at the file lock, where a loser sleeps in SQLite's busy handler
        # (1 ms, 2 ms, 5 ms, ...) long after the lock is free. Other processes (the CLI)
        # still wait through busy_timeout.
        async with self._sqlite_writer:
            running = asyncio.ensure_future(asyncio.to_thread(self._write_in_thread, work))
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                # The thread goes on with the transaction on the one writer connection: the
                # next writer must not have it before the thread is done.
                while not running.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([running])
                raise

    async def write_retrying_races(
        self, work: Callable[[Connection], T], *, attempts: int = _RACE_ATTEMPTS
    ) -> T:
        """`write(work)`, run again when another replica inserted one of its rows at the same
        moment (`ConcurrentInsert`): the next attempt sees that row."""
        for attempt in range(1, attempts + 1):
            try:
                return await self.write(work)
            except ConcurrentInsert:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _write_in_thread(self, work: Callable[[Connection], T]) -> T:
        # One connection serves every write (they take turns under the writer lock): a pool
        # checkout and its reset on return, per transaction, were several percent of a
        # profile of the intake.
        conn = self._sqlite_writer_connection
        try:
            with conn.begin():
                return _run(conn, work)
        except BaseException:
            self._close_sqlite_writer()  # a failed connection is not used again
            raise

    @property
    def _sqlite_writer_connection(self) -> SAConnection:
        if self._writer_connection is None:
            connection = self._sqlite_sync_engine.connect()
            self._writer_connection = connection.execution_options(sqlite_immediate=True)
        return self._writer_connection

    def _close_sqlite_writer(self) -> None:
        if self._writer_connection is not None:
            self._writer_connection.close()
            self._writer_connection = None

    @cached_property
    def _sqlite_sync_engine(self) -> Engine:
        url = make_url(self.url).set(drivername="sqlite+pysqlite")
        # Only one thread at a time uses a connection (the writer lock), never two at once.
        engine = create_engine(
            url,
            echo=self.engine.echo,
            connect_args={"check_same_thread": False},
            json_serializer=_json_text,
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine

    async def dispose(self) -> None:
        await self.engine.dispose()
        async with self._sqlite_writer:
            self._close_sqlite_writer()
        if "_sqlite_sync_engine" in self.__dict__:
            self._sqlite_sync_engine.dispose()


def _run(connection: SAConnection, work: Callable[[Connection], T]) -> T:
    result = work(_Transaction(connection))
    if inspect.isawaitable(result):
        # Raising rolls the transaction back: nothing half-done is committed.
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("database work must be a plain function: it may not await")
    return result


def _create_engine(url: str, *, echo: bool) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(
            url,
            echo=echo,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            json_serializer=_json_text,
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, json_serializer=_json_text)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _json_text(value: Any) -> str:
    """JSON columns as compact text, by msgspec (several times faster than `json.dumps`)."""
    return msgspec.json.encode(value).decode()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event, not the driver, decide when transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _on_sqlite_begin(conn: SAConnection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
