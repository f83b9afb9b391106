"""The relay's side of the outbox: destinations and their secrets, leased claims of due
pushes (one job's events in order), attempts, the event feed, replay and retention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, exists, func, or_, select, type_coerce, update

from storage.db import Connection
from storage.gateway._common import (
    columns_of,
    dialect_insert,
    page_after,
    record_select,
    records,
    update_rows,
)
from storage.models import DESTINATION, DESTINATION_SECRET, EVENT, EVENT_PUSH, PUSH_ATTEMPT
from storage.records import (
    DestinationEdit,
    DestinationRecord,
    DestinationSecretRecord,
    EventRecord,
    NewPush,
    NewPushAttempt,
    PushAttemptRecord,
    PushFinish,
    PushRecord,
    PushTally,
    changed_fields,
    values_of,
)
from storage.states import DestinationState, PushState
from storage.types import UTCDateTime

__all__ = [
    "add_destination",
    "add_destination_secret",
    "claim_pushes",
    "delete_destination",
    "destination_secrets",
    "edit_destination",
    "event_by_id",
    "events_between",
    "events_by_ids",
    "expire_destination_secrets",
    "extend_push_lease",
    "finish_pushes",
    "get_destination",
    "list_destinations",
    "list_events",
    "list_push_attempts",
    "prune_events",
    "push_tallies",
    "record_destination_answer",
    "record_push_attempts",
    "replay_pushes",
    "switch_destination",
]

P = EVENT_PUSH
PENDING, DELIVERED, FAILED = PushState.PENDING, PushState.DELIVERED, PushState.FAILED


# --- destinations ------------------------------------------------------------------------


def add_destination(
    conn: Connection, destination: DestinationRecord, secret: DestinationSecretRecord
) -> None:
    conn.execute(DESTINATION.insert().values(**values_of(destination)))
    add_destination_secret(conn, secret)


def add_destination_secret(conn: Connection, secret: DestinationSecretRecord) -> None:
    conn.execute(DESTINATION_SECRET.insert().values(**values_of(secret)))


def get_destination(conn: Connection, destination_id: str) -> DestinationRecord | None:
    stmt = record_select(DestinationRecord, DESTINATION).where(DESTINATION.c.id == destination_id)
    found = records(DestinationRecord, conn.execute(stmt))
    return found[0] if found else None


def list_destinations(conn: Connection) -> list[DestinationRecord]:
    stmt = record_select(DestinationRecord, DESTINATION).order_by(DESTINATION.c.created_at)
    return records(DestinationRecord, conn.execute(stmt))


def edit_destination(
    conn: Connection, destination_id: str, edit: DestinationEdit, at: datetime
) -> bool:
    stmt = (
        update(DESTINATION)
        .where(DESTINATION.c.id == destination_id)
        .values(**changed_fields(edit), updated_at=at)
    )
    return conn.execute(stmt).rowcount == 1


def switch_destination(
    conn: Connection,
    destination_id: str,
    *,
    enabled: bool,
    reason: str | None,
    at: datetime,
    failing_since_before: datetime | None = None,
) -> bool:
    """Enabled is a fresh start: the failures before were another story. Disabled says why.
    With `failing_since_before`, only an enabled destination failing since before then is
    disabled, checked in the same statement (an operator may have just enabled it)."""
    d = DESTINATION.c
    values: dict[str, object] = (
        {"state": DestinationState.ENABLED, "disabled_reason": None, "failing_since": None}
        if enabled
        else {"state": DestinationState.DISABLED, "disabled_reason": reason}
    )
    stmt = update(DESTINATION).where(d.id == destination_id).values(**values, updated_at=at)
    if failing_since_before is not None:
        stmt = stmt.where(
            d.state == DestinationState.ENABLED, d.failing_since <= failing_since_before
        )
    return conn.execute(stmt).rowcount == 1


def record_destination_answer(
    conn: Connection, destination_id: str, *, ok: bool, at: datetime
) -> None:
    """A success ends the destination's failing streak; a failure starts one if none runs."""
    stmt = update(DESTINATION).where(DESTINATION.c.id == destination_id)
    if ok:
        stmt = stmt.values(failing_since=None, last_success_at=at)
    else:
        stmt = stmt.where(DESTINATION.c.failing_since.is_(None)).values(failing_since=at)
    conn.execute(stmt)


