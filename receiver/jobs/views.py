"""Jobs as users see them: the API/CLI shape of a job, its events, and paged lists."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from receiver.jobs.lifecycle import track_job
from storage import gateway
from storage.db import Database
from storage.types import utcnow

__all__ = ["CursorError", "get_job", "job_events", "list_jobs", "track"]


class CursorError(ValueError):
    """The pagination cursor is not one this service handed out."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _credits(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def output_view(job_id: str, row: Row[Any]) -> dict[str, Any]:
    return {
        "index": row.position,
        "state": row.state,
        "sha256": row.sha256,
        "size": row.size,
        "content_type": row.content_type,
        "deadline": _iso(row.deadline),
        "archived_at": _iso(row.archived_at),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "url": f"/jobs/{job_id}/outputs/{row.position}" if row.state == "archived" else None,
    }


def job_view(row: Row[Any], outputs: Sequence[Row[Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "terminal": row.terminal,
        "first_seen_via": row.first_seen_via,
        "terminal_via": row.terminal_via,
        "created_at": _iso(row.created_at),
        "completed_at": _iso(row.completed_at),
        "first_seen_at": _iso(row.first_seen_at),
        "last_observed_at": _iso(row.last_observed_at),
        "error_message": row.error_message,
        "model": row.model,
        "cost": {
            "amount": _credits(row.cost_micros),
            "state": row.cost_state,
            "currency": row.cost_currency,
        },
        "outputs": [output_view(row.id, o) for o in outputs if o.job_id == row.id],
    }


def event_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "at": _iso(row.at),
        "source": row.source,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "applied": row.applied,
        "note": row.note,
    }


async def get_job(db: Database, job_id: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = await gateway.get_job(conn, job_id)
        outputs = await gateway.list_outputs(conn, [job_id]) if row else []
    return job_view(row, outputs) if row else None


async def job_events(db: Database, job_id: str) -> list[dict[str, Any]] | None:
    async with db.read() as conn:
        if await gateway.get_job(conn, job_id) is None:
            return None
        return [event_view(e) for e in await gateway.list_job_events(conn, job_id)]


async def list_jobs(
    db: Database, *, status: str | None, kind: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    async with db.read() as conn:
        page = await gateway.list_jobs(conn, status=status, kind=kind, after=after, limit=limit)
        outputs = await gateway.list_outputs(conn, [r.id for r in page.rows])
    last = page.rows[-1] if page.rows and page.has_more else None
    return {
        "data": [job_view(r, outputs) for r in page.rows],
        "has_more": page.has_more,
        "next_cursor": encode_cursor(last.first_seen_at, last.id) if last else None,
    }


async def track(db: Database, job_id: str) -> tuple[dict[str, Any], bool]:
    """Start tracking `job_id`; returns the job and whether it was new."""
    async with db.write() as conn:
        created = await track_job(conn, job_id, utcnow())
    job = await get_job(db, job_id)
    assert job is not None
    return job, created


def encode_cursor(at: datetime, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, job_id = text.split("|", 1)
        return datetime.fromisoformat(at), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("cursor is not valid; use next_cursor from the previous page") from None
