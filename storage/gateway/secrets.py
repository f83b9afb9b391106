"""Webhook secrets: the keyring at rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.gateway._common import Values, _insert
from storage.models import (
    WEBHOOK_SECRET,
)

__all__ = [
    "insert_secret",
    "list_secrets",
    "record_secret_matches",
    "retire_secret",
    "secret_id_by_fingerprint",
    "set_secret_expiry",
]


async def insert_secret(conn: AsyncConnection, values: Values) -> int | None:
    """The new secret's id, or None when the same secret (by fingerprint) is already stored."""
    stmt = (
        _insert(conn, WEBHOOK_SECRET)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(WEBHOOK_SECRET.c.id)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def list_secrets(
    conn: AsyncConnection, *, include_retired: bool = True
) -> Sequence[Row[Any]]:
    stmt = select(WEBHOOK_SECRET).order_by(WEBHOOK_SECRET.c.id)
    if not include_retired:
        stmt = stmt.where(WEBHOOK_SECRET.c.retired_at.is_(None))
    return (await conn.execute(stmt)).all()


async def secret_id_by_fingerprint(conn: AsyncConnection, fingerprint: str) -> int | None:
    stmt = select(WEBHOOK_SECRET.c.id).where(WEBHOOK_SECRET.c.fingerprint == fingerprint)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def retire_secret(conn: AsyncConnection, secret_id: int, at: datetime) -> bool:
    stmt = (
        update(WEBHOOK_SECRET)
        .where(WEBHOOK_SECRET.c.id == secret_id, WEBHOOK_SECRET.c.retired_at.is_(None))
        .values(retired_at=at)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def set_secret_expiry(conn: AsyncConnection, secret_id: int, at: datetime | None) -> bool:
    stmt = update(WEBHOOK_SECRET).where(WEBHOOK_SECRET.c.id == secret_id).values(expires_at=at)
    return (await conn.execute(stmt)).rowcount == 1


async def record_secret_matches(
    conn: AsyncConnection, matches: Mapping[int, tuple[int, datetime]]
) -> None:
    for secret_id, (count, last_at) in matches.items():
        await conn.execute(
            update(WEBHOOK_SECRET)
            .where(WEBHOOK_SECRET.c.id == secret_id)
            .values(match_count=WEBHOOK_SECRET.c.match_count + count, last_matched_at=last_at)
        )
