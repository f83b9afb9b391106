"""Spend reports as users see them (API and CLI): the summary, the ledger, findings, the
per-job CSV and the runway. Credits are JSON numbers; sums are exact in micro-credits first.

`charged` is net: charges minus refunds, i.e. what the credits were really spent on. `held`
and `released` are the holds placed and released; `refunded` is shown on its own as well.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from receiver.spend.rules import credits_text
from storage import gateway
from storage.db import Database

__all__ = [
    "CSV_COLUMNS",
    "GROUPINGS",
    "ReportError",
    "export_csv",
    "findings",
    "ledger_page",
    "parse_moment",
    "runway",
    "runway_line",
    "summary",
]

GROUPINGS = gateway.GROUPINGS
CSV_COLUMNS = (
    "id",
    "kind",
    "model",
    "status",
    "created",
    "completed",
    "held",
    "charged",
    "released",
    "refunded",
    "findings",
)
FINDING_STATES = ("open", "resolved", "all")
RUNWAY_WINDOW = timedelta(days=7)


class ReportError(ValueError):
    """A report parameter is not usable; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _credits(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def parse_moment(value: str | None, param: str) -> datetime | None:
    """`2026-05-04` (midnight UTC) or an ISO-8601 date-time; naive times are UTC."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 9999 plus an offset
        raise ReportError(param, f"{param} must be a date (2026-05-04) or ISO-8601 time") from None


def _check_by(by: str) -> None:
    if by not in GROUPINGS:
        raise ReportError("by", f"by must be one of {', '.join(GROUPINGS)}; got {by!r}")


def _money(row: Any) -> dict[str, Any]:
    return {
        "charged": _credits(int(row.charges) - int(row.refunded)),
        "held": _credits(int(row.held)),
        "released": _credits(int(row.released)),
        "refunded": _credits(int(row.refunded)),
        "jobs": int(row.jobs),
    }


async def summary(
    db: Database, by: str = "day", since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    _check_by(by)
    async with db.read() as conn:
        total = await gateway.spend_total(conn, since, until)
        groups = await gateway.spend_groups(conn, by, since, until)
    return {
        "by": by,
        "since": _iso(since),
        "until": _iso(until),
        "total": _money(total),
        "groups": [{"key": g.key, **_money(g)} for g in groups],
        "currency": "credit",
    }


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.uev_id,
        "type": row.type,
        "amount": _credits(row.amount_micros),
        "currency": row.currency,
        "generation_id": row.generation_id,
        "hold_id": row.hold_id,
        "created_at": _iso(row.created_at),
        "description": row.description,
        "contract": row.contract,
        "synced_at": _iso(row.synced_at),
    }


async def ledger_page(
    db: Database,
    *,
    type_: str | None = None,
    job_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Newest first, as Aurous lists them; amounts signed (debits negative)."""
    if cursor is not None and not cursor.isdigit():
        raise ReportError("cursor", "cursor is not valid; use next_cursor from the previous page")
    before = int(cursor) if cursor is not None else None
    async with db.read() as conn:
        rows = await gateway.list_ledger(
            conn, type_=type_, generation_id=job_id, before_position=before, limit=limit
        )
    page, has_more = rows[:limit], len(rows) > limit
    return {
        "data": [entry_view(r) for r in page],
        "has_more": has_more,
        "next_cursor": str(page[-1].position) if has_more else None,
    }


def finding_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "subject": row.subject,
        "job_id": row.job_id,
        "expected": _credits(row.expected_micros),
        "actual": _credits(row.actual_micros),
        "reason": row.reason,
        "action": row.action,
        "first_seen_at": _iso(row.first_seen_at),
        "last_seen_at": _iso(row.last_seen_at),
        "resolved_at": _iso(row.resolved_at),
    }


async def findings(
    db: Database, state: str = "open", *, cursor: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Oldest first; a page of `limit` with `has_more`/`next_cursor`, or all of them."""
    if state not in FINDING_STATES:
        raise ReportError("status", f"status must be one of {', '.join(FINDING_STATES)}")
    if cursor is not None and not cursor.isdigit():
        raise ReportError("cursor", "cursor is not valid; use next_cursor from the previous page")
    async with db.read() as conn:
        rows = await gateway.list_findings(
            conn,
            state=state,
            after_id=int(cursor or 0),
            limit=None if limit is None else limit + 1,
        )
    page = rows if limit is None else rows[:limit]
    has_more = len(rows) > len(page)
    return {
        "data": [finding_view(r) for r in page],
        "has_more": has_more,
        "next_cursor": str(page[-1].id) if has_more else None,
    }


@functools.lru_cache(maxsize=4096)
def _amount(micros: int) -> str:
    return credits_text(micros)  # prices repeat: most jobs cost one of a few amounts


async def export_csv(
    db: Database, since: datetime | None = None, until: datetime | None = None
) -> str:
    """One row per job with movements in the window; amounts in credits, exact decimals."""
    async with db.read() as conn:
        rows = await gateway.money_by_job(conn, since, until)
        codes = await gateway.open_finding_codes(conn)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(tuple(r), codes) for r in rows)
    return out.getvalue()


def _csv_row(row: tuple[Any, ...], codes: dict[str, list[str]]) -> tuple[Any, ...]:
    job_id, held, released, charges, refunded, kind, model, status, created, completed, _ = row
    return (
        job_id,
        kind,
        model,
        status,
        created,
        completed,
        _amount(held),
        _amount(charges - refunded),
        _amount(released),
        _amount(refunded),
        ";".join(codes.get(job_id, ())),
    )


@dataclass(frozen=True)
class Runway:
    available_micros: int | None
    daily_micros: int
    window_days: float
    as_of: datetime | None

    @property
    def days(self) -> float | None:
        if self.available_micros is None or self.daily_micros <= 0:
            return None
        return self.available_micros / self.daily_micros

    def view(self) -> dict[str, Any]:
        return {
            "available": _credits(self.available_micros),
            "daily_spend": _credits(self.daily_micros),
            "window_days": round(self.window_days, 2),
            "days": None if self.days is None else round(self.days, 1),
            "balance_as_of": _iso(self.as_of),
        }


async def runway(db: Database, now: datetime) -> Runway:
    """Available credits (latest balance snapshot) ÷ average daily net spend over the last 7
    days; with less history than that, over the days there are (at least one)."""
    since = now - RUNWAY_WINDOW
    async with db.read() as conn:
        snapshot = await gateway.latest_balance_snapshot(conn)
        spent, first = await gateway.spend_since(conn, since)
    span = (now - first).total_seconds() / 86400 if first else 7.0
    days = min(7.0, max(1.0, span))
    available = snapshot.available_micros if snapshot else None
    return Runway(available, round(spent / days), days, snapshot.taken_at if snapshot else None)


def runway_line(r: Runway) -> str:
    if r.available_micros is None:
        return "runway: unknown (no balance snapshot yet; run `aurous-receiver spend sync`)"
    available = credits_text(r.available_micros)
    if r.days is None:
        return f"runway: {available} credits available; nothing spent in the last 7 days"
    daily = credits_text(r.daily_micros)
    return (
        f"runway: {r.days:.1f} days ({available} credits available ÷ {daily} per day, "
        f"average of the last {r.window_days:.0f} days)"
    )
