"""The local copy of the credit ledger, balance snapshots, and the audit's lease.

Amounts are signed integer micro-credits (see `LedgerEntry`); `position` keeps Aurous's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Row,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _insert
from storage.models import (
    BALANCE_SNAPSHOT,
    GENERATION_MONEY,
    LEDGER_ENTRY,
    SPEND_DAY,
    SPEND_DAY_GENERATION,
)
from storage.models import SYNC_STATE as STATE

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
_TOTAL_MOVING = ("charge", "refund", "topup", "adjustment")


def _sum(expression: Any) -> Any:
    """SUM as a BIGINT (PostgreSQL sums BIGINTs into NUMERIC), 0 over no rows."""
    return cast(func.coalesce(func.sum(expression), 0), BigInteger)


# --- ledger entries ------------------------------------------------------------------------


async def upsert_ledger_entries(conn: AsyncConnection, rows: Sequence[Values]) -> int:
    """Store movements; the UNIQUE uev id dedupes. A row seen again takes its new position
    (a walk that re-reads rows after a crash re-orders them consistently). Only rows that
    are new reach the rollups. Returns how many were new."""
    latest = {row["uev_id"]: row for row in rows}  # a page may repeat a row: the last wins
    if not latest:
        return 0
    inserted = await conn.execute(
        _insert(conn, L).on_conflict_do_nothing(index_elements=["uev_id"]).returning(L.c.uev_id),
        list(latest.values()),
    )
    new = set(inserted.scalars())
    seen_again = [
        {"b_uev_id": uev_id, "b_position": row["position"]}
        for uev_id, row in latest.items()
        if uev_id not in new
    ]
    if seen_again:
        stmt = (
            update(L)
            .where(L.c.uev_id == bindparam("b_uev_id"))
            .values(position=bindparam("b_position"))
        )
        await conn.execute(stmt, seen_again)
    await _roll_up(conn, [latest[uev_id] for uev_id in new])
    return len(new)


async def fill_generation_ids(conn: AsyncConnection) -> None:
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
    await _roll_up(conn, [dict(row._mapping) for row in (await conn.execute(stmt)).all()])


# --- rollups -------------------------------------------------------------------------------

_FLOW_COLUMNS = {
    "hold": ("held_micros", -1),
    "release": ("released_micros", 1),
    "charge": ("charged_micros", -1),
    "refund": ("refunded_micros", 1),
}
_ZERO = dict.fromkeys(("held_micros", "released_micros", "charged_micros", "refunded_micros"), 0)


def _day_of(at: datetime | None) -> str:
    return at.astimezone(UTC).date().isoformat() if at is not None else "unknown"


async def _roll_up(conn: AsyncConnection, movements: Sequence[Values]) -> None:
    """Add movements that just became job movements to the per-generation and per-day sums."""
    by_generation: dict[str, dict[str, int]] = {}
    by_day: dict[str, dict[str, int]] = {}
    pairs: set[tuple[str, str]] = set()
    for movement in movements:
        generation_id = movement["generation_id"]
        if generation_id is None:
            continue
        day = _day_of(movement["created_at"])
        pairs.add((day, generation_id))
        generation = by_generation.setdefault(generation_id, dict(_ZERO))
        totals = by_day.setdefault(day, {**_ZERO, "jobs": 0})
        if flow := _FLOW_COLUMNS.get(movement["type"]):
            column, sign = flow
            generation[column] += sign * movement["amount_micros"]
            totals[column] += sign * movement["amount_micros"]
    if not pairs:
        return
    pair_rows = [{"day": day, "generation_id": gid} for day, gid in sorted(pairs)]
    stmt = _insert(conn, SPEND_DAY_GENERATION).on_conflict_do_nothing()
    new_pairs = await conn.execute(stmt.returning(SPEND_DAY_GENERATION.c.day), pair_rows)
    for day in new_pairs.scalars():
        by_day[day]["jobs"] += 1
    await _add(conn, GENERATION_MONEY, "generation_id", by_generation)
    await _add(conn, SPEND_DAY, "day", by_day)


async def _add(
    conn: AsyncConnection, table: Any, key: str, increments: dict[str, dict[str, int]]
) -> None:
    if not increments:
        return
    rows = [{key: name, **values} for name, values in sorted(increments.items())]
    stmt = _insert(conn, table)
    columns = [column for column in rows[0] if column != key]
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={column: table.c[column] + stmt.excluded[column] for column in columns},
    )
    await conn.execute(stmt, rows)


async def ledger_position(conn: AsyncConnection, uev_id: str) -> int | None:
    stmt = select(L.c.position).where(L.c.uev_id == uev_id)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def list_ledger(
    conn: AsyncConnection,
    *,
    type_: str | None = None,
    generation_id: str | None = None,
    before_position: int | None = None,
    limit: int = 50,
) -> Sequence[Row[Any]]:
    """Newest first (as Aurous listed them); one row more than `limit` tells if more exist."""
    stmt = select(L).order_by(L.c.position.desc()).limit(limit + 1)
    if type_:
        stmt = stmt.where(L.c.type == type_)
    if generation_id:
        stmt = stmt.where(L.c.generation_id == generation_id)
    if before_position is not None:
        stmt = stmt.where(L.c.position < before_position)
    return (await conn.execute(stmt)).all()


async def ledger_effect_between(conn: AsyncConnection, after: int, upto: int) -> int:
    """What the movements listed after position `after`, up to `upto`, did to total credits."""
    stmt = select(_sum(L.c.amount_micros)).where(
        L.c.position > after, L.c.position <= upto, L.c.type.in_(_TOTAL_MOVING)
    )
    return int((await conn.execute(stmt)).scalar_one())


# --- balance snapshots -----------------------------------------------------------------------


async def insert_balance_snapshot(conn: AsyncConnection, values: Values) -> int:
    stmt = BALANCE_SNAPSHOT.insert().values(**values).returning(BALANCE_SNAPSHOT.c.id)
    return int((await conn.execute(stmt)).scalar_one())


async def latest_balance_snapshot(conn: AsyncConnection) -> Row[Any] | None:
    stmt = select(BALANCE_SNAPSHOT).order_by(BALANCE_SNAPSHOT.c.id.desc()).limit(1)
    return (await conn.execute(stmt)).first()


async def previous_consistent_snapshot(conn: AsyncConnection, before_id: int) -> Row[Any] | None:
    stmt = (
        select(BALANCE_SNAPSHOT)
        .where(
            BALANCE_SNAPSHOT.c.id < before_id,
            BALANCE_SNAPSHOT.c.ledger_position.is_not(None),
            BALANCE_SNAPSHOT.c.credits_micros.is_not(None),
        )
        .order_by(BALANCE_SNAPSHOT.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).first()


# --- a lease on named work (one replica audits at a time) ------------------------------------


async def take_lease(
    conn: AsyncConnection, key: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Take or extend the lease `key` for `owner` until `until`, unless another owner holds
    an unexpired one. (In a lease row `value` is the owner and `updated_at` the expiry.)"""
    stmt = _insert(conn, STATE).values(key=key, value=owner, updated_at=until)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"value": owner, "updated_at": until},
        where=or_(STATE.c.updated_at < now, STATE.c.value == owner),
    ).returning(literal(1))
    return (await conn.execute(stmt)).first() is not None


async def release_lease(conn: AsyncConnection, key: str, owner: str) -> None:
    await conn.execute(delete(STATE).where(STATE.c.key == key, STATE.c.value == owner))