def delete_destination(conn: Connection, destination_id: str) -> bool:
    """The destination, its secrets, pushes and attempts."""
    for table in (PUSH_ATTEMPT, EVENT_PUSH, DESTINATION_SECRET):
        conn.execute(delete(table).where(table.c.destination_id == destination_id))
    stmt = delete(DESTINATION).where(DESTINATION.c.id == destination_id)
    return conn.execute(stmt).rowcount == 1


def destination_secrets(
    conn: Connection, destination_ids: Sequence[str], now: datetime
) -> list[DestinationSecretRecord]:
    """The secrets still valid now, newest first."""
    s = DESTINATION_SECRET.c
    stmt = (
        record_select(DestinationSecretRecord, DESTINATION_SECRET)
        .where(
            s.destination_id.in_(destination_ids), or_(s.expires_at.is_(None), s.expires_at > now)
        )
        .order_by(s.id.desc())
    )
    return records(DestinationSecretRecord, conn.execute(stmt))


def expire_destination_secrets(conn: Connection, destination_id: str, at: datetime) -> None:
    """Every secret of the destination that has no earlier expiry stops at `at`."""
    s = DESTINATION_SECRET.c
    stmt = (
        update(DESTINATION_SECRET)
        .where(s.destination_id == destination_id, or_(s.expires_at.is_(None), s.expires_at > at))
        .values(expires_at=at)
    )
    conn.execute(stmt)


# --- pushes ------------------------------------------------------------------------------


def claim_pushes(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip: Sequence[str] = (),
) -> list[PushRecord]:
    """Lease up to `limit` due pushes to enabled destinations (but those in `skip`), in one
    statement."""
    params = {"now": now, "owner": owner, "lease_until": lease_until, "limit": limit}
    claimed = records(PushRecord, conn.execute(_claim_stmt(), {**params, "skip": list(skip)}))
    return sorted(claimed, key=lambda push: (push.event_position, push.id))


@cache
def _claim_stmt() -> Any:
    now = bindparam("now", type_=UTCDateTime())
    earlier = P.alias("earlier")
    blocked = exists().where(
        earlier.c.destination_id == P.c.destination_id,
        earlier.c.job_id == P.c.job_id,
        earlier.c.sequence < P.c.sequence,
        earlier.c.state == PENDING,
    )
    due = (
        select(P.c.id)
        .select_from(P.join(DESTINATION, DESTINATION.c.id == P.c.destination_id))
        .where(
            P.c.state == PENDING,
            P.c.next_attempt_at <= now,
            or_(P.c.lease_expires_at.is_(None), P.c.lease_expires_at < now),
            DESTINATION.c.state == DestinationState.ENABLED,
            P.c.destination_id.not_in(bindparam("skip", expanding=True)),
            ~blocked,  # one job's events reach a destination in order
        )
        .order_by(P.c.next_attempt_at, P.c.id)
        .limit(bindparam("limit"))
        .with_for_update(of=P, skip_locked=True)
    )
    return (
        update(P)
        .where(P.c.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("lease_until", type_=UTCDateTime()),
            attempts=P.c.attempts + 1,
        )
        .returning(*columns_of(PushRecord, P))
    )


def extend_push_lease(conn: Connection, push_id: int, owner: str, until: datetime) -> bool:
    stmt = (
        update(P).where(P.c.id == push_id, P.c.lease_owner == owner).values(lease_expires_at=until)
    )
    return conn.execute(stmt).rowcount == 1


def finish_pushes(conn: Connection, owner: str, finishes: Mapping[int, PushFinish]) -> set[int]:
    """Record attempts' outcomes, fenced: only pushes whose lease `owner` still holds are
    changed; returns their ids. One executemany per distinct set of changed columns."""
    owned_stmt = select(P.c.id).where(
        P.c.id.in_(bindparam("ids", expanding=True)), P.c.lease_owner == owner
    )
    if conn.dialect_name == "postgresql":
        owned_stmt = owned_stmt.with_for_update()
    owned = set(conn.execute(owned_stmt, {"ids": sorted(finishes)}).scalars())
    update_rows(
        conn,
        P,
        {push_id: finishes[push_id] for push_id in sorted(owned)},
        lease_owner=None,
        lease_expires_at=None,
    )
    return owned


