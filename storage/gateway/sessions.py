"""Dashboard sessions: added at login, looked up by the hash of the cookie, removed at
logout or once expired."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete

from storage.db import Connection
from storage.gateway._common import record_select, records
from storage.models import DASHBOARD_SESSION
from storage.records import SessionRecord, values_of

__all__ = ["add_session", "end_session", "get_session", "prune_sessions"]

S = DASHBOARD_SESSION.c


def add_session(conn: Connection, session: SessionRecord) -> None:
    conn.execute(DASHBOARD_SESSION.insert().values(**values_of(session)))


def get_session(conn: Connection, id_hash: str) -> SessionRecord | None:
    found = records(SessionRecord, conn.execute(_get_stmt(), {"id_hash": id_hash}))
    return found[0] if found else None


@cache
def _get_stmt() -> Any:
    return record_select(SessionRecord, DASHBOARD_SESSION).where(S.id_hash == bindparam("id_hash"))


def end_session(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(DASHBOARD_SESSION).where(S.id_hash == id_hash))


def prune_sessions(conn: Connection, now: datetime) -> int:
    return int(conn.execute(delete(DASHBOARD_SESSION).where(S.expires_at <= now)).rowcount)
