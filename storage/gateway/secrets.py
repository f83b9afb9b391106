"""Webhook secrets: the keyring at rest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update

from storage.db import Connection
from storage.gateway._common import insert, record_select, records
from storage.models import WEBHOOK_SECRET
from storage.records import NewSecret, SecretRecord, values_of

__all__ = [
    "insert_secret",
    "list_secrets",
    "record_secret_matches",
    "retire_secret",
    "secret_id_by_fingerprint",
    "set_secret_expiry",
]


def insert_secret(conn: Connection, secret: NewSecret) -> int | None:
    """The new secret's id, or None when the same secret (by fingerprint) is already stored."""
    stmt = (
        insert(conn, WEBHOOK_SECRET)
        .values(**values_of(secret))
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(WEBHOOK_SECRET.c.id)
    )
    new_id: int | None = conn.execute(stmt).scalar_one_or_none()
    return new_id


def list_secrets(conn: Connection, *, include_retired: bool = True) -> list[SecretRecord]:
    stmt = record_select(SecretRecord, WEBHOOK_SECRET).order_by(WEBHOOK_SECRET.c.id)
    if not include_retired:
        stmt = stmt.where(WEBHOOK_SECRET.c.retired_at.is_(None))
    return records(SecretRecord, conn.execute(stmt))


def secret_id_by_fingerprint(conn: Connection, fingerprint: str) -> int | None:
    stmt = select(WEBHOOK_SECRET.c.id).where(WEBHOOK_SECRET.c.fingerprint == fingerprint)
    secret_id: int | None = conn.execute(stmt).scalar_one_or_none()
    return secret_id


def retire_secret(conn: Connection, secret_id: int, at: datetime) -> bool:
    stmt = (
        update(WEBHOOK_SECRET)
        .where(WEBHOOK_SECRET.c.id == secret_id, WEBHOOK_SECRET.c.retired_at.is_(None))
        .values(retired_at=at)
    )
    return conn.execute(stmt).rowcount == 1


def set_secret_expiry(conn: Connection, secret_id: int, at: datetime | None) -> bool:
    stmt = update(WEBHOOK_SECRET).where(WEBHOOK_SECRET.c.id == secret_id).values(expires_at=at)
    return conn.execute(stmt).rowcount == 1


@cache
def _count_matches_stmt() -> Any:
    # Built once: every intake batch runs it, and building a statement costs more than running it.
    return (
        update(WEBHOOK_SECRET)
        .where(WEBHOOK_SECRET.c.id == bindparam("secret_id"))
        .values(
            match_count=WEBHOOK_SECRET.c.match_count + bindparam("count"),
            last_matched_at=bindparam("last_at"),
        )
    )


def record_secret_matches(conn: Connection, matches: Mapping[int, tuple[int, datetime]]) -> None:
    """Add matches to each secret's count: (matches, latest match) by secret id."""
    if matches:
        conn.execute(
            _count_matches_stmt(),
            [
                {"secret_id": secret_id, "count": count, "last_at": last_at}
                for secret_id, (count, last_at) in matches.items()
            ],
        )
