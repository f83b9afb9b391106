"""The local copy of the credit ledger, balance snapshots, and the audit's lease.

Amounts are signed integer micro-credits (see `LedgerEntry`); `position` keeps Aurous's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Row, cast, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _insert
from storage.models import BALANCE_SNAPSHOT, LEDGER_ENTRY
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
    (a walk that re-reads rows after a crash re-orders them consistently). Returns new rows."""
    if not rows:
        return 0
    ids = [row["uev_id"] for row in rows]
    known = set((await conn.execute(select(L.c.uev_id).where(L.c.uev_id.in_(ids)))).scalars())
    stmt = _insert(conn, L)
    stmt = stmt.on_conflict_do_update(
        index_elements=["uev_id"], set_={"position": stmt.excluded.position}
    )
    await conn.execute(stmt, list(rows))
    return len(set(ids) - known)


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
    )
    await conn.execute(stmt)


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
