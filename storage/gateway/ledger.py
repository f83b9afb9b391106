"""The local copy of the credit ledger, balance snapshots, and the audit's lease.

Amounts are signed integer micro-credits (see `LedgerEntry`); `position` keeps Aurous's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Table,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)

from storage.db import Connection
from storage.gateway._common import insert, record_select, records
from storage.models import (
    BALANCE_SNAPSHOT,
    GENERATION_MONEY,
    LEDGER_ENTRY,
    SPEND_DAY,
    SPEND_DAY_GENERATION,
)
from storage.models import SYNC_STATE as STATE
from storage.records import (
    BalanceSnapshotRecord,
    LedgerEntryRecord,
    NewBalanceSnapshot,
    NewLedgerEntry,
    Slice,
    values_of,
)
from storage.states import LedgerType

__all__ = [
    "fill_generation_ids",
    "insert_balance_snapshot",
    "latest_balance_snapshot",
    "ledger_effect_between",
    "ledger_position",
    "list_ledger",
    "previous_consistent_snapshot",
    "release_lease",
    "take_lease",
    "upsert_ledger_entries",
]

L = LEDGER_ENTRY
# Movements that change the team's total credits; holds and releases only move credits
# between available and held.
_TOTAL_MOVING = (LedgerType.CHARGE, LedgerType.REFUND, LedgerType.TOPUP, LedgerType.ADJUSTMENT)
# (generation id, type, signed amount, created at): a movement as the rollups see it
_Movement = tuple[str | None, str, int, datetime | None]


def sum_of(expression: Any) -> Any:
    """SUM as a BIGINT (PostgreSQL sums BIGINTs into NUMERIC), 0 over no rows."""
    return cast(func.coalesce(func.sum(expression), 0), BigInteger)


# --- ledger entries ------------------------------------------------------------------------


def upsert_ledger_entries(
    conn: Connection, entries: Sequence[NewLedgerEntry], *, first_position: int, synced_at: datetime
) -> int:
    """Store movements in the order Aurous listed them (newest first): the first takes
    `first_position`, each next one the position below. The UNIQUE uev id dedupes; a row seen
    again takes its new position (a walk that re-reads rows after a crash re-orders them
    consistently). Only rows that are new reach the rollups. Returns how many were new."""
    positions = {entry.uev_id: first_position - i for i, entry in enumerate(entries)}
    latest = {entry.uev_id: entry for entry in entries}  # a page may repeat a row: last wins
    if not latest:
        return 0
    rows = [
        values_of(entry) | {"position": positions[uev_id], "synced_at": synced_at}
        for uev_id, entry in latest.items()
    ]
    inserted = conn.execute(
        insert(conn, L).on_conflict_do_nothing(index_elements=["uev_id"]).returning(L.c.uev_id),
        rows,
    )
    new = set(inserted.scalars())
    seen_again = [
        {"b_uev_id": uev_id, "b_position": positions[uev_id]}
        for uev_id in latest
        if uev_id not in new
    ]
    if seen_again:
        stmt = (
            update(L)
            .where(L.c.uev_id == bindparam("b_uev_id"))
            .values(position=bindparam("b_position"))
        )
        conn.execute(stmt, seen_again)
    fresh = (latest[uev_id] for uev_id in new)
    _roll_up(conn, [(e.generation_id, e.type, e.amount_micros, e.created_at) for e in fresh])
    return len(new)


def fill_generation_ids(conn: Connection) -> None:
    """Movements that name only a hold_id belong to the generation that hold was for."""
    hold = L.alias("hold")
    owner = (
        select(hold.c.generation_id)
        .where(hold.c.hold_id == L.c.hold_id, hold.c.generation_id.is_not(None))
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        update(L)
        .where(L.c.generation_id.is_(None), L.c.hold_id.is_not(None), owner.is_not(None))
        .values(generation_id=owner)
        .returning(L.c.generation_id, L.c.type, L.c.amount_micros, L.c.created_at)
    )
    _roll_up(conn, list(conn.execute(stmt)))


# --- rollups -------------------------------------------------------------------------------

_FLOW_COLUMNS: dict[str, tuple[str, int]] = {
    LedgerType.HOLD: ("held_micros", -1),
    LedgerType.RELEASE: ("released_micros", 1),
    LedgerType.CHARGE: ("charged_micros", -1),
    LedgerType.REFUND: ("refunded_micros", 1),
}
_ZERO = dict.fromkeys(("held_micros", "released_micros", "charged_micros", "refunded_micros"), 0)


def _day_of(at: datetime | None) -> str:
    return at.astimezone(UTC).date().isoformat() if at is not None else "unknown"


def _roll_up(conn: Connection, movements: Iterable[_Movement]) -> None:
    """Add movements that just became job movements to the per-generation and per-day sums."""
    by_generation: dict[str, dict[str, int]] = {}
    by_day: dict[str, dict[str, int]] = {}
    pairs: set[tuple[str, str]] = set()
    for generation_id, kind, amount, created_at in movements:
        if generation_id is None:
            continue
        day = _day_of(created_at)
        pairs.add((day, generation_id))
        generation = by_generation.setdefault(generation_id, dict(_ZERO))
        totals = by_day.setdefault(day, {**_ZERO, "jobs": 0})
        if flow := _FLOW_COLUMNS.get(kind):
            column, sign = flow
            generation[column] += sign * amount
            totals[column] += sign * amount
    if not pairs:
        return
    pair_rows = [{"day": day, "generation_id": gid} for day, gid in sorted(pairs)]
    stmt = insert(conn, SPEND_DAY_GENERATION).on_conflict_do_nothing()
    new_pairs = conn.execute(stmt.returning(SPEND_DAY_GENERATION.c.day), pair_rows)
    for day in new_pairs.scalars():
        by_day[day]["jobs"] += 1
    _add(conn, GENERATION_MONEY, "generation_id", by_generation)
    _add(conn, SPEND_DAY, "day", by_day)


def _add(conn: Connection, table: Table, key: str, increments: dict[str, dict[str, int]]) -> None:
    if not increments:
        return
    rows = [{key: name, **values} for name, values in sorted(increments.items())]
    stmt = insert(conn, table)
    columns = [column for column in rows[0] if column != key]
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={column: table.c[column] + stmt.excluded[column] for column in columns},
    )
    conn.execute(stmt, rows)


def ledger_position(conn: Connection, uev_id: str) -> int | None:
    position: int | None = conn.execute(
        select(L.c.position).where(L.c.uev_id == uev_id)
    ).scalar_one_or_none()
    return position


def list_ledger(
    conn: Connection,
    *,
    type_: str | None = None,
    generation_id: str | None = None,
    before_position: int | None = None,
    limit: int = 50,
) -> Slice[LedgerEntryRecord]:
    """Newest first, as Aurous listed them."""
    stmt = record_select(LedgerEntryRecord, L).order_by(L.c.position.desc()).limit(limit + 1)
    if type_:
        stmt = stmt.where(L.c.type == type_)
    if generation_id:
        stmt = stmt.where(L.c.generation_id == generation_id)
    if before_position is not None:
        stmt = stmt.where(L.c.position < before_position)
    found = records(LedgerEntryRecord, conn.execute(stmt))
    return Slice(found[:limit], len(found) > limit)


def ledger_effect_between(conn: Connection, after: int, upto: int) -> int:
    """What the movements listed after position `after`, up to `upto`, did to total credits."""
    stmt = select(sum_of(L.c.amount_micros)).where(
        L.c.position > after, L.c.position <= upto, L.c.type.in_(_TOTAL_MOVING)
    )
    return int(conn.execute(stmt).scalar_one())


# --- balance snapshots -----------------------------------------------------------------------


def insert_balance_snapshot(conn: Connection, snapshot: NewBalanceSnapshot) -> int:
    stmt = BALANCE_SNAPSHOT.insert().values(**values_of(snapshot)).returning(BALANCE_SNAPSHOT.c.id)
    return int(conn.execute(stmt).scalar_one())


def latest_balance_snapshot(conn: Connection) -> BalanceSnapshotRecord | None:
    stmt = (
        record_select(BalanceSnapshotRecord, BALANCE_SNAPSHOT)
        .order_by(BALANCE_SNAPSHOT.c.id.desc())
        .limit(1)
    )
    found = records(BalanceSnapshotRecord, conn.execute(stmt))
    return found[0] if found else None


def previous_consistent_snapshot(conn: Connection, before_id: int) -> BalanceSnapshotRecord | None:
    stmt = (
        record_select(BalanceSnapshotRecord, BALANCE_SNAPSHOT)
        .where(
            BALANCE_SNAPSHOT.c.id < before_id,
            BALANCE_SNAPSHOT.c.ledger_position.is_not(None),
            BALANCE_SNAPSHOT.c.credits_micros.is_not(None),
        )
        .order_by(BALANCE_SNAPSHOT.c.id.desc())
        .limit(1)
    )
    found = records(BalanceSnapshotRecord, conn.execute(stmt))
    return found[0] if found else None


# --- a lease on named work (one replica audits at a time) ------------------------------------


def take_lease(conn: Connection, key: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take or extend the lease `key` for `owner` until `until`, unless another owner holds
    an unexpired one. (In a lease row `value` is the owner and `updated_at` the expiry.)"""
    stmt = insert(conn, STATE).values(key=key, value=owner, updated_at=until)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"value": owner, "updated_at": until},
        where=or_(STATE.c.updated_at < now, STATE.c.value == owner),
    ).returning(literal(1))
    return conn.execute(stmt).first() is not None


def release_lease(conn: Connection, key: str, owner: str) -> None:
    conn.execute(delete(STATE).where(STATE.c.key == key, STATE.c.value == owner))