def record_push_attempts(conn: Connection, attempts: Sequence[NewPushAttempt]) -> None:
    if attempts:
        conn.execute(PUSH_ATTEMPT.insert(), [values_of(a) for a in attempts])


def list_push_attempts(
    conn: Connection, destination_id: str, *, before_id: int | None, limit: int
) -> list[PushAttemptRecord]:
    a = PUSH_ATTEMPT.c
    stmt = (
        record_select(PushAttemptRecord, PUSH_ATTEMPT)
        .where(a.destination_id == destination_id)
        .order_by(a.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(a.id < before_id)
    return records(PushAttemptRecord, conn.execute(stmt))


def push_tallies(conn: Connection) -> list[PushTally]:
    """Per destination: pushes by state and the oldest one still pending."""

    def count(state: str) -> Any:
        return func.sum(case((P.c.state == state, 1), else_=0))

    pending_since = func.min(case((P.c.state == PENDING, P.c.created_at), else_=None))
    stmt = select(
        P.c.destination_id,
        count(PENDING),
        count(DELIVERED),
        count(FAILED),
        type_coerce(pending_since, UTCDateTime()),
    ).group_by(P.c.destination_id)
    return records(PushTally, conn.execute(stmt))


def replay_pushes(conn: Connection, pushes: Sequence[NewPush]) -> int:
    """Send these events again: a push that exists becomes pending and due now, with a whole
    schedule of attempts again; one that does not is added. Returns how many. A push out at
    this moment keeps its lease: its attempt is the one asked for, not a second one beside it."""
    if not pushes:
        return 0
    stmt = dialect_insert(conn.dialect_name, P)
    stmt = stmt.on_conflict_do_update(
        index_elements=["destination_id", "event_id"],
        set_={"state": PENDING, "next_attempt_at": stmt.excluded.next_attempt_at, "attempts": 0},
    )
    conn.execute(stmt, [values_of(push) for push in pushes])
    return len(pushes)


# --- the feed ----------------------------------------------------------------------------


def list_events(
    conn: Connection,
    *,
    after: int,
    types: Sequence[str] = (),
    job_id: str | None = None,
    limit: int = 100,
) -> list[EventRecord]:
    """Oldest first, from after the position `after`."""
    stmt = page_after(EventRecord, EVENT, EVENT.c.position, after, limit)
    if types:
        stmt = stmt.where(EVENT.c.type.in_(types))
    if job_id:
        stmt = stmt.where(EVENT.c.job_id == job_id)
    return records(EventRecord, conn.execute(stmt))


def event_by_id(conn: Connection, event_id: str) -> EventRecord | None:
    stmt = record_select(EventRecord, EVENT).where(EVENT.c.id == event_id)
    found = records(EventRecord, conn.execute(stmt))
    return found[0] if found else None


def events_by_ids(conn: Connection, event_ids: Sequence[str]) -> list[EventRecord]:
    stmt = record_select(EventRecord, EVENT).where(EVENT.c.id.in_(event_ids))
    return records(EventRecord, conn.execute(stmt))


def events_between(
    conn: Connection, since: datetime, until: datetime, *, after: int, limit: int
) -> list[EventRecord]:
    """Events created in [since, until), by position, from after the position `after`."""
    stmt = page_after(EventRecord, EVENT, EVENT.c.position, after, limit).where(
        EVENT.c.created_at >= since, EVENT.c.created_at < until
    )
    return records(EventRecord, conn.execute(stmt))


def prune_events(conn: Connection, before: datetime) -> int:
    """Forget events created before `before`, with their pushes and attempts; but each job
    keeps its newest event, whose sequence the job's next event carries on from."""
    later = EVENT.alias("later")
    superseded = exists().where(
        later.c.job_id == EVENT.c.job_id, later.c.sequence > EVENT.c.sequence
    )
    old = and_(EVENT.c.created_at < before, or_(EVENT.c.job_id.is_(None), superseded))
    conn.execute(delete(P).where(P.c.event_id.in_(select(EVENT.c.id).where(old).scalar_subquery())))
    conn.execute(delete(PUSH_ATTEMPT).where(PUSH_ATTEMPT.c.attempted_at < before))
    return conn.execute(delete(EVENT).where(old)).rowcount
