"""The outbox: events written in the transaction of the change they tell, and fanned out to
the destinations that want them in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, text

from storage.db import Connection
from storage.gateway._common import chunks, dialect_insert, record_select, records
from storage.models import DESTINATION, EVENT, EVENT_PUSH
from storage.records import DestinationRecord, NewEvent, NewPush, values_of

__all__ = ["destinations_to_tell", "insert_events", "insert_pushes", "last_sequences"]

# On PostgreSQL, transactions that write events take turns from their first event to their
# commit, so positions become visible in order and a reader that has seen position p will
# never later find a smaller one committed (SQLite has one writer anyway).
_OUTBOX_LOCK = 0x6F757462


def last_sequences(conn: Connection, job_ids: Sequence[str]) -> dict[str, int]:
    """The highest event sequence of each job that has events."""
    found: dict[str, int] = {}
    for chunk in chunks(list(job_ids)):
        rows = conn.execute(_last_sequences_stmt(), {"ids": chunk})
        found.update((job_id, int(sequence)) for job_id, sequence in rows)
    return found


@cache
def _last_sequences_stmt() -> Any:
    return (
        select(EVENT.c.job_id, func.max(EVENT.c.sequence))
        .where(EVENT.c.job_id.in_(bindparam("ids", expanding=True)))
        .group_by(EVENT.c.job_id)
    )


def insert_events(conn: Connection, events: Sequence[NewEvent]) -> dict[str, int]:
    """Append events; returns each one's position."""
    if not events:
        return {}
    if conn.dialect_name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _OUTBOX_LOCK})
    rows = [values_of(event) for event in events]
    inserted = conn.insert_rows(_insert_events_stmt(conn.dialect_name), rows)
    return {event_id: int(position) for event_id, position in inserted}


@cache
def _insert_events_stmt(dialect: str) -> Any:
    return dialect_insert(dialect, EVENT).returning(EVENT.c.id, EVENT.c.position)


def destinations_to_tell(conn: Connection) -> list[DestinationRecord]:
    """Every destination, enabled or not: a disabled one keeps what it misses until it is
    enabled again. On PostgreSQL they stay until this transaction ends (a destination removed
    meanwhile waits), since the pushes made for them refer to them."""
    stmt = _destinations_stmt(conn.dialect_name == "postgresql")
    return records(DestinationRecord, conn.execute(stmt))


@cache
def _destinations_stmt(hold: bool) -> Any:
    stmt = record_select(DestinationRecord, DESTINATION)
    return stmt.with_for_update(key_share=True) if hold else stmt


def insert_pushes(conn: Connection, pushes: Sequence[NewPush]) -> None:
    if pushes:
        conn.insert_rows(_insert_pushes_stmt(conn.dialect_name), [values_of(p) for p in pushes])


@cache
def _insert_pushes_stmt(dialect: str) -> Any:
    return dialect_insert(dialect, EVENT_PUSH).on_conflict_do_nothing()
